"""Charger keys (OCPP security profile 1 AuthorizationKey): generation, storage, verification.

A key is a random secret EvPower generates, not a human password, so what protects it is
its entropy, not the cost of the hash. Stored form: `hmac-sha256$salt$digest`, the digest
being HMAC-SHA256 under a server-side pepper (a setting, never in the database) of the salt
and the key. One check costs about a microsecond, so a city of chargers reconnecting after
a deploy costs nothing, and a stolen database alone reveals nothing testable offline.

Hashes written before this scheme (`scrypt$n$r$p$salt$hash`) still verify, slowly; the
gateway replaces them with the new form on the charger's first successful login.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from enum import Enum

SCHEME = "hmac-sha256"
LEGACY_SCHEME = "scrypt"
MIN_PEPPER_BYTES = 32
_SALT_BYTES = 16
# 18 random bytes are 24 URL-safe characters: 144 bits, inside the 16-40 characters OCPP
# allows for an AuthorizationKey, and far beyond any online or offline guessing.
GENERATED_KEY_BYTES = 18

# The legacy scrypt parameters; only the tests make new hashes of this kind.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**12, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024


class KeyCheck(Enum):
    MATCH = "match"
    MISMATCH = "mismatch"
    LEGACY = "legacy"  # a scrypt hash: verify with `verify_legacy`, off the event loop


def generate_key() -> str:
    """A new AuthorizationKey for a charger (shown once to the operator)."""
    return secrets.token_urlsafe(GENERATED_KEY_BYTES)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


class ChargerKeys:
    """Hashes and checks keys under one pepper; every gateway and `evpower stations add`
    of one deployment must share it (a changed pepper invalidates every stored key)."""

    def __init__(self, pepper: bytes) -> None:
        if len(pepper) < MIN_PEPPER_BYTES:
            raise ValueError(f"the key pepper must be at least {MIN_PEPPER_BYTES} bytes")
        self._pepper = pepper

    def _digest(self, salt: bytes, key: str) -> bytes:
        return hmac.new(self._pepper, salt + key.encode("utf-8"), hashlib.sha256).digest()

    def hash(self, key: str) -> str:
        """The stored form of `key` for `stations.password_hash`."""
        salt = secrets.token_bytes(_SALT_BYTES)
        return f"{SCHEME}${_b64(salt)}${_b64(self._digest(salt, key))}"

    def check(self, key: str, stored: str) -> KeyCheck:
        """MATCH / MISMATCH in constant time; LEGACY when `stored` is an old scrypt hash.
        A malformed stored value never matches."""
        scheme, _, rest = stored.partition("$")
        if scheme == LEGACY_SCHEME:
            return KeyCheck.LEGACY
        salt_b64, sep, digest_b64 = rest.partition("$")
        if scheme != SCHEME or not sep:
            return KeyCheck.MISMATCH
        try:
            salt = base64.b64decode(salt_b64, validate=True)
            expected = base64.b64decode(digest_b64, validate=True)
        except binascii.Error:
            return KeyCheck.MISMATCH
        try:
            actual = self._digest(salt, key)
        except UnicodeEncodeError:  # a lone surrogate cannot be any stored key
            return KeyCheck.MISMATCH
        return KeyCheck.MATCH if hmac.compare_digest(actual, expected) else KeyCheck.MISMATCH


def verify_legacy(key: str, stored: str) -> bool:
    """True when `key` matches a legacy `scrypt$n$r$p$salt$hash`: deliberately slow
    (milliseconds of CPU, see docs/benchmarks.md), which is why the caller bounds its queue."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != LEGACY_SCHEME:
        return False
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        expected = base64.b64decode(parts[5], validate=True)
        actual = _legacy_digest(key, salt, (n, r, p), len(expected))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        return False
    return hmac.compare_digest(actual, expected)


def _legacy_digest(key: str, salt: bytes, cost: tuple[int, int, int], length: int) -> bytes:
    """The legacy scheme's scrypt digest; `cost` is its (n, r, p), as stored with each hash."""
    n, r, p = cost
    return hashlib.scrypt(
        key.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=length
    )


def legacy_hash(key: str) -> str:
    """A hash in the legacy scrypt form, as deployments before the HMAC scheme stored it."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _legacy_digest(key, salt, (_SCRYPT_N, _SCRYPT_R, _SCRYPT_P), 32)
    return f"{LEGACY_SCHEME}${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"
