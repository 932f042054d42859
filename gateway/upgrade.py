"""The websocket upgrade: station id from the path, subprotocol, HTTP Basic (security profile 1)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from gateway.auth import verify_password
from gateway.store import GatewayStore

SUBPROTOCOL = "ocpp1.6"
PATH_PREFIXES = ("/ws/", "/ocpp/")
MAX_STATION_ID_LENGTH = 64  # stations.id


def station_id_from_path(path: str) -> str | None:
    """`/ws/{id}` or `/ocpp/{id}` -> id; None for anything else (nested paths, odd characters)."""
    for prefix in PATH_PREFIXES:
        if path.startswith(prefix):
            station_id = path[len(prefix) :]
            if (
                0 < len(station_id) <= MAX_STATION_ID_LENGTH
                and station_id.isprintable()
                and "/" not in station_id
                and " " not in station_id
            ):
                return station_id
            return None
    return None


def choose_subprotocol(offered: Iterable[str]) -> tuple[bool, str | None]:
    """(acceptable, subprotocol to answer). No offer at all is taken as 1.6: many chargers
    send none. An offer of other versions only is refused."""
    offers = [item.strip().lower() for item in offered]
    if not offers:
        return True, None
    if SUBPROTOCOL in offers:
        return True, SUBPROTOCOL
    return False, None


def basic_credentials(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic` header, if there is a well-formed one."""
    for name, value in headers:
        if name.lower() != b"authorization":
            continue
        scheme, _, encoded = value.decode("latin-1").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        return (user, password) if sep else None
    return None


@dataclass(frozen=True, slots=True)
class Verdict:
    registration: str | None  # accepted / pending / rejected; None: refuse the upgrade
    reason: str


class Authenticator:
    """Checks a charger's credentials against `stations.password_hash`.

    Hashing is deliberately slow, so it runs on its own small thread pool (hashlib.scrypt
    releases the GIL) and never stalls the chargers already connected. A successful check
    is remembered as a keyed digest, so a reconnecting charger costs microseconds; a
    changed stored hash invalidates it.
    """

    def __init__(self, store: GatewayStore, *, allow_unknown: bool, workers: int) -> None:
        self._store = store
        self._allow_unknown = allow_unknown
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ocpp-auth")
        self._key = secrets.token_bytes(32)
        self._verified: dict[str, tuple[str, bytes]] = {}

    async def check(self, station_id: str, credentials: tuple[str, str] | None) -> Verdict:
        station = await self._store.station_auth(station_id)
        if station is None:
            if self._allow_unknown:
                return Verdict("pending", "unknown station, onboarding allowed")
            return Verdict(None, "unknown station")
        if station.password_hash is None:
            return Verdict(station.registration_status, "station has no password (profile 0)")
        if credentials is None:
            return Verdict(None, "no Basic credentials")
        user, password = credentials
        if not hmac.compare_digest(user.encode(), station_id.encode()):
            return Verdict(None, "Basic user is not the station id")
        if not await self._verify(station_id, password, station.password_hash):
            return Verdict(None, "wrong password")
        return Verdict(station.registration_status, "password verified")

    async def _verify(self, station_id: str, password: str, stored: str) -> bool:
        digest = hmac.new(self._key, password.encode(), hashlib.sha256).digest()
        remembered = self._verified.get(station_id)
        if remembered is not None and remembered[0] == stored:
            return hmac.compare_digest(remembered[1], digest)
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(self._pool, verify_password, password, stored)
        if ok:
            self._verified[station_id] = (stored, digest)
        return ok

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
