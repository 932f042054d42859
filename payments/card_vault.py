"""Card data on its way from the API to the worker's charge activity, readable exactly once.

The API must not call the provider, so the card has to reach the TopUp workflow's charge
activity. It must not sit in Temporal's history in the clear (histories are kept and shown).
The API seals the card with a fresh AES-GCM key: the sealed card goes to a database row
(`card_charges`), the key travels in the workflow update. The charge activity deletes the row
as it reads it (that delete is also what makes the charge happen at most once), so afterwards
the key in the history opens nothing.
"""

from __future__ import annotations

import base64
import json
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payments.cards import CardDetails

_NONCE_BYTES = 12


class SealBroken(Exception):
    """The sealed card and the key do not belong together (or the row was tampered with)."""


def seal(card: CardDetails, context: str) -> tuple[str, str]:
    """(sealed card, key), both URL-safe text; `context` (the top-up id) is bound to it."""
    key = AESGCM.generate_key(bit_length=256)
    nonce = secrets.token_bytes(_NONCE_BYTES)
    plain = json.dumps(
        {
            "number": card.number,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "cvc": card.cvc,
            "holder": card.holder,
        }
    ).encode()
    sealed = nonce + AESGCM(key).encrypt(nonce, plain, context.encode())
    return _text(sealed), _text(key)


def unseal(sealed: str, key: str, context: str) -> CardDetails:
    raw = base64.urlsafe_b64decode(sealed)
    try:
        plain = AESGCM(base64.urlsafe_b64decode(key)).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode()
        )
    except (InvalidTag, ValueError) as exc:
        raise SealBroken("the card cannot be opened with this key") from exc
    fields = json.loads(plain)
    return CardDetails(
        number=fields["number"],
        exp_month=int(fields["exp_month"]),
        exp_year=int(fields["exp_year"]),
        cvc=fields["cvc"],
        holder=fields["holder"],
    )


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()
