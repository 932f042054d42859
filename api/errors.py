"""One place that turns errors into `{"error": {"code", "message"}}` bodies with HTTP statuses."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain import errors as domain_errors

log = structlog.get_logger(__name__)

# Domain error class -> HTTP status. Subclasses inherit their parent's status.
DOMAIN_STATUS: dict[type[domain_errors.DomainError], int] = {
    domain_errors.InvalidAmount: 422,
    domain_errors.InvalidInput: 422,
    domain_errors.InsufficientFunds: 402,
    domain_errors.OpKeyConflict: 409,
    domain_errors.NotFound: 404,
    domain_errors.Conflict: 409,
    domain_errors.Unauthorized: 401,
    domain_errors.Forbidden: 403,
}


class ApiError(Exception):
    """An error raised by HTTP code: status, stable machine code, human message."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def status_for(exc: domain_errors.DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in DOMAIN_STATUS:
            return DOMAIN_STATUS[cls]
    return 400


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(domain_errors.DomainError)
    async def _domain_error(_: Request, exc: domain_errors.DomainError) -> JSONResponse:
        return error_response(status_for(exc), exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        message = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
        return error_response(422, "validation_error", message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, code, str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path, error=type(exc).__name__)
        return error_response(500, "internal_error", "internal error; it has been logged")
