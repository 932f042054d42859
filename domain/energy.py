"""Energy in integer Wh and its display form in kWh."""

from __future__ import annotations

from domain.tariff import WH_PER_KWH


def format_kwh(energy_wh: int) -> str:
    """3457 -> '3.457' (exact, no floats: three decimals are whole Wh)."""
    sign = "-" if energy_wh < 0 else ""
    kwh, wh = divmod(abs(energy_wh), WH_PER_KWH)
    return f"{sign}{kwh}.{wh:03d}"
