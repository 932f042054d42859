"""The load client process: many chargers over raw websockets, driven by the orchestrator.

Run as `python -m benchmarks.load_client '<json spec>'`. It writes one JSON object per
line to stdout (events) and waits for a line on stdin where the orchestrator must act
(measure memory, start a profiler) before it goes on.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from benchmarks import frames
from benchmarks.wsclient import RawConnection, open_connection

CONNECT_CONCURRENCY = 64
DRAIN_TIMEOUT_S = 15.0


def emit(event: str, **data: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **data}) + "\n")
    sys.stdout.flush()


async def wait_for_go() -> str:
    line: str = await asyncio.to_thread(sys.stdin.readline)
    return line.strip()


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Charger:
    index: int
    connection: RawConnection
    transaction_id: int = 0
    seq: int = 0
    energy_wh: int = 0
    sent_at: deque[float] = field(default_factory=deque)


async def request(connection: RawConnection, frame: bytes, timeout_s: float = 60.0) -> bytes:
    """Send one frame and return the next message (setup only: one outstanding request)."""
    reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def answered(payload: bytes, _now: float) -> None:
        if not reply.done():
            reply.set_result(payload)

    connection.on_message = answered
    connection.send(frame)
    try:
        return await asyncio.wait_for(reply, timeout_s)
    finally:
        connection.on_message = None


async def connect_all(spec: dict[str, Any], numbers: range) -> tuple[list[Charger], int]:
    """Connect, boot, report status and (optionally) start a transaction on each charger."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    failures = 0

    async def one(index: int) -> Charger | None:
        nonlocal failures
        station_id = f"{spec['prefix']}{index:05d}"
        async with gate:
            try:
                connection = await open_connection(
                    "127.0.0.1",
                    spec["port"],
                    f"/ws/{station_id}",
                    deflate=spec.get("deflate", False),
                    user=station_id if spec.get("password") else None,
                    password=spec.get("password"),
                )
                await request(connection, frames.BOOT)
                await request(connection, frames.STATUS)
                charger = Charger(index, connection)
                if spec.get("answer_calls"):
                    connection.on_message = _answer_calls(connection)
                if spec.get("start_transactions"):
                    reply = await request(connection, frames.start_transaction(f"bench-{index}"))
                    # An echo server answers with our own frame: any id will do there.
                    charger.transaction_id = frames.transaction_id(reply) or index
                return charger
            except (OSError, TimeoutError, ConnectionError) as exc:
                failures += 1
                if failures <= 5:
                    emit("connect_error", station_id=station_id, error=repr(exc))
                return None

    results = await asyncio.gather(*(one(i) for i in numbers))
    return [c for c in results if c is not None], failures


def _answer_calls(connection: RawConnection) -> Any:
    """An idle charger that answers every command `Accepted` (ClearCache, TriggerMessage,
    Reset...): the two-gateway benchmark sees a command reach the process holding it."""

    def on_message(payload: bytes, _now: float) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            return
        if isinstance(message, list) and len(message) == 4 and message[0] == 2:
            connection.send(frames.call_result(str(message[1]), {"status": "Accepted"}))

    return on_message


class ClosedLoop:
    """Every charger sends its next message as soon as the answer to the last one arrives."""

    def __init__(self, chargers: list[Charger], kind: str) -> None:
        self.chargers = chargers
        self.kind = kind
        self.running = False
        self.measuring = False
        self.replies = 0
        self.rtt_sum = 0.0
        self.in_flight = 0

    def _frame(self, charger: Charger) -> bytes:
        charger.seq += 1
        if self.kind == "heartbeat":
            return frames.heartbeat(charger.seq)
        charger.energy_wh += 7
        return frames.meter_values(charger.seq, charger.transaction_id, charger.energy_wh)

    def _send(self, charger: Charger) -> None:
        charger.sent_at.append(time.perf_counter())
        self.in_flight += 1
        charger.connection.send(self._frame(charger))

    def _callback(self, charger: Charger) -> Any:
        def on_message(_payload: bytes, now: float) -> None:
            if not charger.sent_at:
                return  # not an answer to us (a server-initiated call)
            sent = charger.sent_at.popleft()
            self.in_flight -= 1
            if self.measuring:
                self.replies += 1
                self.rtt_sum += now - sent
            if self.running:
                self._send(charger)

        return on_message

    async def run(self, warmup_s: float, duration_s: float) -> dict[str, Any]:
        for charger in self.chargers:
            charger.connection.on_message = self._callback(charger)
        self.running = True
        for charger in self.chargers:
            self._send(charger)
        await asyncio.sleep(warmup_s)
        cpu_before, started = cpu_s(), time.perf_counter()
        self.replies, self.rtt_sum, self.measuring = 0, 0.0, True
        emit("phase_start", phase=self.kind)
        await asyncio.sleep(duration_s)
        self.measuring = False
        elapsed = time.perf_counter() - started
        replies, rtt_sum, client_cpu = self.replies, self.rtt_sum, cpu_s() - cpu_before
        emit("phase_end", phase=self.kind)
        self.running = False
        await drain(lambda: self.in_flight == 0)
        return {
            "phase": self.kind,
            "replies": replies,
            "per_s": replies / elapsed,
            "mean_rtt_ms": 1000 * rtt_sum / replies if replies else None,
            "client_cpu_share": client_cpu / elapsed,
            "lost": self.in_flight,
        }


async def drain(done: Any) -> None:
    deadline = time.perf_counter() + DRAIN_TIMEOUT_S
    # Polled: an Event set from the per-message callbacks would cost on the hot path.
    while not done() and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


class OpenLoop:
    """Every charger sends MeterValues every `period_s`, at its own random phase."""

    def __init__(self, chargers: list[Charger], period_s: float) -> None:
        self.chargers = chargers
        self.period_s = period_s
        self.measuring = False
        self.stopping = False
        self.rtts: list[float] = []
        self.sent = 0
        self.answered = 0

    def _callback(self, charger: Charger) -> Any:
        def on_message(_payload: bytes, now: float) -> None:
            if not charger.sent_at:
                return
            sent = charger.sent_at.popleft()
            self.answered += 1
            if self.measuring:
                self.rtts.append(now - sent)

        return on_message

    def _tick(self, charger: Charger, due: float) -> None:
        if self.stopping:
            return
        loop = asyncio.get_running_loop()
        charger.seq += 1
        charger.energy_wh += 61
        charger.sent_at.append(time.perf_counter())
        self.sent += 1
        charger.connection.send(
            frames.meter_values(charger.seq, charger.transaction_id, charger.energy_wh)
        )
        # A fixed schedule: a slow answer must not push the next sample back.
        next_due = due + self.period_s
        loop.call_at(next_due, self._tick, charger, next_due)

    async def run(self, duration_s: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for charger in self.chargers:
            charger.connection.on_message = self._callback(charger)
            due = start + random.uniform(0, self.period_s)  # spreads load; not a secret
            loop.call_at(due, self._tick, charger, due)
        await asyncio.sleep(self.period_s)  # one full round as warm-up
        cpu_before = cpu_s()
        self.measuring = True
        emit("phase_start", phase="latency")
        await asyncio.sleep(duration_s)
        self.measuring = False
        emit("phase_end", phase="latency")
        client_cpu = cpu_s() - cpu_before
        self.stopping = True
        await drain(lambda: self.answered == self.sent)
        rtts = sorted(self.rtts)

        def pct(p: float) -> float | None:
            return 1000 * rtts[min(len(rtts) - 1, int(p * len(rtts)))] if rtts else None

        return {
            "phase": "latency",
            "samples": len(rtts),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": 1000 * rtts[-1] if rtts else None,
            "client_cpu_share": client_cpu / duration_s,
            "unanswered": self.sent - self.answered,
        }


async def main(spec: dict[str, Any]) -> None:
    raise_fd_limit()
    # A first batch takes the one-time costs (pools filling, first-use code paths) so
    # that the memory measured between `warm` and `ready` is the cost per charger.
    warm = min(spec.get("warm", 0), spec["chargers"])
    chargers, failures = await connect_all(spec, range(1, warm + 1))
    if warm:
        emit("warm", connected=len(chargers), failed=failures)
        await wait_for_go()
    started = time.perf_counter()
    rest, more_failures = await connect_all(spec, range(warm + 1, spec["chargers"] + 1))
    chargers += rest
    failures += more_failures
    emit(
        "ready",
        connected=len(chargers),
        failed=failures,
        setup_s=time.perf_counter() - started,
        deflate_negotiated=sum(c.connection.deflate_negotiated for c in chargers),
    )
    await wait_for_go()
    mode = spec["mode"]
    if mode == "idle":
        open_now = sum(1 for c in chargers if not c.connection.closed.done())
        emit("result", mode=mode, still_open=open_now)
    elif mode == "throughput":
        results = []
        for kind in spec["phases"]:
            loop = ClosedLoop(chargers, kind)
            results.append(await loop.run(spec["warmup_s"], spec["duration_s"]))
        emit("result", mode=mode, phases=results)
    elif mode == "latency":
        result = await OpenLoop(chargers, spec["period_s"]).run(spec["duration_s"])
        emit("result", mode=mode, **result)
    for charger in chargers:
        if charger.connection.transport is not None:
            charger.connection.transport.close()
    await asyncio.sleep(0.2)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
