"""An update-with-start whose start failed or was cut short leaves no unread error behind."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from api.workflow_start import collect_start_error
from domain.contracts.charging import ChargingRequest
from workflows.charging import ChargingSessionWorkflow

REQUEST = ChargingRequest(
    session_id="s-1", client_id="c-1", station_id="EVP-1", connector_id=1, amount_tyiyn=10_000
)


def operation() -> WithStartWorkflowOperation[Any, Any]:
    return WithStartWorkflowOperation(
        ChargingSessionWorkflow.run,
        REQUEST,
        id="charging-s-1",
        task_queue="q",
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def unread_errors_after(settle: Any) -> list[str]:
    """Messages asyncio reports for futures freed with an error nobody read."""
    reported: list[str] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context["message"]))
    try:
        settle()
        gc.collect()  # the report comes from the future's finalizer
    finally:
        loop.set_exception_handler(previous)
    return reported


async def test_a_start_cut_short_by_our_timeout_is_collected() -> None:
    def cut_short() -> None:
        started = operation()
        # What the SDK does when the call is cancelled before Temporal answered the start.
        started._workflow_handle.set_exception(asyncio.CancelledError())
        collect_start_error(started)

    assert await unread_errors_after(cut_short) == []


async def test_without_collecting_asyncio_would_report_it() -> None:
    def left_alone() -> None:
        started = operation()
        started._workflow_handle.set_exception(asyncio.CancelledError())

    assert await unread_errors_after(left_alone) == ["Future exception was never retrieved"]


async def test_a_start_still_pending_or_answered_is_left_as_it_is() -> None:
    pending, answered = operation(), operation()
    answered._workflow_handle.set_result(None)  # type: ignore[arg-type]
    collect_start_error(pending)  # does not wait for a start that never began
    collect_start_error(answered)
    assert not pending._workflow_handle.done()
    assert answered._workflow_handle.result() is None
