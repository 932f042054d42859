"""Which energy a charger's meter readings can stand for: units, plausibility, register resets.

A charger's meter is the only witness to what a driver owes, and meters in the field send
wrong numbers (a register that resets after a reboot, firmware that mixes Wh and kWh, a jump).
These rules decide, in integers only (Wh, W, seconds, percent), how much of a session's energy
is certain and whether an operator has to look at it. Pure: no I/O, no clock.

Power bound: energy over `dt` seconds is at most `max_power_w x (dt + slack) x (100 + tol) %`
Wh / 3600, for every step between consecutive readings and for the whole session. The slack
absorbs whole-second timestamps and a charger clock that stamps a sample a little late.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, DecimalException
from enum import StrEnum

ENERGY_REGISTER = "Energy.Active.Import.Register"
# OCPP 1.6 sampledValue units of energy; a reading without a unit is in Wh (the OCPP default).
ENERGY_UNIT_FACTORS = {"Wh": 1, "kWh": 1000}
DEFAULT_ENERGY_UNIT = "Wh"

# Conservative defaults when a connector's configuration does not say (docs/charging.md):
# the most an AC connector (22 kW, three-phase 32 A) or a DC one (350 kW) can deliver. An
# unknown type gets the larger, so a genuine session is never flagged for lack of data.
DEFAULT_MAX_POWER_W = {"AC": 22_000, "DC": 350_000}
UNKNOWN_TYPE_MAX_POWER_W = DEFAULT_MAX_POWER_W["DC"]
TOLERANCE_PERCENT = 10
CLOCK_SLACK_S = 60
UNIT_MIX_FACTOR = 1000
# A review shows at most this many readings (start, stop and those around each problem).
MAX_READINGS_SHOWN = 40

_SECONDS_PER_HOUR = 3600


class Verdict(StrEnum):
    PLAUSIBLE = "plausible"  # bill what the meter says
    REBUILT = "rebuilt"  # a register reset: billed the sum of the monotone runs
    REVIEW = "review"  # bill the certain part only (maybe 0); an operator decides the rest


class ReviewReason(StrEnum):
    IMPLAUSIBLE_STEP = "implausible_step"  # a reading rose faster than the connector can
    IMPLAUSIBLE_TOTAL = "implausible_total"  # more than max power x duration in all
    RESET_WITHOUT_SAMPLES = "reset_without_samples"  # meterStop < meterStart, nothing stored
    UNIT_MISMATCH = "unit_mismatch"  # meterStop is 1000x or 1/1000x the last sample


@dataclass(frozen=True, slots=True)
class MeterPoint:
    """One reading of the register, in Wh, at the charger's timestamp."""

    at: datetime
    register_wh: int


@dataclass(frozen=True, slots=True)
class Assessment:
    verdict: Verdict
    billable_wh: int  # the certain energy: what may be captured
    claimed_wh: int | None  # what the raw readings say (None: unknown after a reset)
    reason: ReviewReason | None = None
    limit_wh: int | None = None  # the bound that was broken
    reset: bool = False  # a register reset was found (and rebuilt around)
    glitches: int = 0  # samples ignored as implausible jumps the meter came back from
    readings: tuple[MeterPoint, ...] = ()  # the raw readings an operator is shown


def normalise_energy_wh(value: str, unit: str | None, measurand: str | None = None) -> int | None:
    """A sampledValue's energy register in whole Wh (a partial Wh is never billed), or None
    when it is not an energy register reading in a known unit."""
    if (measurand or ENERGY_REGISTER) != ENERGY_REGISTER:
        return None
    factor = ENERGY_UNIT_FACTORS.get(unit or DEFAULT_ENERGY_UNIT)
    if factor is None or len(value) > 32:
        return None
    try:
        number = Decimal(value)
        if not number.is_finite() or number.adjusted() > 18:
            return None
        return int(number * factor)
    except (DecimalException, ValueError):
        return None


def max_power_w(configured_w: int | None, current_type: str | None) -> int:
    """The connector's configured maximum power, else the default of its type."""
    if configured_w is not None and configured_w > 0:
        return configured_w
    return DEFAULT_MAX_POWER_W.get((current_type or "").upper(), UNKNOWN_TYPE_MAX_POWER_W)


def allowed_wh(max_power: int, seconds: int) -> int:
    """The most energy that can flow in `seconds` at `max_power`, with tolerance and slack."""
    span = max(seconds, 0) + CLOCK_SLACK_S
    return max_power * span * (100 + TOLERANCE_PERCENT) // (100 * _SECONDS_PER_HOUR)


def step_plausible(max_power: int, before: MeterPoint, after: MeterPoint) -> bool:
    """Could the register have risen from `before` to `after`? A fall is not a rise (reset)."""
    delta = after.register_wh - before.register_wh
    return delta <= allowed_wh(max_power, _seconds(before.at, after.at))


def likely_unit_mixup(meter_stop_wh: int, last_sample_wh: int) -> bool:
    """meterStop exactly 1000x or 1/1000x the last sample: kWh read as Wh, or the reverse."""
    if meter_stop_wh <= 0 or last_sample_wh <= 0:
        return False
    return (
        meter_stop_wh == last_sample_wh * UNIT_MIX_FACTOR
        or last_sample_wh == meter_stop_wh * UNIT_MIX_FACTOR
    )


def assess(
    start: MeterPoint, samples: Sequence[MeterPoint], stop: MeterPoint, max_power: int
) -> Assessment:
    """The verdict on a transaction's readings: meterStart, stored samples, meterStop.

    Walks the readings in time order keeping an anchor (the last reading trusted):
    - a rise the connector could deliver since the anchor counts, and moves the anchor;
    - a rise it could not is ignored when a later reading comes back within reach of the
      anchor (a glitch), else it stays uncounted and the session goes to review;
    - a fall is a register reset unless the next reading is back at or above the anchor (a
      glitch): a new monotone run starts there, and the energy across the reset is not billed.
    """
    ordered = sorted(samples, key=lambda point: point.at)
    points = [start, *ordered, stop]
    claimed = stop.register_wh - start.register_wh
    if not ordered:
        if claimed < 0:
            return Assessment(
                Verdict.REVIEW,
                0,
                None,
                ReviewReason.RESET_WITHOUT_SAMPLES,
                reset=True,
                readings=(start, stop),
            )
    elif likely_unit_mixup(stop.register_wh, ordered[-1].register_wh):
        return Assessment(
            Verdict.REVIEW,
            _certain_before_stop(start, ordered, max_power),
            max(claimed, 0),
            ReviewReason.UNIT_MISMATCH,
            readings=_shown(points, {len(points) - 1}),
        )
    billable = 0
    raw_rises = 0
    reset = False
    glitches = 0
    anchor = start
    broken: int | None = None  # index of an implausible rise nobody came back from
    broken_limit: int | None = None
    problems: set[int] = set()
    for index in range(1, len(points)):
        point = points[index]
        following = points[index + 1] if index + 1 < len(points) else None
        delta = point.register_wh - anchor.register_wh
        if delta >= 0:
            raw_rises += max(point.register_wh - points[index - 1].register_wh, 0)
            if step_plausible(max_power, anchor, point):
                billable += delta
                anchor = point
                continue
            problems.add(index)
            if following is not None and _back_within_reach(anchor, following, max_power):
                glitches += 1
                continue
            if broken is None:
                broken = index
                broken_limit = allowed_wh(max_power, _seconds(anchor.at, point.at))
            anchor = point  # an offset that stays: later steps are judged from it
            continue
        problems.add(index)
        if following is not None and following.register_wh >= anchor.register_wh:
            glitches += 1  # a dip the meter came back from, not a reset
            continue
        reset = True
        anchor = point
    claimed_wh = raw_rises if reset else max(claimed, 0)
    total_limit = allowed_wh(max_power, _seconds(start.at, stop.at))
    # An impossible step still bills what the samples before it vouch for; an impossible
    # total bills nothing: an operator decides.
    review: tuple[int, ReviewReason, int | None] | None = None
    if broken is not None:
        review = (billable, ReviewReason.IMPLAUSIBLE_STEP, broken_limit)
    elif billable > total_limit:
        review = (0, ReviewReason.IMPLAUSIBLE_TOTAL, total_limit)
    if review is not None:
        billed, reason, limit_wh = review
        return Assessment(
            Verdict.REVIEW,
            billed,
            claimed_wh,
            reason,
            limit_wh=limit_wh,
            reset=reset,
            glitches=glitches,
            readings=_shown(points, problems),
        )
    verdict = Verdict.REBUILT if reset else Verdict.PLAUSIBLE
    shown = _shown(points, problems) if reset or glitches else ()
    return Assessment(verdict, billable, claimed_wh, reset=reset, glitches=glitches, readings=shown)


def _certain_before_stop(start: MeterPoint, samples: Sequence[MeterPoint], max_power: int) -> int:
    """The energy the samples alone vouch for (the stop is the doubtful reading)."""
    last = samples[-1]
    inner = assess(start, samples[:-1], last, max_power)
    return inner.billable_wh if inner.verdict is not Verdict.REVIEW else 0


def _back_within_reach(anchor: MeterPoint, following: MeterPoint, max_power: int) -> bool:
    return following.register_wh >= anchor.register_wh and step_plausible(
        max_power, anchor, following
    )


def _seconds(earlier: datetime, later: datetime) -> int:
    return max(int((later - earlier).total_seconds()), 0)


def _shown(points: Sequence[MeterPoint], problems: set[int]) -> tuple[MeterPoint, ...]:
    """All readings when few; else start, stop and two either side of each problem."""
    if len(points) <= MAX_READINGS_SHOWN:
        return tuple(points)
    last = len(points) - 1
    keep: set[int] = set()
    for index in sorted(problems):
        keep.update(range(max(index - 2, 1), min(index + 3, last)))
    middle = sorted(keep)[: MAX_READINGS_SHOWN - 2]
    return (points[0], *(points[index] for index in middle), points[last])
