"""Workflow steps against the database and the ledger. Those activities are idempotent (op_keys,
upserts, sticky states), so a workflow retries them until they answer: a database that blinks
delays a step, it never fails a workflow half-way through moving money."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

# No attempt limit: the step must eventually happen, and running it again is a no-op.
PERSISTENT = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
DB_TIMEOUT = timedelta(seconds=30)

ParamT = TypeVar("ParamT")
ResultT = TypeVar("ResultT")


async def database_activity(
    name: str,
    arg: Any,
    summary: str,
    result_type: type[ResultT] | None,
    *,
    start_to_close: timedelta = DB_TIMEOUT,
) -> ResultT:
    """Run the activity called `name` until it answers."""
    result: ResultT = await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=start_to_close,
        retry_policy=PERSISTENT,
        summary=summary,
    )
    return result


async def database_method(
    activity: Callable[[Any, ParamT], Awaitable[ResultT]], arg: ParamT, summary: str
) -> ResultT:
    """Run an activity method (its name and result type come from its definition) until it
    answers."""
    return await workflow.execute_activity_method(
        activity,
        arg,
        start_to_close_timeout=DB_TIMEOUT,
        retry_policy=PERSISTENT,
        summary=summary,
    )
