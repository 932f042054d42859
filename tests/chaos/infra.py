"""Infrastructure faults on the topology's OS processes: kill -9 and restart of roles,
Temporal killed and restarted on its file, PostgreSQL crashed (immediate restart) or
stopped for a while. Every fault heals itself before it returns."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.chaos.params import ChaosParams
from tests.topology.topology import Topology

KINDS = (
    "kill worker",
    "kill gateway",
    "kill api",
    "kill gateway+api+worker",
    "temporal down",
    "postgres immediate restart",
    "postgres down",
)


@dataclass
class FaultEvent:
    at_s: float
    kind: str
    detail: str
    down_s: float


@dataclass
class Infra:
    topology: Topology
    params: ChaosParams
    rng: random.Random
    log: Callable[[str], None]
    started: float = field(default_factory=time.monotonic)
    events: list[FaultEvent] = field(default_factory=list)

    def _roles(self, prefix: str) -> list[str]:
        return sorted(name for name in self.topology.roles if name.startswith(prefix))

    def live_api_urls(self) -> list[str]:
        return [
            self.topology[name].base_url
            for name in self._roles("api")
            if self.topology[name].process.alive
        ]

    async def inject(self, kind: str) -> None:
        at = time.monotonic() - self.started
        low, high = {
            "temporal down": self.params.temporal_down_s,
            "postgres down": self.params.postgres_down_s,
            "postgres immediate restart": (0.0, 0.0),
        }.get(kind, self.params.role_down_s)
        down = round(self.rng.uniform(low, high), 1)
        if kind.startswith("kill "):
            names = [self.rng.choice(self._roles(part)) for part in kind[5:].split("+")]
            detail = ",".join(names)
            self.log(f"[{at:6.1f}s] {kind}: kill -9 {detail}, restart after {down} s")
            await self._kill_roles(names, down)
        elif kind == "temporal down":
            detail = "kill -9, restart on its db file"
            self.log(f"[{at:6.1f}s] {kind}: {detail} after {down} s")
            await asyncio.to_thread(self.topology.temporal.crash)
            await asyncio.sleep(down)
            await asyncio.to_thread(self.topology.temporal.start)
        elif kind == "postgres immediate restart":
            detail = "SIGKILL of the postmaster group, start again (crash recovery)"
            self.log(f"[{at:6.1f}s] {kind}")
            await asyncio.to_thread(self.topology.postgres.crash)
            await asyncio.to_thread(self.topology.postgres.start)
        elif kind == "postgres down":
            detail = "fast shutdown, start again"
            self.log(f"[{at:6.1f}s] {kind}: stopped for {down} s")
            await asyncio.to_thread(self._postgres_fast_stop)
            await asyncio.sleep(down)
            await asyncio.to_thread(self.topology.postgres.start)
        else:
            raise ValueError(kind)
        self.events.append(FaultEvent(at, kind, detail, down))

    async def _kill_roles(self, names: list[str], down: float) -> None:
        for name in names:
            await asyncio.to_thread(self.topology[name].process.kill)
        await asyncio.sleep(down)
        for name in names:
            self.topology[name].start(wait=False)

    def _postgres_fast_stop(self) -> None:
        process = self.topology.postgres.process
        assert process is not None
        process.signal(signal.SIGINT)  # fast: open connections do not hold it up
        process.wait(60)

    async def run(self, until: asyncio.Event) -> None:
        """Every kind once in a seeded order (even when the drivers finish first), then at
        random until `until` is set."""
        order = list(KINDS)
        self.rng.shuffle(order)
        while order or not until.is_set():
            gap = self.rng.uniform(*self.params.fault_gap_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), gap)
            if order:
                if until.is_set():
                    await asyncio.sleep(gap)  # the faults left stay apart
                await self.inject(order.pop(0))
            elif not until.is_set():
                await self.inject(self.rng.choice(KINDS))

    async def heal(self) -> None:
        """Everything running again (a fault interrupted by cancellation leaves a gap)."""
        postgres, temporal = self.topology.postgres, self.topology.temporal
        if postgres.process is None or not postgres.process.alive:
            await asyncio.to_thread(postgres.start)
        if temporal.process is None or not temporal.process.alive:
            await asyncio.to_thread(temporal.start)
        for role in self.topology.roles.values():
            if role.name != "migrate" and not role.process.alive:
                role.start(wait=False)
        for role in self.topology.roles.values():
            if role.name != "migrate":
                await asyncio.to_thread(role.wait_healthy, 180)
