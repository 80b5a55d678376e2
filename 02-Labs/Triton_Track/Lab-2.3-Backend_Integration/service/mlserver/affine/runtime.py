"""MLServer runtime: Y = 2 X + 1, the model `repositories/unified/affine` serves in Triton (Triton Lab 2.3 · 03).

The same declaration as Triton's config.pbtxt sits in model-settings.json (X FP32 [-1, 4] -> Y FP32 [-1, 4]).
MLServer hands the request to `predict` as it came: checking the declaration is this code's job, and, like
Triton's model, it refuses only NaN and infinity itself. Notebook 03 shows what each server checks.
"""
import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest, InferenceResponse


class Affine(MLModel):
    async def load(self) -> bool:
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0])
        if not np.all(np.isfinite(x)):
            raise MLServerError("X holds NaN or infinite values: send finite numbers", status_code=400)
        return InferenceResponse(model_name=self.name,
                                 outputs=[NumpyCodec.encode_output("Y", (2 * x + 1).astype(np.float32))])
