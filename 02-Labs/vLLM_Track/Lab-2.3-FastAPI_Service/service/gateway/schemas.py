"""Request and response models (pydantic). They are the API's contract: FastAPI validates every
request against them, and `/openapi.json` (which schemathesis fuzzes) is generated from them.

Limits that depend on the settings (largest `max_tokens`, longest text) are part of the schema, so
the docs state the real bounds: `request_models(settings)` builds the request classes for one app.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, Union

from gateway.settings import Settings
from pydantic import BaseModel, ConfigDict, Discriminator, Field, StrictBool, StrictStr, Tag, create_model


class Strict(BaseModel):
    """Request bodies: unknown fields are refused; booleans and strings must be JSON booleans and strings
    ("true" is not a boolean, 5 is not a string). Integers follow JSON Schema, where 10.0 is an integer."""

    model_config = ConfigDict(extra="forbid")


# -- responses --------------------------------------------------------------------------------
class Health(BaseModel):
    status: Literal["ok"] = "ok"
    pid: int = Field(description="process id of the worker that answered")


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, bool] = Field(description="each dependency the gateway needs, and whether it is ready")
    pid: int
    detail: str | None = Field(None, description="why a check fails, when the gateway knows")


class TokenizeResponse(BaseModel):
    model: str
    count: int = Field(description="number of tokens")
    max_prompt_tokens: int = Field(description="the longest prompt this gateway accepts, in tokens")
    fits: bool = Field(description="count <= max_prompt_tokens")
    tokens: list[int] | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "llm-gateway"
    max_model_len: int | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ChatMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: ChatMessage
    finish_reason: str | None


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


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


# -- requests ---------------------------------------------------------------------------------
class Message(Strict):
    role: Literal["system", "user", "assistant"]
    content: StrictStr = Field(max_length=1 << 20)


class StreamOptions(Strict):
    include_usage: StrictBool = False


def _tokenize_form(value) -> str:
    if isinstance(value, dict):
        return "TokenizeChat" if "messages" in value else "TokenizeText"
    return "TokenizeChat" if hasattr(value, "messages") else "TokenizeText"


@dataclass(frozen=True)
class RequestModels:
    tokenize: object  # TokenizeText | TokenizeChat
    chat: type[BaseModel]
    work: type[BaseModel]


def request_models(settings: Settings) -> RequestModels:
    """The request classes of one app, with its limits in the schema."""
    max_tokens = Annotated[int, Field(ge=1, le=settings.max_tokens_limit,
                                      description=f"new tokens to generate, 1..{settings.max_tokens_limit}")]
    text_form = create_model(
        "TokenizeText", __base__=Strict,
        text=(StrictStr, Field(max_length=settings.max_tokenize_chars, description="raw text, counted as is")),
        return_tokens=(StrictBool, False),
    )
    chat_form = create_model(
        "TokenizeChat", __base__=Strict,
        messages=(list[Message], Field(min_length=1, max_length=64,
                                       description="chat messages, counted with the model's chat template")),
        add_generation_prompt=(StrictBool, True),
        return_tokens=(StrictBool, False),
    )
    # One of two forms, chosen by the keys a client sent, so that an error names the fields of that form.
    tokenize = Annotated[Union[Annotated[text_form, Tag("TokenizeText")],  # noqa: UP007 - dynamic classes
                               Annotated[chat_form, Tag("TokenizeChat")]],
                         Discriminator(_tokenize_form)]
    chat = create_model(
        "ChatCompletionRequest", __base__=Strict,
        # The schema names the one served model (so a fuzzer generates requests that really run); the server
        # still takes any string and answers an unknown model with OpenAI's 404 model_not_found.
        model=(StrictStr, Field(min_length=1, description=f"the served model: {settings.model_name!r}",
                                json_schema_extra={"enum": [settings.model_name]})),
        messages=(list[Message], Field(min_length=1, max_length=64)),
        max_tokens=(max_tokens | None, None),
        max_completion_tokens=(max_tokens | None, None),
        temperature=(float, Field(1.0, ge=0.0, le=2.0)),
        top_p=(float, Field(1.0, gt=0.0, le=1.0)),
        n=(Literal[1], Field(1, description="this gateway generates one choice per request")),
        stream=(StrictBool, False),
        stream_options=(StreamOptions | None, None),
        stop=(StrictStr | Annotated[list[Annotated[StrictStr, Field(min_length=1)]], Field(max_length=4)] | None,
              Field(None, description="up to 4 stop strings")),
        seed=(int | None, Field(None, ge=0, le=2**63 - 1)),
        ignore_eos=(StrictBool, Field(False, description="vLLM extension: generate exactly max_tokens tokens")),
        priority=(int, Field(0, ge=-100, le=100, description="vLLM extension: lower runs first "
                                                             "(engine_scheduling_policy=priority)")),
        user=(StrictStr | None, Field(None, max_length=256)),
    )
    work = create_model(
        "WorkRequest", __base__=Strict,
        n=(int, Field(20_000, ge=1, le=2_000_000, description="count the primes below n (pure-Python CPU work)")),
        chunks=(int, Field(1, ge=1, le=200, description="split the work into this many chunks (SSE stream)")),
    )
    return RequestModels(tokenize=tokenize, chat=chat, work=work)
