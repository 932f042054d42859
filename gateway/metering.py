"""Meter readings out of OCPP sampledValues: energy register (Wh), power (W), SoC (%)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.schemas import parse_timestamp

ENERGY_REGISTER = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
SOC = "SoC"

_INT32 = 2**31 - 1
_INT64 = 2**63 - 1
_ENERGY_FACTORS = {"Wh": Decimal(1), "kWh": Decimal(1000)}
_POWER_FACTORS = {"W": Decimal(1), "kW": Decimal(1000)}


@dataclass(frozen=True, slots=True)
class Reading:
    """One meterValue element; fields the charger did not send are None."""

    measured_at: Any  # aware datetime
    energy_wh: int | None  # the register, not energy since the start of a transaction
    power_w: int | None
    soc_percent: int | None


def _number(sample: dict[str, Any], factors: dict[str, Decimal], default_unit: str) -> int | None:
    if sample.get("format") == "SignedData":
        return None
    factor = factors.get(sample.get("unit") or default_unit)
    if factor is None:
        return None
    try:
        value = Decimal(sample["value"]) * factor
    except (InvalidOperation, KeyError, TypeError):
        return None
    if not value.is_finite():
        return None
    return int(value)  # truncates: a partial Wh is never billed


def _in_range(value: int | None, low: int, high: int) -> int | None:
    return value if value is not None and low <= value <= high else None


def reading(meter_value: dict[str, Any]) -> Reading | None:
    """The usable figures of one meterValue (snake_case keys), or None if it has none.

    Per-phase values are ignored: the totals are what sessions are billed and shown on.
    """
    energy = power = soc = None
    for sample in meter_value.get("sampled_value", ()):
        if sample.get("phase"):
            continue
        measurand = sample.get("measurand") or ENERGY_REGISTER
        if measurand == ENERGY_REGISTER and energy is None:
            energy = _in_range(_number(sample, _ENERGY_FACTORS, "Wh"), 0, _INT64)
        elif measurand == POWER and power is None:
            power = _in_range(_number(sample, _POWER_FACTORS, "W"), -_INT32, _INT32)
        elif measurand == SOC and soc is None:
            soc = _in_range(_number(sample, {"Percent": Decimal(1)}, "Percent"), 0, 100)
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
    if transaction_id is not None and not 0 < transaction_id <= _INT32:
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
