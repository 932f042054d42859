"""ChargingSession paths in the time-skipping environment, with every activity mocked."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.contracts.charging import ChargingSettings, StopCommand
from domain.contracts.session_signals import (
    ENERGY_LIMIT_REACHED,
    METER_SAMPLE,
    TRANSACTION_STOPPED,
    EnergyLimitReached,
    MeterSample,
)
from domain.contracts.station_commands import STATION_NOT_CONNECTED
from domain.sessions import SessionState, StopReason
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
from workflows.charging import ChargingSessionWorkflow


async def test_charger_stop_settles_exactly_the_confirmed_energy(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env) as h:
        request = h.request()
        handle, admitted = await h.start(request)
        assert (admitted.state, admitted.price_tyiyn_per_kwh, admitted.energy_limit_wh) == (
            "pending",
            1_500,
            6_666,
        )
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        await handle.signal(METER_SAMPLE, MeterSample(7, 1_000, started().started_at))
        await handle.signal("transaction_stopped", stopped(3_457))
        result = await handle.result()
        await keep_history(handle, "charger_stop")

    sid = request.session_id
    assert result.state == SessionState.COMPLETED
    assert result.stop_reason == StopReason.CHARGER
    # ceil(3457 Wh x 1500 / 1000) = ceil(5185.5) = 5186
    assert (result.energy_wh, result.cost_tyiyn, result.refunded_tyiyn) == (3_457, 5_186, 4_814)
    assert h.world.moved() == [
        ("reserve", f"reserve:{sid}", 10_000),
        ("capture", f"capture:{sid}", 5_186),
        ("release", f"release:{sid}", 4_814),
    ]
    assert [r.state for r in h.world.records] == ["charging", "completed"]
    assert h.world.starts[0].id_tag == sid and h.world.starts[0].energy_limit_wh == 6_666
    assert h.world.stops == []


async def test_user_stop_sends_remote_stop_and_settles_on_the_stop_transaction(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, stop_on_remote_stop=stopped(2_000)) as h:
        request = h.request()
        handle, _ = await h.start(request)
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        view = await handle.execute_update(ChargingSessionWorkflow.stop, StopCommand("client-a"))
        assert view.state in {"stopping", "completed"}
        result = await handle.result()
        await keep_history(handle, "user_stop_local_steps")

    assert [s.transaction_id for s in h.world.stops] == [7]
    assert (result.state, result.stop_reason) == ("completed", "user")
    assert (result.cost_tyiyn, result.refunded_tyiyn) == (3_000, 7_000)


async def test_someone_elses_stop_is_refused_as_not_found(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env) as h:
        handle, _ = await h.start(h.request())
        await wait_for(handle, "starting")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(ChargingSessionWorkflow.stop, StopCommand("client-b"))
        assert isinstance(refused.value.cause, ApplicationError)
        assert refused.value.cause.type == "SessionNotFound"
        assert (await view_of(handle)).state == "starting"
        await handle.terminate("test over")


async def test_energy_limit_stop_caps_the_cost_at_the_reservation(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env) as h:
        request = h.request()
        handle, _ = await h.start(request)
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        await handle.signal(ENERGY_LIMIT_REACHED, EnergyLimitReached(7, 6_666, "Accepted"))
        await wait_for(handle, "stopping")
        # The charger overshoots a little before it stops: the driver pays no more than held.
        await handle.signal(TRANSACTION_STOPPED, stopped(6_700))
        result = await handle.result()
        await keep_history(handle, "energy_limit")

    assert h.world.stops == []  # the gateway already sent RemoteStop itself
    assert (result.state, result.stop_reason) == ("completed", "limit_reached")
    assert (result.cost_tyiyn, result.refunded_tyiyn) == (10_000, 0)
    sid = request.session_id
    assert h.world.moved() == [
        ("reserve", f"reserve:{sid}", 10_000),
        ("capture", f"capture:{sid}", 10_000),
    ]


async def test_twelve_hour_cap_stops_the_session(time_skipping_env: WorkflowEnvironment) -> None:
    async with harness(time_skipping_env, stop_on_remote_stop=stopped(5_000, minutes=720)) as h:
        handle, _ = await h.start(h.request(amount_tyiyn=100_000))
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        result = await handle.result()  # lets the test server skip 12 hours
        await keep_history(handle, "time_cap")

    assert (result.state, result.stop_reason) == ("completed", "time_cap")
    assert [s.transaction_id for s in h.world.stops] == [7]
    assert (result.cost_tyiyn, result.refunded_tyiyn) == (7_500, 92_500)


async def test_no_stop_transaction_after_remote_stop_ends_hung_with_a_full_release(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env) as h:
        request = h.request()
        handle, _ = await h.start(request)
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        await handle.signal(METER_SAMPLE, MeterSample(7, 4_000, started().started_at))
        await handle.execute_update(ChargingSessionWorkflow.stop, StopCommand("client-a"))
        result = await handle.result()  # the 2-minute grace period passes without a stop
        await keep_history(handle, "hung")

    sid = request.session_id
    assert (result.state, result.stop_reason) == ("hung", "no_stop_confirmation")
    assert (result.cost_tyiyn, result.refunded_tyiyn) == (0, 10_000)
    assert h.world.moved() == [
        ("reserve", f"reserve:{sid}", 10_000),
        ("release", f"release:{sid}", 10_000),
    ]
    assert h.world.records[-1].state == "hung"


async def test_no_start_transaction_in_ten_minutes_fails_and_stops_a_hidden_start(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    # The charger started (its transaction is in the database) but the signal never came.
    async with harness(time_skipping_env, open_transaction_id=99) as h:
        request = h.request()
        handle, _ = await h.start(request)
        result = await handle.result()
        await keep_history(handle, "no_start")

    sid = request.session_id
    assert (result.state, result.stop_reason) == ("failed_to_start", "no_start")
    assert [s.transaction_id for s in h.world.stops] == [99]
    assert h.world.located[-1].id_tag == sid
    assert h.world.moved() == [
        ("reserve", f"reserve:{sid}", 10_000),
        ("release", f"release:{sid}", 10_000),
    ]


async def test_remote_start_rejected_releases_everything(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, remote_start_status="Rejected") as h:
        request = h.request()
        handle, _ = await h.start(request)
        result = await handle.result()

    assert (result.state, result.stop_reason) == ("failed_to_start", "start_rejected")
    assert (result.cost_tyiyn, result.refunded_tyiyn) == (0, 10_000)
    assert [op for op, *_ in h.world.moved()] == ["reserve", "release"]
    assert [r.state for r in h.world.records] == ["failed_to_start"]


async def test_station_not_connected_releases_everything(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(
        time_skipping_env, remote_start_error=STATION_NOT_CONNECTED, offline=True
    ) as h:
        handle, _ = await h.start(h.request())
        result = await handle.result()
        await keep_history(handle, "station_not_connected")

    assert (result.state, result.stop_reason) == ("failed_to_start", "station_unavailable")
    assert [op for op, *_ in h.world.moved()] == ["reserve", "release"]
    assert h.world.moved()[-1][2] == 10_000


async def test_a_dead_gateway_means_relocate_and_resend_not_a_lost_command(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, first_queue="gateway-dead") as h:
        handle, _ = await h.start(
            h.request(settings=ChargingSettings(command_schedule_timeout_s=1))
        )
        # Nobody serves gateway-dead: the schedule-to-start timeout fires once time moves.
        await time_skipping_env.sleep(timedelta(seconds=2))
        await wait_for(handle, "starting")
        await handle.terminate("test over")

    assert len(h.world.starts) == 1  # delivered once, by the live gateway
    assert h.world.located  # after asking where the station is now


async def test_duplicated_signals_count_once(time_skipping_env: WorkflowEnvironment) -> None:
    async with harness(time_skipping_env) as h:
        request = h.request()
        handle, _ = await h.start(request)
        await wait_for(handle, "starting")
        for _ in range(2):
            await signal_started(handle, started())
        await wait_for(handle, "charging")
        for energy in (1_000, 1_000, 2_000, 1_500):  # repeated and out of order
            await handle.signal(METER_SAMPLE, MeterSample(7, energy, started().started_at))
        assert (await view_of(handle)).energy_wh == 2_000
        for _ in range(2):
            await handle.signal(TRANSACTION_STOPPED, stopped(2_500))
        result = await handle.result()

    assert (result.energy_wh, result.cost_tyiyn) == (2_500, 3_750)
    assert [op for op, *_ in h.world.moved()] == ["reserve", "capture", "release"]
    assert [r.state for r in h.world.records] == ["charging", "completed"]


async def test_meter_values_after_the_stop_change_nothing(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    gate = asyncio.Event()
    async with harness(time_skipping_env, capture_gate=gate) as h:
        handle, _ = await h.start(h.request())
        await wait_for(handle, "starting")
        await signal_started(handle, started())
        await wait_for(handle, "charging")
        await handle.signal(TRANSACTION_STOPPED, stopped(3_000))
        await handle.signal(METER_SAMPLE, MeterSample(7, 5_000, started().started_at))
        assert await signal_started(handle, started(transaction_id=8)) == "Invalid"  # stray
        gate.set()
        result = await handle.result()

    assert (result.energy_wh, result.cost_tyiyn) == (3_000, 4_500)
    assert [s.transaction_id for s in h.world.stops] == [8]  # the stray is stopped


async def test_stop_before_the_charger_starts_cancels_after_the_grace_period(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env) as h:
        request = h.request()
        handle, _ = await h.start(request)
        await wait_for(handle, "starting")
        view = await handle.execute_update(ChargingSessionWorkflow.stop, StopCommand("client-a"))
        assert view.state == "stopping"
        result = await handle.result()

    assert (result.state, result.stop_reason) == ("cancelled", "user")
    assert [op for op, *_ in h.world.moved()] == ["reserve", "release"]
    assert h.world.stops == []


async def test_stop_racing_a_start_stops_the_transaction_that_arrives(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, stop_on_remote_stop=stopped(0)) as h:
        handle, _ = await h.start(h.request())
        await wait_for(handle, "starting")
        await handle.execute_update(ChargingSessionWorkflow.stop, StopCommand("client-a"))
        await signal_started(handle, started())  # within the grace period
        result = await handle.result()
        await keep_history(handle, "stop_racing_start")

    assert [s.transaction_id for s in h.world.stops] == [7]
    assert (result.state, result.stop_reason, result.cost_tyiyn) == ("completed", "user", 0)
    assert [op for op, *_ in h.world.moved()] == ["reserve", "release"]


async def test_stop_during_admission_cancels_without_asking_the_charger(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    gate = asyncio.Event()
    async with harness(time_skipping_env, open_gate=gate) as h:
        request = h.request()
        handle = await h.begin(request)
        accepted = WorkflowUpdateStage.ACCEPTED
        admission = await handle.start_update(
            ChargingSessionWorkflow.start, command(request), wait_for_stage=accepted
        )
        stop = await handle.start_update(
            ChargingSessionWorkflow.stop, StopCommand("client-a"), wait_for_stage=accepted
        )
        gate.set()  # both updates are in before the admission finishes
        assert (await admission.result()).state == "pending"
        assert (await stop.result()).state in {"stopping", "cancelled"}
        result = await handle.result()
        await keep_history(handle, "stop_during_admission")

    assert (result.state, result.stop_reason) == ("cancelled", "user")
    assert h.world.starts == []
    assert [op for op, *_ in h.world.moved()] == ["reserve", "release"]


async def test_insufficient_funds_refuses_the_start_and_reserves_nothing(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, reserve_error="InsufficientFunds") as h:
        request = h.request()
        handle = await h.begin(request)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(ChargingSessionWorkflow.start, command(request))
        result = await handle.result()
        await keep_history(handle, "insufficient_funds")

    cause = refused.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "StartRejected"
    assert cause.details[0] == "InsufficientFunds"
    assert result.rejection == "InsufficientFunds"
    assert h.world.ledger == []  # the failed reserve moved nothing
    assert h.world.discarded == []  # and, one transaction with the claim, wrote no claim
    assert h.world.starts == [] and h.world.records == []


async def test_an_offline_station_is_refused_before_any_money_moves(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, open_error="StationOffline") as h:
        request = h.request()
        handle = await h.begin(request)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(ChargingSessionWorkflow.start, command(request))
        await handle.result()

    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.details[0] == "StationOffline"
    assert h.world.ledger == [] and h.world.discarded == []


async def test_a_repeated_start_returns_the_same_session_and_another_body_is_refused(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env) as h:
        request = h.request()
        handle, first = await h.start(request)
        again = await handle.execute_update(ChargingSessionWorkflow.start, command(request))
        assert again.session_id == first.session_id
        other = replace(command(request), amount_tyiyn=20_000)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(ChargingSessionWorkflow.start, other)
        assert isinstance(refused.value.cause, ApplicationError)
        assert refused.value.cause.type == "StartRequestMismatch"
        await handle.terminate("test over")

    assert [op for op, *_ in h.world.moved()] == ["reserve"]
    assert len(h.world.starts) == 1
