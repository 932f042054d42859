"""Refusals: an activity's expected "no" (connector busy, insufficient funds) is a benign,
non-retryable failure, logged once at info with its code. Temporal logs benign failures at
DEBUG instead of a `Completing activity as failed` warning with a traceback, so an operator
reading the worker log tells a refused request from a fault."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from domain.errors import DomainError

log = structlog.get_logger("activities.refusals")

T = TypeVar("T")


def refusal(exc: DomainError) -> ApplicationError:
    """The refusal as the workflow expects it: its type is the domain error's class name."""
    info = activity.info() if activity.in_activity() else None
    log.info(
        "refused",
        code=exc.code,
        reason=exc.message,
        activity=info.activity_type if info else None,
        workflow_id=info.workflow_id if info else None,
    )
    return ApplicationError(
        exc.message,
        type=type(exc).__name__,
        non_retryable=True,
        category=ApplicationErrorCategory.BENIGN,
    )


async def refusing(work: Awaitable[T]) -> T:
    """`work`'s result; a domain refusal raised by it becomes the activity's `refusal`."""
    try:
        return await work
    except DomainError as exc:
        raise refusal(exc) from exc
