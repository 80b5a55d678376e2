"""One error shape per protocol, and never a 500 for a client's mistake.

- OpenAI routes (/v1/...): {"error": {"message": "...", "type": "invalid_request_error", "param": ..., "code": ...}},
  which the official `openai` client turns into BadRequestError, NotFoundError, ... with the message.
- KServe v2 routes (/v2/...): {"error": "..."}, the shape Triton and MLServer use.
"""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

OPENAI_TYPES = {400: "invalid_request_error", 404: "invalid_request_error", 405: "invalid_request_error",
                413: "invalid_request_error", 415: "invalid_request_error", 503: "service_unavailable"}


class FacadeError(Exception):
    """An error with an HTTP status; rendered in the shape of the route's protocol."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def openai_error(status: int, message: str, *, param: str | None = None, code: str | None = None) -> JSONResponse:
    kind = OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status)


def v2_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def render(request: Request, status: int, message: str, *, param: str | None = None,
           code: str | None = None) -> JSONResponse:
    if request.url.path.startswith("/v2"):
        return v2_error(status, message)
    return openai_error(status, message, param=param, code=code)


def describe(errors: list[dict]) -> tuple[str, str | None]:
    """'max_tokens: Input should be less than or equal to 256 (got 100000)' from pydantic's errors."""
    lines, first = [], None
    for error in errors[:4]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        first = first or where
        if error.get("type") == "json_invalid":
            lines.append("the body is not valid JSON")
        elif error.get("type") == "extra_forbidden":
            lines.append(f"{where}: unknown field")
        elif error.get("type") == "missing":
            lines.append(f"{where}: field required")
        else:
            got = error.get("input")
            shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"[:80]
            lines.append(f"{where}: {error.get('msg', 'invalid')}{shown}")
    return "; ".join(lines), first


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FacadeError)
    async def _facade_error(request: Request, error: FacadeError) -> JSONResponse:
        return render(request, error.status, error.message, param=error.param, code=error.code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        message, param = describe(list(error.errors()))
        return render(request, 400, message, param=param, code="invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = str(error.detail)
        if error.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}: the façade serves /v1/models, " \
                      "/v1/chat/completions and /v2/..."
        elif error.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return render(request, error.status_code, message)

    @app.exception_handler(Exception)
    async def _bug(request: Request, error: Exception) -> JSONResponse:  # our fault: say so
        return render(request, 500, f"internal error in the façade ({type(error).__name__}): a bug, not your request",
                      code="internal_error")
