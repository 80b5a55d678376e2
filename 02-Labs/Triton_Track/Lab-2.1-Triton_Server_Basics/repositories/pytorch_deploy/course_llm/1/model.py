"""Triton Python-backend model: the course LLM, text in, text out (greedy decoding).

Input  PROMPT      string [1]   the user's message (wrapped in the model's chat template)
       MAX_TOKENS  int32  [1]   optional; default from the `default_max_tokens` parameter
Output TEXT        string [1]   the generated answer
       NUM_TOKENS  int32  [1]   how many tokens were generated

torch + transformers run inside the Python backend's stub process. COURSE_MODEL_DIR (set
by llmserve.servers.TritonServer) says where the course LLM lives.

A client mistake (an empty PROMPT, a PROMPT that is not UTF-8, MAX_TOKENS out of range) is
answered with TritonError(..., INVALID_ARG): HTTP 400 with a message the client can act on.
A raised exception, or a TritonError without a code, would reach the client as HTTP 500.
"""
import json
import os

import numpy as np
import torch
import triton_python_backend_utils as pb_utils
from transformers import AutoModelForCausalLM, AutoTokenizer


class ClientError(Exception):
    """What the client sent cannot be answered: HTTP 400."""


class TritonPythonModel:
    def initialize(self, args):
        model_dir = os.environ.get("COURSE_MODEL_DIR")
        if not model_dir or not os.path.isdir(model_dir):
            raise pb_utils.TritonModelException(
                f"COURSE_MODEL_DIR={model_dir!r} is not a model folder: start Triton with llmserve's TritonServer")
        parameters = json.loads(args["model_config"])["parameters"]
        self.default_max_tokens = int(parameters["default_max_tokens"]["string_value"])
        self.max_tokens_limit = int(parameters["max_tokens_limit"]["string_value"])
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()

    def read_request(self, request):
        """(prompt, max_tokens) of one request; raises ClientError for what the client got wrong."""
        tensor = pb_utils.get_input_tensor_by_name(request, "PROMPT")
        if tensor is None:  # Triton 2.51 lets a request without it through: MAX_TOKENS is optional, PROMPT is not
            raise ClientError("PROMPT is missing: send the message to answer")
        raw = tensor.as_numpy().reshape(-1)[0]
        try:
            prompt = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        except UnicodeDecodeError:
            raise ClientError("PROMPT is not valid UTF-8 text") from None
        if not prompt.strip():
            raise ClientError("PROMPT is empty: send the message to answer")
        limit = pb_utils.get_input_tensor_by_name(request, "MAX_TOKENS")
        max_tokens = int(limit.as_numpy().reshape(-1)[0]) if limit is not None else self.default_max_tokens
        if not 1 <= max_tokens <= self.max_tokens_limit:
            raise ClientError(f"MAX_TOKENS must be between 1 and {self.max_tokens_limit}, got {max_tokens}")
        return prompt, max_tokens

    def generate(self, prompt, max_tokens):
        ids = self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=True,
                                                 add_generation_prompt=True, return_dict=False)
        input_ids = torch.tensor([list(ids)], dtype=torch.long)
        with torch.inference_mode():
            output = self.model.generate(input_ids, attention_mask=torch.ones_like(input_ids),
                                         max_new_tokens=max_tokens, do_sample=False,
                                         pad_token_id=self.tokenizer.eos_token_id)
        new_tokens = output[0, input_ids.shape[1]:]
        return self.tokenizer.decode(new_tokens, skip_special_tokens=True), len(new_tokens)

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                prompt, max_tokens = self.read_request(request)
            except ClientError as error:  # this request fails with 400; the others are still answered
                responses.append(pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(str(error), pb_utils.TritonError.INVALID_ARG)))
                continue
            text, n_tokens = self.generate(prompt, max_tokens)
            responses.append(pb_utils.InferenceResponse([
                pb_utils.Tensor("TEXT", np.array([text.encode("utf-8")], dtype=object)),
                pb_utils.Tensor("NUM_TOKENS", np.array([n_tokens], dtype=np.int32)),
            ]))
        return responses
