"""Charging as the charge point sees it: connectors, transactions, meter samples, faults."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from typing import Any

from ocpp.v16 import call

from simulator.config import FaultPlan, StationConfig
from simulator.outbox import OutgoingMessage
from simulator.state import Connector, Transaction, meter_value, ocpp_timestamp, soc_percent

log = logging.getLogger("simulator")


class Charging(ABC):
    """The transaction logic of a station; the subclass supplies the transport."""

    def __init__(self, config: StationConfig, faults: FaultPlan | None) -> None:
        self.config = config
        self.faults = faults or FaultPlan()
        self.connectors = {
            number: Connector(number, register_mwh=config.meter_start_wh * 1000)
            for number in range(1, config.connectors + 1)
        }
        self.transactions: list[Transaction] = []
        self.meter_interval_s = config.meter_interval_s
        self._meter_tasks: dict[int, asyncio.Task[None]] = {}
        self._held_meter: dict[int, Any] = {}  # fault: a sample sent after the next one

    @property
    def station_id(self) -> str:
        return self.config.station_id

    @abstractmethod
    def set_status(self, connector: Connector, status: str) -> None: ...

    @abstractmethod
    def _enqueue(self, item: OutgoingMessage) -> None: ...

    @abstractmethod
    def _spawn_online(self, coro: Coroutine[Any, Any, Any]) -> None: ...

    @abstractmethod
    def _touch(self) -> None: ...

    @abstractmethod
    async def wait_until(
        self, predicate: Callable[[], bool], timeout_s: float | None = 10.0
    ) -> None: ...

    @abstractmethod
    async def _call(self, payload: Any) -> Any | None:
        """Send on the current connection when booted; None when offline."""

    def connector(self, connector_id: int) -> Connector:
        return self.connectors[connector_id]

    def active_transaction(self, connector_id: int = 1) -> Transaction | None:
        return self.connectors[connector_id].transaction

    def transaction_by_id(self, transaction_id: int) -> Transaction | None:
        for connector in self.connectors.values():
            tx = connector.transaction
            if tx is not None and tx.transaction_id == transaction_id:
                return tx
        return None

    def claim_connector(self, id_tag: str, connector_id: int | None) -> Connector | None:
        """Reserve a free connector for a remote start; None when there is none."""
        if connector_id is not None:
            candidate = self.connectors.get(connector_id)
            chosen = candidate if candidate is not None and candidate.free else None
        else:
            chosen = next((c for c in self.connectors.values() if c.free), None)
        if chosen is not None:
            chosen.pending_id_tag = id_tag
        return chosen

    def begin_claimed(self, id_tag: str) -> None:
        connector = next((c for c in self.connectors.values() if c.pending_id_tag == id_tag), None)
        if connector is None:
            return
        connector.pending_id_tag = None
        if self.faults.skip_start_transaction:
            log.info("%s: fault: RemoteStart accepted, never starting", self.station_id)
            return
        self._begin(connector, id_tag)

    async def send(self, payload: Any) -> Any | None:
        """Send any OCPP call on the current connection, e.g. a message the charger's own logic
        would not send now (a test repeating a StartTransaction); None when offline."""
        return await self._call(payload)

    async def authorize(self, id_tag: str) -> str:
        """Authorize an idTag as a card reader does: the central system's idTagInfo status
        (`Accepted`, `Blocked`, `Invalid`, ...), or `Offline` when no connection is up."""
        result = await self._call(call.Authorize(id_tag=id_tag))
        if result is None:
            return "Offline"
        status = str(result.id_tag_info["status"])
        log.info("%s: Authorize %s: %s", self.station_id, id_tag, status)
        return status

    async def present_card(
        self, id_tag: str, connector_id: int = 1, *, authorize: bool = True
    ) -> Transaction | None:
        """A driver holds an RFID card to the reader of `connector_id`.

        The card that started the connector's transaction stops it (StopTransaction, reason
        `Local`; OCPP 1.6 compares idTags without regard to case), as a charger does when the
        same card is presented again. Otherwise the card starts a transaction there: after an
        Authorize answered `Accepted`, or at once with `authorize=False` (a charger that starts
        locally and leaves the decision to StartTransaction). Returns the transaction started
        or stopped; None when Authorize refused the card (its status is logged)."""
        connector = self.connectors[connector_id]
        running = connector.transaction
        if running is not None:
            if running.id_tag.upper() != id_tag.upper():
                raise RuntimeError(f"connector {connector_id} is charging for another idTag")
            self.finish_transaction(running, "Local")
            return running
        if authorize and await self.authorize(id_tag) != "Accepted":
            return None
        return await self.start_local_transaction(connector_id, id_tag)

    async def start_local_transaction(self, connector_id: int, id_tag: str) -> Transaction:
        """A driver starts at the charger itself (no Authorize, like a remote start)."""
        connector = self.connectors[connector_id]
        if not connector.free:
            raise RuntimeError(f"connector {connector_id} is not free")
        return self._begin(connector, id_tag)

    def _begin(self, connector: Connector, id_tag: str) -> Transaction:
        tx = Transaction(
            connector_id=connector.connector_id,
            id_tag=id_tag,
            meter_start_wh=connector.register_wh,
            started_at=ocpp_timestamp(),
            meter_now_wh=connector.register_wh,
        )
        connector.transaction = tx
        self.transactions.append(tx)
        self.set_status(connector, "Preparing")
        payload = call.StartTransaction(
            connector_id=connector.connector_id,
            id_tag=id_tag,
            meter_start=tx.meter_start_wh,
            timestamp=tx.started_at,
        )
        self._enqueue(
            OutgoingMessage(
                "StartTransaction",
                build=lambda: payload,
                on_result=lambda result: self._on_started(tx, result),
                repeats=self.faults.start_transaction_repeats,
                on_failure=lambda: self._abandon(tx),
            )
        )
        log.info("%s: starting on connector %d for %s", self.station_id, tx.connector_id, id_tag)
        return tx

    def _on_started(self, tx: Transaction, result: Any) -> None:
        tx.assigned_ids.append(int(result.transaction_id))
        if tx.transaction_id is None:
            tx.transaction_id = int(result.transaction_id)
            tx.id_tag_status = str(result.id_tag_info["status"])
            connector = self.connectors[tx.connector_id]
            if tx.id_tag_status == "Accepted" and not tx.finished:
                log.info("%s: transaction %d charging", self.station_id, tx.transaction_id)
                self.set_status(connector, "Charging")
                self._meter_tasks[tx.connector_id] = asyncio.create_task(
                    self._meter_loop(connector, tx)
                )
            elif not tx.finished:
                # StopTransactionOnInvalidId: a rejected idTag ends the transaction at once.
                self.finish_transaction(tx, "DeAuthorized")
        self._touch()

    def _abandon(self, tx: Transaction) -> None:
        connector = self.connectors[tx.connector_id]
        tx.stop_reason = "Other"
        if connector.transaction is tx:
            connector.transaction = None
        self.set_status(connector, "Available")

    async def stop_local_transaction(
        self, connector_id: int = 1, reason: str = "Local"
    ) -> Transaction:
        """The driver stops at the charger (or unplugs); queued when offline."""
        tx = self.connectors[connector_id].transaction
        if tx is None:
            raise RuntimeError(f"no transaction on connector {connector_id}")
        self.finish_transaction(tx, reason)
        return tx

    def finish_transaction(self, tx: Transaction, reason: str) -> None:
        connector = self.connectors[tx.connector_id]
        meter_task = self._meter_tasks.pop(tx.connector_id, None)
        if meter_task is not None:
            meter_task.cancel()
        tx.meter_now_wh = connector.register_wh
        tx.meter_stop_wh = connector.register_wh
        tx.stop_reason = reason
        tx.stopped_at = ocpp_timestamp()
        connector.transaction = None
        final = meter_value(connector, power_w=0, context="Transaction.End", soc=None)

        def build() -> Any | None:
            if tx.transaction_id is None:  # the start never got through: nothing to stop
                return None
            return call.StopTransaction(
                meter_stop=tx.meter_stop_wh,
                timestamp=tx.stopped_at,
                transaction_id=tx.transaction_id,
                reason=reason,
                id_tag=tx.id_tag,
                transaction_data=[final],
            )

        self._enqueue(
            OutgoingMessage(
                "StopTransaction",
                build=build,
                on_result=lambda _result: self._on_stopped(tx),
                repeats=self.faults.stop_transaction_repeats,
            )
        )
        log.info(
            "%s: transaction %s stopped (%s), %d Wh",
            self.station_id,
            tx.transaction_id,
            reason,
            tx.energy_wh,
        )
        self.set_status(connector, "Finishing")
        if connector.inoperative_scheduled:
            connector.operative = False
            connector.inoperative_scheduled = False
        self.set_status(connector, "Available" if connector.operative else "Unavailable")

    def _on_stopped(self, tx: Transaction) -> None:
        tx.stop_acknowledged = True
        self._touch()

    def car_full(self, tx: Transaction) -> bool:
        takes = self.config.car_takes_wh
        return takes is not None and tx.energy_wh >= takes

    async def _meter_loop(self, connector: Connector, tx: Transaction) -> None:
        while True:
            await asyncio.sleep(self.meter_interval_s)
            if self.car_full(tx):
                if connector.status != "SuspendedEV":
                    self.set_status(connector, "SuspendedEV")
            else:
                connector.add_sample(
                    power_w=self.config.power_w,
                    interval_s=self.meter_interval_s,
                    fast_forward_wh=self.config.energy_per_sample_wh,
                )
                takes = self.config.car_takes_wh
                if takes is not None and tx.energy_wh > takes:  # the car took no more
                    connector.register_mwh = (tx.meter_start_wh + takes) * 1000
                    tx.meter_now_wh = connector.register_wh
            self._touch()
            self._spawn_online(self._send_meter_values(connector, tx))

    def meter_payload(self, connector: Connector, tx: Transaction | None) -> Any:
        soc = None
        if tx is not None and self.config.soc_start_percent is not None:
            soc = soc_percent(self.config.soc_start_percent, tx.energy_wh, self.config.battery_wh)
        charging = tx is not None and not tx.finished and not self.car_full(tx)
        return call.MeterValues(
            connector_id=connector.connector_id,
            transaction_id=tx.transaction_id if tx is not None else None,
            meter_value=[
                meter_value(
                    connector,
                    power_w=self.config.power_w if charging else 0,
                    context="Sample.Periodic",
                    soc=soc,
                )
            ],
        )

    async def _send_meter_values(self, connector: Connector, tx: Transaction) -> None:
        if tx.transaction_id is None or tx.finished:
            return
        payloads = [self.meter_payload(connector, tx)]
        if self.faults.meter_values_out_of_order:
            held = self._held_meter.pop(connector.connector_id, None)
            if held is None:
                self._held_meter[connector.connector_id] = payloads[0]
                return
            payloads.append(held)  # the newer sample first, then the older one
        if self.faults.duplicate_meter_values:
            payloads = [payload for payload in payloads for _ in range(2)]
        for payload in payloads:
            if await self._call(payload) is not None:
                tx.samples_sent += 1
                self._touch()

    async def wait_for_transaction(
        self, connector_id: int | None = None, timeout_s: float = 10.0
    ) -> Transaction:
        """The transaction the CSMS acknowledged (has an id) and that is still running."""

        def running() -> Transaction | None:
            for tx in reversed(self.transactions):
                if connector_id is not None and tx.connector_id != connector_id:
                    continue
                if tx.started and not tx.finished:
                    return tx
            return None

        await self.wait_until(lambda: running() is not None, timeout_s)
        tx = running()
        assert tx is not None
        return tx

    async def wait_for_stop(self, tx: Transaction, timeout_s: float = 10.0) -> Transaction:
        """Wait until the CSMS acknowledged this transaction's StopTransaction."""
        await self.wait_until(lambda: tx.stop_acknowledged, timeout_s)
        return tx

    async def wait_for_energy(
        self, tx: Transaction, energy_wh: int, timeout_s: float = 10.0
    ) -> None:
        await self.wait_until(lambda: tx.energy_wh >= energy_wh, timeout_s)
