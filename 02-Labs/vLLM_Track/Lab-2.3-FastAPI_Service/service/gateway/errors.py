"""Errors as OpenAI-style JSON bodies, so that any OpenAI client shows the message:

    {"error": {"message": "...", "type": "invalid_request_error", "param": "max_tokens", "code": "..."}}

Every client mistake is a 4xx whose message says what to change; 5xx is reserved for the gateway's
own faults (and 503 for "not now": not ready, or shedding load, with Retry-After).
"""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error",
               405: "invalid_request_error", 413: "invalid_request_error", 415: "invalid_request_error",
               422: "invalid_request_error", 429: "rate_limit_error", 503: "service_unavailable"}


class GatewayError(Exception):
    """An error with an HTTP status and an OpenAI-style body."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.headers = headers or {}


def error_body(status: int, message: str, *, code: str | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "server_error" if status >= 500
                                                                  else "invalid_request_error"),
                      "param": param, "code": code}}


def error_response(status: int, message: str, *, code: str | None = None, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, code=code, param=param), status_code=status, headers=headers)


def _location(loc: tuple[Any, ...]) -> str:
    """"messages.0.role" from pydantic's ('body', 'TokenizeChat', 'messages', 0, 'role')."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header") and not _is_form(p)]
    return ".".join(parts) if parts else "body"


def _is_form(part: Any) -> bool:  # a union member's class name, e.g. TokenizeText
    return isinstance(part, str) and part[:1].isupper()


def _shown(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return ""
    if isinstance(value, str) and len(value) > 40:
        return f" (got a string of {len(value)} characters)"
    text = repr(value)
    return f" (got {text if len(text) <= 60 else text[:57] + '...'})"


def describe_validation_errors(errors: list[dict]) -> tuple[str, str | None]:
    """One readable message for pydantic errors, e.g. "max_tokens: Input should be less than or equal to
    256 (got 100000)", and the first offending parameter. A body that fits none of several accepted forms
    (a union) gets one line per form."""
    forms = {}
    for error in errors:
        form = next((p for p in error.get("loc", ()) if _is_form(p)), None)
        forms.setdefault(form, []).append(error)
    if len(forms) > 1 and None not in forms:
        parts, first = [], None
        for form, form_errors in forms.items():
            text, param = _describe(form_errors[:2])
            parts.append(f"as {form}: {text}")
            first = first or param
        return "the body matches none of the accepted forms (" + " | ".join(parts) + ")", first
    return _describe(errors)


def _describe(errors: list[dict]) -> tuple[str, str | None]:
    lines, first = [], None
    for error in errors[:5]:
        kind, got = error.get("type"), error.get("input")
        where = "body" if kind == "json_invalid" else _location(tuple(error.get("loc", ())))
        first = first or where
        if kind == "extra_forbidden":
            lines.append(f"{where}: unknown field; this gateway does not accept it")
        elif kind == "json_invalid":
            lines.append(f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})")
        elif where == "body" and isinstance(got, (bytes, str)):
            lines.append("the body must be a JSON object, sent with Content-Type: application/json")
        elif kind == "missing":
            lines.append(f"{where}: field required")
        else:
            lines.append(f"{where}: {error.get('msg', 'invalid')}{_shown(got)}")
    if len(errors) > 5:
        lines.append(f"... and {len(errors) - 5} more")
    return "; ".join(lines), first


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, error: GatewayError) -> JSONResponse:
        return error_response(error.status, error.message, code=error.code, param=error.param,
                              headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        message, param = describe_validation_errors(list(error.errors()))
        return error_response(422, message, code="validation_error", param=param)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = error.detail if isinstance(error.detail, str) else str(error.detail)
        if error.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}; see /docs for the API"
        elif error.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /docs for the API"
        return error_response(error.status_code, message, headers=getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:  # a bug of ours: say so
        return error_response(500, f"internal error ({type(error).__name__}); this is a gateway bug",
                              code="internal_error")
