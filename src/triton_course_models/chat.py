"""The course LLM as a chat model for Triton Lab 2.3 · 03 (`unified/course_chat`): the messages in, greedy text out.

Input  MESSAGES       string [1]  the chat as JSON: [{"role": "system"|"user"|"assistant", "content": "..."}, ...]
       MAX_TOKENS     int32  [1]  optional; default from the `default_max_tokens` parameter
Output TEXT           string [1]  the answer (special tokens removed)
       TOKEN_IDS      int64  [n]  the generated token ids, the end-of-sequence token included when it came
       PROMPT_TOKENS  int32  [1]  tokens of the prompt after the model's chat template
       FINISH_REASON  string [1]  "stop" (end-of-sequence) or "length" (MAX_TOKENS reached), OpenAI's words

The chat template is applied here, in the model, with the model's own tokenizer, as vLLM's OpenAI server does:
so a façade in front of both sends the same messages and both backends see the same prompt token ids.
Greedy decoding with transformers in float32. A client mistake (MESSAGES not JSON, a role that does not
exist, an empty conversation, MAX_TOKENS out of range) is a 400 with a message saying what to change.
"""
from __future__ import annotations

import json

import numpy as np
import torch
import triton_python_backend_utils as pb_utils
from transformers import AutoModelForCausalLM, AutoTokenizer

from triton_course_models.common import (
    ClientError,
    course_model_dir,
    parameter,
    respond,
    string_tensor,
    text_input,
)

ROLES = ("system", "user", "assistant")


def parse_messages(text: str) -> list[dict]:
    """The chat messages in MESSAGES; ClientError (HTTP 400) for anything a chat template cannot take."""
    try:
        messages = json.loads(text)
    except json.JSONDecodeError as error:
        raise ClientError(f"MESSAGES is not JSON ({error.msg} at character {error.pos}): send a JSON list of "
                          '{"role": ..., "content": ...} objects') from None
    if not isinstance(messages, list) or not messages:
        raise ClientError("MESSAGES must be a non-empty JSON list of {\"role\": ..., \"content\": ...} objects")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise ClientError(f"MESSAGES[{index}] must be an object with exactly the keys role and content")
        if message["role"] not in ROLES:
            raise ClientError(f"MESSAGES[{index}].role is {message['role']!r}; use one of {', '.join(ROLES)}")
        if not isinstance(message["content"], str):
            raise ClientError(f"MESSAGES[{index}].content must be a string")
    if messages[-1]["role"] == "assistant":
        raise ClientError("the last message is the assistant's: end with a user message to get an answer")
    return messages


class ChatLLM:
    """TritonPythonModel: greedy chat completion with transformers (float32)."""

    def initialize(self, args):
        model_config = json.loads(args["model_config"])
        self.default_max_tokens = int(parameter(model_config, "default_max_tokens"))
        self.max_tokens_limit = int(parameter(model_config, "max_tokens_limit"))
        model_dir = course_model_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.eos_ids = set(np.atleast_1d(self.model.generation_config.eos_token_id or self.tokenizer.eos_token_id)
                           .tolist())

    def max_tokens(self, request) -> int:
        tensor = pb_utils.get_input_tensor_by_name(request, "MAX_TOKENS")
        value = int(tensor.as_numpy().reshape(-1)[0]) if tensor is not None else self.default_max_tokens
        if not 1 <= value <= self.max_tokens_limit:
            raise ClientError(f"MAX_TOKENS must be between 1 and {self.max_tokens_limit}, got {value}")
        return value

    def answer(self, request) -> list:
        messages = parse_messages(text_input(request, "MESSAGES"))
        max_tokens = self.max_tokens(request)
        prompt_ids = self.tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,
                                                        return_dict=False)
        input_ids = torch.tensor([list(prompt_ids)], dtype=torch.long)
        with torch.inference_mode():
            output = self.model.generate(input_ids, attention_mask=torch.ones_like(input_ids),
                                         max_new_tokens=max_tokens, do_sample=False,
                                         pad_token_id=self.tokenizer.eos_token_id)
        new_ids = output[0, input_ids.shape[1]:].tolist()
        finish = "stop" if new_ids and new_ids[-1] in self.eos_ids else "length"
        return [string_tensor("TEXT", [self.tokenizer.decode(new_ids, skip_special_tokens=True)]),
                pb_utils.Tensor("TOKEN_IDS", np.array(new_ids, dtype=np.int64)),
                pb_utils.Tensor("PROMPT_TOKENS", np.array([input_ids.shape[1]], dtype=np.int32)),
                string_tensor("FINISH_REASON", [finish])]

    def execute(self, requests):
        return respond(requests, self.answer)
