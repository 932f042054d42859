"""Starting a workflow that a retried request may find running or already ended."""

from __future__ import annotations

from typing import Any, TypeVar

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
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


def collect_start_error(operation: WithStartWorkflowOperation[Any, Any]) -> None:
    """Read what the SDK left in an update-with-start's operation once the call is over.

    When the start fails, or our own timeout cancels the call first, the SDK stores the error
    in the operation's handle future; asyncio logs an error nobody read as "Future exception
    was never retrieved", an ERROR line per slow start under load. The SDK's accessor awaits
    the future, which would wait for ever on a start that never began, hence the peek.
    """
    handle = operation._workflow_handle
    if handle.done() and not handle.cancelled():
        handle.exception()
