"""The bodies the façade accepts and returns (pydantic): OpenAI's chat completion and KServe v2's inference request.

Request bodies refuse unknown fields and wrong types with a 400 that names the field, before any backend is called.
"""
from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- OpenAI: /v1/chat/completions -------------------------------------------------------------------------
class Message(Strict):
    role: Literal["system", "user", "assistant"]
    content: StrictStr = Field(max_length=1 << 16)


class ChatRequest(Strict):
    model: StrictStr = Field(min_length=1, description="a model id from GET /v1/models, e.g. 'triton/course_chat'")
    messages: list[Message] = Field(min_length=1, max_length=64)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = None
    stop: StrictStr | list[StrictStr] | None = None
    n: Literal[1] = Field(1, description="one choice per request")
    stream: StrictBool = False
    user: StrictStr | None = None
    return_token_ids: StrictBool = Field(False, description="vLLM's extension, served by both backends here: "
                                                            "the generated token ids in choices[0].token_ids")


class ChatMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: ChatMessage
    finish_reason: str | None
    token_ids: list[int] | None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


# -- KServe v2: /v2/models/{name}/infer ---------------------------------------------------------------------
NUMERIC = {"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BF16"}
DATATYPES = NUMERIC | {"BOOL", "BYTES"}


def _flatten(data: Any) -> list:
    if isinstance(data, list):
        return [item for part in data for item in _flatten(part)]
    return [data]


def _fits(datatype: str, value: Any) -> bool:
    if datatype == "BYTES":
        return isinstance(value, str)
    if datatype == "BOOL":
        return isinstance(value, bool)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if datatype.startswith(("INT", "UINT")):
        return isinstance(value, int) and (value >= 0 or datatype.startswith("INT"))
    return math.isfinite(value)


class V2Input(Strict):
    name: StrictStr = Field(min_length=1)
    shape: list[int] = Field(max_length=8)
    datatype: StrictStr
    data: list[Any]
    parameters: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _data_matches(self) -> V2Input:
        if self.datatype not in DATATYPES:
            raise ValueError(f"datatype {self.datatype!r} is not a KServe v2 datatype ({', '.join(sorted(DATATYPES))})")
        if any(d < 0 for d in self.shape):
            raise ValueError(f"shape {self.shape} has a negative dimension: a request gives the real sizes")
        values = _flatten(self.data)
        if len(values) != math.prod(self.shape):
            raise ValueError(f"shape {self.shape} holds {math.prod(self.shape)} elements but data has {len(values)}")
        wrong = next((v for v in values if not _fits(self.datatype, v)), None)
        if wrong is not None or (values and not all(_fits(self.datatype, v) for v in values)):
            raise ValueError(f"data holds {wrong!r}, which is not a finite {self.datatype} value "
                             "(JSON carries numbers as numbers, BYTES as strings, BOOL as true/false)")
        return self


class V2Output(Strict):
    name: StrictStr
    parameters: dict[str, Any] | None = None


class V2Request(Strict):
    id: StrictStr | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[V2Input] = Field(min_length=1)
    outputs: list[V2Output] | None = None
