"""Charger passwords (OCPP security profile 1 AuthorizationKey): salted scrypt hashes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

# Format: scrypt$n$r$p$salt_b64$hash_b64 — parameters travel with the hash so they can be
# changed later without invalidating stored passwords.
# n=2^12 (~8 ms, 4 MiB) rather than the 2^14 usual for human passwords: AuthorizationKeys are
# 16-40 characters and generated at random by `evpower stations add`, and a restarted gateway
# must re-check a whole fleet at once (10,000 chargers: ~80 s of hashing, not ~6 minutes).
_SCHEME = "scrypt"
_N = 2**12
_R = 8
_P = 1
_SALT_BYTES = 16
_HASH_BYTES = 32
# 128 * n * r bytes is what scrypt needs; allow some headroom over the 16 MiB it uses.
_MAXMEM = 64 * 1024 * 1024


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _derive(password: str, salt: bytes, *, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=length
    )


def hash_password(password: str) -> str:
    """A new salted hash of `password`, safe to store in `stations.password_hash`."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _derive(password, salt, n=_N, r=_R, p=_P, length=_HASH_BYTES)
    return f"{_SCHEME}${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """True when `password` matches `stored`; a malformed stored value never matches."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != _SCHEME:
        return False
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        expected = base64.b64decode(parts[5], validate=True)
        actual = _derive(password, salt, n=n, r=r, p=p, length=len(expected))
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(actual, expected)
