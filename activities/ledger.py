"""The double-entry ledger: idempotent money movements keyed by op_key, and their activities.

Each movement is one `ledger_entries` row with two postings that sum to zero. Client
accounts are locked `FOR UPDATE` in id order, so concurrent movements on the same client
never deadlock and never overdraw; the CHECK constraint on client accounts is the last line
of defence. System accounts (revenue, provider clearing) are touched by every capture or
top-up in the network, so they are never locked and keep no running balance: their balance
is the sum of their postings. A retry with the same op_key returns the first result and
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.metrics import LEDGER_OPERATIONS
from activities.refusals import refusal
from db.clients import ensure_client
from db.models import LedgerAccount, LedgerEntry, LedgerPosting
from domain.errors import DomainError, InsufficientFunds, OpKeyConflict
from domain.ledger import AccountKind, AccountRef, Operation, Posting, postings_for

log = structlog.get_logger(__name__)

SETTLE_SESSION = "settle_session"


@dataclass(frozen=True)
class LedgerMovement:
    """Input of every ledger activity."""

    op_key: str
    client_id: str
    amount_tyiyn: int
    reference: str | None = None  # session or top-up id, for the client's history
    provider: str | None = None  # credit_topup only


@dataclass(frozen=True)
class LedgerResult:
    entry_id: int
    op_key: str
    operation: str
    amount_tyiyn: int
    replayed: bool  # True when the op_key had already been applied


@dataclass(frozen=True)
class SessionSettlement:
    """Settle a charging session: capture its cost, release the rest of its reservation."""

    session_id: str
    client_id: str
    reserved_tyiyn: int
    cost_tyiyn: int

    def movements(self) -> list[tuple[Operation, LedgerMovement]]:
        """Capture and release under their own op_keys (`capture:{id}`, `release:{id}`), each
        left out when its amount is 0."""
        amounts = [
            (Operation.CAPTURE, self.cost_tyiyn),
            (Operation.RELEASE, self.reserved_tyiyn - self.cost_tyiyn),
        ]
        return [
            (
                operation,
                LedgerMovement(
                    f"{operation.value}:{self.session_id}",
                    self.client_id,
                    amount,
                    self.session_id,
                ),
            )
            for operation, amount in amounts
            if amount > 0
        ]


@dataclass(frozen=True)
class ClientBalance:
    available_tyiyn: int
    held_tyiyn: int


class Ledger:
    """Applies movements in their own transaction. Safe to call concurrently and repeatedly."""

    def __init__(self, db_sessions: async_sessionmaker[AsyncSession]) -> None:
        self._db_sessions = db_sessions

    async def apply(self, operation: Operation, movement: LedgerMovement) -> LedgerResult:
        async with self._db_sessions() as session, session.begin():
            result = await self.apply_in(session, operation, movement)
        log_movement(operation, movement, result)
        return result

    async def settle(self, settlement: SessionSettlement) -> None:
        """A session's capture and release in one transaction, each under its own op_key: a
        retry replays both, a refusal (held balance short: the accounts were changed by hand)
        moves neither."""
        movements = settlement.movements()
        results: list[LedgerResult] = []
        async with self._db_sessions() as session, session.begin():
            for operation, movement in movements:
                results.append(await self.apply_in(session, operation, movement))
        for (operation, movement), result in zip(movements, results, strict=True):
            log_movement(operation, movement, result)

    async def apply_in(
        self, session: AsyncSession, operation: Operation, movement: LedgerMovement
    ) -> LedgerResult:
        """The movement inside the caller's transaction (which commits or rolls back)."""
        postings = postings_for(
            operation,
            client_id=movement.client_id,
            amount_tyiyn=movement.amount_tyiyn,
            provider=movement.provider,
        )
        existing = await self._existing(session, operation, movement)
        if existing is not None:
            return existing
        await ensure_client(session, movement.client_id)
        accounts = await _lock_accounts(session, [p.account for p in postings])
        # Re-check under the locks: a concurrent twin may have committed meanwhile.
        existing = await self._existing(session, operation, movement)
        if existing is not None:
            return existing
        source = postings[0]
        source_account = accounts[source.account]
        if source.account.is_client and source_account.balance_tyiyn + source.amount_tyiyn < 0:
            LEDGER_OPERATIONS.labels(operation.value, "insufficient_funds").inc()
            raise InsufficientFunds(
                f"{source.account.kind} balance {source_account.balance_tyiyn} tyiyn "
                f"is less than {movement.amount_tyiyn} tyiyn"
            )
        entry = LedgerEntry(
            op_key=movement.op_key,
            operation=operation.value,
            client_id=movement.client_id,
            amount_tyiyn=movement.amount_tyiyn,
            reference=movement.reference,
        )
        session.add(entry)
        await session.flush()
        for posting in postings:
            account = accounts[posting.account]
            if posting.account.is_client:
                account.balance_tyiyn += posting.amount_tyiyn
            session.add(
                LedgerPosting(
                    entry_id=entry.id, account_id=account.id, amount_tyiyn=posting.amount_tyiyn
                )
            )
        return LedgerResult(
            entry.id, movement.op_key, operation.value, movement.amount_tyiyn, False
        )

    async def _existing(
        self, session: AsyncSession, operation: Operation, movement: LedgerMovement
    ) -> LedgerResult | None:
        entry = await session.scalar(
            select(LedgerEntry).where(LedgerEntry.op_key == movement.op_key)
        )
        if entry is None:
            return None
        if (entry.operation, entry.client_id, entry.amount_tyiyn) != (
            operation.value,
            movement.client_id,
            movement.amount_tyiyn,
        ):
            raise OpKeyConflict(
                f"op_key {movement.op_key!r} was already used for {entry.operation} of "
                f"{entry.amount_tyiyn} tyiyn"
            )
        return LedgerResult(entry.id, entry.op_key, entry.operation, entry.amount_tyiyn, True)

    async def system_balance(self, account: AccountRef) -> int:
        """A system account's balance: the sum of its postings (it keeps no running total)."""
        async with self._db_sessions() as session:
            total = await session.scalar(
                select(func.coalesce(func.sum(LedgerPosting.amount_tyiyn), 0))
                .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
                .where(LedgerAccount.code == account.code)
            )
        return int(total or 0)

    async def balance(self, client_id: str) -> ClientBalance:
        async with self._db_sessions() as session:
            rows = await session.execute(
                select(LedgerAccount.kind, LedgerAccount.balance_tyiyn).where(
                    LedgerAccount.client_id == client_id
                )
            )
            by_kind = {kind: balance for kind, balance in rows.all()}
        return ClientBalance(
            available_tyiyn=by_kind.get(AccountKind.AVAILABLE.value, 0),
            held_tyiyn=by_kind.get(AccountKind.HELD.value, 0),
        )


def log_movement(operation: Operation, movement: LedgerMovement, result: LedgerResult) -> None:
    """After the commit: count and log what the movement did."""
    if result.replayed:
        LEDGER_OPERATIONS.labels(operation.value, "replayed").inc()
        return
    LEDGER_OPERATIONS.labels(operation.value, "applied").inc()
    log.info(
        "ledger movement",
        operation=operation.value,
        op_key=result.op_key,
        client_id=movement.client_id,
        amount_tyiyn=result.amount_tyiyn,
    )


async def _lock_accounts(
    session: AsyncSession, refs: list[AccountRef]
) -> dict[AccountRef, LedgerAccount]:
    """Create missing accounts, then lock the client ones in id order (deadlock-free).

    System accounts are read without a lock: no balance of theirs is checked or kept, so
    every settlement in the network does not queue on one revenue row."""
    await session.execute(
        insert(LedgerAccount)
        .values(
            [{"code": ref.code, "kind": ref.kind.value, "client_id": ref.client_id} for ref in refs]
        )
        .on_conflict_do_nothing(index_elements=["code"])
    )
    by_code = {ref.code: ref for ref in refs}
    client_codes = [ref.code for ref in refs if ref.is_client]
    system_codes = [ref.code for ref in refs if not ref.is_client]
    accounts = list(
        await session.scalars(
            select(LedgerAccount)
            .where(LedgerAccount.code.in_(client_codes))
            .order_by(LedgerAccount.id)
            .with_for_update()
        )
    )
    if system_codes:
        accounts += await session.scalars(
            select(LedgerAccount).where(LedgerAccount.code.in_(system_codes))
        )
    return {by_code[account.code]: account for account in accounts}


def _as_application_error(exc: DomainError) -> ApplicationError:
    if isinstance(exc, InsufficientFunds):
        return refusal(exc)  # a driver's "not enough money", expected by the workflow
    # Anything else (a reused op_key, say) is a fault: Temporal logs it as a failure.
    return ApplicationError(exc.message, type=type(exc).__name__, non_retryable=True)


class LedgerActivities:
    """Temporal activities over the ledger; domain errors are non-retryable failures."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def _run(self, operation: Operation, movement: LedgerMovement) -> LedgerResult:
        try:
            return await self._ledger.apply(operation, movement)
        except DomainError as exc:
            raise _as_application_error(exc) from exc

    @activity.defn(name=SETTLE_SESSION)
    async def settle_session(self, settlement: SessionSettlement) -> None:
        try:
            await self._ledger.settle(settlement)
        except DomainError as exc:
            raise _as_application_error(exc) from exc

    @activity.defn(name="credit_topup")
    async def credit_topup(self, movement: LedgerMovement) -> LedgerResult:
        return await self._run(Operation.CREDIT_TOPUP, movement)

    @activity.defn(name="reserve")
    async def reserve(self, movement: LedgerMovement) -> LedgerResult:
        return await self._run(Operation.RESERVE, movement)

    @activity.defn(name="capture")
    async def capture(self, movement: LedgerMovement) -> LedgerResult:
        return await self._run(Operation.CAPTURE, movement)

    @activity.defn(name="release")
    async def release(self, movement: LedgerMovement) -> LedgerResult:
        return await self._run(Operation.RELEASE, movement)

    @activity.defn(name="refund")
    async def refund(self, movement: LedgerMovement) -> LedgerResult:
        return await self._run(Operation.REFUND, movement)

    @activity.defn(name="adjust_credit")
    async def adjust_credit(self, movement: LedgerMovement) -> LedgerResult:
        return await self._run(Operation.ADJUST_CREDIT, movement)

    @activity.defn(name="adjust_debit")
    async def adjust_debit(self, movement: LedgerMovement) -> LedgerResult:
        return await self._run(Operation.ADJUST_DEBIT, movement)


__all__ = [
    "ClientBalance",
    "Ledger",
    "LedgerActivities",
    "LedgerMovement",
    "LedgerResult",
    "Posting",
    "SessionSettlement",
]
