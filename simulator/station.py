"""A simulated OCPP 1.6J charge point: connection lifecycle, transactions, meter and faults."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.v16 import call
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from simulator.backoff import next_delay_s, retry_after_s
from simulator.changes import Changes
from simulator.charging import Charging
from simulator.config import FaultPlan, StationConfig
from simulator.outbox import Outbox, OutgoingMessage
from simulator.protocol import ChargePointProtocol
from simulator.state import Connector, ocpp_timestamp

log = logging.getLogger("simulator")

DEFAULT_HEARTBEAT_S = 60.0


class StationConnectError(RuntimeError):
    """The station could not connect and boot; `cause` is the last connection error."""

    def __init__(self, station_id: str, cause: BaseException | None) -> None:
        super().__init__(f"{station_id} could not connect: {cause}")
        self.cause = cause

    @property
    def http_status(self) -> int | None:
        response = getattr(self.cause, "response", None)
        return getattr(response, "status_code", None)


RECEIVED_KEPT = 256


class SimulatedStation(Charging):
    """One charge point. Tests drive it directly; `evpower simulate` runs many of them."""

    def __init__(self, config: StationConfig, faults: FaultPlan | None = None) -> None:
        super().__init__(config, faults)
        # The latest CSMS calls, in order; bounded so long load runs do not grow without end.
        self.received: deque[tuple[str, dict[str, Any]]] = deque(maxlen=RECEIVED_KEPT)
        self.registration: str | None = None
        self.boot_count = 0
        self.connect_count = 0
        self.last_connect_error: BaseException | None = None
        self.retry_after_waits = 0  # refusals with Retry-After the station waited out
        self.heartbeat_interval_s = DEFAULT_HEARTBEAT_S
        self._ws: ClientConnection | None = None
        self._booted: ChargePointProtocol | None = None
        self._outbox = Outbox(
            attempts=config.transaction_message_attempts,
            retry_s=config.transaction_message_retry_s,
        )
        self._online = asyncio.Event()
        self._stopping = False
        self._runner: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._connection_tasks: set[asyncio.Task[Any]] = set()
        # A charger reports its statuses one after another. The OCPP library validates a
        # payload off the event loop before it takes its send lock, so two sends spawned in
        # order could otherwise go out swapped (Available, then Finishing: a stuck connector).
        self._status_order = asyncio.Lock()
        self._changes = Changes()

    # --- lifecycle -------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._ws is not None

    @property
    def booted(self) -> bool:
        """Connected and accepted by the CSMS: messages flow."""
        return self._booted is not None

    def launch(self) -> None:
        """Connect in the background and stay connected (reconnecting) until `stop()`."""
        if self._runner is None:
            self._stopping = False
            self._online.set()
            self._runner = asyncio.create_task(self._run(), name=f"sim-{self.station_id}")

    async def start(self, timeout_s: float = 10.0) -> str:
        """Connect and wait for the first BootNotification answer; return its status."""
        self.launch()
        with contextlib.suppress(TimeoutError):
            await self.wait_until(
                lambda: self.registration is not None or self.last_connect_error is not None,
                timeout_s,
            )
        if self.registration is None:
            error = self.last_connect_error
            await self.stop()
            raise StationConnectError(self.station_id, error)
        return self.registration

    async def stop(self) -> None:
        """Power off: close the socket and stop every task. Open transactions stay open."""
        self._stopping = True
        self._online.set()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), 2.0)
        tasks = [*self._meter_tasks.values(), *self._background]
        if self._runner is not None:
            tasks.append(self._runner)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._meter_tasks.clear()
        self._background.clear()
        self._runner = None

    async def __aenter__(self) -> SimulatedStation:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def drop_connection(self, reconnect_after_s: float | None = 0.0) -> None:
        """Lose the network without a close frame; come back after the delay (None: on
        `reconnect()`). Charging goes on meanwhile and stop messages wait in the outbox."""
        self._online.clear()
        if reconnect_after_s is not None:
            asyncio.get_running_loop().call_later(reconnect_after_s, self._online.set)
        ws = self._ws
        if ws is not None:
            ws.transport.abort()
            await self.wait_until(lambda: self._ws is not ws, 5.0)

    def reconnect(self) -> None:
        self._online.set()

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            await self._online.wait()
            if self._stopping:
                return
            try:
                ws = await connect(
                    self.config.endpoint,
                    subprotocols=[Subprotocol("ocpp1.6")],
                    additional_headers=self._auth_headers(),
                    compression="deflate" if self.config.compression else None,
                    open_timeout=10,
                    ping_interval=self.config.ping_interval_s,
                    proxy=None,
                )
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                self.last_connect_error = exc
                failures += 1
                log.warning("%s: connect failed: %s", self.station_id, exc)
                self._touch()
                self.retry_after_waits += retry_after_s(exc) is not None
                await asyncio.sleep(next_delay_s(exc, failures, self.config.reconnect_delay_s))
                continue
            failures = 0
            self.last_connect_error = None
            await self._serve(ws)
            if not self._stopping and self._online.is_set():
                await asyncio.sleep(self.config.reconnect_delay_s)

    def _auth_headers(self) -> dict[str, str]:
        if self.config.password is None:
            return {}
        token = base64.b64encode(f"{self.station_id}:{self.config.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    async def _serve(self, ws: ClientConnection) -> None:
        protocol = ChargePointProtocol(self, ws)
        self._ws = ws
        self.connect_count += 1
        log.info("%s: connected to %s", self.station_id, self.config.endpoint)
        self._touch()
        session = asyncio.create_task(self._session(protocol))
        self._connection_tasks.add(session)
        try:
            await protocol.start()
        except ConnectionClosed as exc:
            log.info("%s: connection closed (%s)", self.station_id, exc.rcvd or "no close frame")
        finally:
            self._booted = None
            self._ws = None
            for task in list(self._connection_tasks):
                task.cancel()
            for task in list(self._connection_tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._connection_tasks.clear()
            self._touch()

    async def _session(self, protocol: ChargePointProtocol) -> None:
        try:
            await self._boot(protocol)
            self._booted = protocol
            for connector in self.connectors.values():
                await self._send_status(protocol, connector)
            self._spawn_online(self._heartbeat_loop(protocol))
            await self._flush_outbox(protocol)
        except (TimeoutError, OCPPError) as exc:
            log.warning("%s: session failed (%r); reconnecting", self.station_id, exc)
            await protocol.close()

    async def _boot(self, protocol: ChargePointProtocol) -> None:
        while True:
            result = await protocol.call(self.boot_payload(), suppress=False)
            self.registration = str(result.status)
            self.boot_count += 1
            interval = float(result.interval)
            log.info("%s: boot %s (interval %ss)", self.station_id, result.status, result.interval)
            self._touch()
            if self.registration == "Accepted":
                if interval > 0:
                    self.heartbeat_interval_s = interval
                return
            # Pending / Rejected: the interval is when to try again.
            await asyncio.sleep(interval if interval > 0 else DEFAULT_HEARTBEAT_S)

    def boot_payload(self) -> Any:
        return call.BootNotification(
            charge_point_model=self.config.model,
            charge_point_vendor=self.config.vendor,
            charge_point_serial_number=self.config.serial_number,
            firmware_version=self.config.firmware_version,
        )

    async def reboot(self, reason: str) -> None:
        """Reset: end every transaction, hand the stops to the CSMS, reconnect and boot."""
        for connector in self.connectors.values():
            if connector.transaction is not None:
                self.finish_transaction(connector.transaction, reason)
        with contextlib.suppress(TimeoutError):
            await self.wait_outbox_empty(timeout_s=5.0)
        if self._ws is not None:
            await self._ws.close()

    async def _heartbeat_loop(self, protocol: ChargePointProtocol) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval_s)
            if self.faults.ping_only:
                continue  # only ping/pong keeps the socket alive
            with contextlib.suppress(TimeoutError, OCPPError):
                await protocol.call(call.Heartbeat(), suppress=False)

    # --- outbox: transaction messages survive disconnects ------------------------------

    def _enqueue(self, item: OutgoingMessage) -> None:
        item.same_message_id = self.faults.retry_with_same_message_id
        stop_later = item.action == "StopTransaction" and self.faults.stop_after_reconnect
        if stop_later:
            item.after_connection = self.connect_count
        self._outbox.append(item)
        self._touch()
        if stop_later and self._ws is not None:
            log.info("%s: fault: dropping the connection before StopTransaction", self.station_id)
            self.spawn(self.drop_connection(reconnect_after_s=self.config.reconnect_delay_s))

    @property
    def outbox_size(self) -> int:
        return len(self._outbox)

    @property
    def transaction_message_failures(self) -> int:
        """Attempts of Start/StopTransaction the CSMS answered with an error (or not at all)."""
        return self._outbox.failed_attempts

    @property
    def given_up_messages(self) -> list[str]:
        """Transaction messages dropped after their last attempt failed."""
        return list(self._outbox.given_up)

    async def _flush_outbox(self, protocol: ChargePointProtocol) -> None:
        while True:
            await self.wait_until(lambda: self._outbox.head_ready(self.connect_count), None)
            await self._outbox.deliver_head(protocol, self.station_id)
            self._touch()

    # --- statuses and background sends --------------------------------------------------

    def set_status(self, connector: Connector, status: str) -> None:
        connector.status = status
        self._touch()
        if self._booted is not None:
            # Built now: by the time the send runs the status may have moved on.
            payload = self.status_payload(connector)
            self._spawn_online(self._send_in_order(self._booted, payload))

    async def _send_in_order(self, protocol: ChargePointProtocol, payload: Any) -> None:
        async with self._status_order:
            await protocol.call(payload, suppress=False)

    def status_payload(self, connector: Connector) -> Any:
        return call.StatusNotification(
            connector_id=connector.connector_id,
            error_code=connector.error_code,
            status=connector.status,
            timestamp=ocpp_timestamp(),
        )

    async def _send_status(self, protocol: ChargePointProtocol, connector: Connector) -> None:
        await protocol.call(self.status_payload(connector), suppress=False)

    async def _call(self, payload: Any) -> Any | None:
        protocol = self._booted
        if protocol is None:
            return None
        return await protocol.call(payload, suppress=False)

    def send_triggered(self, requested_message: str, connector_id: int | None) -> None:
        protocol = self._booted
        if protocol is None:
            return
        for payload in protocol.triggered_payloads(requested_message, connector_id):
            self._spawn_online(protocol.call(payload, suppress=False))

    def _spawn_online(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a send that belongs to the current connection; dropped when it closes."""
        if self._ws is None:
            coro.close()
            return
        task = self._run_quietly(coro)
        self._connection_tasks.add(task)
        task.add_done_callback(self._connection_tasks.discard)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run station work (a reset, say) that outlives one connection."""
        task = self._run_quietly(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _run_quietly(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[None]:
        task = asyncio.create_task(self._quietly(coro))
        # A task cancelled before its first step (the connection closed at once) never
        # awaits `coro`; closing it then keeps Python from warning it was never awaited.
        task.add_done_callback(lambda _: coro.close())
        return task

    async def _quietly(self, coro: Awaitable[Any]) -> None:
        try:
            await coro
        except (TimeoutError, OCPPError, ConnectionClosed) as exc:
            log.warning("%s: send failed: %r", self.station_id, exc)

    # --- waiting, for tests and the CLI ----------------------------------------------------

    def _touch(self) -> None:
        self._changes.touch()

    async def wait_until(
        self, predicate: Callable[[], bool], timeout_s: float | None = 10.0
    ) -> None:
        """Return once `predicate()` holds; TimeoutError after `timeout_s`."""
        await self._changes.wait_until(predicate, timeout_s)

    async def wait_booted(self, timeout_s: float = 10.0) -> None:
        await self.wait_until(lambda: self.booted, timeout_s)

    async def wait_outbox_empty(self, timeout_s: float = 10.0) -> None:
        await self.wait_until(lambda: len(self._outbox) == 0, timeout_s)
