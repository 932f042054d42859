"""Starting a workflow that a retried request may find running or already ended."""

from __future__ import annotations

from typing import Any, TypeVar

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.types import MethodAsyncSingleParam

SelfType = TypeVar("SelfType")
ParamType = TypeVar("ParamType")
ReturnType = TypeVar("ReturnType")


async def start_or_join(
    temporal: Client,
    run: MethodAsyncSingleParam[SelfType, ParamType, ReturnType],
    arg: ParamType,
    *,
    id: str,
    **options: Any,
) -> WorkflowHandle[SelfType, ReturnType]:
    """The workflow `id`: started, or joined while it runs (USE_EXISTING), or, when its id
    reuse policy refuses a new run after it ended, the ended one (its result is the answer)."""
    try:
        return await temporal.start_workflow(
            run, arg, id=id, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING, **options
        )
    except WorkflowAlreadyStartedError:  # the same request again, already ended
        return temporal.get_workflow_handle_for(run, id)
