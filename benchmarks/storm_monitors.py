"""The storm's monitors in a process of their own: M booted chargers, each sending a
Heartbeat every period, whose round trips are the figure a connected charger sees during a
reconnect storm. In the storm client's own process they would also time that process's
event loop, which is busy with thousands of connecting chargers (benchmarks/storm_client.py).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any

from benchmarks import frames
from benchmarks.load_client import raise_fd_limit, request
from benchmarks.wsclient import RawConnection, open_connection

BOOT_TIMEOUT_S = 30.0


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
            sent = time.monotonic()
            try:
                await request(connection, frames.heartbeat(seq), timeout_s=10.0)
                self.samples.append((sent, time.monotonic() - sent))
            except TimeoutError:
                self.unanswered += 1
            await asyncio.sleep(max(0.0, self.period_s - (time.monotonic() - sent)))

    def start(self) -> list[asyncio.Task[None]]:
        step = self.period_s / max(len(self.connections), 1)
        return [asyncio.create_task(self._one(c, i * step)) for i, c in enumerate(self.connections)]


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


async def _serve(spec: dict[str, Any], pipe: Connection) -> None:
    raise_fd_limit()
    monitors = Monitors(await connect_monitors(spec), spec["heartbeat_period_s"])
    loop = asyncio.get_running_loop()
    pipe.send(len(monitors.connections))
    await loop.run_in_executor(None, pipe.recv)  # start
    tasks = monitors.start()
    await loop.run_in_executor(None, pipe.recv)  # stop
    monitors.running = False
    for task in tasks:
        task.cancel()
    pipe.send((monitors.samples, monitors.unanswered))


def _run(spec: dict[str, Any], pipe: Connection) -> None:
    asyncio.run(_serve(spec, pipe))


class MonitorProcess:
    """Start: connects and boots the monitors; `begin()` starts the Heartbeats; `finish()`
    stops them and returns (sent at, round trip) samples on the time.monotonic() clock, which
    the storm client's process shares, and the count of unanswered Heartbeats."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self._pipe, child = multiprocessing.get_context("spawn").Pipe()
        self._process = multiprocessing.get_context("spawn").Process(
            target=_run, args=(spec, child), daemon=True
        )
        self._process.start()

    async def ready(self) -> int:
        return int(await asyncio.get_running_loop().run_in_executor(None, self._pipe.recv))

    def begin(self) -> None:
        self._pipe.send("start")

    async def finish(self) -> tuple[list[tuple[float, float]], int]:
        self._pipe.send("stop")
        samples, unanswered = await asyncio.get_running_loop().run_in_executor(
            None, self._pipe.recv
        )
        self._process.join(10)
        return samples, unanswered


def between(samples: list[tuple[float, float]], start: float, end: float) -> list[float]:
    return [rtt for sent, rtt in samples if start <= sent < end]
