"""What the gateway recorded for a charger transaction: its StopTransaction, else its newest
meter value. A session whose charger has stopped without the stop reaching the workflow (lost
to an outage, a charger that gave up) settles on this instead of waiting for ever."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from db.models import Connector, MeterValue, OcppTransaction
from domain import meter_readings
from domain.contracts.session_signals import REFUSED_STOP_REASON, TransactionStarted
from domain.meter_readings import Assessment, MeterPoint

RECORDED_TRANSACTION = "recorded_transaction"
RECORDED_START = "recorded_start"
ASSESS_METER_READINGS = "assess_meter_readings"


class RecordSource(StrEnum):
    STOP_TRANSACTION = "stop_transaction"  # the charger's meterStop
    METER_VALUE = "meter_value"  # the newest register reading: the charger stopped silently
    NOTHING = "nothing"  # nothing recorded after the start


@dataclass(frozen=True)
class RecordedTransactionRequest:
    station_id: str
    transaction_id: int


@dataclass(frozen=True)
class RecordedTransaction:
    transaction_id: int
    source: str  # a RecordSource value
    energy_wh: int = 0  # delivered: register minus meterStart, never negative
    meter_wh: int | None = None  # the register it was measured at
    at: datetime | None = None  # when the charger stopped, or measured it
    reason: str | None = None  # the charger's OCPP stop reason, when it sent StopTransaction

    @property
    def found(self) -> bool:
        return self.source != RecordSource.NOTHING


def samples_of(
    station_id: str,
    transaction_id: int,
    connector_id: int,
    started_at: datetime,
    stopped_at: datetime | None,
) -> ColumnElement[bool]:
    """The energy readings that belong to a transaction: those sent with its id, and those
    its connector sent without one while it ran (many chargers leave transactionId out of
    MeterValues; one connector runs one transaction at a time). Samples stamped outside the
    transaction are not part of it."""
    window = [MeterValue.measured_at >= started_at]
    if stopped_at is not None:
        window.append(MeterValue.measured_at <= stopped_at)
    return and_(
        MeterValue.station_id == station_id,
        MeterValue.energy_wh.is_not(None),
        or_(
            MeterValue.transaction_id == transaction_id,
            and_(
                MeterValue.transaction_id.is_(None),
                MeterValue.connector_id == connector_id,
                *window,
            ),
        ),
    )


async def recorded_transaction(
    session: AsyncSession, request: RecordedTransactionRequest
) -> RecordedTransaction:
    transaction = (
        await session.execute(
            select(
                OcppTransaction.meter_start_wh,
                OcppTransaction.meter_stop_wh,
                OcppTransaction.stopped_at,
                OcppTransaction.stop_reason,
                OcppTransaction.connector_id,
                OcppTransaction.started_at,
            ).where(
                OcppTransaction.id == request.transaction_id,
                OcppTransaction.station_id == request.station_id,
            )
        )
    ).first()
    nothing = RecordedTransaction(request.transaction_id, RecordSource.NOTHING.value)
    if transaction is None:
        return nothing
    meter_start, meter_stop, stopped_at, reason, connector_id, started_at = transaction
    if meter_stop is not None and stopped_at is not None:
        return _measured(
            request,
            RecordSource.STOP_TRANSACTION,
            meter_start,
            meter_stop,
            stopped_at,
            reason=reason,
        )
    # The newest reading, as GET /charging shows it live: a meter only counts up, and a
    # sample delivered out of order must not stand for the end of the session.
    sample = (
        await session.execute(
            select(MeterValue.energy_wh, MeterValue.measured_at)
            .where(
                samples_of(
                    request.station_id, request.transaction_id, connector_id, started_at, None
                )
            )
            .order_by(MeterValue.measured_at.desc(), MeterValue.id.desc())
            .limit(1)
        )
    ).first()
    if sample is None:
        return nothing
    register, measured_at = sample
    assert register is not None  # filtered in the query
    return _measured(request, RecordSource.METER_VALUE, meter_start, register, measured_at)


def _measured(
    request: RecordedTransactionRequest,
    source: RecordSource,
    meter_start: int,
    register_wh: int,
    at: datetime,
    *,
    reason: str | None = None,
) -> RecordedTransaction:
    """A reading of the transaction's register: what it delivered since meterStart (a
    register that went back delivers nothing, it is never a negative amount)."""
    return RecordedTransaction(
        request.transaction_id,
        source.value,
        energy_wh=max(0, register_wh - meter_start),
        meter_wh=register_wh,
        at=at,
        reason=reason,
    )


@dataclass(frozen=True)
class RecordedStartRequest:
    station_id: str
    connector_id: int
    session_id: str


@dataclass(frozen=True)
class RecordedStart:
    transaction: TransactionStarted | None = None  # None: no start recorded


async def recorded_start(session: AsyncSession, request: RecordedStartRequest) -> RecordedStart:
    """The StartTransaction the gateway recorded for the session on its connector and has not
    passed on yet: answered from the stored RemoteStart while Temporal was down, its relay
    event still waiting. (The oldest, should a charger have started twice.)"""
    row = (
        await session.execute(
            select(
                OcppTransaction.id,
                OcppTransaction.meter_start_wh,
                OcppTransaction.started_at,
            )
            .where(
                # Linked only once the relay delivers the start, so the session's own idTag
                # (a RemoteStart's idTag is the session id) finds it before that.
                or_(
                    OcppTransaction.session_id == request.session_id,
                    OcppTransaction.id_tag == request.session_id,
                ),
                OcppTransaction.station_id == request.station_id,
                OcppTransaction.connector_id == request.connector_id,
                # Told Invalid: it delivers nothing, and no session may take it.
                OcppTransaction.stop_reason.is_distinct_from(REFUSED_STOP_REASON),
            )
            .order_by(OcppTransaction.started_at, OcppTransaction.id)
            .limit(1)
        )
    ).first()
    if row is None:
        return RecordedStart()
    transaction_id, meter_start, started_at = row
    return RecordedStart(
        TransactionStarted(
            transaction_id, request.station_id, request.connector_id, meter_start, started_at
        )
    )


@dataclass(frozen=True)
class MeterReadingsRequest:
    """The figures a session would bill, to be checked against the stored samples."""

    station_id: str
    connector_id: int
    transaction_id: int
    meter_start_wh: int
    started_at: datetime
    meter_stop_wh: int
    stopped_at: datetime
    max_power_w: int = 0  # the session's snapshot; 0: the connector's configuration now


@dataclass(frozen=True)
class MeterAssessment:
    """The verdict on a transaction's readings (domain.meter_readings.assess) and the bound
    it was judged by."""

    max_power_w: int
    assessment: Assessment


async def assess_meter_readings(
    session: AsyncSession, request: MeterReadingsRequest
) -> MeterAssessment:
    max_power = request.max_power_w
    if max_power <= 0:
        connector = await session.get(Connector, (request.station_id, request.connector_id))
        max_power = meter_readings.max_power_w(
            connector.max_power_w if connector is not None else None,
            connector.current_type if connector is not None else None,
        )
    rows = (
        await session.execute(
            select(MeterValue.measured_at, MeterValue.energy_wh)
            .where(
                samples_of(
                    request.station_id,
                    request.transaction_id,
                    request.connector_id,
                    request.started_at,
                    request.stopped_at,
                ),
                # Even with the transaction's id, a sample stamped outside it is not billed.
                MeterValue.measured_at >= request.started_at,
                MeterValue.measured_at <= request.stopped_at,
            )
            .order_by(MeterValue.measured_at, MeterValue.id)
        )
    ).all()
    samples = [MeterPoint(at, wh) for at, wh in rows if wh is not None]
    assessment = meter_readings.assess(
        MeterPoint(request.started_at, request.meter_start_wh),
        samples,
        MeterPoint(request.stopped_at, request.meter_stop_wh),
        max_power,
    )
    return MeterAssessment(max_power, assessment)


class TransactionActivities:
    def __init__(self, db_sessions: async_sessionmaker[AsyncSession]) -> None:
        self._db_sessions = db_sessions

    @activity.defn(name=RECORDED_TRANSACTION)
    async def recorded_transaction(
        self, request: RecordedTransactionRequest
    ) -> RecordedTransaction:
        async with self._db_sessions() as session:
            return await recorded_transaction(session, request)

    @activity.defn(name=RECORDED_START)
    async def recorded_start(self, request: RecordedStartRequest) -> RecordedStart:
        async with self._db_sessions() as session:
            return await recorded_start(session, request)

    @activity.defn(name=ASSESS_METER_READINGS)
    async def assess_meter_readings(self, request: MeterReadingsRequest) -> MeterAssessment:
        async with self._db_sessions() as session:
            return await assess_meter_readings(session, request)
