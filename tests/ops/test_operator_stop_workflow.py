"""An operator's stop in the ChargingSession workflow (time-skipping, activities mocked): the
same update as the driver's, the same settlement, and who and why in the Temporal UI details."""

from __future__ import annotations

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.testing import WorkflowEnvironment

from domain.contracts.charging import StopCommand
from tests.charging.fakes import harness, keep_history, signal_started, started, stopped, wait_for
from workflows.charging import ChargingSessionWorkflow

REASON = "car left plugged in after the battery was full"


async def test_an_operator_stop_settles_as_the_drivers_and_shows_who_and_why(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, stop_on_remote_stop=stopped(2_000)) as h:
        request = h.request()
        handle, _ = await h.start(request)
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        view = await handle.execute_update(
            ChargingSessionWorkflow.stop,
            StopCommand(request.client_id, operator="op-subject-1", reason=REASON),
        )
        assert view.state in {"stopping", "completed"}
        result = await handle.result()
        metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        await keep_history(handle, "operator_stop")

    sid = request.session_id
    assert (result.state, result.stop_reason) == ("completed", "user")
    assert (result.energy_wh, result.cost_tyiyn, result.refunded_tyiyn) == (2_000, 3_000, 7_000)
    assert h.world.moved() == [
        ("reserve", f"reserve:{sid}", 10_000),
        ("capture", f"capture:{sid}", 3_000),
        ("release", f"release:{sid}", 7_000),
    ]
    assert f"stop forced by operator op-subject-1: {REASON}" in metadata.current_details
