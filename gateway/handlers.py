"""What the central system answers to each charger -> CSMS OCPP 1.6 action."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import structlog
from ocpp.exceptions import InternalError, OCPPError
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

from gateway import metering, metrics
from gateway.backlog import database_unavailable, once_more_if_stale
from gateway.charge_point import ChargePoint, Send, StationDisconnected, on, spawn
from gateway.context import GatewayContext
from gateway.energy_watch import EnergyWatch
from gateway.event_store import insert_event
from gateway.events import started_event, started_of, stopped_event
from gateway.framing import utc_now_text
from gateway.idle_report import report_idle, reports_idle
from gateway.schemas import INT32 as _INT32
from gateway.schemas import INT64 as _INT64
from gateway.schemas import bounded, moment
from gateway.store import TransactionRow
from gateway.transactions import RunningTx, TransactionCache
from gateway.workflow_signals import SignalFailed
from workflows.signals import (
    METER_SAMPLE,
    TRANSACTION_STARTED,
    TRANSACTION_STOPPED,
    MeterSample,
    TransactionStarted,
    TransactionStopped,
)

log = structlog.get_logger("gateway")

_REGISTRATION = {
    "accepted": RegistrationStatus.accepted,
    "pending": RegistrationStatus.pending,
    "rejected": RegistrationStatus.rejected,
}


class StationHandler(ChargePoint):
    """The gateway's answers. Everything here is safe to receive twice."""

    __slots__ = ("_clock_synced_at", "_ctx", "_energy", "_transactions")

    def __init__(self, station_id: str, send: Send, ctx: GatewayContext, **kwargs: Any) -> None:
        super().__init__(station_id, send, **kwargs)
        self._ctx = ctx
        # Last Heartbeat or BootNotification (both carry the time), or our last ask for one.
        self._clock_synced_at = time.time()
        # Created on first use: an idle connection costs as little memory as it can.
        self._transactions: TransactionCache | None = None
        self._energy: EnergyWatch | None = None

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
            await self._ctx.store.record_boot(
                self.station_id,
                vendor=charge_point_vendor,
                model=charge_point_model,
                serial_number=charge_point_serial_number or charge_box_serial_number,
                firmware_version=firmware_version,
                at=datetime.now(UTC),
            )
        log.info(
            "boot notification",
            station_id=self.station_id,
            vendor=charge_point_vendor,
            model=charge_point_model,
            firmware=firmware_version,
            status=status.value,
        )
        interval = self._ctx.config.heartbeat_interval_s
        self._clock_synced_at = time.time()
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
        await self._ctx.store.record_status(self.station_id, connector_id, status, error_code, at)
        if reports_idle(connector_id, status):
            self.defer(report_idle(self._ctx, self.station_id, connector_id, status, at))
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, *, id_tag: str) -> call_result.Authorize:
        # Only idTags that a RemoteStart of a paid session handed out are good here.
        known = await self._ctx.store.has_remote_start(self.station_id, id_tag)
        status = AuthorizationStatus.accepted if known else AuthorizationStatus.invalid
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
            return await self._start_without_database(connector_id, id_tag, meter_start, started_at)
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

    async def _start_without_database(
        self, connector_id: int, id_tag: str, meter_start: int, started_at: datetime
    ) -> call_result.StartTransaction:
        """PostgreSQL is down: a RemoteStart this gateway sent names the energy limit, a
        reserved id is the transactionId (the same for the charger's retries), the session
        decides through Temporal, and the row is written when the database is back. Without
        any of these the charger gets InternalError and retries."""
        sent = self._ctx.store.sent_remote_start(id_tag)
        known = sent is not None and (sent.station_id, sent.connector_id) == (
            self.station_id,
            connector_id,
        )
        key = (self.station_id, connector_id, id_tag, meter_start, started_at)
        transaction_id = self._ctx.offline_ids.take(key) if known else None
        if sent is None or transaction_id is None or not self._ctx.backlog.has_room():
            log.warning("StartTransaction: database unavailable", station_id=self.station_id)
            raise InternalError(details={"cause": "transaction store unavailable"})
        row = TransactionRow(
            transaction_id,
            self.station_id,
            connector_id,
            id_tag,
            None,
            meter_start,
            started_at,
            sent.energy_limit_wh,
            None,
            None,
            None,
        )
        try:
            accepted = await self._ctx.signals.start_transaction(id_tag, started_of(row))
        except SignalFailed as exc:
            metrics.SIGNALS.labels(TRANSACTION_STARTED, "failed").inc()
            raise InternalError(details={"cause": "transaction store unavailable"}) from exc
        metrics.SIGNALS.labels(TRANSACTION_STARTED, "accepted" if accepted else "refused").inc()
        stored = replace(row, session_id=id_tag if accepted else None)
        store = self._ctx.store
        self._ctx.backlog.add(
            f"transaction {transaction_id}", lambda: store.insert_transaction(stored)
        )
        tx = RunningTx.of(stored)
        self._cache().remember(transaction_id, tx)
        log.warning(
            "transaction started while the database is down; written when it is back",
            station_id=self.station_id,
            transaction_id=transaction_id,
            session_id=stored.session_id,
        )
        status = AuthorizationStatus.accepted if accepted else AuthorizationStatus.invalid
        return call_result.StartTransaction(
            transaction_id=transaction_id, id_tag_info=IdTagInfo(status=status)
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
            return await self._meter_values_without_database(
                connector_id, transaction_id, readings, rows
            )
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

    async def _meter_values_without_database(
        self,
        connector_id: int,
        transaction_id: int | None,
        readings: list[metering.Reading],
        rows: list[dict[str, Any]],
    ) -> call_result.MeterValues:
        """PostgreSQL is down: acked only once the session's workflow has the sample; the
        rows are written when the database is back."""
        register = metering.latest_energy(readings)
        tx = None
        if self._transactions is not None:
            tx = self._transactions.cached(transaction_id, connector_id)
        if register is None or tx is None or tx.session_id is None or not tx.start_delivered:
            raise InternalError(details={"cause": "meter store unavailable"})
        if not self._ctx.backlog.has_room():
            raise InternalError(details={"cause": "meter store unavailable; backlog full"})
        latest = max(readings, key=lambda item: item.measured_at)
        sample = MeterSample(
            transaction_id=tx.id,
            energy_wh=max(0, register - tx.meter_start_wh),
            measured_at=latest.measured_at,
            power_w=latest.power_w,
            soc_percent=latest.soc_percent,
        )
        await self._watch().signal(tx.session_id, METER_SAMPLE, sample, tx.id, retryable=True)
        tx.last_signal_at = time.monotonic()
        self._ctx.backlog.add(
            f"meter values of {self.station_id}", lambda: self._ctx.store.insert_meter_values(rows)
        )
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
        row, closed = None, False
        try:
            if 0 < transaction_id <= _INT32:
                # The stop and its relay event are one database transaction: once the charger
                # is answered, the stop reaches the workflow whatever happens to Temporal.
                row, closed = await once_more_if_stale(
                    lambda: self._ctx.store.stop_transaction(
                        self.station_id,
                        transaction_id,
                        meter_stop_wh=meter_stop,
                        stopped_at=stopped_at,
                        reason=reason,
                        then=_relay_stop,
                    )
                )
            if transaction_data:
                connector_id = row.connector_id if row is not None else 0
                readings = metering.readings(transaction_data)
                rows = metering.rows(readings, self.station_id, connector_id, transaction_id)
                await self._ctx.meters.write(rows)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            if row is None:
                await self._stop_without_database(
                    transaction_id, meter_stop, stopped_at, reason, transaction_data
                )
                return call_result.StopTransaction(id_tag_info=id_tag_info)
            # The stop is stored; only the sampled data was lost to the outage.
            log.warning("StopTransaction data not stored", station_id=self.station_id)
        if self._transactions is not None:
            self._transactions.forget(transaction_id)
        if row is None:
            log.warning(
                "stop for unknown transaction",
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

    async def _stop_without_database(
        self,
        transaction_id: int,
        meter_stop: int,
        stopped_at: datetime,
        reason: str | None,
        transaction_data: list[dict[str, Any]] | None,
    ) -> None:
        """PostgreSQL is down: signal the workflow directly (this connection knows the
        transaction) and write the stop when the database is back. Neither: an error."""
        tx = None if self._transactions is None else self._transactions.cached(transaction_id, 0)
        if tx is None or not self._ctx.backlog.has_room(2):
            raise InternalError(details={"cause": "transaction store unavailable"})
        stopped = TransactionStopped(
            transaction_id=tx.id,
            meter_stop_wh=meter_stop,
            energy_wh=max(0, meter_stop - tx.meter_start_wh),
            stopped_at=stopped_at,
            reason=reason,
        )
        try:
            if not tx.start_delivered and tx.started_at is not None:
                # The start still waits in the relay (the database is down, so it cannot go
                # from there now): the workflow ignores a stop of a transaction it lacks.
                started = TransactionStarted(
                    transaction_id=tx.id,
                    station_id=self.station_id,
                    connector_id=tx.connector_id,
                    meter_start_wh=tx.meter_start_wh,
                    started_at=tx.started_at,
                )
                await self._ctx.signals.start_transaction(tx.id_tag, started)
                tx.start_delivered = True
            await self._ctx.signals.send(tx.id_tag, TRANSACTION_STOPPED, stopped)
        except SignalFailed as exc:
            metrics.SIGNALS.labels(TRANSACTION_STOPPED, "failed").inc()
            log.warning(
                "StopTransaction: neither database nor Temporal takes it",
                station_id=self.station_id,
                transaction_id=transaction_id,
            )
            raise InternalError(details={"cause": "transaction store unavailable"}) from exc
        metrics.SIGNALS.labels(TRANSACTION_STOPPED, "accepted").inc()
        store, station_id = self._ctx.store, self.station_id

        async def write_stop() -> None:
            await store.stop_transaction(
                station_id,
                transaction_id,
                meter_stop_wh=meter_stop,
                stopped_at=stopped_at,
                reason=reason,
            )

        self._ctx.backlog.add(f"stop of transaction {transaction_id}", write_stop)
        if transaction_data:
            readings = metering.readings(transaction_data)
            rows = metering.rows(readings, station_id, tx.connector_id, transaction_id)
            self._ctx.backlog.add(
                f"stop data of transaction {transaction_id}",
                lambda: store.insert_meter_values(rows),
            )
        self._transactions.forget(transaction_id)  # type: ignore[union-attr]
        log.warning(
            "transaction stopped while the database is down; stop signalled directly",
            station_id=station_id,
            transaction_id=transaction_id,
        )

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


async def _relay_stop(connection: AsyncConnection, row: TransactionRow) -> None:
    """Written with the stop itself: the relay delivers it to the session's workflow."""
    await insert_event(connection, stopped_event(row))
