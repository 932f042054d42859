"""Card data for host-to-host payments: Luhn and expiry checks, and the masked form we keep."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from domain.errors import DomainError
from domain.identifiers import has_control_characters

# ASCII digits only: str.isdigit() also accepts '²', Arabic-Indic and fullwidth digits, which
# pass a Luhn check after int() but are no card number a bank knows.
_PAN = re.compile(r"[0-9]{12,19}")
_CVC = re.compile(r"[0-9]{3,4}")


class InvalidCard(DomainError):
    """The message never contains the card number or the CVC."""

    code = "invalid_card"


def luhn_ok(number: str) -> bool:
    if not number.isascii() or not number.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def mask_pan(number: str) -> str:
    digits = "".join(ch for ch in number if ch in "0123456789")
    if len(digits) < 10:
        return "****"
    return f"{digits[:6]}{'*' * (len(digits) - 10)}{digits[-4:]}"


@dataclass(frozen=True)
class CardDetails:
    """A card as typed by the driver. `repr` shows only the masked number, so logs stay clean."""

    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str = field(repr=False)
    holder: str = field(default="", repr=False)
    masked: str = field(default="", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "masked", mask_pan(self.number))

    def audit_view(self) -> dict[str, object]:
        return {"card": self.masked, "exp": f"{self.exp_month:02d}/{self.exp_year % 100:02d}"}


def validate_card(
    number: str, exp_month: int, exp_year: int, cvc: str, holder: str, *, today: date
) -> CardDetails:
    """Check what can be checked without the bank; raise InvalidCard naming the field."""
    digits = number.replace(" ", "").replace("-", "")
    if not _PAN.fullmatch(digits):
        raise InvalidCard("card_number must be 12 to 19 digits")
    if not luhn_ok(digits):
        raise InvalidCard("card_number is not a valid card number (checksum failed)")
    if not 1 <= exp_month <= 12:
        raise InvalidCard("exp_month must be between 1 and 12")
    year = exp_year + 2000 if exp_year < 100 else exp_year
    if (year, exp_month) < (today.year, today.month):
        raise InvalidCard("the card has expired")
    if year > today.year + 20:
        raise InvalidCard("exp_year is too far in the future")
    if not _CVC.fullmatch(cvc):
        raise InvalidCard("cvc must be 3 or 4 digits")
    if len(holder) > 100 or has_control_characters(holder):
        raise InvalidCard("card_holder must be at most 100 printable characters")
    return CardDetails(number=digits, exp_month=exp_month, exp_year=year, cvc=cvc, holder=holder)
