"""The charging API over HTTP against the real database and the Temporal dev server."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime

import pytest
import structlog.testing
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.deps import ApiConfig, ApiContext
from api.v1.charging_schemas import StartCharging
from api.v1.charging_service import ChargingService
from domain.contracts.session_signals import (
    TRANSACTION_STARTED,
    TransactionStarted,
    TransactionStopped,
)
from domain.errors import InsufficientFunds
from domain.sessions import FINAL_STATES
from tests.charging.api_world import ApiWorld, api_world
from workflows.charging import ChargingSessionWorkflow

pytestmark = pytest.mark.integration


@pytest.fixture
async def world(db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment):
    async with api_world(db_sessions, temporal_env.client) as built:
        yield built


async def until_state(world: ApiWorld, session_id: str, *states: str) -> None:
    handle = world.handle(session_id)
    for _ in range(500):
        view = await handle.query(ChargingSessionWorkflow.state)
        if view.state in states:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"session {session_id} never reached {states}")


async def until_recorded_final(world: ApiWorld, session_id: str) -> None:
    for _ in range(500):
        record = await world.record(session_id)
        if record is not None and record.state in FINAL_STATES:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"session {session_id} was never recorded final")


async def test_start_charge_stop_settles_exactly_and_reads_live_then_final(world: ApiWorld) -> None:
    client = await world.new_client(50_000)
    await world.add_station("API-1")

    started = await world.start(client, "API-1", 10_000)
    assert started.status_code == 201, started.text
    body = started.json()
    session_id = body["session_id"]
    assert (body["state"], body["reserved_tyiyn"], body["price_tyiyn_per_kwh"]) == (
        "pending",
        10_000,
        1_500,
    )
    assert (body["energy_limit_wh"], body["reserved"]) == (6_666, "100.00")
    assert await world.held(client) == (40_000, 10_000)
    record = await world.record(session_id)
    assert record is not None and record.state == "pending"
    # Every answer carries the same creation time, from the first one on.
    created_at = body["created_at"]
    assert created_at is not None and datetime.fromisoformat(created_at) == record.created_at

    await until_state(world, session_id, "starting")
    assert world.gateway.starts[0].id_tag == session_id
    transaction_id = await world.store_transaction(
        session_id, "API-1", 100_000, [100_000, 101_000, 103_000]
    )
    await world.handle(session_id).execute_update(
        TRANSACTION_STARTED,
        TransactionStarted(transaction_id, "API-1", 1, 100_000, datetime.now(UTC)),
        result_type=str,
    )
    await until_state(world, session_id, "charging")

    live = await world.http.get(
        f"/api/v1/charging/{session_id}", headers=world.client_headers(client)
    )
    assert live.status_code == 200
    assert live.json()["created_at"] == created_at
    assert (live.json()["state"], live.json()["energy_wh"], live.json()["cost_tyiyn"]) == (
        "charging",
        3_000,
        4_500,
    )

    world.gateway.stop_answers[session_id] = TransactionStopped(
        transaction_id, 103_457, 3_457, datetime.now(UTC), "Remote"
    )
    stop = await world.http.post(
        "/api/v1/charging/stop",
        json={"session_id": session_id},
        headers=world.client_headers(client, key=str(uuid.uuid4())),
    )
    assert stop.status_code == 202, stop.text
    assert stop.json()["state"] in {"stopping", "completed"}
    assert stop.json()["created_at"] == created_at
    assert stop.json()["energy_wh"] >= 3_000  # live from the meter, not the throttled signals
    await until_recorded_final(world, session_id)

    final = await world.http.get(
        f"/api/v1/charging/{session_id}", headers=world.client_headers(client)
    )
    assert final.json()["state"] == "completed"
    assert final.json()["created_at"] == created_at
    # ceil(3457 x 1500 / 1000) = 5186 captured, the rest of the 10000 released
    assert (final.json()["cost_tyiyn"], final.json()["refunded_tyiyn"]) == (5_186, 4_814)
    assert (final.json()["energy_wh"], final.json()["stop_reason"]) == (3_457, "user")
    assert await world.held(client) == (50_000 - 5_186, 0)

    listed = await world.http.get("/api/v1/charging", headers=world.client_headers(client))
    assert [item["session_id"] for item in listed.json()["items"]] == [session_id]


async def test_insufficient_funds_is_402_and_reserves_nothing(world: ApiWorld) -> None:
    client = await world.new_client(5_000)
    await world.add_station("API-2")
    refused = await world.start(client, "API-2", 10_000)
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "insufficient_funds"
    assert await world.held(client) == (5_000, 0)
    assert await world.records_of(client) == []


@pytest.mark.parametrize(
    ("station", "amount", "status", "code"),
    [
        ("OFFLINE", 10_000, 409, "station_offline"),
        ("NOWHERE", 10_000, 404, "station_not_found"),
        ("API-3", 10, 422, "invalid_amount"),
        ("FAULTED", 10_000, 409, "connector_unavailable"),
    ],
)
async def test_refused_starts_say_why_and_change_nothing(
    world: ApiWorld, station: str, amount: int, status: int, code: str
) -> None:
    client = await world.new_client(50_000)
    await world.add_station("API-3")
    await world.add_station("OFFLINE", online=False)
    await world.add_station("FAULTED", status="Faulted")
    refused = await world.start(client, station, amount)
    assert (refused.status_code, refused.json()["error"]["code"]) == (status, code)
    assert await world.held(client) == (50_000, 0)
    assert await world.records_of(client) == []


async def test_a_busy_connector_is_409_for_others_and_for_the_owner(
    world: ApiWorld, caplog: pytest.LogCaptureFixture
) -> None:
    owner, other = await world.new_client(50_000), await world.new_client(50_000)
    await world.add_station("API-4")
    first = await world.start(owner, "API-4", 10_000)
    assert first.status_code == 201
    caplog.set_level(logging.DEBUG, logger="temporalio.activity")
    with structlog.testing.capture_logs() as events:
        again = await world.start(owner, "API-4", 10_000)
        taken = await world.start(other, "API-4", 10_000)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_charging")
    assert (taken.status_code, taken.json()["error"]["code"]) == (409, "connector_busy")
    assert await world.held(owner) == (40_000, 10_000)
    assert await world.held(other) == (50_000, 0)
    # A refusal is one info line with its code, not a failure with a traceback.
    refusals = [(e["log_level"], e["code"]) for e in events if e["event"] == "refused"]
    assert refusals == [("info", "already_charging"), ("info", "connector_busy")]
    failures = [
        r.getMessage()
        for r in caplog.records
        if r.name == "temporalio.activity" and r.levelno >= logging.WARNING
    ]
    assert failures == []


async def test_insufficient_funds_is_a_refusal_in_the_log(
    world: ApiWorld, caplog: pytest.LogCaptureFixture
) -> None:
    client = await world.new_client(5_000)
    await world.add_station("API-9")
    caplog.set_level(logging.DEBUG, logger="temporalio.activity")
    with structlog.testing.capture_logs() as events:
        refused = await world.start(client, "API-9", 10_000)
    assert refused.json()["error"]["code"] == "insufficient_funds"
    assert [e["code"] for e in events if e["event"] == "refused"] == ["insufficient_funds"]
    assert not [
        r
        for r in caplog.records
        if r.name == "temporalio.activity" and r.levelno >= logging.WARNING
    ]


async def test_someone_elses_session_is_404_to_read_and_to_stop(world: ApiWorld) -> None:
    owner, stranger = await world.new_client(50_000), await world.new_client(0)
    await world.add_station("API-5")
    session_id = (await world.start(owner, "API-5", 10_000)).json()["session_id"]
    stop = await world.http.post(
        "/api/v1/charging/stop",
        json={"session_id": session_id},
        headers=world.client_headers(stranger, key="k1"),
    )
    read = await world.http.get(
        f"/api/v1/charging/{session_id}", headers=world.client_headers(stranger)
    )
    missing = await world.http.get(
        "/api/v1/charging/nosuchsession", headers=world.client_headers(stranger)
    )
    assert (stop.status_code, read.status_code, missing.status_code) == (404, 404, 404)
    await until_state(world, session_id, "starting")  # the owner's session is untouched


async def test_the_same_idempotency_key_reaches_the_same_session(world: ApiWorld) -> None:
    client = await world.new_client(50_000)
    await world.add_station("API-6")
    service = ChargingService(
        ApiContext(world.db_sessions, world.temporal, ApiConfig(task_queue=world.task_queue))
    )
    body = StartCharging(station_id="API-6", connector_id=1, amount_tyiyn=10_000)
    first = await service.start(client, body, "same-key")
    second = await service.start(client, body, "same-key")
    assert first.session_id == second.session_id
    assert await world.held(client) == (40_000, 10_000)  # reserved once
    assert len(world.gateway.starts) <= 1


async def test_sessions_list_newest_first_in_pages(world: ApiWorld) -> None:
    client = await world.new_client(100_000)
    await world.add_station("API-7", connectors=3)
    ids = []
    for connector_id in (1, 2, 3):
        response = await world.start(client, "API-7", 10_000, connector_id=connector_id)
        assert response.status_code == 201
        ids.append(response.json()["session_id"])
    headers = world.client_headers(client)
    first = (await world.http.get("/api/v1/charging?limit=2", headers=headers)).json()
    cursor = first["next_cursor"]
    second = (
        await world.http.get(f"/api/v1/charging?limit=2&cursor={cursor}", headers=headers)
    ).json()
    listed = [item["session_id"] for item in first["items"] + second["items"]]
    assert listed == list(reversed(ids))
    assert second["next_cursor"] is None
    bad = await world.http.get("/api/v1/charging?cursor=garbage", headers=headers)
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_cursor")


async def test_a_finished_session_answers_retries_and_stops_from_its_record(
    world: ApiWorld,
) -> None:
    client = await world.new_client(50_000)
    await world.add_station("API-8")
    world.gateway.start_status = "Rejected"
    service = ChargingService(
        ApiContext(world.db_sessions, world.temporal, ApiConfig(task_queue=world.task_queue))
    )
    body = StartCharging(station_id="API-8", connector_id=1, amount_tyiyn=10_000)
    first = await service.start(client, body, "key-8")
    await world.handle(first.session_id).result()  # RemoteStart rejected: failed_to_start

    retried = await service.start(client, body, "key-8")
    stop = await world.http.post(
        "/api/v1/charging/stop",
        json={"session_id": first.session_id},
        headers=world.client_headers(client, key="stop-8"),
    )
    assert retried.session_id == first.session_id
    assert (retried.state, retried.stop_reason) == ("failed_to_start", "start_rejected")
    assert (stop.status_code, stop.json()["state"]) == (202, "failed_to_start")
    assert await world.held(client) == (50_000, 0)


async def test_a_refused_start_retried_with_its_key_is_refused_the_same_way(
    world: ApiWorld,
) -> None:
    client = await world.new_client(1_000)
    await world.add_station("API-9")
    service = ChargingService(
        ApiContext(world.db_sessions, world.temporal, ApiConfig(task_queue=world.task_queue))
    )
    body = StartCharging(station_id="API-9", connector_id=1, amount_tyiyn=10_000)
    for _ in range(2):
        with pytest.raises(InsufficientFunds):
            await service.start(client, body, "key-9")
        await asyncio.sleep(0.2)  # the second try finds the workflow closed, or closing


async def test_a_glitch_sample_shows_as_neither_energy_nor_cost_while_charging(
    world: ApiWorld,
) -> None:
    client = await world.new_client(50_000)
    await world.add_station("API-GLITCH")
    started = await world.start(client, "API-GLITCH", 10_000)
    assert started.status_code == 201, started.text
    session_id = started.json()["session_id"]
    await until_state(world, session_id, "starting")
    # The newest stored register is an absurd jump: the live answer keeps to what can be true.
    transaction_id = await world.store_transaction(
        session_id, "API-GLITCH", 100_000, [101_000, 999_999_999]
    )
    await world.handle(session_id).execute_update(
        TRANSACTION_STARTED,
        TransactionStarted(transaction_id, "API-GLITCH", 1, 100_000, datetime.now(UTC)),
        result_type=str,
    )
    await until_state(world, session_id, "charging")
    live = await world.http.get(
        f"/api/v1/charging/{session_id}", headers=world.client_headers(client)
    )
    assert (live.json()["energy_wh"], live.json()["cost_tyiyn"]) == (1_000, 1_500)
