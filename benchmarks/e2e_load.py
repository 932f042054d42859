"""What benchmarks/e2e.py drives: ChargingSession sessions through the real REST API on
simulated chargers, and the bare skeleton (benchmarks/e2e_skeleton.py) straight on Temporal.

Closed loops keep `in_flight` sessions going, each slot starting its next one as soon as its
last one has settled; the open loop starts sessions at a fixed rate whatever the system does.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from api.dev_tokens import issue_dev_token
from domain.contracts.charging import SessionView, charging_workflow_id
from simulator import SimulatedStation

AMOUNT_TYIYN = 20_000  # buys 13 kWh at 1,500 tyiyn/kWh: no session reaches its limit
POLL_S = 0.5  # how often a driver looks at its own simulated charger (in-process, no I/O)
RETRY_S = 1.0
# A driver whose car has not started charging this long after the app said yes stops the
# session (the workflow's own StartTransaction wait is 10 minutes).
START_PATIENCE_S = 60.0
START_ATTEMPTS = 120  # RETRY_S apart: a driver gives up starting after about two minutes
SKELETON_ATTEMPTS = 30


@dataclass(frozen=True)
class TimedStart:
    """A REST start as the driver saw it: first sent at `sent_at` (epoch s), answered 201
    `latency_s` later (over every attempt it took)."""

    session_id: str
    sent_at: float
    latency_s: float


@dataclass
class Tally:
    """What one phase saw: settled sessions with their end times, start latencies, answers."""

    settled_at: list[float] = field(default_factory=list)
    start_latency_s: list[float] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)
    session_ids: list[str] = field(default_factory=list)
    timed_starts: list[TimedStart] = field(default_factory=list)

    def settled_between(self, start: float, end: float) -> int:
        return sum(1 for moment in self.settled_at if start <= moment <= end)


@dataclass
class Driver:
    """One driver per client and charger: start over REST, charge, stop over REST, settled."""

    base_url: str
    jwt_secret: str
    http: httpx.AsyncClient
    temporal: Client
    hold_samples: int  # MeterValues the charger sends before the driver stops
    amount_tyiyn: int = AMOUNT_TYIYN
    _tokens: dict[str, str] = field(default_factory=dict)

    async def session(
        self, station: SimulatedStation, client_id: str, tally: Tally, hold_s: float = 0.0
    ) -> None:
        """One session; the driver stops it after `hold_samples` MeterValues and at least
        `hold_s` seconds of charging."""
        headers = {"Authorization": f"Bearer {self._token(client_id)}"}
        body = {
            "station_id": station.station_id,
            "connector_id": 1,
            "amount_tyiyn": self.amount_tyiyn,
        }
        key = uuid.uuid4().hex
        first_sent_at = time.time()  # a retried start joins the workflow the first one made
        for _ in range(START_ATTEMPTS):
            began = time.monotonic()
            response = await self._post(
                "/api/v1/charging/start", body, {**headers, "Idempotency-Key": key}, tally
            )
            tally.answers[f"start {response.status_code}{_code(response)}"] += 1
            if response.status_code == 201:
                tally.start_latency_s.append(time.monotonic() - began)
                break
            # An overloaded system (5xx, 429, the same key still being answered): the same
            # key again, as the app does, so an unanswered start is not made twice. A refusal
            # (a connector still busy with the last session) is remembered under its key:
            # a new attempt needs a new key.
            if not _ask_again(response):
                key = uuid.uuid4().hex
            await asyncio.sleep(RETRY_S)
        else:  # a charger that stays busy, say: the driver goes elsewhere, the run goes on
            tally.answers["start given up"] += 1
            return
        session_id = str(response.json()["session_id"])
        tally.session_ids.append(session_id)
        answered = time.time() - first_sent_at
        tally.timed_starts.append(TimedStart(session_id, first_sent_at, answered))
        # The simulator offers no event to wait on; looking at it costs no I/O.
        patience = time.monotonic() + START_PATIENCE_S
        while True:
            if self._charged_enough(station, session_id):
                await asyncio.sleep(hold_s)
                break
            if time.monotonic() > patience:  # the driver gives up and stops it
                tally.answers["no charging within the driver's patience"] += 1
                break
            await asyncio.sleep(POLL_S)
        while True:
            response = await self._post(
                "/api/v1/charging/stop", {"session_id": session_id}, headers, tally
            )
            tally.answers[f"stop {response.status_code}"] += 1
            if response.status_code < 500 and response.status_code != 429:
                break  # 202, or the session had ended already (4xx)
            await asyncio.sleep(RETRY_S)
        handle = self.temporal.get_workflow_handle(
            charging_workflow_id(session_id), result_type=SessionView
        )
        try:
            view = await handle.result()
        except Exception as exc:  # counted, not settled: the run goes on
            tally.answers[f"result {type(exc).__name__}"] += 1
            return
        tally.answers[f"settled {view.state}"] += 1
        tally.settled_at.append(time.monotonic())

    async def _post(
        self, path: str, body: dict[str, Any], headers: dict[str, str], tally: Tally
    ) -> httpx.Response:
        """POST, again on a transport error (a keep-alive connection the server closed as
        it was reused): start carries its Idempotency-Key, stop is idempotent."""
        while True:
            try:
                return await self.http.post(self.base_url + path, json=body, headers=headers)
            except httpx.TransportError as exc:
                tally.answers[f"{path.rsplit('/', 1)[-1]} {type(exc).__name__}"] += 1
                await asyncio.sleep(RETRY_S)

    def _token(self, client_id: str) -> str:
        # One token per driver, as an app keeps its session: signing is not what is measured.
        token = self._tokens.get(client_id)
        if token is None:
            token = self._tokens[client_id] = issue_dev_token(self.jwt_secret, client_id)
        return token

    def _charged_enough(self, station: SimulatedStation, session_id: str) -> bool:
        for tx in reversed(station.transactions):
            if tx.id_tag == session_id:
                return tx.started and tx.samples_sent >= self.hold_samples
        return False


async def closed_loop(
    one: Callable[[int], Awaitable[None]], in_flight: int, duration_s: float
) -> tuple[float, float]:
    """`in_flight` slots each run `one(slot)` back to back until `duration_s` has passed;
    returns the window (monotonic start, end) in which every slot was busy."""
    stop_at = time.monotonic() + duration_s

    async def slot(index: int) -> None:
        while time.monotonic() < stop_at:
            await one(index)

    started = time.monotonic()
    await asyncio.gather(*(slot(index) for index in range(in_flight)))
    return started, stop_at


async def open_loop(
    one: Callable[[int], Coroutine[Any, Any, None]], rate_per_s: float, duration_s: float
) -> int:
    """Start `one(n)` every 1/rate seconds for `duration_s`, never waiting for the earlier
    ones; returns how many were started. Waits for all of them at the end."""
    tasks: list[asyncio.Task[None]] = []
    began = time.monotonic()
    number = 0
    while time.monotonic() - began < duration_s:
        tasks.append(asyncio.create_task(one(number)))
        number += 1
        await asyncio.sleep(max(0.0, began + number / rate_per_s - time.monotonic()))
    await asyncio.gather(*tasks)
    return number


@dataclass
class SkeletonDriver:
    """The same conversation as a session, straight to Temporal: update-with-start `start`
    (the api), update `transaction_started` (the gateway), the same hold, update `stop`
    (the api), signal `transaction_stopped` (the gateway), then the result."""

    temporal: Client
    task_queue: str
    hold_s: float
    workflow_name: str  # benchmarks/e2e_skeleton.py's WORKFLOW_NAME or BARE_WORKFLOW_NAME

    async def session(self, tally: Tally) -> None:
        workflow_id = f"skeleton-{uuid.uuid4().hex}"
        began = time.monotonic()

        async def start() -> Any:
            # An operation is used once: each attempt gets its own (USE_EXISTING makes a
            # repeated start the same workflow, as the api's start is).
            operation: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
                self.workflow_name,
                workflow_id,
                id=workflow_id,
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
            return await self.temporal.execute_update_with_start_workflow(
                "start", workflow_id, start_workflow_operation=operation
            )

        handle = self.temporal.get_workflow_handle(workflow_id)
        try:
            await _again(start, tally, "start")
            tally.start_latency_s.append(time.monotonic() - began)
            tally.session_ids.append(workflow_id)
            await _again(lambda: handle.execute_update("transaction_started", 1), tally, "tx")
            # The first sample is signalled, as in a session.
            await _again(lambda: handle.signal("meter_sample", 500), tally, "sample")
            await asyncio.sleep(self.hold_s)
            await _again(lambda: handle.execute_update("stop", workflow_id), tally, "stop")
            await _again(lambda: handle.signal("transaction_stopped", 1_000), tally, "stopped")
            await handle.result()
        except Exception as exc:  # counted, not settled: the run goes on
            tally.answers[f"failed {type(exc).__name__}"] += 1
            return
        tally.answers["settled"] += 1
        tally.settled_at.append(time.monotonic())


async def _again(call: Callable[[], Awaitable[Any]], tally: Tally, what: str) -> Any:
    """A Temporal call, again after an overloaded server's timeout (as the api's callers
    do after its 503); updates and signals of the skeleton are safe to repeat."""
    for _ in range(SKELETON_ATTEMPTS - 1):
        try:
            return await call()
        except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
            tally.answers[f"{what} {type(exc).__name__}"] += 1
            await asyncio.sleep(RETRY_S)
    return await call()


def _code(response: httpx.Response) -> str:
    """` error_code` of an error answer, else nothing."""
    if response.status_code < 400:
        return ""
    try:
        return f" {response.json()['error']['code']}"
    except (ValueError, KeyError, TypeError):
        return " ?"


def _ask_again(response: httpx.Response) -> bool:
    if response.status_code >= 500 or response.status_code == 429:
        return True
    return response.status_code == 409 and _code(response) == " idempotency_in_progress"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_summary(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50_ms": percentile(values, 0.50) * 1000,
        "p99_ms": percentile(values, 0.99) * 1000,
        "max_ms": max(values, default=float("nan")) * 1000,
    }
