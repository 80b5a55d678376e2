"""Zero-shot sentiment with the course LLM, for Triton Lab 2.2's `classifier` and `sentiment` models.

Build a prompt around TEXT, run one forward pass and compare the log-probabilities the model gives
to the next token being "positive" or "negative". No training: the label is whichever word the model
finds more likely. The versions differ in the prompt and in the weights (fp32 or dynamic int8).

Input TEXT string [1] -> LABEL string [1] ("positive" / "negative"),
                         SCORES fp32 [2] (log-probabilities of the two label words).
An empty TEXT, or TEXT that is not UTF-8, is a client error (HTTP 400).
"""
from __future__ import annotations

import numpy as np
import torch
import triton_python_backend_utils as pb_utils
from transformers import AutoModelForCausalLM, AutoTokenizer

from triton_course_models.common import course_model_dir, respond, string_tensor, text_input

LABELS = ("positive", "negative")


class ZeroShotSentiment:
    """TritonPythonModel base. A subclass sets `prompt_template` (with a `{text}` field), and may set
    `chat_format` (wrap the prompt in the chat template as one user turn) and `quantize_int8`."""

    prompt_template: str = ""
    chat_format: bool = False
    quantize_int8: bool = False

    def initialize(self, args):
        if "{text}" not in self.prompt_template:
            raise pb_utils.TritonModelException(f"{type(self).__name__}.prompt_template needs a {{text}} field")
        model_dir = course_model_dir()
        torch.set_num_threads(1)  # one core per model instance; several models share the machine
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        if self.quantize_int8:
            # Dynamic int8: Linear weights stored as int8, activations quantized on the fly (CPU kernels).
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self.model = model
        # the first token of each label word is what the model has to predict next
        self.label_ids = [self.tokenizer.encode(word, add_special_tokens=False)[0] for word in LABELS]

    def prompt(self, text: str) -> str:
        prompt = self.prompt_template.format(text=text)
        if self.chat_format:
            return self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                      add_generation_prompt=True)
        return prompt

    @torch.inference_mode()
    def classify(self, text: str) -> tuple[str, np.ndarray]:
        ids = self.tokenizer(self.prompt(text), return_tensors="pt")
        logprobs = self.model(**ids).logits[0, -1].float().log_softmax(-1)[self.label_ids].numpy()
        return LABELS[int(np.argmax(logprobs))], logprobs.astype(np.float32)

    def answer(self, request) -> list:
        label, scores = self.classify(text_input(request, "TEXT"))
        return [string_tensor("LABEL", [label]), pb_utils.Tensor("SCORES", scores)]

    def execute(self, requests):
        return respond(requests, self.answer)
