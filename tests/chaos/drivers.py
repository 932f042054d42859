"""What drivers and chargers do during a chaos run: sessions over the REST API on misbehaving
simulated chargers, and top-ups paid (or not) at the simulated provider."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from api.dev_tokens import issue_dev_token
from domain.contracts.topups import FINAL_STATES as TOPUP_FINAL_STATES
from domain.sessions import FINAL_STATES
from simulator import FaultPlan, SimulatedStation
from simulator.state import Transaction
from tests.topology.topology import JWT_SECRET

FINAL_SESSION_STATES = frozenset(str(state) for state in FINAL_STATES)
FINAL_TOPUP_STATES = frozenset(str(state) for state in TOPUP_FINAL_STATES)
START_PATIENCE_S = 60.0
# How a session ends, with its weight.
ENDINGS = {
    "api stop": 30,
    "stop at the charger": 15,
    "energy limit": 15,
    "dropped mid-session, api stop": 20,
    "stop sent after reconnect": 20,
}
# A fault profile per station (FaultPlan fields, StationConfig overrides).
PROFILES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "well-behaved": ({}, {}),
    "start/stop retried with new ids": (
        {"start_transaction_repeats": 1, "stop_transaction_repeats": 1},
        {},
    ),
    "retries reuse the message id": (
        {"start_transaction_repeats": 1, "retry_with_same_message_id": True},
        {},
    ),
    "stop only after reconnect": ({"stop_after_reconnect": True}, {}),
    "meter values duplicated, out of order": (
        {"duplicate_meter_values": True, "meter_values_out_of_order": True},
        {},
    ),
    "only pings": ({"ping_only": True}, {"ping_interval_s": 2.0}),
    "gives up after 3 attempts": (
        {},
        {"transaction_message_attempts": 3, "transaction_message_retry_s": 0.5},
    ),
    # Its first RemoteStart is never answered; later ones are.
    "silent on its first RemoteStart": ({"silent_remote_start": True}, {}),
}


def bearer(client_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_dev_token(JWT_SECRET, client_id)}"}


def _retry(response: httpx.Response) -> bool:
    """Rate limited, or the same Idempotency-Key still being answered (a request the proxy
    gave up on while the api worked on it): ask again with the same key."""
    if response.status_code == 429:
        return True
    return response.status_code == 409 and _error_code(response) == "idempotency_in_progress"


def _route(path: str) -> str:
    return re.sub(r"/[A-Za-z0-9_-]{12,}", "/{id}", path)


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "?"


@dataclass
class Http:
    """REST calls through the public proxy, retried (same Idempotency-Key) over outages."""

    base_url: str
    client: httpx.AsyncClient
    stats: Counter[str] = field(default_factory=Counter)

    async def call(
        self,
        method: str,
        path: str,
        *,
        client_id: str,
        key: str | None = None,
        body: dict[str, Any] | None = None,
        patience_s: float = 300.0,
    ) -> httpx.Response:
        headers = bearer(client_id)
        # Each driver's phone has its own address (the rate limits key on it), behind the proxy.
        digest = hashlib.sha256(client_id.encode()).digest()
        headers["X-Forwarded-For"] = f"10.{digest[0]}.{digest[1]}.{digest[2]}"
        if key is not None:
            headers["Idempotency-Key"] = key
        deadline = time.monotonic() + patience_s
        while True:
            try:
                response = await self.client.request(
                    method, self.base_url + path, json=body, headers=headers
                )
            except httpx.HTTPError:
                self.stats["transport errors"] += 1
                response = None
            if response is not None:
                self.stats[f"HTTP {response.status_code}"] += 1
                if 400 <= response.status_code < 500 and response.status_code != 429:
                    code = _error_code(response)
                    self.stats[f"HTTP {response.status_code} {method} {_route(path)}: {code}"] += 1
                if response.status_code < 500 and not _retry(response):
                    return response
            if time.monotonic() > deadline:
                if response is None:
                    raise TimeoutError(f"{method} {path}: no answer for {patience_s:.0f} s")
                return response
            await asyncio.sleep(5 if response is not None and response.status_code == 429 else 0.5)


@dataclass
class SessionRecord:
    number: int
    station_id: str
    client_id: str
    amount_tyiyn: int
    ending: str
    profile: str
    session_id: str | None = None
    start_status: int | None = None
    final_state: str | None = None


@dataclass
class StationDriver:
    station: SimulatedStation
    profile: str
    http: Http
    rng: random.Random
    records: list[SessionRecord]
    clients: list[str]
    counter: list[int]  # shared: sessions the API accepted so far
    target: int
    log_event: Any

    def transaction_of(self, session_id: str) -> Transaction | None:
        for tx in self.station.transactions:
            if tx.id_tag == session_id:
                return tx
        return None

    async def run(self) -> None:
        while self.counter[0] < self.target:
            try:
                await self.one_session()
            except TimeoutError as exc:  # the API never answered: shown, and the run goes on
                self.http.stats[f"no answer within the driver's patience: {_route(str(exc))}"] += 1

    async def state(self, record: SessionRecord) -> str | None:
        assert record.session_id is not None
        response = await self.http.call(
            "GET", f"/api/v1/charging/{record.session_id}", client_id=record.client_id
        )
        if response.status_code != 200:
            return None
        return str(response.json().get("state"))

    async def wait_final(self, record: SessionRecord, patience_s: float) -> str | None:
        deadline = time.monotonic() + patience_s
        while time.monotonic() < deadline:
            state = await self.state(record)
            if state in FINAL_SESSION_STATES:
                return state
            await asyncio.sleep(2.0)
        return None

    async def one_session(self) -> None:
        number = len(self.records) + 1
        ending = self.rng.choices(list(ENDINGS), weights=list(ENDINGS.values()))[0]
        amount = (
            self.rng.randint(600, 1_400)
            if ending == "energy limit"
            else self.rng.randint(5_000, 20_000)
        )
        record = SessionRecord(
            number,
            self.station.station_id,
            self.rng.choice(self.clients),
            amount,
            ending,
            self.profile,
        )
        self.records.append(record)
        key = f"chaos-start-{self.station.station_id}-{number}-{self.rng.getrandbits(32):08x}"
        response = await self.http.call(
            "POST",
            "/api/v1/charging/start",
            client_id=record.client_id,
            key=key,
            body={"station_id": self.station.station_id, "connector_id": 1, "amount_tyiyn": amount},
        )
        record.start_status = response.status_code
        if response.status_code != 201:
            await asyncio.sleep(1.0)  # busy connector, client charging elsewhere...: next one
            return
        self.counter[0] += 1
        record.session_id = str(response.json()["session_id"])
        await self.drive(record)
        # The next session on this charger only after this one is final (or given up on).
        record.final_state = await self.wait_final(record, 900.0)
        self.log_event(
            f"session {self.counter[0]}/{self.target} {record.session_id} on "
            f"{self.station.station_id} ({self.profile}; {record.ending}): {record.final_state}"
        )
        if self.station.faults.silent_remote_start:
            self.station.faults.silent_remote_start = False

    async def drive(self, record: SessionRecord) -> None:
        assert record.session_id is not None
        session_id = record.session_id
        # A driver who sees nothing happen for a minute gives up and presses stop.
        deadline = time.monotonic() + START_PATIENCE_S
        polled = 0.0
        while True:
            tx = self.transaction_of(session_id)
            if tx is not None and tx.started:
                break
            if time.monotonic() > deadline:
                self.log_event(f"{session_id}: no start after {START_PATIENCE_S:.0f} s, stop")
                await self.stop_over_api(record)
                return
            if time.monotonic() - polled > 3.0:
                polled = time.monotonic()
                if await self.state(record) in FINAL_SESSION_STATES:
                    return
            await asyncio.sleep(0.3)
        target_wh = self.rng.randint(200, 1_500)
        with contextlib.suppress(TimeoutError):
            await self.station.wait_until(
                lambda: tx.energy_wh >= target_wh or tx.finished, timeout_s=60
            )
        if tx.finished or record.ending == "energy limit":
            return  # the gateway stops it at the limit
        if record.ending == "api stop":
            await self.stop_over_api(record)
        elif record.ending == "stop at the charger":
            await self.stop_at_charger()
        elif record.ending == "dropped mid-session, api stop":
            await self.station.drop_connection(reconnect_after_s=self.rng.uniform(0.5, 4.0))
            self.log_event(f"{self.station.station_id}: connection dropped mid-session")
            await self.stop_over_api(record)
        elif record.ending == "stop sent after reconnect":
            await self.station.drop_connection(reconnect_after_s=None)
            await self.stop_at_charger()
            await asyncio.sleep(self.rng.uniform(0.5, 5.0))
            self.station.reconnect()

    async def stop_at_charger(self) -> None:
        if self.station.active_transaction(1) is not None:  # not already stopped at its limit
            await self.station.stop_local_transaction(1, reason="EVDisconnected")

    async def stop_over_api(self, record: SessionRecord) -> None:
        await self.http.call(
            "POST",
            "/api/v1/charging/stop",
            client_id=record.client_id,
            key=f"chaos-stop-{record.session_id}",
            body={"session_id": record.session_id},
        )


@dataclass
class TopUpRecord:
    number: int
    client_id: str
    amount_tyiyn: int
    plan: str  # pay | pay twice at once | pay late | never pay | pay after expiry
    topup_id: str | None = None
    invoice_id: str | None = None
    create_status: int | None = None
    paid: bool = False
    pay_answers: list[int] = field(default_factory=list)


@dataclass
class TopUpDriver:
    http: Http
    rng: random.Random
    records: list[TopUpRecord]

    async def run(self, record: TopUpRecord, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        try:
            response = await self.http.call(
                "POST",
                "/api/v1/balance/topup-qr",
                client_id=record.client_id,
                key=f"chaos-topup-{record.number}-{record.client_id[:8]}",
                body={"amount_tyiyn": record.amount_tyiyn},
            )
        except TimeoutError:
            # Shown in the table; the checks still read every top-up the system has.
            self.http.stats["topup-qr: no answer within the driver's patience"] += 1
            return
        record.create_status = response.status_code
        if response.status_code != 201:
            return
        answer = response.json()
        record.topup_id, record.invoice_id = answer["topup_id"], answer["invoice_id"]
        if record.plan == "never pay":
            return
        if record.plan == "pay late":
            await asyncio.sleep(self.rng.uniform(20.0, 90.0))  # across the workflow's polls
        if record.plan == "pay after expiry":
            # Right around the expiry: racing the workflow's invoiceCancel (the provider
            # refuses to pay a cancelled invoice; one paid first must be credited).
            expires = datetime.fromisoformat(answer["expires_at"])
            left = expires.timestamp() - time.time()
            await asyncio.sleep(max(0.0, left + self.rng.uniform(-1.0, 3.0)))
        pays = 2 if record.plan == "pay twice at once" else 1
        try:
            await asyncio.gather(*(self.pay(record) for _ in range(pays)))
        except TimeoutError:
            self.http.stats["pay: no answer within the driver's patience"] += 1

    async def pay(self, record: TopUpRecord) -> None:
        response = await self.http.call(
            "POST",
            f"/simulator/odengi/invoices/{record.invoice_id}/pay",
            client_id=record.client_id,
        )
        record.pay_answers.append(response.status_code)
        self.http.stats[f"pay ({record.plan}): HTTP {response.status_code}"] += 1
        if response.status_code == 200:
            record.paid = True


def make_station(
    station_id: str, ws_url: str, profile: str, rng: random.Random, password: str
) -> SimulatedStation:
    fault_fields, config_fields = PROFILES[profile]
    from simulator import StationConfig

    config: dict[str, Any] = {
        "station_id": station_id,
        "url": f"{ws_url}/ocpp",
        "password": password,
        "meter_interval_s": 0.5,
        # 180-324 kW: fast, yet within what the meter check believes of a DC connector.
        "energy_per_sample_wh": rng.randint(25, 45),
        "meter_start_wh": rng.randint(0, 5_000_000),
        "reconnect_delay_s": 0.5,
        "response_timeout_s": 10.0,
        **config_fields,
    }
    return SimulatedStation(StationConfig(**config), FaultPlan(**fault_fields))
