"""The Supabase project's JSON Web Key Set: fetched over HTTP, cached with a TTL, refetched on
an unknown `kid` at most once per cool-down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import structlog

log = structlog.get_logger(__name__)

JWKS_PATH = "/auth/v1/.well-known/jwks.json"


class JwksUnavailable(Exception):
    """The key set could not be fetched and nothing usable is cached."""


@dataclass(frozen=True)
class VerificationKey:
    """A public key and the one algorithm it may verify, decided by the key's own type."""

    kid: str
    algorithm: str
    key: Any


def algorithm_for(jwk: Mapping[str, Any]) -> str | None:
    """RSA → RS256, EC P-256 → ES256; anything else is not a key we verify with."""
    kty = jwk.get("kty")
    if kty == "RSA":
        return "RS256"
    if kty == "EC" and jwk.get("crv") == "P-256":
        return "ES256"
    return None


def parse_jwks(document: Mapping[str, Any]) -> dict[str, VerificationKey]:
    keys: dict[str, VerificationKey] = {}
    for jwk in document.get("keys", []):
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        algorithm = algorithm_for(jwk)
        if algorithm is None:
            continue
        try:
            parsed = jwt.PyJWK(jwk, algorithm=algorithm)
        except jwt.PyJWTError as exc:
            log.warning("jwks key skipped", kid=jwk["kid"], error=str(exc))
            continue
        keys[jwk["kid"]] = VerificationKey(jwk["kid"], algorithm, parsed.key)
    return keys


class JwksCache:
    """Holds the key set of one issuer. Safe to share between requests of one event loop."""

    def __init__(
        self,
        url: str,
        *,
        ttl_s: float = 600.0,
        refetch_cooldown_s: float = 30.0,
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = url
        self._ttl_s = ttl_s
        self._cooldown_s = refetch_cooldown_s
        self._timeout_s = timeout_s
        self._transport = transport
        self._keys: dict[str, VerificationKey] | None = None
        self._fetched_at = 0.0
        # Refetches forced by an unknown kid, at most one per cool-down.
        self._forced_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> VerificationKey | None:
        """The key named `kid`, or None when the issuer does not publish it."""
        keys = await self._current(force=False)
        if kid in keys:
            return keys[kid]
        # A kid we have not seen may be a freshly rotated key: look again, but rarely, so a
        # stream of made-up kids cannot turn us into a load generator against the issuer.
        keys = await self._current(force=True)
        return keys.get(kid)

    async def _current(self, *, force: bool) -> dict[str, VerificationKey]:
        if self._keys is not None and not force and not self._stale():
            return self._keys
        async with self._lock:
            if self._keys is not None and not force and not self._stale():
                return self._keys
            now = time.monotonic()
            if force:
                if now - self._forced_at < self._cooldown_s:
                    return self._keys or {}
                self._forced_at = now
            try:
                self._keys = await self._fetch()
                self._fetched_at = time.monotonic()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("jwks fetch failed", url=self._url, error=str(exc))
                if self._keys is None:
                    raise JwksUnavailable("the issuer's key set is not available") from exc
                # Keep verifying with the keys we have; try again after a cool-down.
                self._fetched_at = now - self._ttl_s + self._cooldown_s
            return self._keys

    def _stale(self) -> bool:
        return time.monotonic() - self._fetched_at >= self._ttl_s

    async def _fetch(self) -> dict[str, VerificationKey]:
        async with httpx.AsyncClient(timeout=self._timeout_s, transport=self._transport) as http:
            response = await http.get(self._url)
            response.raise_for_status()
            document = response.json()
        if not isinstance(document, dict):
            raise ValueError("JWKS document is not an object")
        keys = parse_jwks(document)
        log.info("jwks fetched", url=self._url, kids=sorted(keys))
        return keys
