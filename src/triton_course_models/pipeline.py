"""A zero-shot sentiment pipeline in three steps, and the BLS models that run it, for Triton Lab 2.4 · 01.

The three steps are separate Triton models, so that the same pipeline can be composed three ways
(an ensemble, a BLS model, the client chaining the calls) on exactly the same models:

- `PromptTokenizer`: TEXT string [1] -> TOKEN_IDS int64 [n] (the prompt `PROMPT` around TEXT, course
  LLM tokenizer), NUM_TOKENS int64 [1]. An empty TEXT, or TEXT that is not UTF-8, is HTTP 400.
- `NextTokenLogits`: TOKEN_IDS int64 [n] -> LOGITS fp32 [vocab]: one forward pass of the course LLM,
  the logits of the next token after the prompt (49,152 values). An id outside the vocabulary is 400.
- `LabelPostprocess`: LOGITS fp32 [vocab] -> LABEL string [1] ("positive" / "negative"), CONFIDENCE
  fp32 [1] (softmax over the two label words' logits). LOGITS of another length is 400.

`BLSPipeline` runs the three with `pb_utils.InferenceRequest(...).exec()`. It checks TEXT itself before the
first call (empty or not UTF-8: HTTP 400), because in Triton 2.51 a step's error reaches the BLS caller with
code INTERNAL even when the step answered INVALID_ARG (the `bls_error_code` probe of the lab shows it), so
passing the step's code on would turn a client's mistake into a 500. `ChunkingBLSPipeline` adds what an ensemble
cannot express: a condition (a text over `max_tokens` prompt tokens is split into sentences) and a loop
(one tokenizer + LLM call per sentence, then the mean of their logits goes to the postprocess). The
ensemble's graph is fixed when the model loads: every request runs every step exactly once.
"""
from __future__ import annotations

import json
import os
import re

import numpy as np
import triton_python_backend_utils as pb_utils

from triton_course_models.common import (
    ClientError,
    client_error,
    course_model_dir,
    respond,
    string_tensor,
    text_input,
    token_ids_input,
)

PROMPT = "Review: {text}\nSentiment (positive or negative):"
LABELS = ("positive", "negative")


def course_tokenizer():
    """The course LLM's fast tokenizer from its tokenizer.json. `PreTrainedTokenizerFast` imports in under a
    second; `AutoTokenizer` pulls in much more of transformers (seconds per stub, and this lab starts six)."""
    from transformers import PreTrainedTokenizerFast
    return PreTrainedTokenizerFast(tokenizer_file=os.path.join(course_model_dir(), "tokenizer.json"))


class PromptTokenizer:
    """TritonPythonModel: TEXT -> TOKEN_IDS of PROMPT around it, NUM_TOKENS."""

    def initialize(self, args):
        self.tokenizer = course_tokenizer()

    def answer(self, request) -> list:
        prompt = PROMPT.format(text=text_input(request, "TEXT"))
        ids = np.array(self.tokenizer.encode(prompt, add_special_tokens=False), dtype=np.int64)
        return [pb_utils.Tensor("TOKEN_IDS", ids), pb_utils.Tensor("NUM_TOKENS", np.array([ids.size], np.int64))]

    def execute(self, requests):
        return respond(requests, self.answer)


class NextTokenLogits:
    """TritonPythonModel: TOKEN_IDS -> LOGITS of the next token (one forward pass of the course LLM)."""

    def initialize(self, args):
        import torch  # only this step needs torch and transformers (seconds to import)
        from transformers import AutoModelForCausalLM
        torch.set_num_threads(1)  # one core per model instance; the client and the other steps share the machine
        self.torch = torch
        self.model = AutoModelForCausalLM.from_pretrained(course_model_dir(), dtype=torch.float32).eval()
        self.vocab_size = int(self.model.config.vocab_size)

    def answer(self, request) -> list:
        ids = token_ids_input(request, "TOKEN_IDS", self.vocab_size)
        with self.torch.inference_mode():
            logits = self.model(input_ids=self.torch.from_numpy(ids.reshape(1, -1))).logits[0, -1]
        return [pb_utils.Tensor("LOGITS", logits.float().numpy())]

    def execute(self, requests):
        return respond(requests, self.answer)


class LabelPostprocess:
    """TritonPythonModel: LOGITS -> LABEL (the likelier label word) and CONFIDENCE (its softmax share)."""

    def initialize(self, args):
        tokenizer = course_tokenizer()
        self.vocab_size = len(tokenizer)
        # the first token of each label word is what the model has to predict next
        self.label_ids = [tokenizer.encode(word, add_special_tokens=False)[0] for word in LABELS]

    def answer(self, request) -> list:
        tensor = pb_utils.get_input_tensor_by_name(request, "LOGITS")
        if tensor is None:
            raise ClientError("LOGITS is missing from the request")
        logits = tensor.as_numpy().reshape(-1).astype(np.float64)
        if logits.size != self.vocab_size:
            raise ClientError(f"LOGITS has {logits.size} values: send the {self.vocab_size} next-token logits")
        pair = logits[self.label_ids]
        probabilities = np.exp(pair - pair.max())
        probabilities /= probabilities.sum()
        best = int(np.argmax(probabilities))
        return [string_tensor("LABEL", [LABELS[best]]), pb_utils.Tensor("CONFIDENCE", np.array([probabilities[best]], np.float32))]

    def execute(self, requests):
        return respond(requests, self.answer)


class StepFailed(Exception):
    """A step of the pipeline answered with an error; carries the step's error code on."""

    def __init__(self, step: str, error):
        super().__init__(f"{step}: {error.message()}")
        self.code = error.code()


class BLSPipeline:
    """TritonPythonModel: TEXT -> LABEL, CONFIDENCE by calling the three step models from Python (BLS).

    The step models' names come from config.pbtxt parameters `tokenizer`, `lm`, `postprocess`.
    """

    def initialize(self, args):
        parameters = json.loads(args["model_config"]).get("parameters", {})
        self.steps = {key: parameters.get(key, {}).get("string_value", key) for key in ("tokenizer", "lm", "postprocess")}

    def call(self, request, step: str, inputs: list, outputs: list[str]) -> list[np.ndarray]:
        """One BLS call to a step model; the request's trace is passed on, so Triton's trace shows the child."""
        reply = pb_utils.InferenceRequest(model_name=self.steps[step], requested_output_names=outputs, inputs=inputs,
                                          trace=request.trace()).exec()
        if reply.has_error():
            raise StepFailed(self.steps[step], reply.error())
        return [pb_utils.get_output_tensor_by_name(reply, name).as_numpy() for name in outputs]

    def logits_of(self, request, text: np.ndarray) -> tuple[np.ndarray, int]:
        ids, count = self.call(request, "tokenizer", [pb_utils.Tensor("TEXT", text)], ["TOKEN_IDS", "NUM_TOKENS"])
        [logits] = self.call(request, "lm", [pb_utils.Tensor("TOKEN_IDS", ids)], ["LOGITS"])
        return logits, int(count[0])

    def text_of(self, request) -> np.ndarray:
        """The TEXT input, checked as the tokenizer would check it (ClientError: HTTP 400)."""
        text_input(request, "TEXT")
        return pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy()

    def pipeline(self, request) -> list:
        logits, _ = self.logits_of(request, self.text_of(request))
        return self.label(request, logits)

    def label(self, request, logits: np.ndarray, extra: list | None = None) -> list:
        label, confidence = self.call(request, "postprocess", [pb_utils.Tensor("LOGITS", logits)],
                                      ["LABEL", "CONFIDENCE"])
        return [pb_utils.Tensor("LABEL", label), pb_utils.Tensor("CONFIDENCE", confidence)] + (extra or [])

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                responses.append(pb_utils.InferenceResponse(self.pipeline(request)))
            except ClientError as error:
                responses.append(client_error(str(error)))
            except StepFailed as error:  # TEXT was checked: a step that fails now is the server's fault
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(error), error.code)))
            except Exception as error:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(
                    f"{type(error).__name__}: {error}", pb_utils.TritonError.INTERNAL)))
        return responses


def sentences(text: str) -> list[str]:
    """The sentences of a text (split after . ! or ?), without empty pieces."""
    return [piece.strip() for piece in re.split(r"(?<=[.!?])\s+", text) if piece.strip()]


class ChunkingBLSPipeline(BLSPipeline):
    """BLSPipeline with a condition and a loop: a text whose prompt has more than `max_tokens` tokens
    (config parameter) is classified sentence by sentence, and the mean of the sentences' logits is
    labelled. Extra output LLM_CALLS int32 [1]: how many forward passes of the LLM the request took."""

    def initialize(self, args):
        super().initialize(args)
        parameters = json.loads(args["model_config"]).get("parameters", {})
        self.max_tokens = int(parameters.get("max_tokens", {}).get("string_value", "48"))

    def pipeline(self, request) -> list:
        text = self.text_of(request)
        ids, count = self.call(request, "tokenizer", [pb_utils.Tensor("TEXT", text)], ["TOKEN_IDS", "NUM_TOKENS"])
        raw = text.reshape(-1)[0]
        pieces = sentences(raw.decode("utf-8") if isinstance(raw, bytes) else str(raw))
        if int(count[0]) <= self.max_tokens or len(pieces) < 2:  # the condition: a short text takes one call
            [logits] = self.call(request, "lm", [pb_utils.Tensor("TOKEN_IDS", ids)], ["LOGITS"])
            calls = 1
        else:  # the loop: one tokenizer + LLM call per sentence, then the mean of their logits
            logits = np.mean([self.logits_of(request, np.array([piece.encode()], dtype=np.object_))[0]
                              for piece in pieces], axis=0).astype(np.float32)
            calls = len(pieces)
        return self.label(request, logits, [pb_utils.Tensor("LLM_CALLS", np.array([calls], np.int32))])
