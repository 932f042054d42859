"""What a connection tells a charging session: meter samples, the energy limit (and the
RemoteStop that enforces it), and the transaction's stop."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog
from ocpp.exceptions import InternalError, OCPPError
from ocpp.v16 import call

from domain.contracts.session_signals import (
    ENERGY_LIMIT_REACHED,
    METER_SAMPLE,
    EnergyLimitReached,
    MeterSample,
)
from gateway import metering, metrics
from gateway.charge_point import StationDisconnected
from gateway.context import GatewayContext
from gateway.events import meter_event
from gateway.meter_guard import count_reading
from gateway.transactions import RunningTx
from gateway.workflow_signals import SignalFailed

log = structlog.get_logger("gateway")

CallCharger = Callable[[Any, float], Awaitable[Any]]
Defer = Callable[[Coroutine[Any, Any, None]], None]


class EnergyWatch:
    """One station's meter signals and energy-limit stops.

    `call` sends a CSMS -> charger call (ChargePoint.call); `defer` runs work after the
    current answer has been sent (ChargePoint.defer), so the RemoteStop follows the
    MeterValues answer instead of waiting inside it.
    """

    __slots__ = ("_call", "_ctx", "_defer", "_station_id")

    def __init__(
        self, ctx: GatewayContext, station_id: str, *, call: CallCharger, defer: Defer
    ) -> None:
        self._ctx = ctx
        self._station_id = station_id
        self._call = call
        self._defer = defer

    async def on_energy(
        self, tx: RunningTx, register: int, readings: list[metering.Reading]
    ) -> None:
        latest = max(
            (item for item in readings if item.energy_wh == register),
            key=lambda item: item.measured_at,
        )
        if not count_reading(tx, register, latest.measured_at):
            log.warning(
                "implausible meter sample ignored by the limit watch",
                station_id=self._station_id,
                transaction_id=tx.id,
                register_wh=register,
                counted_wh=tx.counted_wh,
            )
            return
        delivered = tx.counted_wh
        limit = tx.energy_limit_wh
        await self._signal_sample(tx, delivered, readings)
        # Deferred last: nothing after it can fail and drop the stop with the answer.
        if limit is not None and delivered >= limit and not tx.limit_stop_accepted:
            tx.limit_stop_accepted = True  # until the charger says otherwise
            self._defer(self._stop_for_limit(tx, delivered))

    async def _signal_sample(
        self, tx: RunningTx, delivered: int, readings: list[metering.Reading]
    ) -> None:
        session_id = tx.session_id
        if session_id is None:
            return
        now = time.monotonic()
        interval = self._ctx.config.meter_signal_interval_s
        if tx.last_signal_at is not None and now - tx.last_signal_at < interval:
            return
        latest = max(readings, key=lambda item: item.measured_at)
        sample = MeterSample(
            transaction_id=tx.id,
            energy_wh=delivered,
            measured_at=latest.measured_at,
            power_w=latest.power_w,
            soc_percent=latest.soc_percent,
        )
        # The sample is in the database already, so the charger is answered whatever happens
        # here; while Temporal is down the newest sample waits in the relay's table.
        try:
            if not tx.start_delivered:
                raise SignalFailed("the start waits in the relay")
            if await self.signal(session_id, METER_SAMPLE, sample, tx.id, retryable=False):
                tx.last_signal_at = now
            else:
                tx.session_id = None
        except SignalFailed:
            await self._relay_sample(session_id, sample)
            tx.last_signal_at = now

    async def _relay_sample(self, session_id: str, sample: MeterSample) -> None:
        try:
            await self._ctx.events.add(meter_event(self._station_id, session_id, sample))
        except Exception:
            log.warning("meter sample not queued for the relay", station_id=self._station_id)

    async def _stop_for_limit(self, tx: RunningTx, delivered: int) -> None:
        """The reservation's energy is used up: stop the charger, then tell the workflow."""
        try:
            answer = await self._call(
                call.RemoteStopTransaction(transaction_id=tx.id), self._ctx.config.command_timeout_s
            )
            status = str(answer.status)
        except OCPPError as error:
            status = error.code
        except TimeoutError:
            status = "Timeout"
        except StationDisconnected:
            status = "NotConnected"
        # Not accepted: try again on the next sample, without another signal.
        tx.limit_stop_accepted = status == "Accepted"
        log.info(
            "energy limit reached",
            station_id=self._station_id,
            transaction_id=tx.id,
            session_id=tx.session_id,
            energy_wh=delivered,
            limit_wh=tx.energy_limit_wh,
            remote_stop=status,
        )
        if tx.limit_signalled or tx.session_id is None:
            return
        tx.limit_signalled = True
        reached = EnergyLimitReached(
            transaction_id=tx.id, energy_wh=delivered, remote_stop_status=status
        )
        try:
            await self.signal(tx.session_id, ENERGY_LIMIT_REACHED, reached, tx.id, retryable=False)
        except SignalFailed:
            tx.limit_signalled = False

    async def signal(
        self, session_id: str, name: str, arg: object, transaction_id: int, *, retryable: bool
    ) -> bool:
        """Signal the session; False when it has no workflow. With `retryable`, a failure
        becomes an InternalError CallError so the charger sends the message again."""
        about = log.bind(
            station_id=self._station_id,
            session_id=session_id,
            transaction_id=transaction_id,
            signal=name,
        )
        try:
            accepted = await self._ctx.signals.send(session_id, name, arg)
        except SignalFailed as exc:
            metrics.SIGNALS.labels(name, "failed").inc()
            about.warning("signal failed", error=str(exc))
            if retryable:
                raise InternalError(details={"cause": "session service unavailable"}) from exc
            raise
        metrics.SIGNALS.labels(name, "accepted" if accepted else "no_workflow").inc()
        if not accepted:
            about.warning("no workflow for signal")
        return accepted
