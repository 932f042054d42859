"""What must hold after a chaos run, read from PostgreSQL, Temporal and the chargers' own
records; each check returns its failures (empty when it holds) so the table shows them all."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from domain.sessions import LIVE_STATES
from domain.tariff import energy_cost_tyiyn
from simulator.state import Transaction
from tests.chaos.drivers import (
    FINAL_SESSION_STATES,
    FINAL_TOPUP_STATES,
    SessionRecord,
    TopUpRecord,
)
from tests.ledger.invariants import assert_ledger_invariants

LIVE = tuple(str(state) for state in LIVE_STATES)


@dataclass
class Verdict:
    name: str
    failures: list[str] = field(default_factory=list)
    figure: str = ""

    @property
    def holds(self) -> bool:
        return not self.failures


async def _rows(engine: AsyncEngine, sql: str, **params: object) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        return [tuple(row) for row in (await connection.execute(text(sql), params)).all()]


async def sessions_final(
    engine: AsyncEngine, temporal: Client, records: list[SessionRecord]
) -> Verdict:
    verdict = Verdict("every session final (none waiting on a stopped charger)")
    # Every session in the database, not only those whose start the drivers saw answered.
    states = dict(await _rows(engine, "SELECT id, state FROM charging_sessions"))
    ids = sorted(str(i) for i in states)
    for r in records:
        if r.session_id is not None and r.session_id not in states:
            verdict.failures.append(f"session {r.session_id}: accepted but no record")
    for session_id in ids:
        state = states.get(session_id)
        if state not in FINAL_SESSION_STATES:
            verdict.failures.append(f"session {session_id}: {state}")
    running = [
        execution.id
        async for execution in temporal.list_workflows(
            "WorkflowType = 'ChargingSessionWorkflow' AND ExecutionStatus = 'Running'"
        )
    ]
    verdict.failures += [f"workflow {workflow_id} still running" for workflow_id in running]
    counts: dict[str, int] = defaultdict(int)
    for session_id in ids:
        counts[str(states.get(session_id))] += 1
    verdict.figure = ", ".join(f"{state} {n}" for state, n in sorted(counts.items()))
    return verdict


async def topups_final(engine: AsyncEngine, records: list[TopUpRecord]) -> Verdict:
    verdict = Verdict("every top-up final")
    # Every top-up in the database: also those whose creation the driver saw fail.
    states = dict(await _rows(engine, "SELECT id, state FROM topups"))
    ids = sorted(str(i) for i in states)
    for r in records:
        if r.topup_id is not None and r.topup_id not in states:
            verdict.failures.append(f"top-up {r.topup_id}: created but no record")
    counts: dict[str, int] = defaultdict(int)
    for topup_id in ids:
        state = states.get(topup_id)
        counts[str(state)] += 1
        if state not in FINAL_TOPUP_STATES:
            verdict.failures.append(f"top-up {topup_id}: {state}")
    verdict.figure = ", ".join(f"{state} {n}" for state, n in sorted(counts.items()))
    return verdict


async def ledger_sound(engine: AsyncEngine) -> Verdict:
    verdict = Verdict("postings sum to 0, no negative balance, balances = postings")
    try:
        await assert_ledger_invariants(engine)
    except AssertionError as exc:
        verdict.failures.append(str(exc) or "a client account is negative")
    entries = await _rows(engine, "SELECT count(*) FROM ledger_entries")
    verdict.figure = f"{entries[0][0]} entries"
    return verdict


async def held_matches_live_sessions(engine: AsyncEngine) -> Verdict:
    verdict = Verdict("held = reservations of live sessions")
    held = dict(
        await _rows(
            engine,
            "SELECT client_id, balance_tyiyn FROM ledger_accounts WHERE kind = 'held'",
        )
    )
    reserved = dict(
        await _rows(
            engine,
            "SELECT client_id, sum(reserved_tyiyn) FROM charging_sessions"
            " WHERE state = ANY(:live) GROUP BY client_id",
            live=list(LIVE),
        )
    )
    for client_id in set(held) | set(reserved):
        if int(held.get(client_id, 0) or 0) != int(reserved.get(client_id, 0) or 0):
            verdict.failures.append(
                f"client {client_id}: held {held.get(client_id)} != live reservations "
                f"{reserved.get(client_id)}"
            )
    verdict.figure = f"held in total {sum(int(v or 0) for v in held.values())} tyiyn"
    return verdict


async def balances_follow_credits_and_captures(engine: AsyncEngine) -> Verdict:
    verdict = Verdict("per client available + held = credited - captured")
    balances = await _rows(
        engine,
        "SELECT client_id, sum(balance_tyiyn) FROM ledger_accounts"
        " WHERE kind IN ('available', 'held') GROUP BY client_id",
    )
    moved = defaultdict(
        int,
        {
            (str(client), str(op)): int(total)
            for client, op, total in await _rows(
                engine,
                "SELECT client_id, operation, sum(amount_tyiyn) FROM ledger_entries"
                " WHERE operation IN ('credit_topup', 'capture') GROUP BY client_id, operation",
            )
        },
    )
    for client_id, balance in balances:
        expected = moved[(str(client_id), "credit_topup")] - moved[(str(client_id), "capture")]
        if int(balance) != expected:
            verdict.failures.append(f"client {client_id}: {balance} != {expected}")
    verdict.figure = f"{len(balances)} clients"
    return verdict


async def paid_topups_credited_once(engine: AsyncEngine, records: list[TopUpRecord]) -> Verdict:
    verdict = Verdict("every paid top-up credited exactly once")
    paid = await _rows(
        engine,
        "SELECT i.invoice_id, i.trans_id, i.amount_tyiyn, t.id, t.state"
        " FROM simulated_invoices i LEFT JOIN topups t ON t.invoice_id = i.invoice_id"
        " WHERE i.status = 3",
    )
    credits = defaultdict(
        list,
        {},
    )
    for op_key, amount in await _rows(
        engine,
        "SELECT op_key, amount_tyiyn FROM ledger_entries WHERE operation = 'credit_topup'"
        " AND op_key LIKE 'topup:%'",
    ):
        credits[str(op_key).removeprefix("topup:")].append(amount)
    review = 0
    for invoice_id, trans_id, amount, topup_id, state in paid:
        found = credits.get(str(trans_id), [])
        if len(found) == 1 and found[0] == amount:
            continue
        if not found and state == "needs_review":
            review += 1  # a human decides; never credited automatically (payments.md)
            continue
        verdict.failures.append(
            f"invoice {invoice_id} (top-up {topup_id}, {state}): paid {amount}, credited {found}"
        )
    mine = {r.invoice_id for r in records if r.paid}
    known = {str(row[0]) for row in paid}
    verdict.failures += [
        f"invoice {i} paid by the driver, not paid at the provider" for i in mine - known
    ]
    verdict.figure = f"{len(paid)} paid, {review} in review"
    return verdict


def _charger_wh(tx: Transaction) -> int | None:
    if tx.meter_stop_wh is None:
        return None
    return tx.meter_stop_wh - tx.meter_start_wh


async def costs_exact(
    engine: AsyncEngine, records: list[SessionRecord], transactions: dict[str, Transaction]
) -> Verdict:
    verdict = Verdict("cost = ceil(Wh x price / 1000) capped at reservation, Wh from the charger")
    rows = await _rows(
        engine,
        "SELECT id, energy_wh, cost_tyiyn, reserved_tyiyn, price_tyiyn_per_kwh"
        " FROM charging_sessions WHERE state = 'completed' AND id = ANY(:ids)",
        ids=[r.session_id for r in records if r.session_id],
    )
    captured = dict(
        await _rows(
            engine,
            "SELECT reference, amount_tyiyn FROM ledger_entries WHERE operation = 'capture'",
        )
    )
    lost_stops = 0
    for session_id, energy, cost, reserved, price in rows:
        tx = transactions.get(str(session_id))
        if tx is None:
            verdict.failures.append(
                f"session {session_id}: completed without a charger transaction"
            )
            continue
        wh = _charger_wh(tx)
        if wh is None or not tx.stop_acknowledged:
            # The charger itself gave its StopTransaction up: the system can only know the
            # last meter value; never more than the charger delivered.
            lost_stops += 1
            if wh is not None and int(energy) > wh:
                verdict.failures.append(f"session {session_id}: billed {energy} Wh > {wh} Wh")
            continue
        expected = min(energy_cost_tyiyn(wh, int(price)), int(reserved))
        if (energy, cost) != (wh, expected):
            verdict.failures.append(
                f"session {session_id}: energy {energy} Wh cost {cost}, charger says {wh} Wh"
                f" -> {expected}"
            )
        if int(captured.get(session_id, 0) or 0) != int(cost):
            verdict.failures.append(
                f"session {session_id}: captured {captured.get(session_id)} != cost {cost}"
            )
    verdict.figure = f"{len(rows)} completed; {lost_stops} whose stop the charger gave up"
    return verdict


async def one_transaction_id_per_charger_transaction(
    engine: AsyncEngine, transactions: list[Transaction], station_ids: list[str]
) -> Verdict:
    verdict = Verdict("no transaction id issued twice for one charger transaction")
    for tx in transactions:
        if len(set(tx.assigned_ids)) > 1:
            verdict.failures.append(f"{tx.id_tag}: the charger was given ids {tx.assigned_ids}")
    doubles = await _rows(
        engine,
        "SELECT session_id, count(*) FROM ocpp_transactions WHERE session_id IS NOT NULL"
        " AND station_id = ANY(:stations) GROUP BY session_id HAVING count(*) > 1",
        stations=station_ids,
    )
    verdict.failures += [f"session {s}: {n} transaction rows" for s, n in doubles]
    verdict.figure = f"{len(transactions)} charger transactions"
    return verdict
