"""Who may open a charger websocket: the station's registration and its AuthorizationKey.

The rule this module keeps: a charger with the right key is always let in. Wrong attempts
are counted per station id and per remote address; past a limit they are refused faster
(429, no database read, no log line each), but every attempt is still checked, so the real
charger gets in on its first try however many wrong ones came before it, from anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import structlog

from gateway import wake
from gateway.auth import ChargerKeys, KeyCheck, verify_legacy
from gateway.backlog import once_more_if_stale
from gateway.station_store import StationAuth, StationStore
from gateway.throttle import FailureThrottle

log = structlog.get_logger("gateway")


@dataclass(frozen=True, slots=True)
class Verdict:
    registration: str | None  # accepted / pending / rejected; None: refuse the upgrade
    reason: str  # for the log only: the charger is told no more than the status says
    status: int = 401  # the HTTP answer when refused
    retry_after_s: int | None = None  # sent as Retry-After with 429 / 503
    # False for refusals while throttled: the failure that started throttling was logged.
    logged: bool = True


@dataclass(frozen=True, slots=True)
class AuthLimits:
    """How failures are throttled, and how much legacy (scrypt) hashing may queue."""

    workers: int = 1  # threads for legacy scrypt hashes (hashlib.scrypt releases the GIL)
    backlog: int = 64  # legacy hash jobs queued or running; past it the upgrade gets 503
    # A queued legacy job older than this is skipped: its charger has most likely given up
    # already (typical open timeouts are 10-30 s) and will come back anyway.
    stale_after_s: float = 10.0
    failures_per_station: int = 5  # wrong keys per window before the station id is throttled
    # Higher than per station: many chargers may share one carrier-grade NAT address.
    failures_per_address: int = 50
    failure_window_s: float = 60.0
    # While an id or address is throttled, its station row is re-read at most this often:
    # a flood of wrong keys costs one query a second, not one per attempt.
    throttled_refresh_s: float = 1.0
    max_cached_stations: int = 100_000


def busy_retry_after() -> int:
    # Spread the retries of a crowd that was turned away together.
    return random.randint(2, 10)  # noqa: S311 - jitter, not a secret


class _BatchedReads:
    """Station rows asked for in the same moment are read with one query: a fleet
    reconnecting after a deploy costs a few queries, not one pooled connection each.

    A read asked for while a query runs waits for the next one, so no answer is older
    than the attempt that asked for it; one charger alone waits for nothing but a task hop.
    """

    def __init__(self, store: StationStore, max_batch: int = 500) -> None:
        self._store = store
        self._max_batch = max_batch
        self._waiting: dict[str, list[asyncio.Future[StationAuth | None]]] = {}
        self._draining: asyncio.Task[None] | None = None

    async def read(self, station_id: str) -> StationAuth | None:
        answer: asyncio.Future[StationAuth | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(station_id, []).append(answer)
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain(), name="ocpp-auth-reads")
        return await answer

    async def _drain(self) -> None:
        while self._waiting:
            batch = {
                station_id: self._waiting.pop(station_id)
                for station_id in list(itertools.islice(self._waiting, self._max_batch))
            }
            try:
                # Admission's pool has no pre-ping: a connection that died with a
                # restarted database costs this batch one retry, not a charger's attempt.
                rows = await once_more_if_stale(partial(self._store.stations_auth, list(batch)))
            except Exception as exc:  # each waiting upgrade answers 503 for it
                await wake.fail((a for answers in batch.values() for a in answers), exc)
                continue
            await wake.answer(
                (a, rows.get(station_id)) for station_id, answers in batch.items() for a in answers
            )


class _StationCache:
    """Station rows as last read, for attempts from throttled ids and addresses only."""

    def __init__(self, store: StationStore, max_entries: int) -> None:
        self._reads = _BatchedReads(store)
        self._max_entries = max_entries
        self._rows: dict[str, tuple[StationAuth | None, float]] = {}

    async def get(self, station_id: str, *, max_age_s: float) -> StationAuth | None:
        """The row, read now (max_age_s 0) or remembered if younger than max_age_s."""
        if max_age_s > 0:
            cached = self._rows.get(station_id)
            if cached is not None and time.monotonic() - cached[1] <= max_age_s:
                return cached[0]
        row = await self._reads.read(station_id)
        self._remember(station_id, row)
        return row

    def _remember(self, station_id: str, row: StationAuth | None) -> None:
        self._rows.pop(station_id, None)
        if len(self._rows) >= self._max_entries:
            del self._rows[next(iter(self._rows))]  # insertion order: the oldest read
        self._rows[station_id] = (row, time.monotonic())

    def forget(self, station_id: str) -> None:
        self._rows.pop(station_id, None)


class Authenticator:
    """Checks a charger's HTTP Basic credentials against `stations.password_hash`.

    A key check is one HMAC (domain/charger_keys.py): cheap enough to run on the event loop for
    every attempt, so nothing is ever skipped because others failed. Only hashes from
    before that scheme (scrypt) need a thread pool, and only until their charger's first
    successful login, when the hash is replaced.
    """

    def __init__(
        self,
        store: StationStore,
        keys: ChargerKeys,
        *,
        allow_unknown: bool,
        allow_passwordless: bool,
        limits: AuthLimits,
        legacy_verify: Callable[[str, str], bool] = verify_legacy,
    ) -> None:
        self._store = store
        self._legacy_verify = legacy_verify
        self._keys = keys
        self._allow_unknown = allow_unknown
        self._allow_passwordless = allow_passwordless
        self._limits = limits
        self._stations = _StationCache(store, limits.max_cached_stations)
        self._by_station = FailureThrottle(
            limit=limits.failures_per_station, window_s=limits.failure_window_s
        )
        self._by_address = FailureThrottle(
            limit=limits.failures_per_address, window_s=limits.failure_window_s
        )
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, limits.workers), thread_name_prefix="ocpp-auth"
        )
        self._in_flight = 0
        self._legacy_lines: dict[str, tuple[asyncio.Lock, int]] = {}

    async def check(
        self, station_id: str, credentials: tuple[str, str] | None, remote_ip: str | None = None
    ) -> Verdict:
        throttled = self._throttled_for(station_id, remote_ip)
        station = await self._stations.get(
            station_id, max_age_s=self._limits.throttled_refresh_s if throttled is not None else 0.0
        )
        if station is None:
            if self._allow_unknown:
                return Verdict("pending", "unknown station, onboarding allowed")
            return self._failed(station_id, remote_ip, "unknown station", throttled)
        if station.password_hash is None:
            if self._allow_passwordless:
                return Verdict(station.registration_status, "station has no key (profile 0)")
            return Verdict(None, "station has no key and passwordless stations are off")
        if credentials is None:
            return self._failed(station_id, remote_ip, "no Basic credentials", throttled)
        user, key = credentials
        if user != station_id:
            reason = "Basic user is not the station id"
            return self._failed(station_id, remote_ip, reason, throttled)
        verdict = self._keys.check(key, station.password_hash)
        if verdict is KeyCheck.MATCH:
            return Verdict(station.registration_status, "key verified")
        if verdict is KeyCheck.MISMATCH:
            if self._previous_key_matches(key, station):
                return Verdict(station.registration_status, "previous key verified (rotation)")
            return self._failed(station_id, remote_ip, "wrong key", throttled)
        return await self._check_legacy(station_id, key, station, remote_ip, throttled)

    def _previous_key_matches(self, key: str, station: StationAuth) -> bool:
        """The key before a rotation logs in until its grace ends, so the charger can be
        reconfigured with ChangeConfiguration AuthorizationKey over that very connection."""
        if station.previous_hash is None or station.previous_until is None:
            return False
        if station.previous_until <= datetime.now(UTC):
            return False
        return self._keys.check(key, station.previous_hash) is KeyCheck.MATCH

    def _throttled_for(self, station_id: str, remote_ip: str | None) -> int | None:
        """Seconds until neither the id nor the address is throttled; None if neither is."""
        now = time.monotonic()
        waits = [
            self._by_station.retry_after(station_id, now),
            self._by_address.retry_after(remote_ip, now) if remote_ip else None,
        ]
        return max((wait for wait in waits if wait is not None), default=None)

    def _failed(
        self, station_id: str, remote_ip: str | None, reason: str, throttled: int | None
    ) -> Verdict:
        if throttled is not None:
            return Verdict(None, reason, 429, throttled, logged=False)
        now = time.monotonic()
        notes = []
        if self._by_station.record(station_id, now):
            notes.append("station id throttled")
        if remote_ip and self._by_address.record(remote_ip, now):
            notes.append("address throttled")
        if notes:
            reason = f"{reason}; {', '.join(notes)} for {self._limits.failure_window_s:g} s"
        return Verdict(None, reason)

    async def _check_legacy(
        self,
        station_id: str,
        key: str,
        station: StationAuth,
        remote_ip: str | None,
        throttled: int | None,
    ) -> Verdict:
        stored = station.password_hash
        assert stored is not None
        deadline = time.monotonic() + self._limits.stale_after_s
        # One scrypt at a time per station: a flood of guesses for one id waits in that
        # station's own line instead of filling the shared backlog for everyone else.
        async with self._legacy_turn(station_id):
            if self._in_flight >= self._limits.backlog:
                return Verdict(None, "too many legacy key checks", 503, busy_retry_after())
            ok = await self._hash(key, stored, deadline)
        if ok is None:
            return Verdict(None, "legacy key check queue too slow", 503, busy_retry_after())
        if not ok:
            return self._failed(station_id, remote_ip, "wrong key", throttled)
        await self._upgrade(station_id, stored, key)
        return Verdict(station.registration_status, "key verified (legacy hash)")

    async def _upgrade(self, station_id: str, stored: str, key: str) -> None:
        """Replace a verified legacy hash, so this charger never costs scrypt again."""
        try:
            replace = partial(
                self._store.replace_password_hash, station_id, stored, self._keys.hash(key)
            )
            replaced = await once_more_if_stale(replace)
        except Exception as exc:  # the login stands; the next one tries again
            log.warning("could not upgrade the key hash", station_id=station_id, error=repr(exc))
            return
        self._stations.forget(station_id)
        if replaced:
            log.info("key hash upgraded from scrypt", station_id=station_id)

    @contextlib.asynccontextmanager
    async def _legacy_turn(self, station_id: str) -> AsyncIterator[None]:
        lock, users = self._legacy_lines.get(station_id, (asyncio.Lock(), 0))
        self._legacy_lines[station_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._legacy_lines[station_id]
            if users == 1:
                del self._legacy_lines[station_id]
            else:
                self._legacy_lines[station_id] = (lock, users - 1)

    async def _hash(self, key: str, stored: str, deadline: float) -> bool | None:
        """The legacy verification on the pool; None when the job waited past `deadline`."""
        if time.monotonic() > deadline:
            return None
        self._in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, self._verify_by, key, stored, deadline)
        finally:
            self._in_flight -= 1

    def _verify_by(self, key: str, stored: str, deadline: float) -> bool | None:
        if time.monotonic() > deadline:
            return None
        return self._legacy_verify(key, stored)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
