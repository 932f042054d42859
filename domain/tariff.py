"""Tariff rules: what a given energy costs and how much energy a reservation buys."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import InvalidAmount

WH_PER_KWH = 1000
# The most an operator may set per kWh (10,000 som): a typo beyond it would bill absurdly.
MAX_PRICE_TYIYN_PER_KWH = 1_000_000


@dataclass(frozen=True, slots=True)
class Tariff:
    """A price snapshot taken when a session starts."""

    price_tyiyn_per_kwh: int

    def __post_init__(self) -> None:
        if isinstance(self.price_tyiyn_per_kwh, bool) or not isinstance(
            self.price_tyiyn_per_kwh, int
        ):
            raise InvalidAmount("price_tyiyn_per_kwh must be an integer")
        if self.price_tyiyn_per_kwh <= 0:
            raise InvalidAmount("price_tyiyn_per_kwh must be positive")

    def cost_tyiyn(self, energy_wh: int, *, reserved_tyiyn: int) -> int:
        """ceil(Wh x price / 1000), capped at the reservation: nobody pays more than held."""
        return min(energy_cost_tyiyn(energy_wh, self.price_tyiyn_per_kwh), reserved_tyiyn)

    def energy_limit_wh(self, reserved_tyiyn: int) -> int:
        """The energy the reservation pays for in full: floor(reserved x 1000 / price)."""
        if reserved_tyiyn < 0:
            raise InvalidAmount("reserved_tyiyn must be >= 0")
        return reserved_tyiyn * WH_PER_KWH // self.price_tyiyn_per_kwh


def energy_cost_tyiyn(energy_wh: int, price_tyiyn_per_kwh: int) -> int:
    """Exact ceiling of energy_wh x price / 1000 in integers."""
    if energy_wh < 0:
        raise InvalidAmount("energy_wh must be >= 0")
    return -(-energy_wh * price_tyiyn_per_kwh // WH_PER_KWH)
