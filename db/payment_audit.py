"""The one writer of `payment_audit` rows: it masks card data, tokens and hashes itself.

The API (webhook, host-to-host cards) and the top-up activities both record payment events
here, so no caller can forget to mask: whatever `details` holds, secrets never reach the table
or the log line that mirrors it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import PaymentAudit
from domain.identifiers import has_control_characters

# Audit rows record hostile input too: what is kept of a foreign string is bounded and
# printable, so a forged notice can neither fail the insert (a NUL in text or jsonb) nor
# make the row large.
MAX_AUDIT_TEXT = 200
ID_COLUMN_LENGTH = 64

log = structlog.get_logger(__name__)

MASK = "***"
# Keys whose value is a secret whatever it looks like.
SECRET_KEYS = frozenset(
    {
        "hash",
        "sign",
        "signature",
        "card_number",
        "pan",
        "number",
        "cvc",
        "cvv",
        "cvv2",
        "password",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "secret",
    }
)
# Provider and local ids are long digit strings but no card numbers; they are kept readable.
ID_KEYS = frozenset({"trans_id", "invoice_id", "order_id", "topup_id", "paid_by", "entry_id"})

_CARD_RUN = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
_HEX_DIGEST = re.compile(r"\b[0-9a-fA-F]{32,128}\b")
_BEARER_OR_JWT = re.compile(r"(?i)bearer\s+\S+|\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char) * (2 if position % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    if not _luhn_ok(digits):
        return match.group()
    return f"{digits[:6]}{'*' * (len(digits) - 10)}{digits[-4:]}"


def mask_text(text: str) -> str:
    """Card numbers keep only their first 6 and last 4 digits; digests and tokens go."""
    text = _BEARER_OR_JWT.sub(MASK, text)
    text = _HEX_DIGEST.sub(MASK, text)
    return _CARD_RUN.sub(_mask_card, text)


def masked(value: Any, key: str | None = None) -> Any:
    """`value` with every secret replaced, recursively through dicts and lists."""
    if key is not None and key.lower() in SECRET_KEYS:
        return MASK
    if isinstance(value, dict):
        return {storable_text(str(k), 64): masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(item) for item in value]
    if isinstance(value, str):
        value = storable_text(value)
        if key is None or key.lower() not in ID_KEYS:
            return mask_text(value)
    return value


def storable_text(value: str, limit: int = MAX_AUDIT_TEXT) -> str:
    """`value` cut to `limit` characters with NUL, control characters and lone surrogates
    replaced by U+FFFD: PostgreSQL text and jsonb accept it whatever the sender put in."""
    cut = value[:limit]
    if not has_control_characters(cut):
        return cut
    return "".join("\ufffd" if has_control_characters(ch) else ch for ch in cut)


def _id_column(value: str | None, details: dict[str, Any], key: str) -> str | None:
    """An id that fits its column as is; anything else moves, made storable, into details."""
    if value is None or (len(value) <= ID_COLUMN_LENGTH and not has_control_characters(value)):
        return value
    details[f"{key}_raw"] = storable_text(value)
    return None


def write_payment_audit(
    session: AsyncSession,
    event: str,
    provider: str,
    *,
    topup_id: str | None = None,
    trans_id: str | None = None,
    ok: bool = True,
    details: dict[str, Any] | None = None,
) -> None:
    """Add the event to the caller's transaction (it commits) and log it, both masked."""
    extra: dict[str, Any] = dict(details or {})
    topup_id = _id_column(topup_id, extra, "topup_id")
    trans_id = _id_column(trans_id, extra, "trans_id")
    clean: dict[str, Any] = masked(extra)
    session.add(
        PaymentAudit(
            event=event,
            provider=provider,
            topup_id=topup_id,
            trans_id=trans_id,
            ok=ok,
            details=clean,
            at=datetime.now(UTC),
        )
    )
    log.info(
        "payment event",
        payment_event=event,
        provider=provider,
        topup_id=topup_id,
        trans_id=trans_id,
        ok=ok,
        **{f"detail_{k}": v for k, v in clean.items()},
    )
