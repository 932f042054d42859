"""Gateway benchmark: each figure beside the same figure for a bare `websockets` echo server.

    .venv/bin/python -m benchmarks.gateway --quick     # ~2 min: 1,000 idle, 200 chargers
    .venv/bin/python -m benchmarks.gateway             # < 15 min: 10,000 idle, 1,000 chargers
    .venv/bin/python -m benchmarks.gateway --profile   # also py-spy the gateway under load
    .venv/bin/python -m benchmarks.gateway --storm 1000,5000  # reconnect storm: storm.py

Every server and the load client run in their own processes on 127.0.0.1; the gateway
has a real embedded PostgreSQL and a real Temporal dev server. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks import profiling, storm
from benchmarks.infra import embedded_infra, seed_stations
from benchmarks.processes import LoadClient, ServerProcess
from benchmarks.report import Row, render
from runtime.embedded import free_port

PREFIX = "BENCH-"
KB = 1024


@dataclass(frozen=True)
class Plan:
    idle_chargers: int
    deflate_idle_chargers: int  # the compression comparison; 0 skips it
    load_chargers: int
    warmup_s: float
    duration_s: float
    latency_period_s: float
    latency_duration_s: float


QUICK = Plan(1_000, 0, 200, 2, 10, 10, 20)
FULL = Plan(10_000, 2_000, 1_000, 3, 20, 10, 60)


@dataclass
class Context:
    work: Path
    database_url: str
    temporal_address: str
    log_dir: Path
    uvloop: bool = True  # both servers on uvloop, as `evpower` runs (runtime/cli.py)
    ws: str | None = None


def _server(ctx: Context, kind: str, *, deflate: bool = False) -> ServerProcess:
    port = free_port()
    if kind == "bare":
        argv = ["benchmarks.echo_server", "--port", str(port)]
    else:
        argv = [
            "benchmarks.gateway_server", "--port", str(port),
            "--database-url", ctx.database_url, "--temporal-address", ctx.temporal_address,
        ]  # fmt: skip
    if deflate:
        argv.append("--deflate")
    if ctx.uvloop:
        argv.append("--uvloop")
    if ctx.ws is not None and kind == "gateway":
        argv += ["--ws", ctx.ws]
    server = ServerProcess(kind, argv, ctx.log_dir / f"{kind}.log", port)
    server.wait_ready()
    return server


def _client(ctx: Context, server: ServerProcess, **spec: Any) -> LoadClient:
    spec = {"port": server.port, "prefix": PREFIX, **spec}
    return LoadClient(spec, ctx.log_dir / "client.log")


def idle(ctx: Context, kind: str, chargers: int, *, deflate: bool) -> dict[str, Any]:
    """(a) RSS per idle charger: connected, booted, status reported, then nothing.

    Measured between a warm-up batch and the full count, so one-time costs (database
    pool growth, first-use code paths) do not count as per-charger memory.
    """
    server = _server(ctx, kind, deflate=deflate)
    warm = max(1, chargers // 10)
    try:
        measured: dict[str, Any] = {}

        def on_event(event: dict[str, Any]) -> None:
            if event["event"] == "warm":
                server.wait_quiet()
                measured["baseline"] = server.rss()
            elif event["event"] == "ready":
                server.wait_quiet()  # the gateway writes connects/boots to the database
                measured["rss"] = server.rss()
                measured.update(event)

        result = _client(
            ctx, server, mode="idle", chargers=chargers, warm=warm, deflate=deflate
        ).run(on_event, timeout_s=600)
        held = int(result["still_open"])
        baseline = measured["baseline"]
        return {
            "server": kind,
            "deflate": deflate,
            "chargers": chargers,
            "held": held,
            "setup_s": measured["setup_s"],
            "deflate_negotiated": measured["deflate_negotiated"],
            "baseline_mb": baseline / KB / KB,
            "rss_mb": measured["rss"] / KB / KB,
            "kb_per_charger": (measured["rss"] - baseline) / KB / max(held - warm, 1),
        }
    finally:
        server.stop()


def throughput(
    ctx: Context, kind: str, plan: Plan, profile_to: Path | None = None
) -> dict[str, Any]:
    """(b) Closed loop, Heartbeat then MeterValues, plus the server's CPU use meanwhile."""
    server = _server(ctx, kind)
    spy_binary = profiling.py_spy() if profile_to is not None else None
    cpu: dict[str, float] = {}
    spies: list[Any] = []
    try:

        def on_event(event: dict[str, Any]) -> None:
            phase = event.get("phase")
            if event["event"] == "phase_start":
                cpu[f"{phase}_start"] = server.cpu_s()
                cpu[f"{phase}_t0"] = time.perf_counter()
                if spy_binary is not None and profile_to is not None:
                    output = profile_to.with_name(f"{profile_to.stem}-{phase}.txt")
                    spies.append(
                        (
                            output,
                            profiling.start_recording(
                                server.pid, int(plan.duration_s), output, spy_binary
                            ),
                        )
                    )
            elif event["event"] == "phase_end":
                elapsed = time.perf_counter() - cpu[f"{phase}_t0"]
                cpu[f"{phase}_cpu_share"] = (server.cpu_s() - cpu[f"{phase}_start"]) / elapsed

        result = _client(
            ctx,
            server,
            mode="throughput",
            chargers=plan.load_chargers,
            start_transactions=True,
            phases=["heartbeat", "meter"],
            warmup_s=plan.warmup_s,
            duration_s=plan.duration_s,
        ).run(on_event, timeout_s=300)
        for _, spy in spies:
            spy.wait(60)
        phases = {p["phase"]: p for p in result["phases"]}
        for name, phase in phases.items():
            phase["server_cpu_share"] = cpu.get(f"{name}_cpu_share")
        return {"server": kind, "chargers": plan.load_chargers, **phases}
    finally:
        server.stop()


def latency(ctx: Context, kind: str, plan: Plan) -> dict[str, Any]:
    """(c) Open loop: every charger sends MeterValues every period; RTT percentiles."""
    server = _server(ctx, kind)
    try:
        result = _client(
            ctx,
            server,
            mode="latency",
            chargers=plan.load_chargers,
            start_transactions=True,
            period_s=plan.latency_period_s,
            duration_s=plan.latency_duration_s,
        ).run(lambda _event: None, timeout_s=300)
        return {"server": kind, "chargers": plan.load_chargers, **result}
    finally:
        server.stop()


def rows(results: dict[str, Any], plan: Plan) -> list[Row]:
    gi, bi = results["idle"]["gateway"], results["idle"]["bare"]
    gt, bt = results["throughput"]["gateway"], results["throughput"]["bare"]
    gl, bl = results["latency"]["gateway"], results["latency"]["bare"]
    idle_ratio = gi["kb_per_charger"] / bi["kb_per_charger"]
    out = [
        Row(
            f"(a) idle chargers held of {plan.idle_chargers:,}",
            gi["held"],
            bi["held"],
            f"{plan.idle_chargers:,}",
            gi["held"] == plan.idle_chargers,
            show_ratio=False,
        ),
        Row(
            "(a) RSS per idle charger, no deflate",
            gi["kb_per_charger"],
            bi["kb_per_charger"],
            "<= 1.5x",
            idle_ratio <= 1.5 and gi["held"] == plan.idle_chargers,
            "KB",
        ),
    ]
    if "gateway_deflate" in results["idle"]:
        gd, bd = results["idle"]["gateway_deflate"], results["idle"]["bare_deflate"]
        out.append(
            Row(
                f"(a') RSS per idle charger, deflate ({gd['chargers']:,})",
                gd["kb_per_charger"],
                bd["kb_per_charger"],
                "<= 1.5x",
                gd["kb_per_charger"] <= 1.5 * bd["kb_per_charger"],
                "KB",
            )
        )
    for phase, label, target in (("heartbeat", "Heartbeat", 0.30), ("meter", "MeterValues", 0.15)):
        gateway_rate, bare_rate = gt[phase]["per_s"], bt[phase]["per_s"]
        out.append(
            Row(
                f"(b) {label} round trips, {plan.load_chargers:,} chargers",
                gateway_rate,
                bare_rate,
                f">= {target:.2f}x",
                gateway_rate / bare_rate >= target,
                "msg/s",
            )
        )
        # Other work on the machine takes cores from either server unevenly; the rate per
        # second of the server's own CPU shows whether a ratio is the servers' or the noise.
        gateway_cpu, bare_cpu = gt[phase]["server_cpu_share"], bt[phase]["server_cpu_share"]
        out.append(
            Row(
                f"(b) {label}: server CPU (cores)",
                gateway_cpu,
                bare_cpu,
                "",
                None,
                show_ratio=False,
            )
        )
        out.append(
            Row(
                f"(b) {label} per server CPU-second",
                gateway_rate / gateway_cpu if gateway_cpu else None,
                bare_rate / bare_cpu if bare_cpu else None,
                "",
                None,
                "msg",
            )
        )
    out += [
        Row("(c) MeterValues every 10 s: p50", gl["p50_ms"], bl["p50_ms"], "", None, "ms"),
        Row("(c) MeterValues every 10 s: p99", gl["p99_ms"], bl["p99_ms"], "< 50 ms",
            gl["p99_ms"] is not None and gl["p99_ms"] < 50 and gl["unanswered"] == 0, "ms"),
    ]  # fmt: skip
    return out


def _timed(label: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.monotonic()
    print(f"  {label} ...", end="", flush=True)
    result = work()
    print(f" {time.monotonic() - started:.0f} s", flush=True)
    return result


def run(
    plan: Plan,
    *,
    profile: bool,
    keep: bool,
    json_out: Path | None,
    uvloop: bool = True,
    ws: str | None = None,
) -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    needed = plan.idle_chargers + 200
    if hard < needed:
        print(f"open-file limit {hard} is below the {needed} this plan needs")
        return 2
    if profile and profiling.py_spy() is None:
        print("--profile needs py-spy: pip install -e '.[bench]'")
        return 2
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"note: load average {load:.2f} before start: other work shares the cores")
    started = time.monotonic()
    with embedded_infra("evpower-bench-", keep=keep) as infra:
        log_dir = infra.work / "logs"
        log_dir.mkdir()
        print(f"setup: PostgreSQL, Temporal, {plan.idle_chargers:,} stations (logs in {log_dir})")
        asyncio.run(seed_stations(infra.database_url, PREFIX, plan.idle_chargers))
        ctx = Context(
            infra.work, infra.database_url, infra.temporal_address, log_dir, uvloop=uvloop, ws=ws
        )
        results: dict[str, Any] = {
            "plan": asdict(plan),
            "load_average_before": load,
            "idle": {},
            "throughput": {},
            "latency": {},
        }
        for kind in ("bare", "gateway"):
            results["idle"][kind] = _timed(
                f"(a) {kind}: {plan.idle_chargers:,} idle",
                partial(idle, ctx, kind, plan.idle_chargers, deflate=False),
            )
        if plan.deflate_idle_chargers:
            for kind in ("bare", "gateway"):
                results["idle"][f"{kind}_deflate"] = _timed(
                    f"(a') {kind}: {plan.deflate_idle_chargers:,} idle with deflate",
                    partial(idle, ctx, kind, plan.deflate_idle_chargers, deflate=True),
                )
        for kind in ("bare", "gateway"):
            results["throughput"][kind] = _timed(
                f"(b) {kind}: closed loop", partial(throughput, ctx, kind, plan)
            )
        for kind in ("bare", "gateway"):
            results["latency"][kind] = _timed(
                f"(c) {kind}: every {plan.latency_period_s:.0f} s",
                partial(latency, ctx, kind, plan),
            )
        profile_text = None
        if profile:
            base = infra.work / "profile"
            _timed(
                "profile: gateway closed loop under py-spy",
                lambda: throughput(ctx, "gateway", plan, base),
            )
            profile_text = {
                phase: profiling.summarize(base.with_name(f"profile-{phase}.txt"))
                for phase in ("heartbeat", "meter")
            }
            results["profile"] = profile_text
        table = rows(results, plan)
        results["wall_s"] = time.monotonic() - started
        print()
        print(render(table))
        print(f"\nwall time {results['wall_s']:.0f} s; raw figures: --json PATH")
        if profile_text:
            for phase, text in profile_text.items():
                print(f"\n--- gateway profile, {phase} closed loop ---\n{text}")
        if json_out is not None:
            json_out.write_text(json.dumps(results, indent=2))
        return 0 if all(row.passed is not False for row in table) else 1


def run_storm(sizes: list[int], *, keep: bool, json_out: Path | None) -> int:
    """The reconnect storm at each size, against one PostgreSQL and one Temporal."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # Per process: the server and the load client each hold one socket per charger.
    if hard < max(sizes) + 1_000:
        print(f"open-file limit {hard} is too low for a storm of {max(sizes):,}")
        return 2
    load = os.getloadavg()[0]
    print(f"load average {load:.2f} before start: other work shares the cores")
    results = []
    with embedded_infra("evpower-storm-", keep=keep) as infra:
        for size in sizes:
            results.append(
                _timed(
                    f"storm: {size:,} chargers",
                    partial(
                        storm.storm, infra.database_url, infra.temporal_address, size, infra.work
                    ),
                )
            )
            print(storm.report(results[-1:]), flush=True)
        if json_out is not None:
            json_out.write_text(json.dumps(results, indent=2))
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 idle, 200 chargers, 10 s")
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway under load")
    parser.add_argument("--json", type=Path, help="write every raw figure here")
    parser.add_argument("--keep", action="store_true", help="keep the work dir and its logs")
    parser.add_argument(
        "--asyncio-loop",
        action="store_true",
        help="experiment: both servers on asyncio's own loop instead of uvloop",
    )
    parser.add_argument("--ws", help="experiment: the gateway's uvicorn websocket implementation")
    parser.add_argument(
        "--storm", help="reconnect storm instead: comma-separated charger counts, e.g. 1000,5000"
    )
    args = parser.parse_args()
    if args.storm:
        sizes = [int(part) for part in args.storm.split(",") if part.strip()]
        return run_storm(sizes, keep=args.keep, json_out=args.json)
    plan = QUICK if args.quick else FULL
    return run(
        plan,
        profile=args.profile,
        keep=args.keep,
        json_out=args.json,
        uvloop=not args.asyncio_loop,
        ws=args.ws,
    )


if __name__ == "__main__":
    raise SystemExit(main())
