"""Receipts over HTTP on the real database and Temporal dev server: a settled session's
receipt says exactly what the ledger moved, only to its owner, only once it is final."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.v1.receipt_page import RECEIPT_PAGE_CSP
from db.models import LedgerEntry, Location, Station
from domain.contracts.session_signals import (
    TRANSACTION_STARTED,
    TransactionStarted,
    TransactionStopped,
)
from domain.sessions import FINAL_STATES
from tests.charging.api_world import ApiWorld, api_world
from workflows.charging import ChargingSessionWorkflow

pytestmark = pytest.mark.integration

HOSTILE = "<script>alert('x')</script> & \"Quote\""


@pytest.fixture
async def world(db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment):
    async with api_world(db_sessions, temporal_env.client) as built:
        yield built


async def until_state(world: ApiWorld, session_id: str, *states: str) -> None:
    handle = world.handle(session_id)
    for _ in range(500):
        if (await handle.query(ChargingSessionWorkflow.state)).state in states:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"session {session_id} never reached {states}")


async def charging_session(world: ApiWorld, client: str, station_id: str) -> tuple[str, int]:
    started = await world.start(client, station_id, 10_000)
    assert started.status_code == 201, started.text
    session_id: str = started.json()["session_id"]
    await until_state(world, session_id, "starting")
    transaction_id = await world.store_transaction(session_id, station_id, 100_000, [101_000])
    await world.handle(session_id).execute_update(
        TRANSACTION_STARTED,
        TransactionStarted(transaction_id, station_id, 1, 100_000, datetime.now(UTC)),
        result_type=str,
    )
    await until_state(world, session_id, "charging")
    return session_id, transaction_id


async def settle(world: ApiWorld, client: str, session_id: str, transaction_id: int) -> None:
    world.gateway.stop_answers[session_id] = TransactionStopped(
        transaction_id, 103_457, 3_457, datetime.now(UTC), "Remote"
    )
    stop = await world.http.post(
        "/api/v1/charging/stop",
        json={"session_id": session_id},
        headers=world.client_headers(client, key=str(uuid.uuid4())),
    )
    assert stop.status_code == 202, stop.text
    for _ in range(500):
        record = await world.record(session_id)
        if record is not None and record.state in FINAL_STATES:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"session {session_id} was never recorded final")


async def ledger_entries(world: ApiWorld, session_id: str) -> dict[str, LedgerEntry]:
    async with world.db_sessions() as session:
        rows = await session.scalars(select(LedgerEntry).where(LedgerEntry.reference == session_id))
        return {row.operation: row for row in rows}


async def test_a_completed_sessions_receipt_is_the_ledgers_money(world: ApiWorld) -> None:
    client = await world.new_client(50_000)
    await world.add_station("RCPT-1")
    async with world.db_sessions() as session, session.begin():
        session.add(Location(id="LOC-R", name="Ala-Too", address="Chui 1", city="Bishkek"))
        await session.flush()
        await session.execute(
            update(Station)
            .where(Station.id == "RCPT-1")
            .values(location_id="LOC-R", name="Square charger")
        )
    session_id, transaction_id = await charging_session(world, client, "RCPT-1")

    live = await world.http.get(
        f"/api/v1/charging/{session_id}/receipt", headers=world.client_headers(client)
    )
    assert live.status_code == 409
    assert live.json()["error"]["code"] == "session_not_final"

    await settle(world, client, session_id, transaction_id)
    answer = await world.http.get(
        f"/api/v1/charging/{session_id}/receipt", headers=world.client_headers(client)
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    receipt = answer.json()
    ledger = await ledger_entries(world, session_id)
    assert set(ledger) == {"reserve", "capture", "release"}
    reserved, captured = ledger["reserve"].amount_tyiyn, ledger["capture"].amount_tyiyn
    assert receipt["reserved_tyiyn"] == reserved == 10_000
    assert receipt["cost_tyiyn"] == captured == 5_186  # ceil(3457 x 1500 / 1000)
    assert receipt["refunded_tyiyn"] == reserved - captured == ledger["release"].amount_tyiyn
    assert (receipt["reserved"], receipt["cost"], receipt["refunded"]) == (
        "100.00",
        "51.86",
        "48.14",
    )
    assert [(e["operation"], e["entry_id"], e["op_key"]) for e in receipt["ledger_entries"]] == [
        (op, ledger[op].id, f"{op}:{session_id}") for op in ("reserve", "capture", "release")
    ]
    assert (receipt["energy_wh"], receipt["energy_kwh"]) == (3_457, "3.457")
    assert receipt["tariff"] == {
        "price_tyiyn_per_kwh": 1_500,
        "price_per_kwh": "15.00",
        "currency": "KGS",
    }
    assert receipt["station"] == {
        "station_id": "RCPT-1",
        "name": "Square charger",
        "location": "Ala-Too",
        "address": "Chui 1, Bishkek",
    }
    assert (receipt["state"], receipt["connector_id"], receipt["time_zone"]) == (
        "completed",
        1,
        "Asia/Bishkek",
    )
    for moment in (receipt["started_at"], receipt["stopped_at"]):
        utc, local = datetime.fromisoformat(moment["utc"]), datetime.fromisoformat(moment["local"])
        assert utc == local
        assert (utc.utcoffset(), local.utcoffset()) == (timedelta(0), timedelta(hours=6))
    # The balance agrees with the receipt.
    assert await world.held(client) == (50_000 - receipt["cost_tyiyn"], 0)


async def test_a_receipt_is_for_its_owner_only(world: ApiWorld) -> None:
    owner = await world.new_client(50_000)
    other = await world.new_client(50_000)
    await world.add_station("RCPT-2")
    session_id, transaction_id = await charging_session(world, owner, "RCPT-2")
    await settle(world, owner, session_id, transaction_id)

    foreign = await world.http.get(
        f"/api/v1/charging/{session_id}/receipt", headers=world.client_headers(other)
    )
    unknown = await world.http.get(
        "/api/v1/charging/aaaaaaaaaaaaaaaa/receipt", headers=world.client_headers(owner)
    )
    anonymous = await world.http.get(f"/api/v1/charging/{session_id}/receipt")
    for answer in (foreign, unknown):
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "session_not_found"
    assert foreign.json()["error"]["message"] != ""  # says nothing about whose it is
    assert anonymous.status_code == 401


async def test_the_html_receipt_escapes_what_the_station_is_called(world: ApiWorld) -> None:
    client = await world.new_client(50_000)
    await world.add_station("RCPT-3")
    async with world.db_sessions() as session, session.begin():
        session.add(Location(id="LOC-H", name=HOSTILE, address="<b>street</b>", city="&"))
        await session.flush()
        await session.execute(
            update(Station).where(Station.id == "RCPT-3").values(location_id="LOC-H", name=HOSTILE)
        )
    session_id, transaction_id = await charging_session(world, client, "RCPT-3")
    await settle(world, client, session_id, transaction_id)

    by_accept = await world.http.get(
        f"/api/v1/charging/{session_id}/receipt",
        headers={**world.client_headers(client), "Accept": "text/html,*/*;q=0.8"},
    )
    by_query = await world.http.get(
        f"/api/v1/charging/{session_id}/receipt?format=html", headers=world.client_headers(client)
    )
    for answer in (by_accept, by_query):
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.headers["content-security-policy"] == RECEIPT_PAGE_CSP
        assert answer.headers["cache-control"] == "no-store"
        page = answer.text
        assert "<script>" not in page and "<b>street" not in page
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;Quote&quot;" in page
        assert "51.86 KGS" in page and "3.457 kWh" in page
        ledger = await ledger_entries(world, session_id)
        assert all(f"<td>{entry.id}</td>" in page for entry in ledger.values())
        assert "http://" not in page and "https://" not in page  # nothing loaded from elsewhere
    # JSON stays the default for API clients.
    plain = await world.http.get(
        f"/api/v1/charging/{session_id}/receipt",
        headers={**world.client_headers(client), "Accept": "*/*"},
    )
    assert plain.headers["content-type"].startswith("application/json")
    assert plain.json()["station"]["name"] == HOSTILE
