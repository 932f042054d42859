"""The provider's payment notification (result_url): verifying its hash, reading its fields."""

from __future__ import annotations

import re
from collections.abc import Mapping

from domain.identifiers import PROVIDER_ID, is_provider_id
from payments.provider import PaymentNotice, PayStatus
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
_REQUIRED = ("trans_id", "status_pay", "order_id", "amount")


def _text(fields: Mapping[str, object], name: str) -> str:
    value = fields.get(name)
    return "" if value is None else str(value).strip()


def verify_and_parse(fields: Mapping[str, object], password: str) -> PaymentNotice:
    """Check the hash first (constant time), then the fields; raise InvalidNotice."""
    if not hashes_match(webhook_hash(fields, password), fields.get("hash")):
        raise InvalidNotice("webhook hash does not match", signature=True)
    missing = [name for name in _REQUIRED if not _text(fields, name)]
    if missing:
        raise InvalidNotice(f"webhook lacks {', '.join(missing)}", signature=False)
    try:
        status = PayStatus(int(_text(fields, "status_pay")))
    except ValueError:
        raise InvalidNotice("status_pay must be 1, 2 or 3", signature=False) from None
    # Even a well-signed notice may carry what no column can store: refuse it as malformed
    # (a 4xx), never let it fail in the database (a 5xx the provider would retry for ever).
    for name in ("trans_id", "order_id", "invoice_id", "site_id"):
        value = _text(fields, name)
        if (value or name in _REQUIRED) and not is_provider_id(value):
            raise InvalidNotice(f"{name} must be {PROVIDER_ID.description}", signature=False)
    amount = _text(fields, "amount")
    if not _AMOUNT.fullmatch(amount):
        raise InvalidNotice("amount must be a whole number of tyiyn", signature=False)
    currency = _text(fields, "currency").upper() or "KGS"
    if not _CURRENCY.fullmatch(currency):
        raise InvalidNotice("currency must be three ASCII letters", signature=False)
    return PaymentNotice(
        trans_id=_text(fields, "trans_id"),
        status=status,
        order_id=_text(fields, "order_id"),
        invoice_id=_text(fields, "invoice_id") or None,
        amount_tyiyn=int(amount),
        currency=currency,
        site_id=_text(fields, "site_id"),
        test=_text(fields, "test") in {"1", "true", "True"},
    )


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
    "signed_notice_fields",
    "untrusted_reason",
    "verify_and_parse",
]
