"""The ledger on a real PostgreSQL: idempotency, funds checks, concurrency, invariants."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from activities.ledger import Ledger, LedgerMovement, SessionSettlement
from db.engine import asyncpg_url, session_factory
from db.models import LedgerEntry
from domain.errors import InsufficientFunds, OpKeyConflict
from domain.ledger import AccountKind, AccountRef, Operation
from tests.ledger.invariants import assert_ledger_invariants


def _client() -> str:
    return str(uuid.uuid4())


async def test_credit_reserve_capture_release_moves_exact_amounts(
    db_sessions: async_sessionmaker[AsyncSession], engine
) -> None:
    ledger = Ledger(db_sessions)
    client = _client()
    await ledger.apply(
        Operation.CREDIT_TOPUP, LedgerMovement("topup:t1", client, 50_000, provider="ODENGI")
    )
    await ledger.apply(Operation.RESERVE, LedgerMovement("reserve:s1", client, 20_000))
    await ledger.apply(Operation.CAPTURE, LedgerMovement("capture:s1", client, 7_500))
    await ledger.apply(Operation.RELEASE, LedgerMovement("release:s1", client, 12_500))
    balance = await ledger.balance(client)
    assert (balance.available_tyiyn, balance.held_tyiyn) == (42_500, 0)
    await assert_ledger_invariants(engine)


async def test_a_session_settles_in_one_transaction_under_both_op_keys(
    db_sessions: async_sessionmaker[AsyncSession], engine
) -> None:
    ledger = Ledger(db_sessions)
    client = _client()
    await ledger.apply(
        Operation.CREDIT_TOPUP, LedgerMovement("topup:t2", client, 50_000, provider="ODENGI")
    )
    await ledger.apply(Operation.RESERVE, LedgerMovement("reserve:s2", client, 20_000))
    settlement = SessionSettlement("s2", client, reserved_tyiyn=20_000, cost_tyiyn=7_500)
    await ledger.settle(settlement)
    await ledger.settle(settlement)  # a retried activity: both op_keys replay, nothing moves
    balance = await ledger.balance(client)
    assert (balance.available_tyiyn, balance.held_tyiyn) == (42_500, 0)
    async with db_sessions() as session:
        entries = (
            await session.execute(
                select(LedgerEntry.op_key, LedgerEntry.amount_tyiyn).where(
                    LedgerEntry.reference == "s2"
                )
            )
        ).all()
    assert sorted(entries) == [("capture:s2", 7_500), ("release:s2", 12_500)]
    await assert_ledger_invariants(engine)


async def test_a_settlement_the_ledger_refuses_moves_neither_amount(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    ledger = Ledger(db_sessions)
    client = _client()
    await ledger.apply(
        Operation.CREDIT_TOPUP, LedgerMovement("topup:t3", client, 50_000, provider="ODENGI")
    )
    await ledger.apply(Operation.RESERVE, LedgerMovement("reserve:s3", client, 20_000))
    # An operator released part of the hold by hand: the held balance no longer covers it.
    await ledger.apply(Operation.RELEASE, LedgerMovement("manual:s3", client, 15_000))
    with pytest.raises(InsufficientFunds):  # the release after the capture fails
        await ledger.settle(SessionSettlement("s3", client, reserved_tyiyn=20_000, cost_tyiyn=1))
    balance = await ledger.balance(client)
    assert (balance.available_tyiyn, balance.held_tyiyn) == (45_000, 5_000)  # capture undone


async def test_a_repeated_op_key_returns_the_first_result_and_changes_nothing(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    ledger = Ledger(db_sessions)
    client = _client()
    first = await ledger.apply(
        Operation.CREDIT_TOPUP, LedgerMovement("topup:x", client, 1_000, provider="P")
    )
    again = await ledger.apply(
        Operation.CREDIT_TOPUP, LedgerMovement("topup:x", client, 1_000, provider="P")
    )
    assert (again.entry_id, again.replayed, first.replayed) == (first.entry_id, True, False)
    assert (await ledger.balance(client)).available_tyiyn == 1_000


async def test_an_op_key_reused_for_another_movement_is_refused(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    ledger = Ledger(db_sessions)
    client = _client()
    await ledger.apply(
        Operation.CREDIT_TOPUP, LedgerMovement("topup:y", client, 1_000, provider="P")
    )
    with pytest.raises(OpKeyConflict):
        await ledger.apply(
            Operation.CREDIT_TOPUP, LedgerMovement("topup:y", client, 2_000, provider="P")
        )
    assert (await ledger.balance(client)).available_tyiyn == 1_000


async def test_insufficient_funds_is_a_domain_error_and_writes_nothing(
    db_sessions: async_sessionmaker[AsyncSession], engine
) -> None:
    ledger = Ledger(db_sessions)
    client = _client()
    await ledger.apply(Operation.CREDIT_TOPUP, LedgerMovement("topup:z", client, 999, provider="P"))
    with pytest.raises(InsufficientFunds):
        await ledger.apply(Operation.RESERVE, LedgerMovement("reserve:z", client, 1_000))
    # The failed op_key stays free: a later reserve with enough funds may use it.
    await ledger.apply(Operation.CREDIT_TOPUP, LedgerMovement("topup:z2", client, 1, provider="P"))
    await ledger.apply(Operation.RESERVE, LedgerMovement("reserve:z", client, 1_000))
    assert (await ledger.balance(client)).held_tyiyn == 1_000
    await assert_ledger_invariants(engine)


async def test_fifty_concurrent_reserves_never_overdraw(
    db_sessions: async_sessionmaker[AsyncSession], engine
) -> None:
    ledger = Ledger(db_sessions)
    client = _client()
    await ledger.apply(
        Operation.CREDIT_TOPUP, LedgerMovement("topup:c", client, 10_000, provider="P")
    )

    async def reserve(i: int) -> bool:
        try:
            await ledger.apply(Operation.RESERVE, LedgerMovement(f"reserve:c{i}", client, 700))
        except InsufficientFunds:
            return False
        return True

    outcomes = await asyncio.gather(*(reserve(i) for i in range(50)))
    balance = await ledger.balance(client)
    assert sum(outcomes) == 10_000 // 700
    assert balance.held_tyiyn == 700 * sum(outcomes)
    assert balance.available_tyiyn == 10_000 - balance.held_tyiyn
    await assert_ledger_invariants(engine)


async def test_concurrent_duplicates_of_one_op_key_apply_once(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    ledger = Ledger(db_sessions)
    client = _client()
    results = await asyncio.gather(
        *(
            ledger.apply(
                Operation.CREDIT_TOPUP, LedgerMovement("topup:dup", client, 500, provider="P")
            )
            for _ in range(20)
        )
    )
    assert len({r.entry_id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert (await ledger.balance(client)).available_tyiyn == 500


@dataclass(frozen=True)
class Step:
    operation: Operation
    key: int  # small range, so keys repeat
    amount: int


steps = st.lists(
    st.builds(
        Step,
        operation=st.sampled_from(list(Operation)),
        key=st.integers(min_value=0, max_value=6),
        amount=st.integers(min_value=1, max_value=5_000),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=steps, concurrent=st.booleans())
def test_any_sequence_keeps_every_invariant(
    database_url: str, plan: list[Step], concurrent: bool
) -> None:
    """Random credit/reserve/capture/release with repeated op_keys, sequential or concurrent."""

    async def run() -> None:
        engine = create_async_engine(asyncpg_url(database_url), poolclass=NullPool)
        ledger = Ledger(session_factory(engine))
        client = _client()
        applied: dict[str, int] = {}

        async def apply(step: Step) -> None:
            op_key = f"{step.operation}:{client}:{step.key}"
            movement = LedgerMovement(op_key, client, step.amount, provider="P")
            try:
                await ledger.apply(step.operation, movement)
            except (InsufficientFunds, OpKeyConflict):
                return
            applied.setdefault(op_key, step.amount)

        if concurrent:
            await asyncio.gather(*(apply(step) for step in plan))
        else:
            for step in plan:
                await apply(step)
        balance = await ledger.balance(client)

        def total(*operations: Operation) -> int:
            return sum(a for k, a in applied.items() if k.split(":")[0] in operations)

        came_in = total(Operation.CREDIT_TOPUP, Operation.REFUND, Operation.ADJUST_CREDIT)
        went_out = total(Operation.CAPTURE, Operation.ADJUST_DEBIT)
        # Money is conserved for the client: what came in is either spent, held or available.
        assert balance.available_tyiyn + balance.held_tyiyn + went_out == came_in
        assert balance.available_tyiyn >= 0 and balance.held_tyiyn >= 0
        await assert_ledger_invariants(engine)
        await engine.dispose()

    asyncio.run(run())


async def test_system_balances_are_the_sum_of_their_postings(
    db_sessions: async_sessionmaker[AsyncSession], engine
) -> None:
    """Revenue and clearing keep no locked running total, yet their balances are exact."""
    ledger = Ledger(db_sessions)
    clients = [_client() for _ in range(5)]

    async def session_for(client: str) -> None:
        await ledger.apply(
            Operation.CREDIT_TOPUP,
            LedgerMovement(f"topup:{client}", client, 10_000, provider="SYS"),
        )
        await ledger.apply(Operation.RESERVE, LedgerMovement(f"reserve:{client}", client, 4_000))
        await ledger.apply(Operation.CAPTURE, LedgerMovement(f"capture:{client}", client, 2_500))
        await ledger.apply(Operation.RELEASE, LedgerMovement(f"release:{client}", client, 1_500))

    revenue_before = await ledger.system_balance(AccountRef(AccountKind.REVENUE))
    await asyncio.gather(*(session_for(client) for client in clients))
    revenue = await ledger.system_balance(AccountRef(AccountKind.REVENUE))
    clearing = await ledger.system_balance(AccountRef(AccountKind.PROVIDER_CLEARING, scope="SYS"))
    assert revenue - revenue_before == 5 * 2_500
    assert clearing == -5 * 10_000
    await assert_ledger_invariants(engine)
