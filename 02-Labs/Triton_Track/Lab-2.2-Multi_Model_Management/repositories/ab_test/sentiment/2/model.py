"""A/B variant B (version 2): the same classifier with dynamic int8 Linear layers - the candidate.

Zero-shot sentiment with the course LLM: build a prompt around TEXT, run one forward pass and
compare the log-probabilities the model gives to the next token being "positive" or "negative".
No training: the label is whichever word the model finds more likely.

Input TEXT string [1] -> LABEL string [1] ("positive" / "negative"),
                         SCORES fp32 [2] (log-probabilities of the two label words).
"""
import os

import numpy as np
import torch
import triton_python_backend_utils as pb_utils
from transformers import AutoModelForCausalLM, AutoTokenizer

LABELS = ("positive", "negative")
QUANTIZE_INT8 = True


class TritonPythonModel:
    def initialize(self, args):
        model_dir = os.environ.get("COURSE_MODEL_DIR")
        if not model_dir or not os.path.isdir(model_dir):
            raise pb_utils.TritonModelException(
                f"COURSE_MODEL_DIR={model_dir!r} is not a model folder: start Triton with llmserve's TritonServer")
        torch.set_num_threads(1)  # one core per model instance; several models share the machine
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        if QUANTIZE_INT8:
            # Dynamic int8: Linear weights stored as int8, activations quantized on the fly (CPU kernels).
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self.model = model
        # the first token of each label word is what the model has to predict next
        self.label_ids = [self.tokenizer.encode(word, add_special_tokens=False)[0] for word in LABELS]

    def prompt(self, text: str) -> str:
        return f"Review: {text}\nSentiment (positive or negative):"

    @torch.inference_mode()
    def classify(self, text: str):
        ids = self.tokenizer(self.prompt(text), return_tensors="pt")
        logprobs = self.model(**ids).logits[0, -1].float().log_softmax(-1)[self.label_ids].numpy()
        return LABELS[int(np.argmax(logprobs))], logprobs.astype(np.float32)

    def execute(self, requests):
        responses = []
        for request in requests:
            raw = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy().reshape(-1)[0]
            text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
            label, scores = self.classify(text)
            responses.append(pb_utils.InferenceResponse([
                pb_utils.Tensor("LABEL", np.array([label.encode()], dtype=np.object_)),
                pb_utils.Tensor("SCORES", scores),
            ]))
        return responses
