"""One place that turns errors into `{"error": {"code", "message"}}` bodies with HTTP statuses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy.exc
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from db.outage import database_unavailable
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


# Every 503 tells the caller when to come back.
RETRY_AFTER_S = 5

# Temporal is down or overloaded (the client has already retried): worth a retry later.
TEMPORAL_TROUBLE = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.CANCELLED,
    }
)


# Outages the status alone does not show (found by the chaos suite): the SDK's connection
# breaking mid-call ("transport error", status UNKNOWN) and an update no worker is there to
# take ("no poller seen for task queue recently, worker may be down"); and an update to a
# workflow whose last workflow task failed or timed out, as it does on a worker starved of
# CPU: refused until the next task, so these answer 503 rather than 500.
TEMPORAL_TROUBLE_MESSAGES = (
    "transport error",
    "no poller seen",
    "Workflow Task in failed state",
)


def temporal_rpc_trouble(exc: RPCError) -> bool:
    return exc.status in TEMPORAL_TROUBLE or any(
        part in str(exc) for part in TEMPORAL_TROUBLE_MESSAGES
    )


def temporal_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, RPCError):
        return temporal_rpc_trouble(exc)
    return isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError)


TEMPORAL_UNAVAILABLE = "temporal_unavailable"
DATABASE_UNAVAILABLE = "database_unavailable"
TEMPORAL_UNREACHABLE_MESSAGE = "the session service is unreachable; retry"


def unavailable(code: str, message: str) -> ApiError:
    """A 503 with the standard body; Retry-After says when to come back."""
    return ApiError(503, code, message, headers={"Retry-After": str(RETRY_AFTER_S)})


def temporal_error(
    exc: BaseException, message: str = TEMPORAL_UNREACHABLE_MESSAGE
) -> ApiError | None:
    """The one mapping of a failed Temporal call to an HTTP answer, for endpoints that handle
    their Temporal calls themselves: Temporal unreachable or overloaded is 503
    `temporal_unavailable` with Retry-After (`message` says what to do next). None for anything
    else (NOT_FOUND, a refusal, a bug): the endpoint decides, or lets it surface."""
    if isinstance(exc, RPCError) and temporal_rpc_trouble(exc):
        log.warning("temporal unavailable", status=exc.status.name, detail=exc.message[:200])
        return unavailable(TEMPORAL_UNAVAILABLE, message)
    return None


@contextmanager
def temporal_calls(message: str = TEMPORAL_UNREACHABLE_MESSAGE) -> Iterator[None]:
    """`temporal_error` around a block of Temporal calls; other errors pass unchanged."""
    try:
        yield
    except RPCError as exc:
        error = temporal_error(exc, message)
        if error is None:
            raise
        raise error from None


def outage_response(exc: BaseException) -> JSONResponse | None:
    """The one mapping of a dependency outage, wherever it surfaces (route, dependency,
    middleware): 503 with the standard body and Retry-After. None for anything else."""
    cause: BaseException | None = exc
    for _ in range(5):  # an outage re-raised as another error is still an outage
        if cause is None:
            return None
        if database_unavailable(cause):
            code, message = DATABASE_UNAVAILABLE, "the database is unavailable; retry"
            break
        if temporal_unavailable(cause):
            code, message = TEMPORAL_UNAVAILABLE, TEMPORAL_UNREACHABLE_MESSAGE
            break
        cause = cause.__cause__
    else:
        return None
    log.warning("dependency unavailable", code=code, error=type(cause).__name__)
    return error_response(503, code, message, {"Retry-After": str(RETRY_AFTER_S)})


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
        headers = exc.headers
        if exc.status == 503 and not any(k.lower() == "retry-after" for k in headers or {}):
            headers = {**(headers or {}), "Retry-After": str(RETRY_AFTER_S)}
        return error_response(exc.status, exc.code, exc.message, headers)

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

    async def _outage(_: Request, exc: Exception) -> JSONResponse:
        outage = outage_response(exc)
        if outage is None:
            raise exc  # not an outage: the catch-all below answers 500
        return outage

    # Raised in a route or a dependency: answered here. Raised in a middleware, the
    # exception passes these by and reaches the catch-all, which asks the same question.
    for kind in (sqlalchemy.exc.DBAPIError, sqlalchemy.exc.TimeoutError, OSError, RPCError):
        app.add_exception_handler(kind, _outage)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        outage = outage_response(exc)
        if outage is not None:
            return outage
        log.exception("unhandled error", path=request.url.path, error=type(exc).__name__)
        return error_response(500, "internal_error", "internal error; it has been logged")
