"""The gateway's database work on transactions: RemoteStarts sent, transaction ids, starts
and stops, their sessions, meter values. The stations' own records (keys, connections,
statuses) are gateway/station_store.py's; `GatewayStore` offers both. Never money.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cachetools import LRUCache
from sqlalchemy import (
    Integer,
    Select,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from db.models import (
    ChargingSessionRecord,
    MeterValue,
    OcppRemoteStart,
    OcppTransaction,
    OcppTransactionEvent,
)
from domain.contracts.notify_channels import SESSION_PROGRESS
from domain.contracts.session_signals import REFUSED_STOP_REASON
from domain.sessions import FINAL_STATE_VALUES, LIVE_STATE_VALUES
from gateway.station_store import StationStore, upsert


@dataclass(frozen=True, slots=True)
class RemoteStartNote:
    station_id: str
    connector_id: int
    energy_limit_wh: int


_SENT_STARTS_KEPT = 10_000
_RESERVE_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('ocpp_transactions', 'id')) "
    "FROM generate_series(1, :count)"
)


@dataclass(frozen=True, slots=True)
class TransactionRow:
    id: int
    station_id: str
    connector_id: int
    id_tag: str
    session_id: str | None
    meter_start_wh: int
    started_at: datetime
    energy_limit_wh: int | None
    meter_stop_wh: int | None
    stopped_at: datetime | None
    stop_reason: str | None


_TX_COLUMNS = (
    OcppTransaction.id,
    OcppTransaction.station_id,
    OcppTransaction.connector_id,
    OcppTransaction.id_tag,
    OcppTransaction.session_id,
    OcppTransaction.meter_start_wh,
    OcppTransaction.started_at,
    OcppTransaction.energy_limit_wh,
    OcppTransaction.meter_stop_wh,
    OcppTransaction.stopped_at,
    OcppTransaction.stop_reason,
)

# Each session a batch of samples moved, once (PostgreSQL folds repeats within a transaction):
# the api's live session streams re-read it (api/session_feed.py).
_SESSION_PROGRESS = text(
    "SELECT pg_notify(:channel, t.session_id) FROM ocpp_transactions AS t "
    "WHERE t.id = ANY(:ids) AND t.session_id IS NOT NULL"
).bindparams(bindparam("ids", type_=ARRAY(Integer)))


class GatewayStore(StationStore):
    """Repository for the gateway: the stations' records (StationStore) and the transactions'
    (here); each method is one short transaction."""

    def __init__(self, db_sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(db_sessions)
        # The RemoteStarts this gateway sent lately, so a StartTransaction that answers one
        # while the database is down still knows its energy limit.
        self._sent_starts: LRUCache[str, RemoteStartNote] = LRUCache(_SENT_STARTS_KEPT)

    async def save_remote_start(
        self, station_id: str, connector_id: int, id_tag: str, energy_limit_wh: int, at: datetime
    ) -> None:
        statement = upsert(
            OcppRemoteStart,
            {
                "id_tag": id_tag,
                "station_id": station_id,
                "connector_id": connector_id,
                "energy_limit_wh": energy_limit_wh,
                "requested_at": at,
            },
            key=("id_tag",),
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)
            # The session's live streams show it `starting` from here (api/session_feed.py).
            await connection.execute(select(func.pg_notify(SESSION_PROGRESS, id_tag)))
        self._sent_starts[id_tag] = RemoteStartNote(station_id, connector_id, energy_limit_wh)

    def sent_remote_start(self, id_tag: str) -> RemoteStartNote | None:
        """A RemoteStart this gateway stored lately (no database needed)."""
        return self._sent_starts.get(id_tag)

    async def reserve_transaction_ids(self, count: int) -> list[int]:
        """Draw transaction ids from the table's sequence, for use while the database is down."""
        async with self._engine.begin() as connection:
            rows = await connection.execute(_RESERVE_IDS, {"count": count})
            return [int(row[0]) for row in rows]

    async def insert_transaction(self, row: TransactionRow) -> None:
        """Write a transaction whose id was reserved earlier (it started while the database
        was down); a row for its natural key or id already there wins."""
        statement = (
            pg_insert(OcppTransaction)
            .values(
                id=row.id,
                station_id=row.station_id,
                connector_id=row.connector_id,
                id_tag=row.id_tag,
                session_id=row.session_id,
                meter_start_wh=row.meter_start_wh,
                started_at=row.started_at,
                energy_limit_wh=row.energy_limit_wh,
            )
            .on_conflict_do_nothing()
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)

    async def has_remote_start(self, station_id: str, id_tag: str) -> bool:
        async with self._engine.connect() as connection:
            found = await connection.scalar(
                select(OcppRemoteStart.id_tag).where(
                    OcppRemoteStart.id_tag == id_tag, OcppRemoteStart.station_id == station_id
                )
            )
        return found is not None

    async def start_transaction(
        self,
        station_id: str,
        connector_id: int,
        id_tag: str,
        meter_start_wh: int,
        started_at: datetime,
    ) -> TransactionRow:
        """The transaction for this natural key: created once, the same row on every retry."""
        limit = (
            select(OcppRemoteStart.energy_limit_wh)
            .where(OcppRemoteStart.id_tag == id_tag, OcppRemoteStart.station_id == station_id)
            .scalar_subquery()
        )
        statement = (
            pg_insert(OcppTransaction)
            .values(
                station_id=station_id,
                connector_id=connector_id,
                id_tag=id_tag,
                meter_start_wh=meter_start_wh,
                started_at=started_at,
                energy_limit_wh=limit,
            )
            .on_conflict_do_nothing(constraint="uq_ocpp_transactions_natural_key")
        )
        natural_key = and_(
            OcppTransaction.station_id == station_id,
            OcppTransaction.connector_id == connector_id,
            OcppTransaction.id_tag == id_tag,
            OcppTransaction.meter_start_wh == meter_start_wh,
            OcppTransaction.started_at == started_at,
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)
            row = (await connection.execute(select(*_TX_COLUMNS).where(natural_key))).one()
        return TransactionRow(*row)

    async def start_verdict(self, row: TransactionRow) -> bool:
        """Whether the session behind the idTag would take this transaction, from what the
        gateway recorded (used while Temporal cannot be asked): a RemoteStart for this very
        station and connector, no other transaction of that session accepted or answered
        Accepted, and the session not already over."""
        id_tag = row.id_tag
        other_transaction = select(OcppTransaction.id).where(
            OcppTransaction.id_tag == id_tag,
            OcppTransaction.id != row.id,
            OcppTransaction.session_id.is_not(None),
        )
        other_answer = select(OcppTransactionEvent.id).where(
            OcppTransactionEvent.session_id == id_tag,
            OcppTransactionEvent.kind == "started",
            OcppTransactionEvent.answered == "Accepted",
            OcppTransactionEvent.transaction_id != row.id,
        )
        over = select(ChargingSessionRecord.id).where(
            ChargingSessionRecord.id == id_tag,
            ChargingSessionRecord.state.in_(FINAL_STATE_VALUES),
        )
        query = select(OcppRemoteStart.id_tag).where(
            OcppRemoteStart.id_tag == id_tag,
            OcppRemoteStart.station_id == row.station_id,
            OcppRemoteStart.connector_id == row.connector_id,
            ~other_transaction.exists(),
            ~other_answer.exists(),
            ~over.exists(),
        )
        async with self._engine.connect() as connection:
            found = await connection.scalar(query)
        return found is not None

    async def close_refused(self, transaction_id: int) -> None:
        """A transaction the charger was told `Invalid` for delivers nothing: closed at once
        (no energy, stop reason `Refused`) instead of staying open for good. A stop that
        already came first is kept."""
        async with self._engine.begin() as connection:
            await connection.execute(
                update(OcppTransaction)
                .where(OcppTransaction.id == transaction_id, OcppTransaction.stopped_at.is_(None))
                .values(
                    meter_stop_wh=OcppTransaction.meter_start_wh,
                    stopped_at=OcppTransaction.started_at,
                    stop_reason=REFUSED_STOP_REASON,
                )
            )

    async def link_session(self, transaction_id: int, session_id: str) -> None:
        """Mark the transaction as belonging to a live session workflow."""
        async with self._engine.begin() as connection:
            await connection.execute(
                update(OcppTransaction)
                .where(OcppTransaction.id == transaction_id)
                .values(session_id=session_id)
            )

    async def link_card_session(
        self, transaction_id: int, session_id: str, energy_limit_wh: int
    ) -> None:
        """Mark a card's transaction as its session's, with the energy its reservation buys
        (an app session's limit comes from its RemoteStart record instead)."""
        async with self._engine.begin() as connection:
            await connection.execute(
                update(OcppTransaction)
                .where(OcppTransaction.id == transaction_id)
                .values(session_id=session_id, energy_limit_wh=energy_limit_wh)
            )

    async def transaction(self, station_id: str, transaction_id: int) -> TransactionRow | None:
        async with self._engine.connect() as connection:
            return await _transaction_row(connection, station_id, transaction_id)

    async def running_transaction(
        self, station_id: str, connector_id: int
    ) -> TransactionRow | None:
        """The newest transaction on the connector that has not stopped, if any."""
        query = _open_on(_TX_COLUMNS, station_id, connector_id).order_by(
            OcppTransaction.started_at.desc(), OcppTransaction.id.desc()
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(query.limit(1))).first()
        return None if row is None else TransactionRow(*row)

    async def open_session_transaction(
        self, station_id: str, connector_id: int, *, before: datetime
    ) -> TransactionRow | None:
        """The connector's newest open transaction of a session, recorded before `before`
        (an idle status sent before a StartTransaction says nothing about that transaction).
        A row whose link to its session was lost (a start that reached its workflow while a
        database outage held the link back) is the session's all the same when its idTag
        names a live session on this connector."""
        live_session = (
            select(ChargingSessionRecord.id)
            .where(
                ChargingSessionRecord.id == OcppTransaction.id_tag,
                ChargingSessionRecord.station_id == station_id,
                ChargingSessionRecord.connector_id == connector_id,
                ChargingSessionRecord.state.in_(LIVE_STATE_VALUES),
            )
            .scalar_subquery()
        )
        session_id = func.coalesce(OcppTransaction.session_id, live_session)
        columns: list[Any] = [
            session_id if column is OcppTransaction.session_id else column for column in _TX_COLUMNS
        ]
        query = (
            _open_on(columns, station_id, connector_id)
            .where(session_id.is_not(None), OcppTransaction.created_at < before)
            .order_by(OcppTransaction.id.desc())
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(query.limit(1))).first()
        return None if row is None else TransactionRow(*row)

    async def stop_transaction(
        self,
        station_id: str,
        transaction_id: int,
        *,
        meter_stop_wh: int,
        stopped_at: datetime,
        reason: str | None,
        then: Callable[[AsyncConnection, TransactionRow], Awaitable[None]] | None = None,
    ) -> tuple[TransactionRow | None, bool]:
        """Close the transaction once; returns the row as stored and whether this call closed it.

        A retried or late StopTransaction leaves the first stop in place (a row closed only
        because its start was refused takes the charger's own stop once). `then` runs in the
        same database transaction with the stored row (the relay's event is written with it).
        """
        async with self._engine.begin() as connection:
            closed = (
                await connection.execute(
                    update(OcppTransaction)
                    .where(
                        OcppTransaction.id == transaction_id,
                        OcppTransaction.station_id == station_id,
                        or_(
                            OcppTransaction.stopped_at.is_(None),
                            OcppTransaction.stop_reason == REFUSED_STOP_REASON,
                        ),
                    )
                    .values(meter_stop_wh=meter_stop_wh, stopped_at=stopped_at, stop_reason=reason)
                    .returning(OcppTransaction.id)
                )
            ).first()
            stored = await _transaction_row(connection, station_id, transaction_id)
            if stored is not None and then is not None:
                await then(connection, stored)
        return stored, closed is not None

    async def insert_meter_values(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Many samples (from many stations) in one transaction: the meter writer's batch."""
        if not rows:
            return
        async with self._engine.begin() as connection:
            await add_meter_values(connection, rows)


def _open_on(columns: Sequence[Any], station_id: str, connector_id: int) -> Select[Any]:
    """Transactions on the connector that have not stopped."""
    return select(*columns).where(
        OcppTransaction.station_id == station_id,
        OcppTransaction.connector_id == connector_id,
        OcppTransaction.stopped_at.is_(None),
    )


async def _transaction_row(
    connection: AsyncConnection, station_id: str, transaction_id: int
) -> TransactionRow | None:
    row = (
        await connection.execute(
            select(*_TX_COLUMNS).where(
                OcppTransaction.id == transaction_id, OcppTransaction.station_id == station_id
            )
        )
    ).first()
    return None if row is None else TransactionRow(*row)


async def add_meter_values(connection: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert samples and NOTIFY the sessions whose transactions they belong to, within the
    caller's database transaction (the meter writer's batch, or a StopTransaction's own)."""
    if not rows:
        return
    transaction_ids = sorted(
        {int(row["transaction_id"]) for row in rows if row.get("transaction_id") is not None}
    )
    await connection.execute(insert(MeterValue), list(rows))
    if transaction_ids:
        await connection.execute(
            _SESSION_PROGRESS, {"channel": SESSION_PROGRESS, "ids": transaction_ids}
        )
