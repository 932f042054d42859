"""One chaos run: the production topology (external PostgreSQL and Temporal, separate gateway,
api and worker processes) behind a public proxy, driven by simulated chargers and the REST
API while infrastructure, charger and payment faults hit it at seeded random moments; then
everything is healed, every session and top-up is waited for, and the invariants are read."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.client import Client

from simulator import SimulatedStation
from simulator.state import Transaction
from tests.chaos import checks
from tests.chaos.drivers import (
    FINAL_SESSION_STATES,
    FINAL_TOPUP_STATES,
    PROFILES,
    Http,
    SessionRecord,
    StationDriver,
    TopUpDriver,
    TopUpRecord,
    make_station,
)
from tests.chaos.infra import Infra
from tests.chaos.params import ChaosParams
from tests.chaos.proxy import PublicProxy
from tests.topology import world
from tests.topology.topology import NAMESPACE, Topology, external_servers

INITIAL_TYIYN = 2_000_000


@dataclass
class ChaosReport:
    params: ChaosParams
    verdicts: list[checks.Verdict] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    charger_faults: Counter[str] = field(default_factory=Counter)
    payment_faults: Counter[str] = field(default_factory=Counter)
    http: Counter[str] = field(default_factory=Counter)
    sessions: int = 0
    topups: int = 0
    duration_s: float = 0.0
    root: Path | None = None

    @property
    def holds(self) -> bool:
        return all(v.holds for v in self.verdicts)

    def table(self) -> str:
        p = self.params
        lines = [
            f"chaos run seed={p.seed}: {self.sessions} sessions, {self.topups} top-ups, "
            f"{sum(self.faults.values())} infrastructure faults, {self.duration_s:.0f} s",
            "",
            "| infrastructure fault | times |",
            "|---|---|",
            *(f"| {k} | {n} |" for k, n in sorted(self.faults.items())),
            "",
            "| charger / payment fault | times |",
            "|---|---|",
            *(
                f"| {k} | {n} |"
                for k, n in sorted((self.charger_faults + self.payment_faults).items())
            ),
            "",
            "| REST answers seen by drivers | count |",
            "|---|---|",
            *(f"| {k} | {n} |" for k, n in sorted(self.http.items())),
            "",
            "| invariant | holds | figures |",
            "|---|---|---|",
            *(f"| {v.name} | {'yes' if v.holds else 'NO'} | {v.figure} |" for v in self.verdicts),
        ]
        for verdict in self.verdicts:
            for failure in verdict.failures[:20]:
                lines.append(f"  FAIL {verdict.name}: {failure}")
        return "\n".join(lines)


async def _seed(topology: Topology, station_ids: list[str], clients: int) -> list[str]:
    engine = world.engine_for(topology.postgres.url)
    try:
        await world.add_stations(engine, station_ids)
        return [await world.fund_client(engine, INITIAL_TYIYN) for _ in range(clients)]
    finally:
        await engine.dispose()


async def _wait_settled(topology: Topology, timeout_s: float) -> None:
    """Until every session and top-up is final, or the safety net ends (then the checks say)."""
    engine = world.engine_for(topology.postgres.url)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            try:
                states = await checks._rows(
                    engine,
                    "SELECT state FROM charging_sessions UNION ALL SELECT state FROM topups",
                )
            except Exception:  # the database may still be recovering
                states = [("unknown",)]
            final = FINAL_SESSION_STATES | FINAL_TOPUP_STATES
            if all(s in final for (s,) in states):
                return
            await asyncio.sleep(2.0)
    finally:
        await engine.dispose()


def _topup_plans(params: ChaosParams, rng: random.Random) -> list[tuple[str, float]]:
    """(plan, delay before it starts): the expiring ones first (their life is 5 minutes)."""
    plans = [("never pay", 0.0)] * params.expiring_topups
    plans += [("pay after expiry", 0.0)] * params.paid_after_expiry
    kinds = ["pay", "pay", "pay twice at once", "pay late"]
    plans += [
        (rng.choice(kinds), rng.uniform(0.0, params.topup_spread_s)) for _ in range(params.topups)
    ]
    return plans


async def run_chaos(params: ChaosParams, log: Callable[[str], None] = print) -> ChaosReport:
    rng = random.Random(params.seed)
    # A charger that cannot reach its gateway says so on every attempt: not for the table.
    logging.getLogger("simulator").setLevel(logging.ERROR)
    log(f"chaos: seed {params.seed} (rerun with this seed to replay the same choices)")
    report = ChaosReport(params)
    began = time.monotonic()
    with external_servers() as topology:
        report.root = topology.root
        infra = Infra(topology, params, rng, log)
        proxy = PublicProxy(infra.live_api_urls, params.payment_faults, rng)
        topology.public_base_url = proxy.url
        await proxy.start()
        stations: list[SimulatedStation] = []
        try:
            await asyncio.to_thread(topology.migrate)
            station_ids = [f"CHAOS-{n:02d}" for n in range(1, params.stations + 1)]
            clients = await _seed(topology, station_ids, params.clients)
            await asyncio.to_thread(
                topology.start_roles, params.gateways, params.apis, params.workers
            )
            await _exercise(
                params, rng, topology, infra, proxy, station_ids, clients, report, stations, log
            )
        finally:
            for station in stations:
                await station.stop()
            await proxy.stop()
            report.duration_s = time.monotonic() - began
    return report


async def _exercise(
    params: ChaosParams,
    rng: random.Random,
    topology: Topology,
    infra: Infra,
    proxy: PublicProxy,
    station_ids: list[str],
    clients: list[str],
    report: ChaosReport,
    stations: list[SimulatedStation],
    log: Callable[[str], None],
) -> None:
    profiles = list(PROFILES)
    rng.shuffle(profiles)
    sessions: list[SessionRecord] = []
    topups: list[TopUpRecord] = []
    counter = [0]
    async with httpx.AsyncClient(timeout=30) as client:
        http = Http(proxy.url, client)
        drivers: list[StationDriver] = []
        for index, station_id in enumerate(station_ids):
            gateway = topology[f"gateway{index % params.gateways + 1}"]
            profile = profiles[index % len(profiles)]
            station = make_station(station_id, gateway.ws_url, profile, rng, world.CHARGER_KEY)
            stations.append(station)
            await station.start(timeout_s=60)
            drivers.append(
                StationDriver(
                    station, profile, http, rng, sessions, clients, counter, params.sessions, log
                )
            )
        topup_driver = TopUpDriver(http, rng, topups)
        topup_tasks = []
        for number, (plan, delay) in enumerate(_topup_plans(params, rng), start=1):
            topup = TopUpRecord(number, rng.choice(clients), rng.randint(1_000, 50_000), plan)
            topups.append(topup)
            topup_tasks.append(asyncio.create_task(topup_driver.run(topup, delay)))
        drivers_done = asyncio.Event()
        faults = asyncio.create_task(infra.run(drivers_done))
        await asyncio.gather(*(driver.run() for driver in drivers))
        await asyncio.gather(*topup_tasks)
        drivers_done.set()
        await faults
        log("chaos: faults over; healing and waiting for every session and top-up")
        await infra.heal()
        await _wait_settled(topology, params.settle_timeout_s)
        report.http = http.stats
    report.faults = Counter(event.kind for event in infra.events)
    report.payment_faults = Counter(proxy.stats)
    for topup in topups:
        report.payment_faults[f"top-up plan: {topup.plan}"] += 1
    for driver in drivers:
        report.charger_faults[f"charger profile: {driver.profile}"] += 1
    for record in sessions:
        if record.session_id:
            report.charger_faults[f"session ending: {record.ending}"] += 1
    given_up = sum(len(s.given_up_messages) for s in stations)
    report.charger_faults["transaction messages given up by chargers"] = given_up
    report.sessions = sum(1 for r in sessions if r.session_id)
    report.topups = len(topups)
    transactions: dict[str, Transaction] = {}
    for station in stations:
        for tx in station.transactions:
            transactions[tx.id_tag] = tx
    engine = world.engine_for(topology.postgres.url)
    temporal = await Client.connect(topology.temporal.address, namespace=NAMESPACE)
    try:
        report.verdicts = [
            await checks.sessions_final(engine, temporal, sessions),
            await checks.topups_final(engine, topups),
            await checks.ledger_sound(engine),
            await checks.held_matches_live_sessions(engine),
            await checks.balances_follow_credits_and_captures(engine),
            await checks.paid_topups_credited_once(engine, topups),
            await checks.costs_exact(engine, sessions, transactions),
            await checks.one_transaction_id_per_charger_transaction(
                engine, [tx for s in stations for tx in s.transactions], station_ids
            ),
        ]
    finally:
        await engine.dispose()
