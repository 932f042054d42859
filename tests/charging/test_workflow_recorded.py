"""A session never waits on a charger that has already stopped: when RemoteStop is refused, the
connector is reported idle, the grace period or the offline wait ends without a
StopTransaction, the session settles on what the gateway recorded for its transaction.
Time-skipping, every activity mocked (recorded_transaction answers from FakeWorld)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from activities.transactions import RecordedTransaction, RecordSource
from domain.contracts.charging import StopCommand
from domain.contracts.session_signals import CONNECTOR_IDLE, TRANSACTION_STOPPED, ConnectorIdle
from domain.contracts.station_commands import STATION_NOT_CONNECTED
from tests.charging.fakes import (
    T0,
    harness,
    keep_history,
    signal_started,
    started,
    stopped,
    view_of,
    wait_for,
)
from workflows.charging import ChargingSessionWorkflow

METER_START = 100_000


def stop_record(energy_wh: int, minutes: int = 40) -> RecordedTransaction:
    """The StopTransaction the gateway stored but never passed on (an outage)."""
    return RecordedTransaction(
        7,
        RecordSource.STOP_TRANSACTION.value,
        energy_wh=energy_wh,
        meter_wh=METER_START + energy_wh,
        at=T0 + timedelta(minutes=minutes),
        reason="Local",
    )


def meter_record(energy_wh: int, minutes: int = 30) -> RecordedTransaction:
    """Only MeterValues were recorded: the charger stopped without a StopTransaction."""
    return RecordedTransaction(
        7,
        RecordSource.METER_VALUE.value,
        energy_wh=energy_wh,
        meter_wh=METER_START + energy_wh,
        at=T0 + timedelta(minutes=minutes),
    )


async def test_a_rejected_remote_stop_settles_at_once_on_the_recorded_stop_transaction(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(
        time_skipping_env, remote_stop_status="Rejected", recorded=stop_record(2_000)
    ) as h:
        request = h.request()
        handle, _ = await h.start(request)
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        await handle.execute_update(ChargingSessionWorkflow.stop, StopCommand("client-a"))
        result = await handle.result()
        await keep_history(handle, "rejected_stop_recorded")

    sid = request.session_id
    assert (result.state, result.stop_reason) == ("completed", "user")
    assert (result.energy_wh, result.cost_tyiyn, result.refunded_tyiyn) == (2_000, 3_000, 7_000)
    assert result.stopped_at == T0 + timedelta(minutes=40)
    assert len(h.world.lookups) == 1  # found at once: no grace period waited
    assert h.world.moved()[1:] == [
        ("capture", f"capture:{sid}", 3_000),
        ("release", f"release:{sid}", 7_000),
    ]
    assert h.world.records[-1].state == "completed"


async def test_a_rejected_remote_stop_without_a_recorded_stop_settles_on_the_last_meter_value(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(
        time_skipping_env, remote_stop_status="Rejected", recorded=meter_record(1_500)
    ) as h:
        handle, _ = await h.start(h.request())
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        await handle.execute_update(ChargingSessionWorkflow.stop, StopCommand("client-a"))
        result = await handle.result()

    assert (result.state, result.energy_wh, result.cost_tyiyn) == ("completed", 1_500, 2_250)
    assert result.refunded_tyiyn == 7_750
    # Asked once at the refusal; the StopTransaction got the grace period; asked again.
    assert len(h.world.lookups) == 2


async def test_a_stop_transaction_arriving_in_the_grace_period_wins_over_the_meter_value(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(
        time_skipping_env, remote_stop_status="Rejected", recorded=meter_record(1_500)
    ) as h:
        handle, _ = await h.start(h.request())
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        await handle.execute_update(ChargingSessionWorkflow.stop, StopCommand("client-a"))
        await handle.signal(TRANSACTION_STOPPED, stopped(1_600, minutes=31))
        result = await handle.result()

    assert (result.state, result.energy_wh, result.cost_tyiyn) == ("completed", 1_600, 2_400)


async def test_the_grace_period_ending_without_a_stop_settles_on_the_recorded_meter_value(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, recorded=meter_record(4_000)) as h:
        request = h.request()
        handle, _ = await h.start(request)
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        await handle.execute_update(ChargingSessionWorkflow.stop, StopCommand("client-a"))
        result = await handle.result()  # RemoteStop accepted, then silence for 2 minutes
        await keep_history(handle, "grace_ends_meter_value")

    sid = request.session_id
    assert (result.state, result.stop_reason) == ("completed", "user")
    assert (result.energy_wh, result.cost_tyiyn, result.refunded_tyiyn) == (4_000, 6_000, 4_000)
    assert h.world.moved()[1:] == [
        ("capture", f"capture:{sid}", 6_000),
        ("release", f"release:{sid}", 4_000),
    ]


async def test_the_recorded_energy_is_billed_up_to_the_reservation_only(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(
        time_skipping_env, remote_stop_status="Rejected", recorded=stop_record(50_000)
    ) as h:
        handle, _ = await h.start(h.request())
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        await handle.execute_update(ChargingSessionWorkflow.stop, StopCommand("client-a"))
        result = await handle.result()

    assert (result.energy_wh, result.cost_tyiyn, result.refunded_tyiyn) == (50_000, 10_000, 0)


async def test_a_connector_reported_idle_settles_without_a_remote_stop(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, recorded=stop_record(3_000)) as h:
        request = h.request()
        handle, _ = await h.start(request)
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        # The charger's StopTransaction was stored but lost on its way; then it says Available.
        await handle.signal(CONNECTOR_IDLE, ConnectorIdle(7, "Available", T0))
        result = await handle.result()
        await keep_history(handle, "idle_connector_recorded")

    assert (result.state, result.stop_reason) == ("completed", "charger")
    assert (result.energy_wh, result.cost_tyiyn, result.refunded_tyiyn) == (3_000, 4_500, 5_500)
    assert h.world.stops == []  # an idle charger is not asked to stop


async def test_an_idle_report_for_another_transaction_changes_nothing(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, recorded=stop_record(3_000)) as h:
        handle, _ = await h.start(h.request())
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        await handle.signal(CONNECTOR_IDLE, ConnectorIdle(8, "Available", T0))
        assert (await view_of(handle)).state == "charging"
        await handle.signal(TRANSACTION_STOPPED, stopped(1_000))
        result = await handle.result()

    assert (result.state, result.energy_wh) == ("completed", 1_000)
    assert h.world.lookups == []  # the charger's own stop needs no lookup


async def test_an_idle_report_while_waiting_for_an_unreachable_charger_settles_it(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, recorded=meter_record(2_000)) as h:
        handle, _ = await h.start(h.request())
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        h.world.offline = True
        h.world.remote_stop_error = STATION_NOT_CONNECTED
        await handle.execute_update(ChargingSessionWorkflow.stop, StopCommand("client-a"))
        await time_skipping_env.sleep(timedelta(minutes=5, seconds=30))  # between timers
        assert (await view_of(handle)).state == "stopping"
        await handle.signal(CONNECTOR_IDLE, ConnectorIdle(7, "Finishing", T0))
        result = await handle.result()

    assert (result.state, result.energy_wh, result.cost_tyiyn) == ("completed", 2_000, 3_000)


async def test_the_offline_wait_ending_settles_on_the_recorded_meter_value(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, recorded=meter_record(2_500)) as h:
        handle, _ = await h.start(h.request())
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        h.world.offline = True
        h.world.remote_stop_error = STATION_NOT_CONNECTED
        await handle.execute_update(ChargingSessionWorkflow.stop, StopCommand("client-a"))
        result = await handle.result()  # never back: the offline wait runs out

    assert (result.state, result.energy_wh, result.cost_tyiyn) == ("completed", 2_500, 3_750)


async def test_nothing_recorded_after_the_start_still_ends_hung_with_a_full_release(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, remote_stop_status="Rejected") as h:
        request = h.request()
        handle, _ = await h.start(request)
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        await handle.execute_update(ChargingSessionWorkflow.stop, StopCommand("client-a"))
        result = await handle.result()

    sid = request.session_id
    assert (result.state, result.stop_reason) == ("hung", "no_stop_confirmation")
    assert h.world.moved() == [
        ("reserve", f"reserve:{sid}", 10_000),
        ("release", f"release:{sid}", 10_000),
    ]


async def test_a_start_the_gateway_recorded_during_a_long_outage_is_adopted_at_the_timer(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """Temporal was down longer than the start timer while the gateway answered the charger
    Accepted from the stored RemoteStart: when the timer fires, the recorded start is taken,
    the session charges and bills the energy instead of releasing the reservation."""
    async with harness(time_skipping_env, recorded_start_answer=started()) as h:
        request = h.request()
        handle, _ = await h.start(request)
        await wait_for(handle, "starting")
        await time_skipping_env.sleep(timedelta(minutes=11))  # past the start timer
        await wait_for(handle, "charging")  # nothing was signalled: the record was taken
        # The relay delivers the same start late: the same transaction, nothing changes.
        assert await signal_started(handle, started()) == "Accepted"
        await handle.signal(TRANSACTION_STOPPED, stopped(2_000))
        result = await handle.result()
        await keep_history(handle, "start_from_record")

    sid = request.session_id
    assert h.world.start_lookups == 1
    assert (result.state, result.transaction_id, result.energy_wh) == ("completed", 7, 2_000)
    assert h.world.moved()[1:] == [
        ("capture", f"capture:{sid}", 3_000),
        ("release", f"release:{sid}", 7_000),
    ]
