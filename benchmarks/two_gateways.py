"""Two gateways on one machine: idle keyed chargers split between two `evpower serve --role
gateway` processes of the production topology, RSS per connection beside a bare `websockets`
echo server holding the same share, and operator commands routed to the process holding the
charger.

    .venv/bin/python -m benchmarks.two_gateways                     # 20,000 chargers
    .venv/bin/python -m benchmarks.two_gateways --chargers 2000     # a quick look

One run: the topology of tests/topology (external PostgreSQL and Temporal dev server,
`evpower migrate`, two `serve --role gateway`, one `serve --role api`, one `evpower worker`,
each its own process). Each gateway gets half the chargers from its own load client process
(benchmarks/load_client.py, idle mode, one key per station checked by the gateway); memory is
measured between a warm-up tenth and the full share, as benchmarks/gateway.py does for one
gateway. While every charger is held, `--probes` stations of each gateway are sent ClearCache
through `POST /api/v1/ops/stations/{id}/commands/clear_cache` on the api process: the
StationCommand workflow must find the gateway holding the charger, and the answer must come
from that charger (the load client answers commands `Accepted`), logged by that gateway only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from api.dev_tokens import issue_dev_token
from benchmarks.load_client import CONNECT_CONCURRENCY
from benchmarks.processes import LoadClient, ServerProcess
from runtime.embedded import free_port
from tests.topology import world
from tests.topology.servers import ExternalPostgres, ExternalTemporal
from tests.topology.topology import JWT_SECRET, Role, Topology

KB = 1024
PREFIXES = ("GA-", "GB-")  # gateway1's chargers, gateway2's
HOLD_TIMEOUT_S = 3600.0  # per load client, connecting and holding its share
TARGET_RSS_RATIO = 1.5


class ProbedTopology(Topology):
    """The topology's settings, with the ops rate limit lifted (one caller sends every probe)
    and the gateways' admission limit above the load client's 64 connects at a time (it does
    not retry a 503; the storm mode measures the production limit)."""

    def env(self, port: int) -> dict[str, str]:
        return {
            **super().env(port),
            "RATE_LIMIT_OPS": "1000000/minute",
            "OCPP_ADMISSION_LIMIT": str(2 * CONNECT_CONCURRENCY),
        }


@dataclass
class Share:
    """One gateway's half: how many chargers it held and what they cost it."""

    name: str
    chargers: int
    held: int = 0
    failed: int = 0
    setup_s: float = 0.0
    baseline_rss: int = 0
    rss: int = 0
    error: str | None = None  # the load client did not finish
    booted: int = 0  # with an error: the BootNotifications the gateway had answered

    @property
    def kb_per_charger(self) -> float:
        warm = max(1, self.chargers // 10)
        return (self.rss - self.baseline_rss) / KB / max(self.held - warm, 1)


def _rss(pid: int) -> int:
    """RSS of a role's process tree (a role may run under a wrapper)."""
    process = psutil.Process(pid)
    return sum(int(each.memory_info().rss) for each in [process, *process.children(True)])


def _wait_quiet(pid: int, *, below: float = 0.05, timeout_s: float = 120.0) -> None:
    """Until the process uses less than `below` of a core: its connect work is done."""
    process = psutil.Process(pid)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = sum(process.cpu_times()[:2])
        time.sleep(1.0)
        if sum(process.cpu_times()[:2]) - before < below:
            return


async def _seed(database_url: str, count: int) -> None:
    engine = world.engine_for(database_url)
    try:
        for prefix in PREFIXES:
            ids = [f"{prefix}{number:05d}" for number in range(1, count + 1)]
            for start in range(0, len(ids), 2_000):
                await world.add_stations(engine, ids[start : start + 2_000])
    finally:
        await engine.dispose()


def _idle_spec(port: int, prefix: str, chargers: int, *, answer_calls: bool) -> dict[str, Any]:
    return {
        "port": port,
        "prefix": prefix,
        "mode": "idle",
        "chargers": chargers,
        "warm": max(1, chargers // 10),
        "password": world.CHARGER_KEY,
        "answer_calls": answer_calls,
    }


def _measure(share: Share, pid: int, then: Callable[[], None] = lambda: None) -> Any:
    """An on_event for a load client: RSS at `warm` and at `ready`, then `then()` while held."""

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] == "warm":
            _wait_quiet(pid)
            share.baseline_rss = _rss(pid)
        elif event["event"] == "ready":
            _wait_quiet(pid)  # the gateway writes connects, boots and statuses first
            share.rss = _rss(pid)
            share.held = int(event["connected"])
            share.failed = int(event["failed"])
            share.setup_s = float(event["setup_s"])
            then()

    return on_event


def bare_baseline(root: Path, chargers: int, timeout_s: float) -> Share:
    """The same share of chargers on a bare websockets echo server."""
    port = free_port()
    server = ServerProcess(
        "bare", ["benchmarks.echo_server", "--port", str(port)], root / "bare.log", port
    )
    server.wait_ready()
    share = Share("bare echo", chargers)
    try:
        spec = _idle_spec(port, PREFIXES[0], chargers, answer_calls=False)
        LoadClient(spec, root / "bare-client.log").run(
            _measure(share, server.pid), timeout_s=timeout_s
        )
    finally:
        server.stop()
    return share


@dataclass
class Probes:
    sent: int = 0
    answered: int = 0  # 200 with the charger's Accepted
    right_gateway: int = 0  # logged `command answered` by the gateway holding it, only there
    failures: list[str] | None = None
    seconds: float = 0.0


def _probe_ids(share_size: int, probes: int) -> list[int]:
    step = max(1, share_size // probes)
    return list(range(step, share_size + 1, step))[:probes]


async def _send_commands(api: Role, station_ids: list[str]) -> list[tuple[str, int, str]]:
    token = issue_dev_token(JWT_SECRET, str(uuid.uuid4()), operator_role="operator")
    headers = {"Authorization": f"Bearer {token}"}
    gate = asyncio.Semaphore(10)

    async def one(http: httpx.AsyncClient, station_id: str) -> tuple[str, int, str]:
        async with gate:
            response = await http.post(
                f"/api/v1/ops/stations/{station_id}/commands/clear_cache",
                json={"reason": "two-gateway routing benchmark"},
                headers=headers,
            )
        status = response.json().get("status", "") if response.status_code == 200 else ""
        return station_id, response.status_code, status or response.text[:200]

    async with httpx.AsyncClient(base_url=api.base_url, timeout=120) as http:
        return list(await asyncio.gather(*(one(http, station) for station in station_ids)))


def _answered_by(gateway: Role) -> set[str]:
    return {
        str(event.get("station_id"))
        for event in gateway.log_events()
        if event.get("event") == "command answered" and event.get("action") == "ClearCache"
    }


def probe(topology: Topology, share_size: int, probes: int) -> Probes:
    targets = {
        f"gateway{index}": [f"{prefix}{n:05d}" for n in _probe_ids(share_size, probes)]
        for index, prefix in enumerate(PREFIXES, start=1)
    }
    started = time.monotonic()
    answers = asyncio.run(
        _send_commands(topology["api1"], [s for ids in targets.values() for s in ids])
    )
    result = Probes(sent=len(answers), failures=[], seconds=time.monotonic() - started)
    result.answered = sum(1 for _, code, status in answers if code == 200 and status == "Accepted")
    assert result.failures is not None
    result.failures += [f"{s}: {code} {status}" for s, code, status in answers if code != 200]
    logged = {name: _answered_by(topology[name]) for name in targets}
    for name, ids in targets.items():
        others = set().union(*(logged[other] for other in logged if other != name))
        result.right_gateway += sum(1 for s in ids if s in logged[name] and s not in others)
    return result


def hold_on_two_gateways(
    topology: Topology, share_size: int, probes: int, timeout_s: float
) -> dict[str, Any]:
    """Both load clients connect at once; at `ready` each measures its gateway, then both wait
    until the probes have run (the chargers stay connected meanwhile)."""
    shares = [Share(f"gateway{i}", share_size) for i in (1, 2)]
    both_held = threading.Barrier(2)
    probed: dict[str, Probes] = {}

    def run_probes() -> None:
        probed["result"] = probe(topology, share_size, probes)

    def hold(index: int) -> None:
        gateway = topology[f"gateway{index + 1}"]
        spec = _idle_spec(gateway.port, PREFIXES[index], share_size, answer_calls=True)
        client = LoadClient(spec, topology.logs / f"client{index + 1}.log")

        def then() -> None:
            # One of the two runs the probes while the other waits; a share that never gets
            # here (its client timed out) breaks the barrier and the probes are skipped.
            try:
                if both_held.wait(timeout_s) == 0:
                    run_probes()
                both_held.wait(timeout_s)
            except threading.BrokenBarrierError:
                both_held.abort()

        try:
            client.run(_measure(shares[index], gateway.process.pid, then), timeout_s=timeout_s)
        except RuntimeError as exc:  # not all held in time: report how far it got
            shares[index].error = str(exc)
            both_held.abort()  # the other share stops waiting for this one
            shares[index].booted = sum(
                1 for event in gateway.log_events() if event.get("event") == "boot notification"
            )

    threads = [threading.Thread(target=hold, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"shares": shares, "probes": probed.get("result", Probes())}


def report(
    chargers: int, bare: Share, shares: list[Share], probes: Probes, load: float
) -> list[str]:
    held = sum(share.held for share in shares)
    complete = [share.kb_per_charger for share in shares if share.error is None]
    worst = max(complete, default=float("nan"))
    ratio = worst / bare.kb_per_charger if bare.kb_per_charger else float("nan")
    lines = [
        f"two gateways, {chargers:,} idle keyed chargers (load average {load:.1f}):",
        f"  held {held:,}/{chargers:,} (target all)",
    ]
    for share in [*shares, bare]:
        if share.error is not None:
            lines.append(
                f"  {share.name}: NOT ALL HELD: {share.booted:,}/{share.chargers:,} booted "
                f"when the load client stopped ({share.error})"
            )
            continue
        lines.append(
            f"  {share.name}: held {share.held:,}/{share.chargers:,} (failed {share.failed}), "
            f"connected in {share.setup_s:.1f} s, RSS {share.baseline_rss / KB / KB:.0f} → "
            f"{share.rss / KB / KB:.0f} MB, {share.kb_per_charger:.1f} KB per charger"
        )
    lines += [
        f"  RSS per connection, worst gateway / bare: {ratio:.2f}x (target ≤ {TARGET_RSS_RATIO}x)",
        f"  commands: {probes.sent} sent, {probes.answered} answered Accepted by the charger, "
        f"{probes.right_gateway} logged by the gateway holding it only, in {probes.seconds:.1f} s "
        f"(target all)",
    ]
    lines += [f"  failed: {failure}" for failure in (probes.failures or [])[:10]]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chargers", type=int, default=20_000, help="in all, split in two")
    parser.add_argument("--probes", type=int, default=50, help="commands per gateway")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the run's logs and data")
    parser.add_argument(
        "--timeout", type=float, default=HOLD_TIMEOUT_S, help="seconds for each share to connect"
    )
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    share_size = args.chargers // 2
    root = Path(tempfile.mkdtemp(prefix="evp-two-gateways-"))
    topology = ProbedTopology(
        root, ExternalPostgres(root / "logs"), ExternalTemporal(root / "logs")
    )
    try:
        print(f"setup: PostgreSQL, Temporal, {2 * share_size:,} stations (logs in {root})")
        topology.postgres.start()
        topology.temporal.start()
        topology.migrate()
        asyncio.run(_seed(topology.postgres.url, share_size))
        print(f"bare echo server: {share_size:,} idle chargers")
        bare = bare_baseline(topology.logs, share_size, args.timeout)
        topology.start_roles(gateways=2, apis=1, workers=1)
        print(f"two gateways: {share_size:,} idle chargers each, then {args.probes} commands each")
        held = hold_on_two_gateways(topology, share_size, args.probes, args.timeout)
    finally:
        topology.stop()
    lines = report(2 * share_size, bare, held["shares"], held["probes"], os.getloadavg()[0])
    print("\n".join(lines))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "chargers": 2 * share_size,
                    "bare": bare.__dict__,
                    "shares": [share.__dict__ for share in held["shares"]],
                    "probes": held["probes"].__dict__,
                },
                indent=2,
            )
        )
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
