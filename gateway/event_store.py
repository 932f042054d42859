"""The relay's table: transaction events written before the charger is answered, claimed by
one gateway at a time with a lease, deleted once Temporal accepted them, dead-lettered (kept,
never claimed again) when their delivery failed for good."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from db.models import OcppTransactionEvent
from gateway.events import METER, NewEvent, PendingEvent, stopped_event
from gateway.store import TransactionRow

# Due events whose transaction has no older pending event: a stop never overtakes its
# start. A dead-lettered event is neither claimed nor holds back the ones after it. The
# lease (due_at pushed ahead) keeps other gateways off a row while one delivers it; a
# gateway that dies mid-delivery leaves the row due again when the lease ends.
_CLAIM = text(
    """
    UPDATE ocpp_transaction_events AS e
    SET due_at = now() + make_interval(secs => :lease_s), attempts = e.attempts + 1
    WHERE e.id IN (
        SELECT c.id FROM ocpp_transaction_events AS c
        WHERE c.due_at <= now() AND c.dead_at IS NULL
          AND NOT EXISTS (
              SELECT 1 FROM ocpp_transaction_events AS o
              WHERE o.station_id = c.station_id AND o.transaction_id = c.transaction_id
                AND o.id < c.id AND o.dead_at IS NULL
          )
        ORDER BY c.id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING e.id, e.transaction_id, e.station_id, e.session_id, e.kind, e.payload,
              e.answered, e.attempts, e.failures, e.created_at
    """
)


async def insert_event(connection: AsyncConnection, event: NewEvent) -> None:
    """Add the event unless one of its kind is pending for the transaction already; a meter
    sample replaces the pending one when it is newer (the workflow wants the latest)."""
    statement = pg_insert(OcppTransactionEvent).values(
        transaction_id=event.transaction_id,
        station_id=event.station_id,
        session_id=event.session_id,
        kind=event.kind,
        payload=event.payload,
        answered=event.answered,
        attempts=0,
    )
    if event.kind == METER:
        excluded = statement.excluded
        statement = statement.on_conflict_do_update(
            constraint="uq_ocpp_transaction_events_station_tx_kind",
            set_={"payload": excluded.payload},
            where=(
                OcppTransactionEvent.payload["energy_wh"].as_integer()
                < excluded.payload["energy_wh"].as_integer()
            ),
        )
    else:
        statement = statement.on_conflict_do_nothing(
            constraint="uq_ocpp_transaction_events_station_tx_kind"
        )
    await connection.execute(statement)


async def adopt_orphan(connection: AsyncConnection, orphan_id: int, row: TransactionRow) -> None:
    """The orphan stop's transaction is recorded and now closed: its stop goes to the session
    as any stop does (a `stopped` event), in the same database transaction that drops the
    orphan, so the stop is neither lost nor sent twice in a crash between the two."""
    await insert_event(connection, stopped_event(row))
    await connection.execute(
        delete(OcppTransactionEvent).where(OcppTransactionEvent.id == orphan_id)
    )


class EventStore:
    def __init__(self, db_sessions: async_sessionmaker[AsyncSession]) -> None:
        engine = db_sessions.kw.get("bind")
        if not isinstance(engine, AsyncEngine):
            raise TypeError("the session factory must be bound to an AsyncEngine")
        self._engine = engine

    async def add(
        self,
        event: NewEvent,
        before: Callable[[AsyncConnection], Awaitable[None]] | None = None,
    ) -> None:
        """`before` writes in the same database transaction, ahead of the event."""
        async with self._engine.begin() as connection:
            if before is not None:
                await before(connection)
            await insert_event(connection, event)

    async def claim(self, limit: int, lease: timedelta) -> list[PendingEvent]:
        async with self._engine.begin() as connection:
            rows = await connection.execute(
                _CLAIM, {"limit": limit, "lease_s": lease.total_seconds()}
            )
            return [PendingEvent(*row) for row in rows]

    async def delivered(self, event: PendingEvent) -> None:
        """Delete the row as it was claimed. A newer meter sample may have replaced its
        payload during the delivery (insert_event): that row stays, due at once, so the
        newer sample is not deleted unsent."""
        async with self._engine.begin() as connection:
            gone = await connection.scalar(
                delete(OcppTransactionEvent)
                .where(
                    OcppTransactionEvent.id == event.id,
                    OcppTransactionEvent.payload == event.payload,
                )
                .returning(OcppTransactionEvent.id)
            )
            if gone is None:
                await connection.execute(
                    update(OcppTransactionEvent)
                    .where(OcppTransactionEvent.id == event.id)
                    .values(due_at=func.now())
                )

    async def retry_later(self, event_ids: list[int], delay: timedelta, error: str | None) -> None:
        """Due again after `delay` (zero: as soon as Temporal is back)."""
        async with self._engine.begin() as connection:
            await connection.execute(
                update(OcppTransactionEvent)
                .where(OcppTransactionEvent.id.in_(event_ids))
                .values(
                    due_at=func.now() + delay,
                    last_error=None if error is None else error[:300],
                )
            )

    async def failed(self, event: PendingEvent, delay: timedelta, error: str) -> None:
        """A permanent failure short of the bound: counted, due again after `delay`."""
        async with self._engine.begin() as connection:
            await connection.execute(
                update(OcppTransactionEvent)
                .where(OcppTransactionEvent.id == event.id)
                .values(
                    due_at=func.now() + delay,
                    last_error=error[:300],
                    failures=OcppTransactionEvent.failures + 1,
                )
            )

    async def dead_letter(self, event: PendingEvent, error: str) -> None:
        """Failed for good: kept with its error for an operator, never claimed again."""
        async with self._engine.begin() as connection:
            await connection.execute(
                update(OcppTransactionEvent)
                .where(OcppTransactionEvent.id == event.id)
                .values(
                    dead_at=func.now(),
                    last_error=error[:300],
                    failures=OcppTransactionEvent.failures + 1,
                )
            )

    async def counts(self) -> EventCounts:
        """What waits in the table, for the gateway's metrics."""
        pending = OcppTransactionEvent.dead_at.is_(None)
        query = select(
            func.count().filter(pending),
            func.count().filter(~pending),
            func.min(OcppTransactionEvent.created_at).filter(pending),
        )
        async with self._engine.connect() as connection:
            waiting, dead, oldest = (await connection.execute(query)).one()
        return EventCounts(int(waiting), int(dead), oldest)


@dataclass(frozen=True, slots=True)
class EventCounts:
    pending: int  # not delivered yet (due, leased or backing off)
    dead_lettered: int
    oldest_pending_at: datetime | None  # created_at of the oldest pending event
