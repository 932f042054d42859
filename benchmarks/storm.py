"""Reconnect storm: N keyed chargers reconnect at once to a freshly (re)started
`evpower serve --role all` (API + gateway in one process) while M connected chargers
measure Heartbeat round trips; the before-storm round trips are the same run's baseline.

    .venv/bin/python -m benchmarks.gateway --storm 1000,5000   # see docs/benchmarks.md

Stations are seeded with `evpower stations import`'s code (runtime/stations_import.py),
each with its own key. Reported: time until all booted, 503/429 refusals, upgrade
timeouts, gateway CPU per charger, PostgreSQL transactions and log lines per charger and
per refused attempt, Heartbeat p50/p99/max before / during / after.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import text

from benchmarks.infra import BENCHMARK_KEY_PEPPER
from benchmarks.processes import ROOT, LoadClient
from db.engine import create_engine, session_factory
from gateway.auth import ChargerKeys
from runtime.embedded import free_port
from runtime.stations_import import import_stations, parse_rows

PASSWORD_FORMAT = "storm-key-{:05d}-0123456789"  # 27 characters, one key per charger
MONITORS = 50
HEARTBEAT_PERIOD_S = 1.0
BASELINE_S = 5.0
STORM_TIMEOUT_S = 300.0


def prefix_for(chargers: int) -> str:
    return f"S{chargers}-"  # each storm size its own stations, in one database


async def seed(database_url: str, prefix: str, count: int, work: Path) -> float:
    """Import `count` stations through the import command's code; returns seconds taken."""
    lines = ["id,connectors,price_tyiyn_per_kwh,password\n"] + [
        f"{prefix}{i:05d},1,1500,{PASSWORD_FORMAT.format(i)}\n" for i in range(1, count + 1)
    ]
    started = time.monotonic()
    engine = create_engine(database_url, pool_size=1)
    try:
        result = await import_stations(
            session_factory(engine),
            ChargerKeys(BENCHMARK_KEY_PEPPER.encode()),
            parse_rows(lines),
            work / f"storm-keys-{prefix}.csv",
        )
    finally:
        await engine.dispose()
    assert len(result.created) == count
    return time.monotonic() - started


async def transactions(database_url: str) -> int:
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            value = await connection.scalar(
                text(
                    "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                    "WHERE datname = current_database()"
                )
            )
    finally:
        await engine.dispose()
    return int(value or 0)


class AllRole:
    """`evpower serve --role all` in its own process, ready when /health answers."""

    def __init__(self, database_url: str, temporal_address: str, log_path: Path) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "TEMPORAL_ADDRESS": temporal_address,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "OCPP_KEY_PEPPER": BENCHMARK_KEY_PEPPER,
            "LOG_FORMAT": "json",
            "PAYMENT_PROVIDER": "SIMULATED",  # no payments in a storm
            "EVPOWER_DATA_DIR": str(log_path.parent / "data"),
        }
        self.log_path = log_path
        self._log = log_path.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "runtime.cli", "serve", "--role", "all"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
        )  # fmt: skip
        self._ps = psutil.Process(self._process.pid)

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"evpower serve did not start; see {self.log_path}")

    def cpu_s(self) -> float:
        times = self._ps.cpu_times()
        return float(times.user + times.system)

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()


def log_lines(path: Path, start: int, end: int) -> Counter[str]:
    """Log lines written between two offsets, by level (and the uvicorn handshake error)."""
    counts: Counter[str] = Counter()
    with path.open("rb") as file:
        file.seek(start)
        chunk = file.read(end - start).decode("utf-8", "replace")
    for line in chunk.splitlines():
        level = "other"
        try:
            record = json.loads(line)
            level = str(record.get("level", "other")).lower()
            message = str(record.get("event") or record.get("message") or "")
        except ValueError:
            message = line
        counts[level] += 1
        if "returned without completing handshake" in message:
            counts["asgi_handshake_error"] += 1
        if "QueuePool limit" in line:
            counts["pool_exhausted"] += 1
    return counts


def storm(database_url: str, temporal_address: str, chargers: int, work: Path) -> dict[str, Any]:
    prefix = prefix_for(chargers)
    seed_s = asyncio.run(seed(database_url, prefix, chargers + MONITORS, work))
    server = AllRole(database_url, temporal_address, work / f"serve-{chargers}.log")
    try:
        server.wait_ready()
        marks: dict[str, Any] = {}

        def on_event(event: dict[str, Any]) -> None:
            if event["event"] == "storm_start":
                marks["cpu0"], marks["log0"] = server.cpu_s(), server.log_size()
                marks["tx0"] = asyncio.run(transactions(database_url))
            elif event["event"] == "storm_end":
                marks["cpu1"], marks["log1"] = server.cpu_s(), server.log_size()
                marks["tx1"] = asyncio.run(transactions(database_url))

        spec = {
            "port": server.port,
            "prefix": prefix,
            "storm": chargers,
            "monitors": MONITORS,
            "password_format": PASSWORD_FORMAT,
            "heartbeat_period_s": HEARTBEAT_PERIOD_S,
            "baseline_s": BASELINE_S,
            "timeout_s": STORM_TIMEOUT_S,
        }
        client = LoadClient(
            spec, work / f"storm-client-{chargers}.log", module="benchmarks.storm_client"
        )
        result = client.run(on_event, timeout_s=STORM_TIMEOUT_S + 120)
    finally:
        server.stop()
    refused = sum(result["refused"].values())
    attempts = result["booted"] + refused + result["upgrade_timeouts"]
    logs = log_lines(server.log_path, marks["log0"], marks["log1"])
    return {
        **result,
        "seed_s": seed_s,
        "attempts": attempts,
        "refused_total": refused,
        "gateway_cpu_s": marks["cpu1"] - marks["cpu0"],
        "cpu_ms_per_charger": (marks["cpu1"] - marks["cpu0"]) * 1000 / chargers,
        "db_transactions": marks["tx1"] - marks["tx0"],
        "db_transactions_per_charger": (marks["tx1"] - marks["tx0"]) / chargers,
        "log_lines": dict(logs),
        "load_average": os.getloadavg()[0],
    }


def report(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        before, during = r["heartbeat_before"], r["heartbeat_during"]
        ratio = during["p99_ms"] / before["p99_ms"] if before["p99_ms"] else float("nan")
        all_booted = f"{r['all_booted_s']:.1f} s" if r["all_booted_s"] is not None else "NOT ALL"
        lines += [
            f"storm of {r['chargers']:,} keyed chargers ({MONITORS} monitors, "
            f"load average {r['load_average']:.1f}):",
            f"  booted {r['booted']:,}/{r['chargers']:,}; all booted after {all_booted} "
            f"(target 30 s); p50 {r['p50_boot_s'] or 0:.1f} s, p99 {r['p99_boot_s'] or 0:.1f} s",
            f"  upgrade refusals {r['refused']} (total {r['refused_total']:,}); upgrade "
            f"timeouts {r['upgrade_timeouts']:,}; boot timeouts {r['boot_timeouts']:,}; "
            f"other {r['other_errors']}",
            f"  gateway CPU {r['gateway_cpu_s']:.1f} s = {r['cpu_ms_per_charger']:.1f} ms/charger",
            f"  PostgreSQL transactions {r['db_transactions']:,} = "
            f"{r['db_transactions_per_charger']:.2f}/charger over {r['attempts']:,} attempts",
            f"  log lines during the storm: {r['log_lines']}",
            f"  Heartbeat RTT before: p50 {before['p50_ms']:.1f} p99 {before['p99_ms']:.1f} "
            f"max {before['max_ms']:.1f} ms (n={before['count']})",
            f"  Heartbeat RTT during: p50 {during['p50_ms']:.1f} p99 {during['p99_ms']:.1f} "
            f"max {during['max_ms']:.1f} ms (n={during['count']}); p99 ratio {ratio:.1f}x "
            f"(target p99 < 100 ms); unanswered {r['heartbeat_unanswered']}",
        ]
    return "\n".join(lines)
