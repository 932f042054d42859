"""The provider's payment notification (result_url): verifying its hash, reading its fields."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping

from domain.identifiers import is_provider_id
from payments.contract import DEFAULT_CONTRACT, OdengiContract
from payments.provider import PaymentNotice, PayStatus, UnreadNotice
from payments.signing import WEBHOOK_HASH_FIELDS, hashes_match, webhook_hash


class InvalidNotice(Exception):
    """A notice that cannot be acted on; `signature` tells a forged hash from a malformed body."""

    def __init__(self, message: str, *, signature: bool) -> None:
        super().__init__(message)
        self.message = message
        self.signature = signature


# ASCII digits only (str.isdigit() also takes '²' and Arabic-Indic digits); at most a BIGINT.
_AMOUNT = re.compile(r"[0-9]{1,18}")
_CURRENCY = re.compile(r"[A-Z]{3}")
REQUIRED_FIELDS = ("trans_id", "status_pay", "order_id", "amount")
RAW_MAX_FIELDS = 40
RAW_MAX_VALUE = 500


def _text(fields: Mapping[str, object], name: str) -> str:
    value = fields.get(name)
    return "" if value is None else str(value).strip()


def verify_and_parse(
    fields: Mapping[str, object], password: str, contract: OdengiContract = DEFAULT_CONTRACT
) -> PaymentNotice | UnreadNotice:
    """Check the hash first (constant time), then read the fields.

    A bad hash raises InvalidNotice. A good hash is the provider's word, so it is never refused:
    what we cannot interpret comes back as an UnreadNotice, kept and re-checked, not dropped.
    """
    if not hashes_match(webhook_hash(fields, password), fields.get("hash")):
        raise InvalidNotice("webhook hash does not match", signature=True)
    problems = [f"lacks {name}" for name in REQUIRED_FIELDS if not _text(fields, name)]
    status = contract.status_of(_text(fields, "status_pay"))
    if status is None and _text(fields, "status_pay"):
        problems.append(f"status_pay {_text(fields, 'status_pay')[:16]!r} is not in the table")
    amount = _text(fields, "amount")
    if amount and not _AMOUNT.fullmatch(amount):
        problems.append(f"amount {amount[:32]!r} is not whole tyiyn")
    currency = _text(fields, "currency").upper() or "KGS"
    if not _CURRENCY.fullmatch(currency):
        problems.append(f"currency {currency[:16]!r} is not three ASCII letters")
    # What no column can store is kept in the raw body only (a database error would be a 5xx
    # the provider retries for ever).
    for name in ("order_id", "invoice_id", "site_id"):
        if _text(fields, name) and not _identifier(fields, name):
            problems.append(f"{name} is not an identifier we can store")
    trans_id = _text(fields, "trans_id")
    if not is_provider_id(trans_id):
        if trans_id:
            problems.append("trans_id is not an identifier we can store")
        trans_id = unread_key(fields)
    if problems or status is None:
        return UnreadNotice(
            trans_id=trans_id,
            order_id=_identifier(fields, "order_id"),
            invoice_id=_identifier(fields, "invoice_id") or None,
            reason="; ".join(problems)[:300],
        )
    return PaymentNotice(
        trans_id=trans_id,
        status=status,
        order_id=_text(fields, "order_id"),
        invoice_id=_text(fields, "invoice_id") or None,
        amount_tyiyn=int(amount),
        currency=currency,
        site_id=_text(fields, "site_id"),
        test=_text(fields, "test") in {"1", "true", "True"},
    )


def unread_key(fields: Mapping[str, object]) -> str:
    """A stable key for a signed notice without a usable trans_id: the provider's retries of
    the same notice carry the same hash, so they land on the same row."""
    digest = hashlib.sha256(_text(fields, "hash").lower().encode()).hexdigest()
    return f"unread-{digest[:32]}"


def _identifier(fields: Mapping[str, object], name: str) -> str:
    text = _text(fields, name)
    return text if is_provider_id(text) else ""


def raw_body(fields: Mapping[str, object]) -> dict[str, str]:
    """The notice as received, bounded, for the record (scalars as text, nesting as JSON)."""
    kept: dict[str, str] = {}
    for key, value in list(fields.items())[:RAW_MAX_FIELDS]:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        # PostgreSQL's JSONB cannot hold NUL: it is written as the two characters "\0".
        kept[str(key)[:64].replace("\x00", "\\0")] = text[:RAW_MAX_VALUE].replace("\x00", "\\0")
    return kept


def untrusted_reason(notice: PaymentNotice, *, site_id: str, test_mode: bool) -> str | None:
    """Why a correctly signed notice must still not be credited, or None.

    A production merchant (test_mode False) never credits a test payment, and a notice for
    another site of the same account is not a payment to us. Both are well signed, so only
    these fields tell them apart from real money.
    """
    if notice.test != test_mode:
        flag = "test" if notice.test else "live"
        return f"a {flag} payment reached a {'test' if test_mode else 'live'} merchant"
    if notice.site_id != site_id:
        return f"site_id {notice.site_id or '(none)'} is not this merchant's ({site_id})"
    return None


def signed_notice_fields(
    *,
    trans_id: str,
    invoice_id: str,
    order_id: str,
    status: PayStatus,
    amount_tyiyn: int,
    currency: str,
    site_id: str,
    mktime: str,
    test: bool,
    password: str,
) -> dict[str, str]:
    """The body a provider posts to result_url, hash included (the simulator sends this)."""
    fields = {
        "trans_id": trans_id,
        "invoice_id": invoice_id,
        "status_pay": str(int(status)),
        "site_id": site_id,
        "order_id": order_id,
        "amount": str(amount_tyiyn),
        "currency": currency,
        "mktime": mktime,
        "test": "1" if test else "0",
    }
    fields["hash"] = webhook_hash(fields, password)
    return fields


__all__ = [
    "WEBHOOK_HASH_FIELDS",
    "InvalidNotice",
    "raw_body",
    "signed_notice_fields",
    "untrusted_reason",
    "verify_and_parse",
]
