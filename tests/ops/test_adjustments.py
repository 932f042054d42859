"""`POST /api/v1/ops/clients/{id}/adjustments` on the real stack: a BalanceAdjustment workflow
per Idempotency-Key; a replay moves nothing, a debit past the available balance is refused and
changes nothing, every request is audited, and the ledger stays balanced."""

from __future__ import annotations

import os
import uuid

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from db.models import LedgerEntry
from tests.ledger.invariants import assert_ledger_invariants
from tests.ops.conftest import audit_rows
from tests.ops.stack import fund, headers, ops_stack
from tests.replay.recording import write_fixture

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_adjustments_credit_debit_replay_and_refuse_going_negative(
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_env: WorkflowEnvironment,
    engine: AsyncEngine,
) -> None:
    client = str(uuid.uuid4())
    ledger = await fund(db_sessions, 5_000, client)
    path = f"/api/v1/ops/clients/{client}/adjustments"
    goodwill = {"amount_tyiyn": 1_000, "reason": "charger faulted mid-session, goodwill"}
    key = uuid.uuid4().hex
    async with (
        ops_stack(db_sessions, temporal_env.client) as stack,
        httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http,
    ):
        for caller, status in (("none", 401), ("client", 403), ("operator", 403)):
            refused = await http.post(path, json=goodwill, headers=headers(caller, key=key))
            assert refused.status_code == status, (caller, refused.text)
        no_key = await http.post(path, json=goodwill, headers=headers("admin"))
        assert no_key.status_code == 422
        assert no_key.json()["error"]["code"] == "idempotency_key_required"

        credited = await http.post(path, json=goodwill, headers=headers("admin", key=key))
        assert credited.status_code == 200, credited.text
        assert credited.json()["op_key"] == f"adjust:{key}"
        assert credited.json()["available_tyiyn"] == 6_000
        # The same request again (another admin's click): the first movement, nothing new.
        again = await http.post(path, json=goodwill, headers=headers("admin", key=key))
        assert again.status_code == 200
        assert again.json()["entry_id"] == credited.json()["entry_id"]
        assert again.json()["available_tyiyn"] == 6_000
        reused = await http.post(
            path, json={**goodwill, "amount_tyiyn": 2_000}, headers=headers("admin", key=key)
        )
        assert reused.status_code == 409
        assert reused.json()["error"]["code"] == "idempotency_key_reused"

        too_much_key = uuid.uuid4().hex
        too_much_id = f"adjustment:{too_much_key}"
        too_much = await http.post(
            path,
            json={"amount_tyiyn": -6_001, "reason": "correction"},
            headers=headers("admin", key=too_much_key),
        )
        assert too_much.status_code == 409, too_much.text
        assert too_much.json()["error"]["code"] == "balance_would_go_negative"
        if os.environ.get("EVPOWER_RECORD_HISTORIES") == "1":
            for workflow_id, name in (
                (credited.json()["workflow_id"], "credit"),
                (too_much_id, "refused"),
            ):
                handle = stack.temporal.get_workflow_handle(workflow_id)
                write_fixture(await handle.fetch_history(), f"adjustment_{name}")
        assert (await ledger.balance(client)).available_tyiyn == 6_000

        debited = await http.post(
            path,
            json={"amount_tyiyn": -6_000, "reason": "double top-up reversed"},
            headers=headers("admin", key=uuid.uuid4().hex),
        )
        assert debited.status_code == 200 and debited.json()["available_tyiyn"] == 0
        nobody = await http.post(
            "/api/v1/ops/clients/nobody/adjustments",
            json=goodwill,
            headers=headers("admin", key=uuid.uuid4().hex),
        )
        assert nobody.status_code == 404
        zero = await http.post(
            path, json={**goodwill, "amount_tyiyn": 0}, headers=headers("admin", key="z")
        )
        assert zero.status_code == 422

    async with db_sessions() as session:
        entries = list(
            await session.scalars(
                select(LedgerEntry)
                .where(LedgerEntry.op_key.startswith("adjust:"))
                .order_by(LedgerEntry.id)
            )
        )
    assert [(e.operation, e.amount_tyiyn) for e in entries] == [
        ("adjust_credit", 1_000),
        ("adjust_debit", 6_000),
    ]
    await assert_ledger_invariants(engine)
    rows = [row for row in await audit_rows(db_sessions) if row.method == "POST"]
    assert [row.status_code for row in rows] == [
        401,
        403,
        403,
        422,
        200,
        200,
        409,
        409,
        200,
        404,
        422,
    ]
    admitted = [row for row in rows if row.role == "admin"]
    assert all(row.action == "clients.adjust" and row.reason for row in admitted)
    assert admitted[1].result is not None and admitted[1].result["entry_id"] == entries[0].id
