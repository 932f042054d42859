"""O!Dengi signatures: HMAC-MD5 over the compact request JSON and over the webhook fields."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

# The order the provider concatenates webhook fields in, joined by ":::".
WEBHOOK_HASH_FIELDS = (
    "trans_id",
    "status_pay",
    "site_id",
    "order_id",
    "amount",
    "currency",
    "mktime",
    "test",
)


def compact_json(payload: Mapping[str, Any]) -> str:
    """The exact text O!Dengi hashes: no spaces, keys in the order sent, UTF-8 and "/" as is.

    Python never escapes "/" (PHP's json_encode does unless told not to), and
    `ensure_ascii=False` keeps Cyrillic descriptions as the provider sees them.
    """
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def hmac_md5(message: str, password: str) -> str:
    # surrogatepass: a forged field holding a lone surrogate still hashes (and fails to
    # match) instead of raising; real provider text is valid UTF-8 and encodes the same.
    return hmac.new(
        password.encode(), message.encode("utf-8", "surrogatepass"), hashlib.md5
    ).hexdigest()


def request_hash(payload: Mapping[str, Any], password: str) -> str:
    """Hash of a request: every field except `hash` itself, serialized compactly."""
    unsigned = {key: value for key, value in payload.items() if key != "hash"}
    return hmac_md5(compact_json(unsigned), password)


def signed_request_body(payload: Mapping[str, Any], password: str) -> str:
    """The request text to send: the payload with its `hash` appended as the last key."""
    unsigned = {key: value for key, value in payload.items() if key != "hash"}
    return compact_json({**unsigned, "hash": request_hash(unsigned, password)})


def _field_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def webhook_hash(fields: Mapping[str, object], password: str) -> str:
    """HMAC-MD5 over the WEBHOOK_HASH_FIELDS joined by ":::" (missing ones count as empty)."""
    message = ":::".join(_field_text(fields.get(name)) for name in WEBHOOK_HASH_FIELDS)
    return hmac_md5(message, password)


def hashes_match(expected: str, received: object) -> bool:
    """Constant-time comparison, case-insensitive on the hex digits."""
    if not isinstance(received, str) or not received:
        return False
    return hmac.compare_digest(expected.lower().encode(), received.strip().lower().encode())
