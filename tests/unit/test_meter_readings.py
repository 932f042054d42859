"""The meter rules: units, the power bound per step and in total, resets, unit mix-ups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.meter_readings import (
    DEFAULT_MAX_POWER_W,
    MeterPoint,
    ReviewReason,
    Verdict,
    allowed_wh,
    assess,
    likely_unit_mixup,
    max_power_w,
    normalise_energy_wh,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
DC = DEFAULT_MAX_POWER_W["DC"]
AC = DEFAULT_MAX_POWER_W["AC"]


def at(seconds: int, wh: int) -> MeterPoint:
    return MeterPoint(T0 + timedelta(seconds=seconds), wh)


def test_units_follow_ocpp_and_a_missing_unit_is_wh() -> None:
    assert normalise_energy_wh("1234", None) == 1234
    assert normalise_energy_wh("1234", "Wh") == 1234
    assert normalise_energy_wh("12.3456", "kWh") == 12345  # a partial Wh is never billed
    assert normalise_energy_wh("5", "kvarh") is None
    assert normalise_energy_wh("5", "Wh", "Power.Active.Import") is None
    assert normalise_energy_wh("nan", "Wh") is None
    assert normalise_energy_wh("1e999999", "Wh") is None


def test_max_power_is_the_configuration_else_the_default_of_the_type() -> None:
    assert max_power_w(7_400, "AC") == 7_400
    assert max_power_w(None, "AC") == AC
    assert max_power_w(None, "dc") == DC
    assert max_power_w(None, None) == DC  # unknown: the larger, never a false alarm


def test_a_gigawatt_hour_in_one_second_goes_to_review_and_bills_nothing() -> None:
    found = assess(at(0, 0), [], at(1, 999_999_999), DC)
    assert found.verdict is Verdict.REVIEW
    assert found.reason is ReviewReason.IMPLAUSIBLE_STEP
    assert found.billable_wh == 0
    assert found.claimed_wh == 999_999_999
    assert found.limit_wh == allowed_wh(DC, 1)
    assert found.readings == (at(0, 0), at(1, 999_999_999))


def test_a_jump_after_plausible_samples_bills_the_samples_only() -> None:
    samples = [at(600, 1_000), at(1200, 2_000)]
    found = assess(at(0, 0), samples, at(1201, 9_000_000), AC)
    assert found.verdict is Verdict.REVIEW
    assert found.billable_wh == 2_000


def test_a_genuine_350_kw_session_is_plausible() -> None:
    wh_per_30_s = 350_000 * 30 // 3600
    samples = [at(30 * n, wh_per_30_s * n) for n in range(1, 120)]
    found = assess(at(0, 0), samples, at(3600, wh_per_30_s * 120), DC)
    assert found.verdict is Verdict.PLAUSIBLE
    assert found.billable_wh == wh_per_30_s * 120


def test_a_register_reset_bills_the_sum_of_the_monotone_runs() -> None:
    samples = [at(600, 1_500), at(1200, 2_000), at(1800, 100)]
    found = assess(at(0, 1_000), samples, at(2400, 500), AC)
    assert found.verdict is Verdict.REBUILT
    assert found.reset
    assert found.billable_wh == (2_000 - 1_000) + (500 - 100)


def test_a_reset_without_samples_goes_to_review() -> None:
    found = assess(at(0, 1_000), [], at(600, 500), AC)
    assert found.verdict is Verdict.REVIEW
    assert found.reason is ReviewReason.RESET_WITHOUT_SAMPLES
    assert found.billable_wh == 0
    assert found.claimed_wh is None


def test_a_stop_1000_times_the_last_sample_is_a_unit_mixup() -> None:
    samples = [at(600, 5), at(1200, 12)]  # kWh sent without a unit
    found = assess(at(0, 0), samples, at(1300, 12_000), AC)
    assert found.verdict is Verdict.REVIEW
    assert found.reason is ReviewReason.UNIT_MISMATCH
    assert likely_unit_mixup(12, 12_000) and likely_unit_mixup(12_000, 12)
    assert not likely_unit_mixup(0, 0)


def test_kwh_samples_normalised_agree_with_a_wh_stop() -> None:
    samples = [at(600, normalise_energy_wh("1.5", "kWh") or 0)]
    found = assess(at(0, 0), samples, at(1200, 3_000), AC)
    assert found.verdict is Verdict.PLAUSIBLE
    assert found.billable_wh == 3_000


def test_a_glitch_sample_the_meter_comes_back_from_is_ignored() -> None:
    up = assess(at(0, 0), [at(60, 100), at(120, 900_000_000), at(180, 300)], at(240, 400), AC)
    assert (up.verdict, up.billable_wh, up.glitches) == (Verdict.PLAUSIBLE, 400, 1)
    down = assess(at(0, 0), [at(60, 100), at(120, 5), at(180, 300)], at(240, 400), AC)
    assert (down.verdict, down.billable_wh, down.glitches) == (Verdict.PLAUSIBLE, 400, 1)


def test_many_small_steps_cannot_add_up_beyond_the_total_bound() -> None:
    # Every step is within its own slack, but together they exceed what an hour can deliver.
    per_step = allowed_wh(AC, 1)
    samples = [at(n, per_step * n) for n in range(1, 100)]
    found = assess(at(0, 0), samples, at(100, per_step * 100), AC)
    assert found.verdict is Verdict.REVIEW
    assert found.reason is ReviewReason.IMPLAUSIBLE_TOTAL
    assert found.billable_wh == 0


readings = st.lists(st.tuples(st.integers(0, 7200), st.integers(0, 10**9)), min_size=0, max_size=30)


@given(
    start=st.integers(0, 10**9),
    samples=readings,
    stop=st.tuples(st.integers(0, 7200), st.integers(0, 10**9)),
    power=st.integers(1, 1_000_000),
)
def test_never_bills_more_than_can_have_flowed(
    start: int, samples: list[tuple[int, int]], stop: tuple[int, int], power: int
) -> None:
    stop_s = max(stop[0], max((s for s, _ in samples), default=0))
    found = assess(at(0, start), [at(s, wh) for s, wh in samples], at(stop_s, stop[1]), power)
    assert 0 <= found.billable_wh <= allowed_wh(power, stop_s)
    if found.verdict is not Verdict.REVIEW and not found.reset and not found.glitches:
        assert found.billable_wh == stop[1] - start


@given(
    start=st.integers(0, 10**9),
    steps=st.lists(st.tuples(st.integers(1, 600), st.integers(0, 1000)), max_size=30),
)
def test_a_plausible_monotone_meter_is_billed_exactly(
    start: int, steps: list[tuple[int, int]]
) -> None:
    """At most 1 kWh per step of >= 1 s is within what 350 kW allows: never flagged."""
    points, seconds, register = [], 0, start
    for gap, wh in steps:
        seconds, register = seconds + gap, register + wh
        points.append(at(seconds, register))
    stop = at(seconds + 1, register)
    found = assess(at(0, start), points, stop, DC)
    assert found.verdict is Verdict.PLAUSIBLE
    assert found.billable_wh == register - start


def test_a_long_session_shows_start_stop_and_the_readings_around_the_problem() -> None:
    samples = [at(60 * n, 100 * n) for n in range(1, 200)]
    samples[100] = at(6060, 900_000_000)  # a jump that stays: every later step counts on
    samples[101:] = [at(60 * n, 900_000_000 + 100 * n) for n in range(102, 200)]
    found = assess(at(0, 0), samples, at(60 * 200, 900_000_000 + 20_000), DC)
    assert found.verdict is Verdict.REVIEW
    shown = found.readings
    assert shown[0] == at(0, 0) and shown[-1].register_wh == 900_020_000
    assert at(6060, 900_000_000) in shown
    assert len(shown) <= 40
