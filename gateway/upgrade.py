"""The websocket upgrade: station id from the path, subprotocol, HTTP Basic (security profile 1)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import random
import secrets
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from gateway.auth import verify_password
from gateway.store import GatewayStore
from gateway.throttle import FailureThrottle

SUBPROTOCOL = "ocpp1.6"
# The websocket paths chargers connect to; runtime/asgi.py routes these to the gateway.
OCPP_PATH_PREFIXES = ("/ws/", "/ocpp/")
MAX_STATION_ID_LENGTH = 64  # stations.id


def station_id_from_path(path: str) -> str | None:
    """`/ws/{id}` or `/ocpp/{id}` -> id; None for anything else (nested paths, odd characters)."""
    for prefix in OCPP_PATH_PREFIXES:
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
    status: int = 401  # the HTTP answer when refused
    retry_after_s: int | None = None  # sent as Retry-After with 429 / 503


@dataclass(frozen=True, slots=True)
class AuthLimits:
    """How much password hashing the upgrade may queue, and how failures are throttled."""

    workers: int = 1  # hashing threads (hashlib.scrypt releases the GIL)
    backlog: int = 64  # hash jobs queued or running; past it the upgrade gets 503
    # A queued job older than this is skipped: its charger has most likely given up already
    # (typical open timeouts are 10-30 s) and will come back anyway.
    stale_after_s: float = 10.0
    failures_per_station: int = 5  # wrong passwords per window before the station is throttled
    # Higher than per station: many chargers may share one carrier-grade NAT address.
    failures_per_address: int = 50
    failure_window_s: float = 60.0


def _busy_retry_after() -> int:
    # Spread the retries of a crowd that was turned away together.
    return random.randint(2, 10)  # noqa: S311 - jitter, not a secret


class Authenticator:
    """Checks a charger's credentials against `stations.password_hash`.

    Hashing is deliberately slow, so it runs on its own small thread pool and never stalls
    the chargers already connected. Three things keep a reconnect storm or a password flood
    from starving everyone: a successful check is remembered as a keyed digest (a
    reconnecting charger costs microseconds, a changed stored hash invalidates it); the
    hashing backlog is bounded (503 + Retry-After past it, and jobs whose charger has
    likely given up are skipped); failed attempts are throttled per station id and per
    remote address (429 + Retry-After) before any hashing is spent on them.
    """

    def __init__(
        self,
        store: GatewayStore,
        *,
        allow_unknown: bool,
        allow_passwordless: bool,
        limits: AuthLimits,
        verify: Callable[[str, str], bool] = verify_password,
    ) -> None:
        self._store = store
        self._allow_unknown = allow_unknown
        self._allow_passwordless = allow_passwordless
        self._limits = limits
        self._verify_hash = verify
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, limits.workers), thread_name_prefix="ocpp-auth"
        )
        self._in_flight = 0
        self._by_station = FailureThrottle(
            limit=limits.failures_per_station, window_s=limits.failure_window_s
        )
        self._by_address = FailureThrottle(
            limit=limits.failures_per_address, window_s=limits.failure_window_s
        )
        self._key = secrets.token_bytes(32)
        self._verified: dict[str, tuple[str, bytes]] = {}

    async def check(
        self, station_id: str, credentials: tuple[str, str] | None, remote_ip: str | None = None
    ) -> Verdict:
        station = await self._store.station_auth(station_id)
        if station is None:
            if self._allow_unknown:
                return Verdict("pending", "unknown station, onboarding allowed")
            return Verdict(None, "unknown station")
        if station.password_hash is None:
            if self._allow_passwordless:
                return Verdict(station.registration_status, "station has no password (profile 0)")
            return Verdict(None, "station has no password and passwordless stations are off")
        if credentials is None:
            return Verdict(None, "no Basic credentials")
        user, password = credentials
        if not hmac.compare_digest(user.encode(), station_id.encode()):
            return Verdict(None, "Basic user is not the station id")
        digest = hmac.new(self._key, password.encode(), hashlib.sha256).digest()
        remembered = self._verified.get(station_id)
        known_hash = remembered is not None and remembered[0] == station.password_hash
        if known_hash and remembered is not None and hmac.compare_digest(remembered[1], digest):
            # The charger that was verified before gets in even while its id is throttled.
            return Verdict(station.registration_status, "password verified")
        now = time.monotonic()
        throttled = [
            self._by_station.retry_after(station_id, now),
            self._by_address.retry_after(remote_ip, now) if remote_ip else None,
        ]
        wait = max((item for item in throttled if item is not None), default=None)
        if wait is not None:
            return Verdict(None, "too many failed attempts", 429, wait)
        if known_hash:
            return self._failed(station_id, remote_ip)  # not the remembered password: no hash
        if self._in_flight >= self._limits.backlog:
            return Verdict(None, "too many chargers authenticating", 503, _busy_retry_after())
        ok = await self._hash(password, station.password_hash)
        if ok is None:
            return Verdict(None, "authentication queue too slow", 503, _busy_retry_after())
        if not ok:
            return self._failed(station_id, remote_ip)
        self._verified[station_id] = (station.password_hash, digest)
        return Verdict(station.registration_status, "password verified")

    def _failed(self, station_id: str, remote_ip: str | None) -> Verdict:
        now = time.monotonic()
        self._by_station.record(station_id, now)
        if remote_ip:
            self._by_address.record(remote_ip, now)
        return Verdict(None, "wrong password")

    async def _hash(self, password: str, stored: str) -> bool | None:
        """The verification on the pool; None when the job waited too long to be worth it."""
        deadline = time.monotonic() + self._limits.stale_after_s
        self._in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._pool, self._verify_by, password, stored, deadline
            )
        finally:
            self._in_flight -= 1

    def _verify_by(self, password: str, stored: str, deadline: float) -> bool | None:
        if time.monotonic() > deadline:
            return None
        return self._verify_hash(password, stored)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
