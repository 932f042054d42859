"""The reconnect-storm load client: N keyed chargers connect at once while M connected
chargers measure Heartbeat round trips before, during and after the storm.

Run as `python -m benchmarks.storm_client '<json spec>'` (benchmarks/storm.py does). Each
storm charger behaves like a charger that honours the gateway: on 503/429 it waits the
Retry-After with jitter (simulator/backoff.py's rule), on an upgrade timeout or a dropped
connection it backs off exponentially, and it stays connected once booted.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter
from typing import Any

from benchmarks import frames
from benchmarks.load_client import emit, raise_fd_limit, request, wait_for_go
from benchmarks.wsclient import RawConnection, UpgradeRefused, open_connection
from simulator.backoff import MAX_RETRY_AFTER_S, RETRY_AFTER_JITTER

OPEN_TIMEOUT_S = 10.0  # a typical charger's websocket open timeout
BOOT_TIMEOUT_S = 30.0


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(rtts: list[float]) -> dict[str, Any]:
    return {
        "count": len(rtts),
        "p50_ms": (percentile(rtts, 0.50) or 0) * 1000,
        "p99_ms": (percentile(rtts, 0.99) or 0) * 1000,
        "max_ms": max(rtts, default=0) * 1000,
    }


class Monitors:
    """M booted chargers, each sending a Heartbeat every `period_s` (open loop)."""

    def __init__(self, connections: list[RawConnection], period_s: float) -> None:
        self.connections = connections
        self.period_s = period_s
        self.samples: list[tuple[float, float]] = []  # (sent at, round trip)
        self.unanswered = 0
        self.running = True

    async def _one(self, connection: RawConnection, offset: float) -> None:
        await asyncio.sleep(offset)
        seq = 0
        while self.running:
            seq += 1
            sent = time.perf_counter()
            try:
                await request(connection, frames.heartbeat(seq), timeout_s=10.0)
                self.samples.append((sent, time.perf_counter() - sent))
            except TimeoutError:
                self.unanswered += 1
            await asyncio.sleep(max(0.0, self.period_s - (time.perf_counter() - sent)))

    def start(self) -> list[asyncio.Task[None]]:
        step = self.period_s / max(len(self.connections), 1)
        return [asyncio.create_task(self._one(c, i * step)) for i, c in enumerate(self.connections)]

    def between(self, start: float, end: float) -> list[float]:
        return [rtt for sent, rtt in self.samples if start <= sent < end]


async def boot(connection: RawConnection) -> None:
    await request(connection, frames.BOOT, timeout_s=BOOT_TIMEOUT_S)
    await request(connection, frames.STATUS, timeout_s=BOOT_TIMEOUT_S)


async def connect_monitors(spec: dict[str, Any]) -> list[RawConnection]:
    connections = []
    for index in range(spec["storm"] + 1, spec["storm"] + spec["monitors"] + 1):
        station_id = f"{spec['prefix']}{index:05d}"
        connection = await open_connection(
            "127.0.0.1", spec["port"], f"/ws/{station_id}",
            user=station_id, password=spec["password_format"].format(index),
        )  # fmt: skip
        await boot(connection)
        connections.append(connection)
    return connections


class Storm:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.refused: Counter[int] = Counter()
        self.upgrade_timeouts = 0
        self.boot_timeouts = 0
        self.other_errors: Counter[str] = Counter()
        self.booted_at: list[float] = []
        self.kept: list[RawConnection] = []
        self.rng = random.Random(spec.get("seed", 1))

    async def charger(self, index: int, started: float) -> None:
        station_id = f"{self.spec['prefix']}{index:05d}"
        password = self.spec["password_format"].format(index)
        failures = 0
        while True:
            try:
                connection = await open_connection(
                    "127.0.0.1", self.spec["port"], f"/ws/{station_id}",
                    user=station_id, password=password, timeout_s=OPEN_TIMEOUT_S,
                )  # fmt: skip
            except UpgradeRefused as exc:
                self.refused[exc.status] += 1
                failures += 1
                if exc.status in (429, 503) and exc.retry_after_s is not None:
                    asked = min(exc.retry_after_s, MAX_RETRY_AFTER_S)
                    await asyncio.sleep(asked * (1 + self.rng.uniform(0, RETRY_AFTER_JITTER)))
                else:
                    await asyncio.sleep(min(2.0**failures, 30.0) * self.rng.uniform(0.5, 1.0))
                continue
            except TimeoutError:
                self.upgrade_timeouts += 1
                failures += 1
                await asyncio.sleep(min(2.0**failures, 30.0) * self.rng.uniform(0.5, 1.0))
                continue
            except OSError as exc:
                self.other_errors[type(exc).__name__] += 1
                failures += 1
                await asyncio.sleep(min(2.0**failures, 30.0) * self.rng.uniform(0.5, 1.0))
                continue
            try:
                await boot(connection)
            except TimeoutError:
                self.boot_timeouts += 1
                if connection.transport is not None:
                    connection.transport.close()
                continue
            self.booted_at.append(time.perf_counter() - started)
            self.kept.append(connection)
            return


async def main(spec: dict[str, Any]) -> None:
    raise_fd_limit()
    monitors = Monitors(await connect_monitors(spec), spec["heartbeat_period_s"])
    emit("ready", monitors=len(monitors.connections))
    await wait_for_go()
    tasks = monitors.start()
    baseline_start = time.perf_counter()
    await asyncio.sleep(spec["baseline_s"])
    storm = Storm(spec)
    started = time.perf_counter()
    emit("storm_start")
    chargers = [
        asyncio.create_task(storm.charger(index, started)) for index in range(1, spec["storm"] + 1)
    ]
    done, pending = await asyncio.wait(chargers, timeout=spec["timeout_s"])
    storm_end = time.perf_counter()
    emit("storm_end", booted=len(storm.booted_at))
    for task in pending:
        task.cancel()
    await asyncio.sleep(spec["baseline_s"])
    monitors.running = False
    for task in tasks:
        task.cancel()
    emit(
        "result",
        chargers=spec["storm"],
        booted=len(storm.booted_at),
        all_booted_s=max(storm.booted_at) if len(storm.booted_at) == spec["storm"] else None,
        p50_boot_s=percentile(storm.booted_at, 0.5),
        p99_boot_s=percentile(storm.booted_at, 0.99),
        refused={str(status): count for status, count in sorted(storm.refused.items())},
        upgrade_timeouts=storm.upgrade_timeouts,
        boot_timeouts=storm.boot_timeouts,
        other_errors=dict(storm.other_errors),
        heartbeat_before=summary(monitors.between(baseline_start, started)),
        heartbeat_during=summary(monitors.between(started, storm_end)),
        heartbeat_after=summary(monitors.between(storm_end, time.perf_counter())),
        heartbeat_unanswered=monitors.unanswered,
        storm_s=storm_end - started,
        still_open=sum(1 for c in storm.kept if c.transport and not c.transport.is_closing()),
        pending=len(pending),
        done=len(done),
    )


if __name__ == "__main__":
    # asyncio's own loop, as benchmarks/load_client.py: wsclient's protocol expects
    # connection_made before create_connection returns, which uvloop does not promise.
    asyncio.run(main(json.loads(sys.argv[1])))
