"""Money in integer tyiyn (1 som = 100 tyiyn) and its display form."""

from __future__ import annotations

import re

from domain.errors import InvalidAmount

TYIYN_PER_SOM = 100
CURRENCY = "KGS"

_SOM_PATTERN = re.compile(r"^(?P<som>\d+)(?:\.(?P<tyiyn>\d{1,2}))?$")


def ensure_tyiyn(value: object, *, field: str = "amount_tyiyn", allow_zero: bool = False) -> int:
    """Return `value` as a tyiyn amount or raise InvalidAmount; bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAmount(f"{field} must be an integer number of tyiyn")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidAmount(f"{field} must be {'>= 0' if allow_zero else 'positive'}")
    return value


def format_som(amount_tyiyn: int) -> str:
    """123456 -> '1234.56' (exact, no floats)."""
    sign = "-" if amount_tyiyn < 0 else ""
    som, tyiyn = divmod(abs(amount_tyiyn), TYIYN_PER_SOM)
    return f"{sign}{som}.{tyiyn:02d}"


def parse_som(text: str) -> int:
    """'1234.5' -> 123450 tyiyn; refuses anything that is not an exact non-negative decimal."""
    match = _SOM_PATTERN.match(text.strip())
    if match is None:
        raise InvalidAmount(f"not a som amount: {text!r}")
    tyiyn = (match.group("tyiyn") or "0").ljust(2, "0")
    return int(match.group("som")) * TYIYN_PER_SOM + int(tyiyn)


def check_amount(amount_tyiyn: int, low: int, high: int) -> None:
    """An amount a driver asked for must lie within the configured bounds."""
    if not low <= amount_tyiyn <= high:
        raise InvalidAmount(
            f"amount_tyiyn must be between {low} and {high} "
            f"({format_som(low)}-{format_som(high)} {CURRENCY})"
        )
