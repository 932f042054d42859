"""An operator blocks any client's RFID card: on the real stack a charger connected over a real
websocket is answered `Blocked` to Authorize from then on, `Accepted` again once unblocked; both
actions are audited with their reason."""

from __future__ import annotations

import uuid

import httpx
import pytest
from ocpp.v16 import call
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from db.models import RfidCard
from tests.gateway.conftest import charger_session
from tests.ops.conftest import audit_rows
from tests.ops.stack import PASSWORD, add_station, fund, headers, ops_stack

pytestmark = pytest.mark.integration


async def test_a_blocked_card_is_answered_blocked_at_the_charger(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    station_id = f"CB-{uuid.uuid4().hex[:6]}"
    owner = str(uuid.uuid4())
    await add_station(db_sessions, station_id)
    await fund(db_sessions, 1_000_000, owner)
    async with db_sessions() as session, session.begin():
        session.add(RfidCard(client_id=owner, id_tag="04ABCD1234", label="fleet"))
    block = "/api/v1/ops/cards/04abcd1234/block"
    reason = {"reason": "reported stolen by the fleet manager"}
    async with (
        ops_stack(db_sessions, temporal_env.client) as stack,
        httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http,
        charger_session(
            f"ws://127.0.0.1:{stack.port}/ocpp/{station_id}", station_id, PASSWORD
        ) as connected,
    ):

        async def authorize() -> str:
            answer = await connected.charger.call(call.Authorize(id_tag="04ABCD1234"))
            return str(answer.id_tag_info["status"])

        assert await authorize() == "Accepted"
        for caller, status in (("none", 401), ("client", 403)):
            refused = await http.post(block, json=reason, headers=headers(caller))
            assert refused.status_code == status
        assert await authorize() == "Accepted"
        blocked = await http.post(block, json=reason, headers=headers("operator"))
        assert blocked.status_code == 200, blocked.text
        assert blocked.json()["status"] == "blocked" and blocked.json()["client_id"] == owner
        assert await authorize() == "Blocked"
        again = await http.post(block, json=reason, headers=headers("admin"))
        assert again.json()["blocked_at"] == blocked.json()["blocked_at"]
        unblocked = await http.post(
            "/api/v1/ops/cards/04ABCD1234/unblock",
            json={"reason": "found in the car"},
            headers=headers("operator"),
        )
        assert unblocked.status_code == 200 and unblocked.json()["status"] == "active"
        assert await authorize() == "Accepted"
        missing = await http.post(
            "/api/v1/ops/cards/NOPE/block", json=reason, headers=headers("operator")
        )
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "card_not_found"
        no_reason = await http.post(block, json={}, headers=headers("operator"))
        assert no_reason.status_code == 422
    rows = [row for row in await audit_rows(db_sessions) if row.action.startswith("cards.")]
    assert [(row.action, row.status_code, row.target) for row in rows] == [
        ("cards.block", 200, "card:04ABCD1234"),
        ("cards.block", 200, "card:04ABCD1234"),
        ("cards.unblock", 200, "card:04ABCD1234"),
        ("cards.block", 404, "card:NOPE"),
    ]
    assert rows[0].reason == reason["reason"] and rows[2].reason == "found in the car"
