"""What the central system answers to each charger -> CSMS OCPP 1.6 action."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import structlog
from ocpp.exceptions import OCPPError
from ocpp.v16 import call, call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    DataTransferStatus,
    MessageTrigger,
    RegistrationStatus,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from db.outage import database_unavailable
from domain.contracts.session_signals import (
    TRANSACTION_STARTED,
)
from gateway import card_start, cards, metering, metrics, without_database
from gateway.admission import AdmissionTicket
from gateway.backlog import once_more_if_stale
from gateway.bookkeeping import Booted, StatusReported
from gateway.charge_point import ChargePoint, Send, StationDisconnected, on, spawn
from gateway.context import GatewayContext
from gateway.energy_watch import EnergyWatch
from gateway.events import OrphanStop, orphan_stop_event, started_event, started_of
from gateway.framing import utc_now_text
from gateway.idle_report import report_idle, reports_idle
from gateway.schemas import INT32 as _INT32
from gateway.schemas import INT64 as _INT64
from gateway.schemas import bounded, moment
from gateway.stop_record import insert_samples, record_stop
from gateway.transactions import RunningTx, TransactionCache
from gateway.workflow_signals import SignalFailed

log = structlog.get_logger("gateway")

_REGISTRATION = {
    "accepted": RegistrationStatus.accepted,
    "pending": RegistrationStatus.pending,
    "rejected": RegistrationStatus.rejected,
}


class StationHandler(ChargePoint):
    """The gateway's answers. Everything here is safe to receive twice."""

    __slots__ = ("_clock_synced_at", "_ctx", "_energy", "_transactions", "admission")

    def __init__(self, station_id: str, send: Send, ctx: GatewayContext, **kwargs: Any) -> None:
        super().__init__(station_id, send, **kwargs)
        self._ctx = ctx
        # Last Heartbeat or BootNotification (both carry the time), or our last ask for one.
        self._clock_synced_at = time.time()
        # Created on first use: an idle connection costs as little memory as it can.
        self._transactions: TransactionCache | None = None
        self._energy: EnergyWatch | None = None
        # The charger's place in admission (gateway/admission.py) until its first boot.
        self.admission: AdmissionTicket | None = None

    def end_admission(self) -> None:
        if self.admission is not None:
            self.admission.release()
            self.admission = None

    @on(Action.boot_notification)
    async def on_boot_notification(
        self,
        *,
        charge_point_vendor: str,
        charge_point_model: str,
        charge_point_serial_number: str | None = None,
        charge_box_serial_number: str | None = None,
        firmware_version: str | None = None,
        **_: Any,
    ) -> call_result.BootNotification:
        status = _REGISTRATION.get(self.registration, RegistrationStatus.rejected)
        if self.registration == "pending":
            await self._promote_if_registered()
        if self.registration == "accepted":
            await self._ctx.bookkeeping.boot(
                Booted(
                    self.station_id,
                    vendor=charge_point_vendor,
                    model=charge_point_model,
                    serial_number=charge_point_serial_number or charge_box_serial_number,
                    firmware_version=firmware_version,
                    at=datetime.now(UTC),
                )
            )
        # A connect has one info line ("charger connected"); an accepted boot's details are
        # in its station row, so its own line is debug: a reconnect storm of ten thousand
        # chargers writes ten thousand lines, not forty thousand.
        log.log(
            logging.DEBUG if status is RegistrationStatus.accepted else logging.INFO,
            "boot notification",
            station_id=self.station_id,
            vendor=charge_point_vendor,
            model=charge_point_model,
            firmware=firmware_version,
            status=status.value,
        )
        interval = self._ctx.config.heartbeat_interval_s
        self._clock_synced_at = time.time()
        self.end_admission()
        return call_result.BootNotification(
            current_time=utc_now_text(), interval=interval, status=status
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self) -> call_result.Heartbeat:
        # No database work: traffic times are flushed in batches (gateway/liveness.py).
        self._clock_synced_at = time.time()
        return call_result.Heartbeat(current_time=utc_now_text())

    @on(Action.status_notification)
    async def on_status_notification(
        self, *, connector_id: int, error_code: str, status: str, **_: Any
    ) -> call_result.StatusNotification:
        connector_id = bounded("connectorId", connector_id, 0, _INT32)
        at = datetime.now(UTC)
        idle = reports_idle(connector_id, status)
        report = StatusReported(self.station_id, connector_id, status, error_code, at, idle)
        # The idle check costs a query (and perhaps a signal) only where the database has
        # a transaction open on the connector, which it rarely has (a whole fleet reports
        # Available after a restart). A start stored while this batch was read is the
        # session's to settle by its own timers; this report only makes a settlement sooner.
        if await self._ctx.bookkeeping.status(report) and idle:
            self.defer(report_idle(self._ctx, self.station_id, connector_id, status, at))
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, *, id_tag: str) -> call_result.Authorize:
        # A paid session's RemoteStart tag, or a linked RFID card with enough balance.
        status = await cards.authorize(
            self._ctx.store.engine,
            self.station_id,
            id_tag,
            self._ctx.config.card_min_balance_tyiyn,
        )
        return call_result.Authorize(id_tag_info=IdTagInfo(status=status))

    @on(Action.start_transaction)
    async def on_start_transaction(
        self, *, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **_: Any
    ) -> call_result.StartTransaction:
        connector_id = bounded("connectorId", connector_id, 0, _INT32)
        meter_start = bounded("meterStart", meter_start, 0, _INT64)
        started_at = moment(timestamp)
        try:
            row = await once_more_if_stale(
                lambda: self._ctx.store.start_transaction(
                    self.station_id,
                    connector_id,
                    id_tag,
                    meter_start,
                    started_at,
                )
            )
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            transaction_id, accepted = await without_database.start_transaction(
                self._ctx,
                self.station_id,
                self._cache(),
                connector_id=connector_id,
                id_tag=id_tag,
                meter_start=meter_start,
                started_at=started_at,
            )
            status = AuthorizationStatus.accepted if accepted else AuthorizationStatus.invalid
            return call_result.StartTransaction(
                transaction_id=transaction_id, id_tag_info=IdTagInfo(status=status)
            )
        # An RFID card's tag starts the card's own session (gateway/card_start.py). A database
        # failure here is a CallError: the charger retries, and the retry finds the same row.
        card = await cards.card_at_start(self._ctx.store.engine, self.station_id, id_tag)
        if card is not None:
            answer = await card_start.start_transaction(self._ctx, self._cache(), row, card)
            return call_result.StartTransaction(
                transaction_id=row.id, id_tag_info=IdTagInfo(status=answer)
            )
        # An update, not a signal: the session decides whether this transaction is its own
        # (the right connector, not given up, no other transaction), and the charger is told.
        delivered = True
        try:
            accepted = await self._ctx.signals.start_transaction(id_tag, started_of(row))
        except SignalFailed as exc:
            # Temporal cannot answer: the RemoteStart the gateway stored carries the session's
            # verdict; the relay delivers the start once Temporal is back.
            delivered = False
            accepted = await self._ctx.store.start_verdict(row)
            answered = AuthorizationStatus.accepted if accepted else AuthorizationStatus.invalid
            await self._ctx.events.add(started_event(row, answered.value))
            self._ctx.relay.wake()
            metrics.SIGNALS.labels(TRANSACTION_STARTED, "queued").inc()
            log.warning(
                "StartTransaction answered from the stored remote start",
                station_id=self.station_id,
                transaction_id=row.id,
                id_tag=id_tag,
                status=answered.value,
                error=str(exc),
            )
        else:
            metrics.SIGNALS.labels(TRANSACTION_STARTED, "accepted" if accepted else "refused").inc()
        tx = RunningTx.of(row)
        tx.start_delivered = delivered
        if accepted:
            if delivered and row.session_id is None:
                await self._ctx.store.link_session(row.id, id_tag)
            tx.session_id = id_tag
        else:
            # No paid session takes this transaction (none behind the idTag, or it refused):
            # recorded (session_id NULL) for reconciliation, and Invalid so the charger does
            # not deliver unpaid energy.
            # An expected answer, not a fault: one info line.
            log.info(
                "transaction refused: no session takes it",
                code="no_session",
                station_id=self.station_id,
                transaction_id=row.id,
                id_tag=id_tag,
            )
            await self._close_refused(row.id)
        self._cache().remember(row.id, tx)
        if accepted:
            log.info(
                "transaction started",
                station_id=self.station_id,
                transaction_id=row.id,
                session_id=tx.session_id,
                energy_limit_wh=row.energy_limit_wh,
            )
        status = AuthorizationStatus.accepted if accepted else AuthorizationStatus.invalid
        return call_result.StartTransaction(
            transaction_id=row.id, id_tag_info=IdTagInfo(status=status)
        )

    @on(Action.meter_values)
    async def on_meter_values(
        self,
        *,
        connector_id: int,
        meter_value: list[dict[str, Any]],
        transaction_id: int | None = None,
    ) -> call_result.MeterValues:
        connector_id = bounded("connectorId", connector_id, 0, _INT32)
        readings = metering.readings(meter_value)
        rows = metering.rows(readings, self.station_id, connector_id, transaction_id)
        try:
            await self._ctx.meters.write(rows)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            await without_database.meter_values(
                self._ctx,
                self.station_id,
                self._transactions,
                self._watch(),
                connector_id=connector_id,
                transaction_id=transaction_id,
                readings=readings,
                rows=rows,
            )
            return call_result.MeterValues()
        register = metering.latest_energy(readings)
        if register is None:
            return call_result.MeterValues()
        if transaction_id is not None:
            tx = await self._cache().transaction(transaction_id)
        else:
            # Many chargers leave transactionId out; the limit still holds for what runs there.
            tx = await self._cache().running_on(connector_id)
        if tx is not None:
            await self._watch().on_energy(tx, register, readings)
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    async def on_stop_transaction(
        self,
        *,
        meter_stop: int,
        timestamp: str,
        transaction_id: int,
        reason: str | None = None,
        id_tag: str | None = None,
        transaction_data: list[dict[str, Any]] | None = None,
    ) -> call_result.StopTransaction:
        meter_stop = bounded("meterStop", meter_stop, 0, _INT64)
        stopped_at = moment(timestamp)
        id_tag_info = None if id_tag is None else IdTagInfo(status=AuthorizationStatus.accepted)
        readings = metering.readings(transaction_data) if transaction_data else []
        row, closed, orphaned = None, False, False
        try:
            if 0 < transaction_id <= _INT32:
                # The stop, its transactionData and its relay event are one database
                # transaction: once the charger is answered, the stop reaches the workflow
                # whatever happens to Temporal, and never before its samples are stored.
                row, closed = await once_more_if_stale(
                    lambda: self._ctx.store.stop_transaction(
                        self.station_id,
                        transaction_id,
                        meter_stop_wh=meter_stop,
                        stopped_at=stopped_at,
                        reason=reason,
                        then=record_stop(self.station_id, transaction_id, readings),
                    )
                )
                if row is None:
                    # Not recorded (yet): its start may wait in a gateway's memory after a
                    # database outage (this gateway's, or one the charger left). Kept before
                    # the charger is answered; the relay matches it once the row appears.
                    await self._keep_orphan_stop(
                        transaction_id, OrphanStop(meter_stop, stopped_at, reason, id_tag), readings
                    )
                    orphaned = True
            elif readings:
                # Not an id EvPower issues: the samples are kept, the stop has nowhere to go.
                await self._ctx.meters.write(
                    metering.rows(readings, self.station_id, 0, transaction_id)
                )
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            await without_database.stop_transaction(
                self._ctx,
                self.station_id,
                self._transactions,
                transaction_id=transaction_id,
                meter_stop=meter_stop,
                stopped_at=stopped_at,
                reason=reason,
                transaction_data=transaction_data,
            )
            return call_result.StopTransaction(id_tag_info=id_tag_info)
        if self._transactions is not None:
            self._transactions.forget(transaction_id)
        if row is None:
            if orphaned:
                self._ctx.relay.wake()
            log.warning(
                "stop for a transaction not recorded; kept as an orphan stop"
                if orphaned
                else "stop for a transaction id EvPower never issues; dropped",
                station_id=self.station_id,
                transaction_id=transaction_id,
                meter_stop=meter_stop,
            )
            return call_result.StopTransaction(id_tag_info=id_tag_info)
        self._ctx.relay.wake()
        log.info(
            "transaction stopped" if closed else "transaction stop repeated",
            station_id=self.station_id,
            transaction_id=row.id,
            session_id=row.session_id,
            energy_wh=max(0, (row.meter_stop_wh or 0) - row.meter_start_wh),
            reason=row.stop_reason,
        )
        return call_result.StopTransaction(id_tag_info=id_tag_info)

    @on(Action.data_transfer)
    async def on_data_transfer(
        self, *, vendor_id: str, message_id: str | None = None, **_: Any
    ) -> call_result.DataTransfer:
        log.info(
            "data transfer", station_id=self.station_id, vendor_id=vendor_id, message_id=message_id
        )
        return call_result.DataTransfer(status=DataTransferStatus.unknown_vendor_id)

    @on(Action.diagnostics_status_notification)
    async def on_diagnostics_status(
        self, *, status: str
    ) -> call_result.DiagnosticsStatusNotification:
        log.info("diagnostics status", station_id=self.station_id, status=status)
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    async def on_firmware_status(self, *, status: str) -> call_result.FirmwareStatusNotification:
        log.info("firmware status", station_id=self.station_id, status=status)
        return call_result.FirmwareStatusNotification()

    async def _keep_orphan_stop(
        self, transaction_id: int, stop: OrphanStop, readings: list[metering.Reading]
    ) -> None:
        # Its connector is unknown until the transaction's row is found: samples go on 0.
        samples = metering.rows(readings, self.station_id, 0, transaction_id)

        async def samples_first(connection: AsyncConnection) -> None:
            await insert_samples(connection, self.station_id, samples)

        event = orphan_stop_event(self.station_id, transaction_id, stop)
        await self._ctx.events.add(event, before=samples_first)

    async def _close_refused(self, transaction_id: int) -> None:
        try:
            await self._ctx.store.close_refused(transaction_id)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            # The charger is answered Invalid all the same; the row stays open, as before.
            log.warning("refused transaction left open", transaction_id=transaction_id)

    # --- clock sync ------------------------------------------------------------------

    def clock_sync_due(self, synced_before: float) -> bool:
        return self._clock_synced_at < synced_before and not self.closed

    def ask_for_heartbeat(self) -> None:
        """TriggerMessage(Heartbeat) in the background; asked once per interval, whatever
        the answer (a charger that refuses is not asked again until the next interval)."""
        self._clock_synced_at = time.time()
        spawn(self._trigger_heartbeat())

    async def _trigger_heartbeat(self) -> None:
        request = call.TriggerMessage(requested_message=MessageTrigger.heartbeat)
        try:
            answer = await self.call(request, self._ctx.config.command_timeout_s)
            status = str(answer.status)
        except (OCPPError, TimeoutError, StationDisconnected) as exc:
            status = type(exc).__name__
        log.info("asked for a clock-sync heartbeat", station_id=self.station_id, status=status)

    # --- registration ----------------------------------------------------------------

    async def _promote_if_registered(self) -> None:
        """A pending charger keeps booting on the same socket; once an operator has added
        the station, close with 1008 so it reconnects and authenticates as that station."""
        station = await self._ctx.store.station_auth(self.station_id)
        if station is None or station.registration_status != "accepted":
            return
        log.info("pending station registered; asking it to reconnect", station_id=self.station_id)
        self.defer(self.close(1008, "station registered: reconnect with credentials"))

    # --- collaborators, created on a connection's first transaction ----------------

    def _cache(self) -> TransactionCache:
        if self._transactions is None:
            self._transactions = TransactionCache(self._ctx.store, self.station_id)
        return self._transactions

    def _watch(self) -> EnergyWatch:
        if self._energy is None:
            self._energy = EnergyWatch(self._ctx, self.station_id, call=self.call, defer=self.defer)
        return self._energy
