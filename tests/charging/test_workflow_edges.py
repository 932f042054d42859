"""ChargingSession edges found in review: an offline charger at stop time, StartTransactions the
session must refuse, a station between connections, a ledger that refuses the settlement, and
what visibility shows for a refused start. Time-skipping, every activity mocked."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.contracts.charging import (
    ChargingSettings,
    StopCommand,
    charging_workflow_id,
    initial_search_attributes,
)
from domain.contracts.search_attributes import SESSION_STATE
from domain.contracts.session_signals import (
    METER_SAMPLE,
    STATION_CONNECTED,
    TRANSACTION_STOPPED,
    MeterSample,
    StationConnected,
    TransactionStarted,
)
from domain.contracts.station_commands import STATION_NOT_CONNECTED
from tests.charging.fakes import (
    T0,
    command,
    harness,
    keep_history,
    signal_started,
    started,
    stopped,
    view_of,
    wait_for,
)
from workflows.charging import ChargingSessionWorkflow


async def test_a_user_stop_while_the_charger_is_offline_waits_and_bills_the_late_stop(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env) as h:
        request = h.request()
        handle, _ = await h.start(request)
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        h.world.offline = True  # the charger dropped off
        h.world.remote_stop_error = STATION_NOT_CONNECTED
        view = await handle.execute_update(ChargingSessionWorkflow.stop, StopCommand("client-a"))
        assert view.state == "stopping"
        await time_skipping_env.sleep(timedelta(hours=3))  # far past the 2-minute grace
        assert (await view_of(handle)).state == "stopping"
        assert h.world.ledger[-1][0] == "reserve"  # nothing released yet
        # Back online: the next RemoteStop gets through and the charger reports its energy.
        h.world.offline = False
        h.world.remote_stop_error = None
        h.world.stop_on_remote_stop = stopped(2_000)
        result = await handle.result()
        await keep_history(handle, "offline_user_stop")

    sid = request.session_id
    assert (result.state, result.stop_reason) == ("completed", "user")
    assert (result.energy_wh, result.cost_tyiyn, result.refunded_tyiyn) == (2_000, 3_000, 7_000)
    assert [s.transaction_id for s in h.world.stops] == [7]
    assert h.world.moved()[1:] == [
        ("capture", f"capture:{sid}", 3_000),
        ("release", f"release:{sid}", 7_000),
    ]


async def test_the_twelve_hour_cap_with_the_charger_offline_bills_the_queued_stop(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, offline=True) as h:
        handle, _ = await h.start(h.request(amount_tyiyn=100_000))
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        h.world.remote_stop_error = STATION_NOT_CONNECTED
        await time_skipping_env.sleep(timedelta(hours=13))  # cap passed, charger still away
        assert (await view_of(handle)).state == "stopping"
        # It reconnects and delivers the StopTransaction it queued.
        await handle.signal(TRANSACTION_STOPPED, stopped(5_000, minutes=720))
        result = await handle.result()

    assert (result.state, result.stop_reason) == ("completed", "time_cap")
    assert (result.cost_tyiyn, result.refunded_tyiyn) == (7_500, 92_500)


async def test_a_charger_that_never_comes_back_ends_hung_only_after_the_offline_wait(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env) as h:
        handle, _ = await h.start(h.request())
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        h.world.offline = True
        h.world.remote_stop_error = STATION_NOT_CONNECTED
        await handle.execute_update(ChargingSessionWorkflow.stop, StopCommand("client-a"))
        stop_asked_at = (await handle.describe()).start_time
        result = await handle.result()

    assert (result.state, result.cost_tyiyn, result.refunded_tyiyn) == ("hung", 0, 10_000)
    assert stop_asked_at is not None and result.stopped_at is not None
    # The cap deadline (12 h after the start) passed before giving up.
    assert result.stopped_at - stop_asked_at >= timedelta(hours=12)
    # RemoteStop was asked again while waiting (each time: where is the station now?).
    assert len(h.world.located) > 5


async def test_start_transactions_the_session_must_refuse_get_invalid(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, stop_on_remote_stop=None) as h:
        request = h.request()
        handle, _ = await h.start(request)
        await wait_for(handle, "starting")
        # The session's idTag replayed at another charger: refused before it touches state.
        elsewhere = TransactionStarted(5, "ST-2", 1, 0, started().started_at)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await signal_started(handle, elsewhere)
        assert isinstance(refused.value.cause, ApplicationError)
        assert refused.value.cause.type == "ForeignTransaction"
        assert await signal_started(handle, started()) == "Accepted"
        assert await signal_started(handle, started()) == "Accepted"  # a retried message
        assert await signal_started(handle, started(transaction_id=8)) == "Invalid"  # second
        await wait_for(handle, "charging")
        # The refused transactions' stops bill nothing; only ours counts.
        await handle.signal(TRANSACTION_STOPPED, stopped(9_000, transaction_id=5))
        await handle.signal(TRANSACTION_STOPPED, stopped(9_000, transaction_id=8))
        assert (await view_of(handle)).state == "charging"
        await handle.signal(TRANSACTION_STOPPED, stopped(1_000))
        result = await handle.result()

    assert (result.state, result.energy_wh, result.cost_tyiyn) == ("completed", 1_000, 1_500)
    assert [s.transaction_id for s in h.world.stops] == [8]  # the second one is stopped


async def test_a_start_transaction_after_the_session_gave_up_gets_invalid(
    temporal_env: WorkflowEnvironment,
) -> None:
    # The dev server with a 1 s start timeout: the time-skipping server does not deliver an
    # update while an activity it would have to skip past is held open.
    gate = asyncio.Event()
    async with harness(temporal_env, release_gate=gate) as h:
        handle, _ = await h.start(h.request(settings=ChargingSettings(start_timeout_s=1)))
        for _ in range(500):  # until the timer fired and the release is under way
            if h.world.located:
                break
            await asyncio.sleep(0.02)
        assert await signal_started(handle, started()) == "Invalid"
        gate.set()
        result = await handle.result()

    assert (result.state, result.stop_reason) == ("failed_to_start", "no_start")
    assert [op for op, *_ in h.world.moved()] == ["reserve", "release"]
    assert [s.transaction_id for s in h.world.stops] == [7]  # told to stop, too


async def test_a_brief_disconnect_delays_the_start_until_the_charger_reconnects(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, not_connected_times=1) as h:
        handle, _ = await h.start(h.request())
        for _ in range(500):  # sent, not there, looked up again (still there): then it waits
            if h.world.not_connected_times == 0 and h.world.located:
                break
            await asyncio.sleep(0.02)
        assert (await view_of(handle)).state == "pending"
        # The charger is back: its gateway tells the session, which sends at once.
        await handle.signal(STATION_CONNECTED, StationConnected("ST-1", h.world.gateway_queue, T0))
        await wait_for(handle, "starting")
        await handle.terminate("test over")

    assert len(h.world.starts) == 1  # delivered once the station was back


async def test_a_stop_waiting_for_an_unreachable_charger_is_resent_when_it_reconnects(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env) as h:
        handle, _ = await h.start(h.request())
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        h.world.offline = True
        h.world.remote_stop_error = STATION_NOT_CONNECTED
        await handle.execute_update(ChargingSessionWorkflow.stop, StopCommand("client-a"))
        # The first send gave up; the session waits between retries. (Not a whole number of
        # minutes: the test server mishandles a signal landing exactly as a timer fires.)
        await time_skipping_env.sleep(timedelta(minutes=2, seconds=30))
        assert (await view_of(handle)).state == "stopping"
        h.world.offline = False
        h.world.remote_stop_error = None
        h.world.stop_on_remote_stop = stopped(2_000)
        other_gateway = h.world.gateway_queue
        await handle.signal(STATION_CONNECTED, StationConnected("ST-1", other_gateway, T0))
        result = await handle.result()
        await keep_history(handle, "stop_follows_reconnect")

    assert (result.state, result.energy_wh, result.cost_tyiyn) == ("completed", 2_000, 3_000)
    assert [s.transaction_id for s in h.world.stops] == [7]
    # The RemoteStop follows the reconnect: no retry timer is waited out in between.
    events = (await handle.fetch_history()).events
    kinds = [event.event_type for event in events]
    signalled = next(
        i
        for i, event in enumerate(events)
        if event.workflow_execution_signaled_event_attributes.signal_name == STATION_CONNECTED
    )
    resent = kinds.index(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, signalled)
    between = kinds[signalled:resent]
    assert EventType.EVENT_TYPE_TIMER_FIRED not in between


async def test_a_command_on_a_dead_gateways_queue_is_withdrawn_when_the_charger_reconnects(
    temporal_env: WorkflowEnvironment,
) -> None:
    # On the dev server: the time-skipping test server stops skipping time for good after
    # an activity task is withdrawn before any worker took it.
    # open_session names a gateway that died (nobody serves its queue); the charger
    # reconnects to the live one, whose signal moves the RemoteStart there at once.
    async with harness(temporal_env, first_queue="gateway-dead") as h:
        handle, _ = await h.start(h.request())
        await asyncio.sleep(0.2)
        assert h.world.starts == []
        await handle.signal(STATION_CONNECTED, StationConnected("ST-1", h.world.gateway_queue, T0))
        await wait_for(handle, "starting")
        history = await handle.fetch_history()
        await handle.terminate("test over")

    assert len(h.world.starts) == 1
    scheduled = [
        event.activity_task_scheduled_event_attributes.task_queue.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name == "remote_start"
    ]
    assert scheduled == ["gateway-dead", h.world.gateway_queue]
    timed_out = [
        e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT
    ]
    assert timed_out == []  # withdrawn on the reconnect, not after the 10 s timeout


async def test_a_settlement_the_ledger_refuses_ends_needs_review_and_frees_the_session(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, capture_error="InsufficientFunds") as h:
        handle, _ = await h.start(h.request())
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        await handle.signal(TRANSACTION_STOPPED, stopped(1_000))
        result = await handle.result()

    assert result.state == "needs_review"
    assert h.world.records[-1].state == "needs_review"  # the row no longer blocks the connector


async def test_a_permanent_failure_while_charging_releases_the_reservation_for_review(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """issue 12: a non-retryable failure after the reservation never leaves money held."""
    async with harness(time_skipping_env, record_fails_in_state="charging") as h:
        handle, _ = await h.start(h.request())
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        result = await handle.result()
        final = (await handle.describe()).typed_search_attributes

    assert result.state == "needs_review"
    assert final[SESSION_STATE] == "needs_review"
    assert [(op, movement.amount_tyiyn) for op, movement in h.world.ledger] == [
        ("reserve", 10_000),
        ("release", 10_000),
    ]


async def test_a_refused_start_is_rejected_in_visibility_not_pending(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, open_error="StationOffline") as h:
        request = h.request()
        handle = await h.client.start_workflow(
            ChargingSessionWorkflow.run,
            request,
            id=charging_workflow_id(request.session_id),
            task_queue=h.task_queue,
            search_attributes=initial_search_attributes(request),
        )
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(ChargingSessionWorkflow.start, command(request))
        await handle.result()
        final = (await handle.describe()).typed_search_attributes

    assert final[SESSION_STATE] == "rejected"


async def test_a_refused_second_transaction_is_still_stopped_after_continue_as_new(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env) as h:
        request = h.request(settings=ChargingSettings(history_events_limit=40))
        handle, _ = await h.start(request)
        first_run = handle.result_run_id
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        assert await signal_started(handle, started(transaction_id=8)) == "Invalid"
        for energy in range(100, 2_100, 100):
            await handle.signal(METER_SAMPLE, MeterSample(7, energy, started().started_at))
        latest = h.client.get_workflow_handle_for(ChargingSessionWorkflow.run, handle.id)
        for _ in range(500):
            if (await latest.describe()).run_id != first_run:
                break
            await asyncio.sleep(0.02)
        assert (await latest.describe()).run_id != first_run
        await wait_for(latest, "charging")
        await latest.signal(TRANSACTION_STOPPED, stopped(2_100))
        result = await latest.result()

    assert result.state == "completed"
    assert [s.transaction_id for s in h.world.stops] == [8]  # remembered across the new run
