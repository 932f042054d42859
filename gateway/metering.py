"""Meter readings out of OCPP sampledValues: energy register (Wh), power (W), SoC (%)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, DecimalException
from typing import Any

from domain.meter_readings import DEFAULT_ENERGY_UNIT, ENERGY_REGISTER, ENERGY_UNIT_FACTORS
from gateway.schemas import INT32, INT64, parse_timestamp

POWER = "Power.Active.Import"
SOC = "SoC"

# One unit rule for the gateway and settlement (domain.meter_readings): no unit means Wh.
_ENERGY_FACTORS = {unit: Decimal(factor) for unit, factor in ENERGY_UNIT_FACTORS.items()}
_POWER_FACTORS = {"W": Decimal(1), "kW": Decimal(1000)}
# A sampledValue is a free-form string. Anything longer, or with a magnitude beyond 10^18
# (an int64 of Wh is ~9.2e18), cannot be a real reading; bounding both keeps Decimal
# arithmetic cheap: "1e999990" would otherwise take seconds to turn into an int.
_MAX_VALUE_CHARS = 32
_MAX_ADJUSTED_EXPONENT = 18
# Per-phase energy registers by conductor: line-to-neutral and bare line names are the same
# conductor; line-to-line and neutral readings are not part of the delivered total.
_CONDUCTOR = {"L1": "L1", "L2": "L2", "L3": "L3", "L1-N": "L1", "L2-N": "L2", "L3-N": "L3"}


@dataclass(frozen=True, slots=True)
class Reading:
    """One meterValue element; fields the charger did not send are None."""

    measured_at: Any  # aware datetime
    energy_wh: int | None  # the register, not energy since the start of a transaction
    power_w: int | None
    soc_percent: int | None


def _number(sample: dict[str, Any], factors: dict[str, Decimal], default_unit: str) -> int | None:
    """The sample in base units, or None when it is not a plain, sane number.

    Unusable samples are ignored rather than refused with a CallError: the rest of the
    meterValue is still good data, and a CallError would only make the charger resend the
    same unusable sample forever.
    """
    if sample.get("format") == "SignedData":
        return None
    factor = factors.get(sample.get("unit") or default_unit)
    raw = sample.get("value")
    if factor is None or not isinstance(raw, str) or len(raw) > _MAX_VALUE_CHARS:
        return None
    try:
        value = Decimal(raw)
        if not value.is_finite() or value.adjusted() > _MAX_ADJUSTED_EXPONENT:
            return None
        return int(value * factor)  # truncates: a partial Wh is never billed
    except (DecimalException, ValueError):
        return None


def _in_range(value: int | None, low: int, high: int) -> int | None:
    return value if value is not None and low <= value <= high else None


def _energy(total: int | None, phases: dict[str, int]) -> int | None:
    """The total register, or the sum of the per-phase ones when a charger sends only those."""
    if total is not None or not phases:
        return total
    return _in_range(sum(phases.values()), 0, INT64)


def reading(meter_value: dict[str, Any]) -> Reading | None:
    """The usable figures of one meterValue (snake_case keys), or None if it has none.

    Totals are what sessions are billed and shown on; per-phase energy registers count
    only when no total is present (some chargers report L1/L2/L3 registers only).
    """
    energy = power = soc = None
    phases: dict[str, int] = {}
    for sample in meter_value.get("sampled_value", ()):
        measurand = sample.get("measurand") or ENERGY_REGISTER
        phase = sample.get("phase")
        if phase:
            conductor = _CONDUCTOR.get(phase)
            if measurand == ENERGY_REGISTER and conductor is not None and conductor not in phases:
                value = _in_range(_number(sample, _ENERGY_FACTORS, DEFAULT_ENERGY_UNIT), 0, INT64)
                if value is not None:
                    phases[conductor] = value
            continue
        if measurand == ENERGY_REGISTER and energy is None:
            energy = _in_range(_number(sample, _ENERGY_FACTORS, DEFAULT_ENERGY_UNIT), 0, INT64)
        elif measurand == POWER and power is None:
            power = _in_range(_number(sample, _POWER_FACTORS, "W"), -INT32, INT32)
        elif measurand == SOC and soc is None:
            soc = _in_range(_number(sample, {"Percent": Decimal(1)}, "Percent"), 0, 100)
    energy = _energy(energy, phases)
    if energy is None and power is None and soc is None:
        return None
    return Reading(parse_timestamp(meter_value["timestamp"]), energy, power, soc)


def readings(meter_values: list[dict[str, Any]]) -> list[Reading]:
    found = (reading(item) for item in meter_values)
    return [item for item in found if item is not None]


def latest_energy(found: list[Reading]) -> int | None:
    """The newest energy register among the readings, if any carries one."""
    with_energy = [item for item in found if item.energy_wh is not None]
    if not with_energy:
        return None
    return max(with_energy, key=lambda item: item.measured_at).energy_wh


def rows(
    found: list[Reading], station_id: str, connector_id: int, transaction_id: int | None
) -> list[dict[str, Any]]:
    """meter_values rows for the readings."""
    if transaction_id is not None and not 0 < transaction_id <= INT32:
        transaction_id = None  # not one of ours: keep the sample, drop the bogus reference
    return [
        {
            "station_id": station_id,
            "connector_id": connector_id,
            "transaction_id": transaction_id,
            "measured_at": item.measured_at,
            "energy_wh": item.energy_wh,
            "power_w": item.power_w,
            "soc_percent": item.soc_percent,
        }
        for item in found
    ]
