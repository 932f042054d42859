"""Settlement bills only energy the readings can stand for (time-skipping, activities mocked;
the meter check runs the real domain rules over the samples the fake world holds)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from domain.contracts.charging import SessionView
from domain.contracts.session_signals import TransactionStarted, TransactionStopped
from domain.meter_readings import DEFAULT_MAX_POWER_W, MeterPoint
from domain.sessions import SessionState
from tests.charging.fakes import T0, harness, keep_history, signal_started, wait_for


def stop_at(seconds: int, meter_stop_wh: int, meter_start_wh: int) -> TransactionStopped:
    return TransactionStopped(
        7,
        meter_stop_wh,
        max(meter_stop_wh - meter_start_wh, 0),
        T0 + timedelta(seconds=seconds),
        "Local",
    )


def point(seconds: int, wh: int) -> MeterPoint:
    return MeterPoint(T0 + timedelta(seconds=seconds), wh)


async def settle(
    env: WorkflowEnvironment,
    meter_start_wh: int,
    stop: TransactionStopped,
    samples: list[MeterPoint] | None = None,
    amount_tyiyn: int = 10_000,
    history: str | None = None,
    **world: object,
) -> tuple[SessionView, list[tuple[str, str, int]], list[str]]:
    async with harness(env, samples=samples or [], **world) as h:
        request = h.request(amount_tyiyn=amount_tyiyn)
        handle, _ = await h.start(request)
        await wait_for(handle, "starting")
        await signal_started(handle, TransactionStarted(7, "ST-1", 1, meter_start_wh, T0))
        await wait_for(handle, "charging")
        await handle.signal("transaction_stopped", stop)
        result = await handle.result()
        if history is not None:
            await keep_history(handle, history)
        return result, h.world.moved(), [r.state for r in h.world.records]


def captured(moved: list[tuple[str, str, int]]) -> int:
    return sum(amount for op, _, amount in moved if op == "capture")


async def test_an_absurd_meter_stop_captures_nothing_and_needs_review(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    result, moved, records = await settle(
        time_skipping_env, 0, stop_at(1, 999_999_999, 0), history="meter_review"
    )
    assert result.state == SessionState.NEEDS_REVIEW
    assert result.meter_note == "implausible_step"
    assert (result.energy_wh, result.cost_tyiyn, result.refunded_tyiyn) == (0, 0, 10_000)
    assert captured(moved) == 0
    assert [op for op, _, _ in moved] == ["reserve", "release"]
    review = result.meter_review
    assert review is not None
    assert review.claimed_wh == 999_999_999 and review.billed_wh == 0
    assert review.limit_wh is not None and review.limit_wh < 10_000
    assert review.at_stake_tyiyn == 10_000  # the whole reservation, not taken
    assert [p.register_wh for p in review.readings] == [0, 999_999_999]
    assert records == ["charging", "needs_review"]


async def test_a_jump_after_good_samples_bills_the_certain_part_only(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    samples = [point(600, 101_000), point(1200, 102_000)]
    result, moved, _ = await settle(
        time_skipping_env, 100_000, stop_at(1201, 900_000_000, 100_000), samples
    )
    assert result.state == SessionState.NEEDS_REVIEW
    assert result.energy_wh == 2_000
    assert captured(moved) == 3_000  # 2 kWh x 1500 tyiyn
    assert result.refunded_tyiyn == 7_000


async def test_a_register_reset_is_rebuilt_from_the_samples_before_it(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    samples = [point(600, 1_500), point(1200, 2_000), point(1800, 100)]
    result, moved, _ = await settle(
        time_skipping_env, 1_000, stop_at(2400, 500, 1_000), samples, history="meter_reset"
    )
    assert result.state == SessionState.COMPLETED
    assert result.meter_note == "register_reset"
    assert result.energy_wh == 1_000 + 400
    assert captured(moved) == 2_100  # 1.4 kWh x 1500


async def test_a_reset_without_samples_goes_to_review_with_nothing_captured(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    result, moved, _ = await settle(time_skipping_env, 1_000, stop_at(600, 500, 1_000))
    assert result.state == SessionState.NEEDS_REVIEW
    assert result.meter_note == "reset_without_samples"
    assert captured(moved) == 0 and result.refunded_tyiyn == 10_000
    assert result.meter_review is not None and result.meter_review.claimed_wh is None


async def test_samples_sent_in_kwh_without_a_unit_and_a_wh_stop_go_to_review(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    samples = [point(600, 1), point(1200, 2)]  # "1", "2" meant kWh, read as Wh
    result, moved, _ = await settle(time_skipping_env, 0, stop_at(1300, 2_000, 0), samples)
    assert result.state == SessionState.NEEDS_REVIEW
    assert result.meter_note == "unit_mismatch"
    assert captured(moved) == 3  # the 2 Wh the samples vouch for


async def test_a_genuine_350_kw_hour_is_billed_in_full(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    per_30_s = 350_000 * 30 // 3600
    samples = [point(30 * n, per_30_s * n) for n in range(1, 120)]
    result, moved, _ = await settle(
        time_skipping_env,
        0,
        stop_at(3600, per_30_s * 120, 0),
        samples,
        amount_tyiyn=600_000,
        max_power_w=DEFAULT_MAX_POWER_W["DC"],
    )
    assert result.state == SessionState.COMPLETED
    assert result.meter_note is None and result.meter_review is None
    assert result.energy_wh == per_30_s * 120
    assert captured(moved) == -(-per_30_s * 120 * 1_500 // 1000)


async def test_a_session_admitted_before_the_check_settles_on_the_raw_figures(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """No max-power snapshot (admitted by older code): no meter check, as before."""
    result, moved, _ = await settle(time_skipping_env, 0, stop_at(1, 3_000, 0), max_power_w=0)
    assert result.state == SessionState.COMPLETED
    assert captured(moved) == 4_500
