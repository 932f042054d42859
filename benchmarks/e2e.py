"""Sessions end to end: settled sessions/s against a bare skeleton on the same Temporal server,
start p99 at a fixed start rate with many sessions held, and what a session costs Temporal.

    .venv/bin/python -m benchmarks.e2e                    # a few minutes (see --help)
    .venv/bin/python -m benchmarks.e2e --in-flight 100 --duration 120 --open-held 1000
    .venv/bin/python -m benchmarks.e2e --phases open --open-held 1000 --open-duration 260

One run, one machine, one Temporal server: the production topology of tests/topology
(external PostgreSQL and Temporal dev server, `evpower migrate`, `evpower serve --role all`
for API + gateway as `evpower dev` runs them, one `evpower worker`, production settings; only
the REST rate limits are lifted, since one load client plays every driver) plus the skeleton's
worker (benchmarks/e2e_skeleton.py) on its own task queue. Phases, in order:

1. closed loop of real sessions, `--in-flight` at once: REST start → StartTransaction →
   `--samples` MeterValues → REST stop → StopTransaction → settled (the workflow's result);
2. the skeletons (benchmarks/e2e_skeleton.py), same in-flight count and same hold, straight on
   Temporal: `skeleton` has the commands of a session at 6ce8ff6, `bare` only the conversation
   and the two gateway commands; the ratios of 1 to each;
3. open loop (`open`): `--open-rate` REST starts/s, each session held `--open-held /
   --open-rate` s (so about `--open-held` are held at once), start latency = REST start → 201,
   the slowest and median starts split by their histories (benchmarks/start_breakdown.py);
   `open-bare`: the same open loop on the bare skeleton, what the Temporal server alone does;
4. real histories of phase 1's sessions and the skeleton's through benchmarks/history_costs.

`--long-session S` runs nothing of the above: one real session held S seconds (3600: the
one-hour session of issue 14's action target) at the product's default meter-signal interval,
its charger sending MeterValues every `--long-meter-interval` s as a real charger does, then
its history read from the server and costed (events, billable actions, steps).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
from temporalio.client import Client

from benchmarks import history_costs, start_breakdown
from benchmarks.e2e_load import (
    Driver,
    SkeletonDriver,
    Tally,
    TimedStart,
    closed_loop,
    latency_summary,
    open_loop,
)
from benchmarks.e2e_skeleton import BARE_WORKFLOW_NAME, WORKFLOW_NAME
from benchmarks.processes import ServerProcess
from domain.contracts.charging import charging_workflow_id
from runtime.embedded import free_port
from runtime.logging import configure_logging
from runtime.settings import LogFormat
from simulator import SimulatedStation
from tests.topology import world
from tests.topology.servers import ExternalPostgres, ExternalTemporal
from tests.topology.topology import JWT_SECRET, NAMESPACE, Role, Topology

SKELETON_QUEUE = "e2e-skeleton"
CLIENT_FUNDS_TYIYN = 100_000_000
LIFTED_RATE_LIMIT = "1000000/minute"
LONG_AMOUNT_TYIYN = 50_000
HISTORIES = 5  # real sessions whose histories are read
BREAKDOWN_STARTS = 25  # open-loop starts whose time is split by their histories
PHASES = ("sessions", "skeleton", "bare", "open", "open-bare")
# Closed loops straight on Temporal, by phase: the commands of 6ce8ff6, and the bare shape.
SKELETONS = {"skeleton": WORKFLOW_NAME, "bare": BARE_WORKFLOW_NAME}


class E2ETopology(Topology):
    """The topology's settings with the product's defaults (the topology tests shorten the
    meter-signal interval) and rate limits lifted for one client playing every driver."""

    def env(self, port: int) -> dict[str, str]:
        env = super().env(port)
        del env["METER_SIGNAL_INTERVAL_S"]
        env["RATE_LIMIT_MONEY"] = LIFTED_RATE_LIMIT
        env["RATE_LIMIT_DEFAULT"] = LIFTED_RATE_LIMIT
        return env


def checkpoint(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """What was measured so far, in --json: a later phase that fails loses only itself."""
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2, default=str))


def progress(text: str) -> None:
    """A line on stderr now and then: a long phase prints nothing else until the report."""
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def cpu_s(pid: int, *, children: bool = True) -> float:
    """CPU seconds of a process and its children (a role may run under a wrapper)."""
    try:
        process = psutil.Process(pid)
        total = 0.0
        for each in [process, *(process.children(recursive=True) if children else [])]:
            times = each.cpu_times()
            total += times.user + times.system
        return total
    except psutil.NoSuchProcess:
        return 0.0


@dataclass
class Stack:
    topology: E2ETopology
    skeleton: ServerProcess
    gateway: Role  # api + gateway, one process

    def pids(self) -> dict[str, int]:
        temporal, postgres = self.topology.temporal.process, self.topology.postgres.process
        assert temporal is not None and postgres is not None
        return {
            "temporal": temporal.pid,
            "postgres": postgres.pid,  # the postmaster: its backends are its children
            "api+gateway": self.gateway.process.pid,
            "worker": self.topology["worker"].process.pid,
            "skeleton worker": self.skeleton.pid,
            "load client": os.getpid(),
        }

    def rss_mb(self) -> dict[str, float]:
        """Resident memory of the EvPower processes, MB."""
        pids, out = self.pids(), {}
        for name in ("api+gateway", "worker"):
            with contextlib.suppress(psutil.NoSuchProcess):
                out[name] = psutil.Process(pids[name]).memory_info().rss / 2**20
        return out

    def cpu(self) -> dict[str, float]:
        # The load client started every server: its children are counted under their names.
        return {
            name: cpu_s(pid, children=name != "load client") for name, pid in self.pids().items()
        }


def start_stack(root: Path) -> Stack:
    logs = root / "logs"
    topology = E2ETopology(root, ExternalPostgres(logs), ExternalTemporal(logs))
    topology.postgres.start()
    topology.temporal.start()
    topology.migrate()
    gateway = topology.command("all", "serve", "--role", "all").start(wait=False)
    topology.command("worker", "worker").start(wait=False)
    gateway.wait_healthy()
    topology["worker"].wait_healthy()
    skeleton = ServerProcess(
        "skeleton worker",
        ["benchmarks.e2e_skeleton", "--address", topology.temporal.address,
         "--namespace", NAMESPACE, "--task-queue", SKELETON_QUEUE],
        logs / "skeleton.log",
        port=free_port(),
    )  # fmt: skip
    skeleton.wait_ready()
    return Stack(topology, skeleton, gateway)


async def fleet(stack: Stack, prefix: str, count: int, meter_s: float) -> list[SimulatedStation]:
    ids = [f"{prefix}{number:05d}" for number in range(1, count + 1)]
    engine = world.engine_for(stack.topology.postgres.url)
    try:
        await world.add_stations(engine, ids)
    finally:
        await engine.dispose()
    stations = [
        # Real power (22 kW), not the topology tests' fast-forward: 500 Wh a second is a
        # meter the session's check sends to review, and it reaches the energy limit.
        world.charger(
            i,
            stack.gateway.ws_url,
            meter_interval_s=meter_s,
            reconnect_delay_s=1.0,
            energy_per_sample_wh=None,
        )
        for i in ids
    ]
    for station in stations:
        station.launch()
        await asyncio.sleep(0.002)
    await world.eventually(
        lambda: _all_booted(stations), f"{count} chargers booted", attempts=count * 20 + 600
    )
    return stations


async def _all_booted(stations: list[SimulatedStation]) -> bool:
    return all(station.booted for station in stations)


async def clients(stack: Stack, count: int) -> list[str]:
    engine = world.engine_for(stack.topology.postgres.url)
    try:
        return [await world.fund_client(engine, CLIENT_FUNDS_TYIYN) for _ in range(count)]
    finally:
        await engine.dispose()


async def measured(stack: Stack, run: Any) -> tuple[Any, dict[str, float], float]:
    """Run a phase; returns its result, CPU seconds per process over it, and its wall time."""
    cpu0, began = stack.cpu(), time.monotonic()
    result = await run
    cpu1, wall = stack.cpu(), time.monotonic() - began
    return result, {name: cpu1[name] - cpu0[name] for name in cpu0}, wall


async def run(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    temporal = await Client.connect(stack.topology.temporal.address, namespace=NAMESPACE)
    limits = httpx.Limits(max_connections=4 * max(args.in_flight, 50))
    out: dict[str, Any] = {"args": vars(args), "load_average_start": os.getloadavg()[0]}
    phases = set(args.phases)
    tallies: dict[str, Tally] = {}
    async with httpx.AsyncClient(timeout=60.0, limits=limits) as http:
        driver = Driver(stack.gateway.base_url, JWT_SECRET, http, temporal, args.samples)
        if "sessions" in phases:
            tallies["sessions"] = await sessions_phase(args, stack, driver, out)
        hold_s = args.samples * args.meter_interval
        for phase, name in SKELETONS.items():
            if phase in phases:
                skeleton = SkeletonDriver(temporal, SKELETON_QUEUE, hold_s, name)
                out[phase], tallies[phase] = await skeleton_phase(args, stack, skeleton)
                progress(f"{phase}: {out[phase]['settled_per_s']:.2f} settled/s")
                checkpoint(args, out)
        out["histories"] = await histories(temporal, tallies)
        checkpoint(args, out)
        if "open" in phases:
            out["open_loop"] = await open_phase(args, stack, driver)
            checkpoint(args, out)
        if "open-bare" in phases:
            out["open_bare"] = await open_bare_phase(args, stack, temporal)
    out["load_average_end"] = os.getloadavg()[0]
    return out


async def skeleton_phase(
    args: argparse.Namespace, stack: Stack, skeleton: SkeletonDriver
) -> tuple[dict[str, Any], Tally]:
    tally = Tally()
    (start, end), cpu, wall = await measured(
        stack, closed_loop(lambda _: skeleton.session(tally), args.in_flight, args.duration)
    )
    return phase_figures(tally, start, end, cpu, wall), tally


async def sessions_phase(
    args: argparse.Namespace, stack: Stack, driver: Driver, out: dict[str, Any]
) -> Tally:
    """The closed loop of real sessions; its chargers leave before the next phase."""
    chargers = await fleet(stack, "E2E-C", args.in_flight, args.meter_interval)
    drivers = await clients(stack, args.in_flight)

    async def real(slot: int, tally: Tally) -> None:
        await driver.session(chargers[slot], drivers[slot], tally)

    progress(f"{args.in_flight} chargers booted; closed loops of {args.duration:.0f} s each")
    warm = Tally()
    await closed_loop(lambda slot: real(slot, warm), min(args.in_flight, 10), 1.0)
    tally = Tally()
    (start, end), cpu, wall = await measured(
        stack, closed_loop(lambda slot: real(slot, tally), args.in_flight, args.duration)
    )
    out["sessions"] = phase_figures(tally, start, end, cpu, wall)
    progress(f"sessions: {out['sessions']['settled_per_s']:.2f} settled/s")
    checkpoint(args, out)
    for station in chargers:
        await station.stop()
    return tally


async def long_session(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    """One session held `--long-session` seconds; its real history, costed."""
    temporal = await Client.connect(stack.topology.temporal.address, namespace=NAMESPACE)
    out: dict[str, Any] = {"args": vars(args), "load_average_start": os.getloadavg()[0]}
    async with httpx.AsyncClient(timeout=60.0) as http:
        # 22 kW for an hour is 22 kWh: the reservation buys 33 kWh, so the limit never ends it.
        driver = Driver(stack.gateway.base_url, JWT_SECRET, http, temporal, 0, LONG_AMOUNT_TYIYN)
        (charger,) = await fleet(stack, "E2E-L", 1, args.long_meter_interval)
        (client_id,) = await clients(stack, 1)
        tally = Tally()
        progress(f"one session held {args.long_session:.0f} s")
        await driver.session(charger, client_id, tally, hold_s=args.long_session)
        await charger.stop()
        (session_id,) = tally.session_ids
        workflow_id = charging_workflow_id(session_id)
        history = await temporal.get_workflow_handle(workflow_id).fetch_history()
        out["answers"] = dict(tally.answers)
        out["history"] = history_costs.analyse_history(workflow_id, history)
    out["load_average_end"] = os.getloadavg()[0]
    return out


def long_report(out: dict[str, Any]) -> str:
    args = out["args"]
    return "\n".join(
        [
            f"one session held {args['long_session']:.0f} s, MeterValues every "
            f"{args['long_meter_interval']:.0f} s, default METER_SIGNAL_INTERVAL_S; "
            f"{out['answers']}",
            history_costs.render(out["history"]),
        ]
    )


async def open_phase(args: argparse.Namespace, stack: Stack, driver: Driver) -> dict[str, Any]:
    hold_s = args.open_held / args.open_rate
    count = int(args.open_held * 1.2 + args.open_rate * 30)  # held + settling + slack
    chargers = await fleet(stack, "E2E-O", count, args.open_meter_interval)
    progress(f"{count} chargers booted; open loop at {args.open_rate}/s, each held {hold_s:.0f} s")
    drivers = await clients(stack, count)
    free: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        free.put_nowait(index)
    tally = Tally()
    open_driver = Driver(driver.base_url, JWT_SECRET, driver.http, driver.temporal, 0)

    async def one() -> None:
        if free.empty():
            tally.answers["no free charger"] += 1
            return
        index = free.get_nowait()
        try:
            await open_driver.session(chargers[index], drivers[index], tally, hold_s=hold_s)
        finally:
            free.put_nowait(index)

    out = await open_run(args, stack, one, tally)
    for station in chargers:
        await station.stop()
    return out | {"breakdown": await breakdowns(driver.temporal, tally.timed_starts)}


async def open_bare_phase(
    args: argparse.Namespace, stack: Stack, temporal: Client
) -> dict[str, Any]:
    """The same open loop on the bare skeleton: what the Temporal server alone answers."""
    hold_s = args.open_held / args.open_rate
    skeleton = SkeletonDriver(temporal, SKELETON_QUEUE, hold_s, BARE_WORKFLOW_NAME)
    tally = Tally()
    progress(f"bare skeleton: open loop at {args.open_rate}/s, each held {hold_s:.0f} s")
    return await open_run(args, stack, lambda: skeleton.session(tally), tally)


async def open_run(
    args: argparse.Namespace, stack: Stack, session: Callable[[], Awaitable[None]], tally: Tally
) -> dict[str, Any]:
    """`--open-rate` sessions a second, never waiting for earlier ones, for `--open-duration`
    s plus one hold; the figures of the phase."""
    hold_s = args.open_held / args.open_rate
    held = {"now": 0, "max": 0}
    peak_rss: dict[str, float] = {}
    worker_low: dict[str, float] = {}  # the lowest each watched worker gauge went

    async def watch() -> None:
        """Every 2 s: the processes' memory, and the worker's slot and poller gauges."""
        async with httpx.AsyncClient(timeout=5.0) as http:
            while True:
                for name, rss in stack.rss_mb().items():
                    peak_rss[name] = max(rss, peak_rss.get(name, 0.0))
                with contextlib.suppress(httpx.HTTPError):
                    metrics = await http.get(f"{stack.topology['worker'].base_url}/metrics")
                    for series, value in worker_gauges(metrics.text).items():
                        worker_low[series] = min(value, worker_low.get(series, value))
                await asyncio.sleep(2.0)

    async def one(_: int) -> None:
        held["now"] += 1
        held["max"] = max(held["max"], held["now"])
        try:
            await session()
        finally:
            held["now"] -= 1

    watcher = asyncio.create_task(watch())
    try:
        started, cpu, wall = await measured(
            stack, open_loop(one, args.open_rate, args.open_duration + hold_s)
        )
    finally:
        watcher.cancel()
    return {
        "peak_rss_mb": peak_rss,
        "worker_lowest": worker_low,
        "rate_per_s": args.open_rate,
        "hold_s": hold_s,
        "started": started,
        "max_held": held["max"],
        "start_latency": latency_summary(tally.start_latency_s),
        "answers": dict(tally.answers),
        "cpu_s": cpu,
        "wall_s": wall,
    }


WATCHED_GAUGES = ("temporal_worker_task_slots_available", "temporal_num_pollers")


def worker_gauges(exposition: str) -> dict[str, float]:
    """The worker's slot and poller gauges from its /metrics, by series."""
    out = {}
    for line in exposition.splitlines():
        if line.startswith(WATCHED_GAUGES):
            series, _, value = line.rpartition(" ")
            out[series] = float(value)
    return out


async def breakdowns(temporal: Client, starts: list[TimedStart]) -> dict[str, Any]:
    """Where the time of the slowest starts went, and of as many around the median."""
    ordered = sorted(starts, key=lambda start: start.latency_s)
    middle = len(ordered) // 2
    groups = {
        "slowest": ordered[-BREAKDOWN_STARTS:],
        "median": ordered[max(0, middle - BREAKDOWN_STARTS // 2) :][:BREAKDOWN_STARTS],
    }
    out: dict[str, Any] = {}
    for name, group in groups.items():
        splits = []
        for start in group:
            handle = temporal.get_workflow_handle(charging_workflow_id(start.session_id))
            split = start_breakdown.split(start, await handle.fetch_history())
            if split is not None:
                splits.append(split)
        if splits:
            out[name] = start_breakdown.summary(splits)
    return out


def phase_figures(
    tally: Tally, start: float, end: float, cpu: dict[str, float], wall: float
) -> dict[str, Any]:
    settled = len(tally.settled_at)
    return {
        "settled_in_window": tally.settled_between(start, end),
        # Over the whole phase, the drain of the last sessions included: on a slow system no
        # session may settle within the first `--duration` seconds at all.
        "settled_per_s": settled / wall,
        "settled": settled,
        "load_average_after": os.getloadavg()[0],
        "start_latency": latency_summary(tally.start_latency_s),
        "answers": dict(tally.answers),
        "cpu_s": cpu,
        "cpu_s_per_session": {name: value / max(settled, 1) for name, value in cpu.items()},
        "wall_s": wall,
    }


async def histories(temporal: Client, tallies: dict[str, Tally]) -> list[dict[str, Any]]:
    """The first few real sessions' histories, and one of each skeleton's."""
    out = []
    for phase, tally in tallies.items():
        real = phase == "sessions"
        for started in tally.session_ids[: HISTORIES if real else 1]:
            workflow_id = charging_workflow_id(started) if real else started
            history = await temporal.get_workflow_handle(workflow_id).fetch_history()
            out.append(history_costs.analyse_history(workflow_id, history))
    return out


def report(out: dict[str, Any]) -> str:
    args = out["args"]

    def cpu(phase: dict[str, Any]) -> str:
        per = phase["cpu_s_per_session"]
        return ", ".join(f"{name} {value * 1000:.0f}" for name, value in per.items() if value)

    def latency(phase: dict[str, Any]) -> str:
        lat = phase["start_latency"]
        return f"p50 {lat['p50_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms, max {lat['max_ms']:.0f} ms"

    lines = [
        f"load average {out['load_average_start']:.1f} at the start, "
        f"{out['load_average_end']:.1f} at the end",
    ]
    if any(phase in out for phase in ("sessions", *SKELETONS)):
        lines.append(
            f"closed loops, {args['in_flight']} in flight, {args['duration']:.0f} s, hold "
            f"{args['samples']} MeterValues x {args['meter_interval']} s:"
        )
    for phase in ("sessions", *SKELETONS):
        if phase in out:
            figures = out[phase]
            lines += [
                f"  {phase}: {figures['settled_per_s']:.2f} settled/s ({figures['settled']} "
                f"settled in {figures['wall_s']:.0f} s, load average after "
                f"{figures['load_average_after']:.1f}; start {latency(figures)}); "
                f"{figures['answers']}",
                f"    CPU ms per settled session: {cpu(figures)}",
            ]
    real = out.get("sessions")
    for phase in SKELETONS:
        if real is not None and out.get(phase, {}).get("settled_per_s"):
            ratio = real["settled_per_s"] / out[phase]["settled_per_s"]
            lines.append(f"  ratio sessions / {phase}: {ratio:.2f}x (target >= 0.7x)")
    for key, name in (("open_loop", "sessions"), ("open_bare", "bare skeleton")):
        if key not in out:
            continue
        open_ = out[key]
        lines += [
            f"open loop, {name}, {open_['rate_per_s']}/s for "
            f"{args['open_duration'] + open_['hold_s']:.0f} s, each held {open_['hold_s']:.0f} s "
            f"(max held at once {open_['max_held']}):",
            f"  start {latency(open_)} over {open_['start_latency']['count']} starts "
            f"(target p99 < 500 ms); {open_['answers']}",
            *(
                f"  {group} starts: {start_breakdown.render(figures)}"
                for group, figures in open_.get("breakdown", {}).items()
            ),
            "  CPU s over the phase: "
            + ", ".join(f"{process} {value:.0f}" for process, value in open_["cpu_s"].items()),
            "  peak RSS MB: "
            + ", ".join(f"{name} {mb:.0f}" for name, mb in open_["peak_rss_mb"].items()),
            *(
                f"  worker, lowest: {name} {low:.0f}"
                for name, low in open_["worker_lowest"].items()
            ),
        ]
    lines.append("histories (read from the server):")
    shapes: dict[tuple[int, tuple[str, ...]], list[dict[str, Any]]] = {}
    for history in out["histories"]:  # one entry per shape, with how many had it
        shapes.setdefault((history["events"], tuple(history["steps"])), []).append(history)
    for same in shapes.values():
        text = history_costs.render(same[0]).replace("\n", "\n  ")
        lines.append(f"  ({len(same)} of this shape) {text}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--phases",
        type=lambda text: text.split(","),
        default=list(PHASES),
        help=f"comma-separated, of {','.join(PHASES)} (default: all, in that order)",
    )
    parser.add_argument("--in-flight", type=int, default=100, help="closed loop sessions at once")
    parser.add_argument("--duration", type=float, default=60.0, help="each closed loop, s")
    parser.add_argument("--samples", type=int, default=3, help="MeterValues before the stop")
    parser.add_argument("--meter-interval", type=float, default=1.0, help="closed loop, s")
    parser.add_argument("--open-rate", type=float, default=5.0, help="REST starts per second")
    parser.add_argument("--open-held", type=int, default=100, help="sessions held at once")
    parser.add_argument("--open-duration", type=float, default=60.0, help="s of starts")
    parser.add_argument("--open-meter-interval", type=float, default=30.0, help="open loop, s")
    parser.add_argument("--long-session", type=float, help="only one session held this long, s")
    parser.add_argument("--long-meter-interval", type=float, default=60.0, help="its meter, s")
    parser.add_argument("--quick", action="store_true", help="a tiny run (smoke test)")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if unknown := set(args.phases) - set(PHASES):
        parser.error(f"--phases: unknown {', '.join(sorted(unknown))}; known: {', '.join(PHASES)}")
    if args.quick:
        args.in_flight, args.duration, args.samples = 3, 5.0, 1
        args.open_rate, args.open_held, args.open_duration = 2.0, 2, 3.0
        args.open_meter_interval = 1.0
    # The servers run as deployed, with bytecode caches (the image's install writes them): the
    # workflow sandbox imports the workflow modules again for every new workflow, and without
    # a cache each of those imports compiles the source.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    # The load process writes ledger movements when it funds its drivers: not the report.
    configure_logging(LogFormat.PRETTY, "WARNING")
    # A run stopped with SIGTERM stops the servers it started, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    root = Path(tempfile.mkdtemp(prefix="evp-e2e-"))
    stack = start_stack(root)
    try:
        long = args.long_session is not None
        out = asyncio.run(long_session(args, stack) if long else run(args, stack))
    finally:
        stack.skeleton.stop()
        stack.topology.stop()
    print(long_report(out) if long else report(out))
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"work directory: {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
