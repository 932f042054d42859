"""Which activity failures are permanent: one worker interceptor classifies every activity.

Temporal retries a failed activity until it succeeds unless the failure is non-retryable. A
failure that can never pass on retry (the database refuses the data, a constraint the row can
never meet, the provider answers 4xx) must not be retried for ever: it becomes a non-retryable
`ApplicationError`, so the workflow sees it at once and ends in a final state. Everything else
(a server unreachable, a timeout, a provider 5xx, a serialization conflict) is transient and
retried as before. Doing it here, for every activity the worker runs, means no activity can
forget it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from activities.payments import PROVIDER_REJECTED
from domain.sessions import DATA_REJECTED
from payments.provider import ProviderRejected

log = structlog.get_logger(__name__)


# SQLSTATE classes and codes whose failure is the same on every retry.
_PERMANENT_CLASSES = frozenset({"22", "42"})  # data exception; syntax error or access rule
_PERMANENT_CODES = frozenset({"23502", "23514", "23P01", "2BP01"})  # not null, check, exclusion
# asyncpg checks arguments before sending them (an int out of range, a str where a date goes).
_CLIENT_DATA_ERROR = "asyncpg.exceptions._base.DataError"
MAX_MESSAGE = 500


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (SQLAlchemy's `orig`) and its causes, each once."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        pending.extend(
            [
                orig if isinstance(orig, BaseException) else None,
                current.__cause__,
                current.__context__,
            ]
        )


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def permanent_failure(exc: BaseException) -> tuple[str, str] | None:
    """(ApplicationError type, reason) when `exc` would fail the same way on every retry."""
    for error in _chain(exc):
        if isinstance(error, ApplicationError):
            return None  # the activity decided itself
        if isinstance(error, ProviderRejected):
            return PROVIDER_REJECTED, f"the payment provider refused: {error.message}"
        sqlstate = getattr(error, "sqlstate", None)
        if isinstance(sqlstate, str) and (
            sqlstate[:2] in _PERMANENT_CLASSES or sqlstate in _PERMANENT_CODES
        ):
            return DATA_REJECTED, f"the database refused the data (SQLSTATE {sqlstate})"
        if any(_qualified(cls) == _CLIENT_DATA_ERROR for cls in type(error).__mro__):
            return DATA_REJECTED, "the database driver refused the data"
        if isinstance(error, UnicodeError | OverflowError | RecursionError):
            return DATA_REJECTED, f"the data cannot be processed ({type(error).__name__})"
    return None


class _ClassifyingInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except ApplicationError:
            raise
        except Exception as exc:
            verdict = permanent_failure(exc)
            if verdict is None:
                raise  # transient: Temporal retries it under the activity's retry policy
            kind, reason = verdict
            info = activity.info()
            log.warning(
                "activity failed for good",
                activity=info.activity_type,
                workflow_id=info.workflow_id,
                attempt=info.attempt,
                reason=reason,
                error=type(exc).__name__,
            )
            # The message may quote the hostile data: keep it short and valid UTF-8.
            text = f"{reason}: {type(exc).__name__}: {exc}"[:MAX_MESSAGE]
            message = text.encode("utf-8", "backslashreplace").decode("utf-8")
            raise ApplicationError(message, type=kind, non_retryable=True) from exc


class FailureClassifier(Interceptor):
    """Worker interceptor: permanent activity failures become non-retryable."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ClassifyingInbound(next)


# Every worker that runs EvPower activities passes these (worker.py, the gateway's worker).
ACTIVITY_INTERCEPTORS: tuple[Interceptor, ...] = (FailureClassifier(),)
