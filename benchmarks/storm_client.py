"""The reconnect-storm load client: N keyed chargers connect at once while M connected
chargers measure Heartbeat round trips before, during and after the storm.

Run as `python -m benchmarks.storm_client '<json spec>'` (benchmarks/storm.py does). Each
storm charger behaves like a charger that honours the gateway: on 503/429 it waits the
Retry-After with jitter (simulator/backoff.py's rule), on an upgrade timeout or a dropped
connection it backs off exponentially, and it stays connected once booted. The monitors
run in a process of their own (benchmarks/storm_monitors.py), so their round trips time the
gateway, not this process's loop.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter
from typing import Any

from benchmarks.load_client import emit, raise_fd_limit, wait_for_go
from benchmarks.storm_monitors import MonitorProcess, between, boot
from benchmarks.wsclient import RawConnection, UpgradeRefused, open_connection
from simulator.backoff import MAX_RETRY_AFTER_S, RETRY_AFTER_JITTER

OPEN_TIMEOUT_S = 10.0  # a typical charger's websocket open timeout


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
            self.booted_at.append(time.monotonic() - started)
            self.kept.append(connection)
            return


async def main(spec: dict[str, Any]) -> None:
    raise_fd_limit()
    monitors = MonitorProcess(spec)
    emit("ready", monitors=await monitors.ready())
    await wait_for_go()
    monitors.begin()
    baseline_start = time.monotonic()
    await asyncio.sleep(spec["baseline_s"])
    storm = Storm(spec)
    started = time.monotonic()
    emit("storm_start")
    chargers = [
        asyncio.create_task(storm.charger(index, started)) for index in range(1, spec["storm"] + 1)
    ]
    done, pending = await asyncio.wait(chargers, timeout=spec["timeout_s"])
    storm_end = time.monotonic()
    emit("storm_end", booted=len(storm.booted_at))
    for task in pending:
        task.cancel()
    await asyncio.sleep(spec["baseline_s"])
    after_end = time.monotonic()
    samples, unanswered = await monitors.finish()
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
        heartbeat_before=summary(between(samples, baseline_start, started)),
        heartbeat_during=summary(between(samples, started, storm_end)),
        heartbeat_after=summary(between(samples, storm_end, after_end)),
        heartbeat_unanswered=unanswered,
        storm_s=storm_end - started,
        still_open=sum(1 for c in storm.kept if c.transport and not c.transport.is_closing()),
        pending=len(pending),
        done=len(done),
    )


if __name__ == "__main__":
    # asyncio's own loop, as benchmarks/load_client.py: wsclient's protocol expects
    # connection_made before create_connection returns, which uvloop does not promise.
    asyncio.run(main(json.loads(sys.argv[1])))
