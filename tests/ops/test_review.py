"""The review queue on the real stack (PostgreSQL, the Temporal dev server, the API over HTTP,
a worker running Review): listing, who may resolve, a refund within the capture, a credit
defaulting to the provider's amount, a double click that pays once, refusals that change
nothing, and an audit row for each request."""

from __future__ import annotations

import asyncio
import os
import uuid

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from activities.ledger import Ledger
from db.models import (
    ChargingSessionRecord,
    LedgerEntry,
    ProviderTransaction,
    ReviewResolution,
    TopUp,
)
from domain.contracts.search_attributes import CLIENT_ID, STATION_ID
from tests.ledger.invariants import assert_ledger_invariants
from tests.ops.conftest import audit_rows
from tests.ops.review_items import CAPTURED, session_in_review, topup_in_review
from tests.ops.stack import add_station, headers, ops_stack
from tests.replay.recording import write_fixture

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUEUE = "/api/v1/ops/review"


async def _entries(db_sessions: async_sessionmaker[AsyncSession], prefix: str) -> list[LedgerEntry]:
    async with db_sessions() as session:
        return list(
            await session.scalars(select(LedgerEntry).where(LedgerEntry.op_key.startswith(prefix)))
        )


async def test_the_queue_and_a_refund_that_moves_money_once(
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_env: WorkflowEnvironment,
    engine: AsyncEngine,
) -> None:
    station_id = f"RV-{uuid.uuid4().hex[:6]}"
    driver, payer = str(uuid.uuid4()), str(uuid.uuid4())
    await add_station(db_sessions, station_id)
    session_id = await session_in_review(db_sessions, station_id, driver)
    topup_id = await topup_in_review(db_sessions, payer, 9_000)
    ledger = Ledger(db_sessions)
    before = await ledger.balance(driver)
    async with (
        ops_stack(db_sessions, temporal_env.client) as stack,
        httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http,
    ):
        listed = await http.get(QUEUE, headers=headers("operator"))
        assert listed.status_code == 200, listed.text
        items = {item["kind"]: item for item in listed.json()["items"]}
        assert items["session"]["item_id"] == session_id
        assert items["session"]["why"] == "implausible_step"
        assert (items["session"]["captured_tyiyn"], items["session"]["held_tyiyn"]) == (CAPTURED, 0)
        assert items["topup"]["item_id"] == topup_id
        assert items["topup"]["why"] == "amount mismatch"
        assert (items["topup"]["amount_tyiyn"], items["topup"]["confirmed_tyiyn"]) == (
            10_000,
            9_000,
        )

        path = f"{QUEUE}/session/{session_id}"
        body = {"decision": "refund", "amount_tyiyn": 2_000, "reason": "meter glitch, refund"}
        # Only admins resolve; an operator's or a client's attempt changes nothing.
        assert (await http.post(path, json=body, headers=headers("operator"))).status_code == 403
        assert (await http.post(path, json=body, headers=headers("client"))).status_code == 403
        assert (await http.post(path, json=body, headers=headers("none"))).status_code == 401
        too_much = await http.post(
            path, json={**body, "amount_tyiyn": CAPTURED + 1}, headers=headers("admin")
        )
        assert too_much.status_code == 422, too_much.text
        assert too_much.json()["error"]["code"] == "refund_exceeds_capture"
        wrong = await http.post(path, json={**body, "decision": "credit"}, headers=headers("admin"))
        assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "decision_not_allowed"
        assert await _entries(db_sessions, "review:") == []

        # A double click: two admins' requests at once, one refund.
        first, second = await asyncio.gather(
            http.post(path, json=body, headers=headers("admin")),
            http.post(path, json=body, headers=headers("admin")),
        )
        assert first.status_code == second.status_code == 200, (first.text, second.text)
        assert first.json()["entry_id"] == second.json()["entry_id"] is not None
        assert first.json()["op_key"] == f"review:session:{session_id}:refund"
        again = await http.post(path, json=body, headers=headers("admin"))
        assert again.status_code == 200 and again.json()["replayed"] is True
        other = await http.post(
            path, json={"decision": "close", "reason": "changed my mind"}, headers=headers("admin")
        )
        assert other.status_code == 409 and other.json()["error"]["code"] == "already_resolved"

        listed = await http.get(QUEUE, headers=headers("operator"))
        assert [item["kind"] for item in listed.json()["items"]] == ["topup"]
        if os.environ.get("EVPOWER_RECORD_HISTORIES") == "1":
            # The last run is the already-resolved one; the run before it paid.
            handle = stack.temporal.get_workflow_handle(f"review:session:{session_id}")
            write_fixture(await handle.fetch_history(), "review_session_refund_replayed")
        description = await stack.temporal.get_workflow_handle(
            f"review:session:{session_id}"
        ).describe()
        # Beside the session in the Temporal UI: the same client and station.
        found = description.typed_search_attributes
        assert (found.get(CLIENT_ID), found.get(STATION_ID)) == (driver, station_id)

    refunds = await _entries(db_sessions, "review:")
    assert [(e.operation, e.amount_tyiyn, e.client_id) for e in refunds] == [
        ("refund", 2_000, driver)
    ]
    after = await ledger.balance(driver)
    assert after.available_tyiyn == before.available_tyiyn + 2_000
    async with db_sessions() as session:
        record = await session.get(ChargingSessionRecord, session_id)
        resolution = await session.get(ReviewResolution, ("session", session_id))
    assert record is not None and record.state == "reviewed"
    assert resolution is not None and resolution.reason == "meter glitch, refund"
    await assert_ledger_invariants(engine)
    path = f"{QUEUE}/session/{session_id}"
    audited = await audit_rows(db_sessions)
    lists = [row for row in audited if row.action == "review.list"]
    assert [row.result for row in lists] == [{"items": 2}, {"items": 1}]
    rows = [row for row in audited if row.path == path]
    assert [(row.role, row.status_code) for row in rows] == [
        ("operator", 403),
        ("client", 403),
        (None, 401),
        *[("admin", status) for status in (422, 422, 200, 200, 200, 409)],
    ]
    handled = rows[3:]
    assert [row.action for row in handled] == [
        "review.refund",
        "review.credit",
        "review.refund",
        "review.refund",
        "review.refund",
        "review.close",
    ]
    assert all(row.reason and row.target == f"session:{session_id}" for row in handled)
    assert handled[2].result is not None and handled[2].result["entry_id"] == refunds[0].id


async def test_a_topup_credit_defaults_to_what_the_provider_confirmed(
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_env: WorkflowEnvironment,
    engine: AsyncEngine,
) -> None:
    payer, other = str(uuid.uuid4()), str(uuid.uuid4())
    topup_id = await topup_in_review(db_sessions, payer, 9_000)
    closed_id = await topup_in_review(db_sessions, other, 4_000)
    async with db_sessions() as session, session.begin():
        # A webhook's receipt not settled yet: after the review nothing credits it on its own.
        session.add(
            ProviderTransaction(
                provider="SIMULATED",
                trans_id=f"late-{closed_id}",
                topup_id=closed_id,
                status="received",
                amount_tyiyn=4_000,
                currency="KGS",
            )
        )
    async with (
        ops_stack(db_sessions, temporal_env.client) as stack,
        httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http,
    ):
        credited = await http.post(
            f"{QUEUE}/topup/{topup_id}",
            json={"decision": "credit", "reason": "provider confirmed 90 som by phone"},
            headers=headers("admin"),
        )
        assert credited.status_code == 200, credited.text
        assert credited.json()["amount_tyiyn"] == 9_000
        closed = await http.post(
            f"{QUEUE}/topup/{closed_id}",
            json={"decision": "close", "reason": "refunded by the provider"},
            headers=headers("admin"),
        )
        assert closed.status_code == 200 and closed.json()["entry_id"] is None
        if os.environ.get("EVPOWER_RECORD_HISTORIES") == "1":
            for item, name in ((topup_id, "credit"), (closed_id, "close")):
                handle = stack.temporal.get_workflow_handle(f"review:topup:{item}")
                write_fixture(await handle.fetch_history(), f"review_topup_{name}")
        missing = await http.post(
            f"{QUEUE}/topup/nope",
            json={"decision": "close", "reason": "no such thing"},
            headers=headers("admin"),
        )
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "review_item_not_found"
        # Resolved: no longer in review, so a later decision is refused.
        late = await http.post(
            f"{QUEUE}/topup/{closed_id}",
            json={"decision": "credit", "amount_tyiyn": 4_000, "reason": "oops"},
            headers=headers("admin"),
        )
        assert late.status_code == 409
    ledger = Ledger(db_sessions)
    assert (await ledger.balance(payer)).available_tyiyn == 1 + 9_000
    assert (await ledger.balance(other)).available_tyiyn == 1
    async with db_sessions() as session:
        transaction = await session.scalar(
            select(ProviderTransaction).where(ProviderTransaction.topup_id == topup_id)
        )
        states = {
            row.id: row.state
            for row in await session.scalars(
                select(TopUp).where(TopUp.id.in_([topup_id, closed_id]))
            )
        }
        receipt = await session.get(ProviderTransaction, ("SIMULATED", f"late-{closed_id}"))
    assert transaction is not None and transaction.credited_entry_id == credited.json()["entry_id"]
    assert states == {topup_id: "reviewed", closed_id: "reviewed"}
    assert receipt is not None and (receipt.status, receipt.credited_entry_id) == ("review", None)
    await assert_ledger_invariants(engine)


async def test_a_session_whose_settlement_failed_gets_its_reservation_released(
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_env: WorkflowEnvironment,
    engine: AsyncEngine,
) -> None:
    station_id = f"RL-{uuid.uuid4().hex[:6]}"
    driver = str(uuid.uuid4())
    await add_station(db_sessions, station_id)
    session_id = await session_in_review(db_sessions, station_id, driver, settled=False)
    path = f"{QUEUE}/session/{session_id}"
    async with (
        ops_stack(db_sessions, temporal_env.client) as stack,
        httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http,
    ):
        listed = (await http.get(QUEUE, headers=headers("operator"))).json()["items"]
        assert [(i["why"], i["captured_tyiyn"], i["held_tyiyn"]) for i in listed] == [
            ("settlement_or_step_failed", 0, 10_000)
        ]
        refund = await http.post(
            path, json={"decision": "refund", "reason": "nothing taken"}, headers=headers("admin")
        )
        assert refund.status_code == 409 and refund.json()["error"]["code"] == "nothing_to_refund"
        too_much = await http.post(
            path,
            json={"decision": "release", "amount_tyiyn": 10_001, "reason": "free it"},
            headers=headers("admin"),
        )
        assert too_much.status_code == 422
        assert too_much.json()["error"]["code"] == "release_exceeds_held"
        released = await http.post(
            path, json={"decision": "release", "reason": "free it"}, headers=headers("admin")
        )
        assert released.status_code == 200, released.text
        assert released.json()["op_key"] == f"review:session:{session_id}:release"
        assert released.json()["amount_tyiyn"] == 10_000
    balance = await Ledger(db_sessions).balance(driver)
    assert (balance.available_tyiyn, balance.held_tyiyn) == (50_000, 0)
    await assert_ledger_invariants(engine)
