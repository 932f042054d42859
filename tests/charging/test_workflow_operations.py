"""What operators and the bill see: action count, search attributes, continue-as-new, and
update-with-start reaching the same workflow on a retry."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment

from domain.contracts.charging import (
    ChargingSettings,
    StopCommand,
    charging_workflow_id,
    initial_search_attributes,
)
from domain.contracts.search_attributes import SESSION_STATE, STATION_ID
from domain.contracts.session_signals import METER_SAMPLE, MeterSample
from tests.charging.fakes import (
    command,
    harness,
    keep_history,
    signal_started,
    started,
    stopped,
    view_of,
    wait_for,
)
from tests.temporal_costs import billed_actions
from workflows.charging import ChargingSessionWorkflow


def gateway_throttle(samples_s: list[int], interval_s: int = 300) -> list[int]:
    """The gateway forwards a MeterValues sample to the workflow at most every interval_s."""
    sent: list[int] = []
    for at in samples_s:
        if not sent or at - sent[-1] >= interval_s:
            sent.append(at)
    return sent


async def test_a_one_hour_session_with_meter_values_every_30_s_stays_within_30_actions(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, stop_on_remote_stop=stopped(11_000)) as h:
        request = h.request(amount_tyiyn=50_000)
        handle, _ = await h.start(request)
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        forwarded = gateway_throttle(list(range(30, 3_601, 30)))
        assert len(forwarded) == 12
        for number, at in enumerate(forwarded, start=1):
            sample = MeterSample(7, number * 900, started().started_at + timedelta(seconds=at))
            await handle.signal(METER_SAMPLE, sample)
        assert (await view_of(handle)).energy_wh == 12 * 900
        await handle.execute_update(ChargingSessionWorkflow.stop, StopCommand("client-a"))
        result = await handle.result()
        history = await handle.fetch_history()
        await keep_history(handle, "one_hour_user_stop")

    assert result.state == "completed"
    actions = billed_actions(history)
    print("billed actions of a one-hour session:", sum(actions.values()), dict(actions))
    assert sum(actions.values()) <= 30, actions
    # Only two upserts for the whole session: charging, and the final state.
    assert actions["UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"] == 2


async def test_a_database_step_the_local_attempt_cannot_do_is_done_by_an_activity(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, local_steps_fail=True) as h:
        handle, _ = await h.start(h.request())
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        await handle.signal("transaction_stopped", stopped(1_000))
        result = await handle.result()
        history = await handle.fetch_history()

    assert result.state == "completed"
    assert [r.state for r in h.world.records] == ["charging", "completed"]
    scheduled = [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled.count("record_session") == 2  # each record, after its local attempts


async def test_search_attributes_follow_the_session(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env) as h:
        request = h.request()
        handle = await h.client.start_workflow(
            ChargingSessionWorkflow.run,
            request,
            id=charging_workflow_id(request.session_id),
            task_queue=h.task_queue,
            search_attributes=initial_search_attributes(request),
        )
        await handle.execute_update(ChargingSessionWorkflow.start, command(request))
        assert (await handle.describe()).typed_search_attributes[SESSION_STATE] == "pending"
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        charging = (await handle.describe()).typed_search_attributes
        await handle.signal("transaction_stopped", stopped(1_000))
        await handle.result()
        final = (await handle.describe()).typed_search_attributes

    assert (charging[SESSION_STATE], charging[STATION_ID]) == ("charging", "ST-1")
    assert final[SESSION_STATE] == "completed"


async def test_a_long_session_continues_as_new_and_keeps_its_state(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    settings = ChargingSettings(history_events_limit=40)
    async with harness(time_skipping_env) as h:
        request = h.request(settings=settings)
        handle, _ = await h.start(request)
        first_run = handle.result_run_id
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        for energy in range(100, 2_100, 100):
            await handle.signal(METER_SAMPLE, MeterSample(7, energy, started().started_at))
        latest = h.client.get_workflow_handle_for(ChargingSessionWorkflow.run, handle.id)
        # Stop only once the new run exists: a stop racing the continue-as-new rightly wins
        # (the server refuses the continue-as-new and the first run settles instead).
        # A generous deadline, a safety net only: a loaded machine takes seconds to get there.
        deadline = time.monotonic() + 120
        while (await latest.describe()).run_id == first_run:
            assert time.monotonic() < deadline, "the session never continued as new"
            await asyncio.sleep(0.02)
        view = await wait_for(latest, "charging")
        assert view.energy_wh == 2_000
        await latest.signal("transaction_stopped", stopped(2_100))
        result = await latest.result()
        first = await h.client.get_workflow_handle(handle.id, run_id=first_run).fetch_history()

    assert first.events[-1].event_type == (EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW)
    assert (result.state, result.energy_wh, result.cost_tyiyn) == ("completed", 2_100, 3_150)
    assert [op for op, *_ in h.world.moved()] == ["reserve", "capture", "release"]
    assert len(h.world.starts) == 1


async def test_update_with_start_twice_reaches_the_same_workflow(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env) as h:
        request = h.request()
        views = []
        for _ in range(2):
            operation = WithStartWorkflowOperation(
                ChargingSessionWorkflow.run,
                request,
                id=charging_workflow_id(request.session_id),
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                task_queue=h.task_queue,
            )
            views.append(
                await h.client.execute_update_with_start_workflow(
                    ChargingSessionWorkflow.start,
                    command(request),
                    start_workflow_operation=operation,
                )
            )
        handle = h.client.get_workflow_handle(charging_workflow_id(request.session_id))
        await wait_for(handle, "starting")
        await handle.terminate("test over")

    # The second answer may already show the session further along (the workflow keeps
    # going between the two calls); what matters is that both name one session, one reserve.
    assert views[0].session_id == views[1].session_id
    assert views[0].reserved_tyiyn == views[1].reserved_tyiyn
    assert [op for op, *_ in h.world.moved()] == ["reserve"]
    assert len(h.world.starts) == 1
