"""OcppGateway: the ASGI websocket app chargers connect to, with its command worker and sweeps."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from ocpp.v16 import call
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Interceptor, Worker

from db.engine import session_factory
from db.outage import log_failure
from domain.contracts.task_queues import gateway_task_queue
from gateway import upgrade_log
from gateway.admission import AdmissionGate
from gateway.auth import ChargerKeys
from gateway.backlog import DatabaseBacklog
from gateway.bookkeeping import Bookkeeping
from gateway.charger_auth import Authenticator, AuthLimits, busy_retry_after
from gateway.commands import ChargerCommandActivities
from gateway.config import GatewayConfig
from gateway.context import GatewayContext
from gateway.event_store import EventStore
from gateway.events import PendingEvent
from gateway.follow import tell_sessions
from gateway.handlers import StationHandler
from gateway.liveness import WIRE_LIVENESS, Liveness
from gateway.meter_writer import MeterWriter
from gateway.metrics import REJECTED_UPGRADES
from gateway.offline_ids import OfflineTransactionIds
from gateway.registry import ConnectionRegistry
from gateway.relay import TransactionRelay
from gateway.station_store import StationStore
from gateway.store import GatewayStore
from gateway.upgrade import (
    basic_credentials,
    choose_subprotocol,
    client_address,
    station_id_from_path,
)
from gateway.workflow_signals import WorkflowSignals

log = structlog.get_logger("gateway")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_REPLACED = 1000  # normal closure: the same charger opened a newer connection
# What a refused charger is told: the same for an unknown station and a wrong key, so the
# answer reveals nothing about which station ids or keys exist.
_PUBLIC_REASONS = {
    401: "unauthorized",
    429: "too many failed attempts",
    503: "try again later",
}


class OcppGateway:
    """OCPP 1.6J server for `/ws/{station_id}` and `/ocpp/{station_id}` websocket scopes.

    Wiring (composition root, e.g. `evpower serve --role all|gateway`):

        gateway = OcppGateway(db_sessions, temporal_client, GatewayConfig(instance_id=..., ...))
        await gateway.start()          # command worker on gateway-{instance_id}, sweeps
        app = OcppDispatcher(api, gateway)   # runtime/asgi.py; serve `app` with uvicorn
        ...
        await gateway.stop()           # BEFORE telling uvicorn to exit

    Call `stop()` before uvicorn's own shutdown: stop() closes every charger with 1001
    and clears this gateway's `station_connections` rows; if uvicorn shuts down first it
    closes the sockets itself with 1012 and stop() only clears up. uvicorn options the
    gateway expects (see docs/gateway.md): `ws="websockets-sansio"`,
    `ws_max_size=config.max_frame_bytes`, `ws_ping_interval`/`ws_ping_timeout` set (e.g.
    60/30 s), `ws_per_message_deflate=False`.
    """

    def __init__(
        self,
        db_sessions: async_sessionmaker[AsyncSession],
        temporal: Client,
        config: GatewayConfig,
        *,
        activity_interceptors: Sequence[Interceptor] = (),
        admission_engine: AsyncEngine | None = None,
    ) -> None:
        """`admission_engine`: a small pool of its own for what every connecting charger
        costs (key reads, connect / boot / status bookkeeping), so a reconnect storm cannot
        take the connections transaction messages are stored with (the composition root
        builds it, OCPP_ADMISSION_POOL_SIZE); without it, admission shares `db_sessions`."""
        self.config = config
        # The composition root passes the failure classifier (activities/failures.py), so a
        # command activity that can never pass is not retried for ever here either.
        self._activity_interceptors = activity_interceptors
        self.task_queue = gateway_task_queue(config.instance_id)
        self._temporal = temporal
        self._store = GatewayStore(db_sessions)
        self._meters = MeterWriter(self._store)
        signals = WorkflowSignals(temporal, rpc_timeout_s=config.signal_timeout_s)
        events = EventStore(db_sessions)
        self.relay = TransactionRelay(
            events, self._store, signals, config, on_start_refused=self._stop_refused_start
        )
        signals.on_down = self.relay.wake
        self._backlog = DatabaseBacklog(
            max_writes=config.backlog_max_writes,
            retry_first_s=config.relay_retry_first_s,
            retry_max_s=config.relay_retry_max_s,
        )
        self._offline_ids = OfflineTransactionIds(self._store, size=config.offline_transaction_ids)
        admission_sessions = (
            db_sessions if admission_engine is None else session_factory(admission_engine)
        )
        self._admission_store = StationStore(admission_sessions)
        self._bookkeeping = Bookkeeping(self._admission_store.engine, self.task_queue)
        self._ctx = GatewayContext(
            config=config,
            store=self._store,
            meters=self._meters,
            signals=signals,
            events=events,
            relay=self.relay,
            backlog=self._backlog,
            offline_ids=self._offline_ids,
            bookkeeping=self._bookkeeping,
        )
        self.registry = ConnectionRegistry()
        self.admission = AdmissionGate(config.admission_limit)
        self._auth = Authenticator(
            self._admission_store,
            ChargerKeys(config.key_pepper),
            allow_unknown=config.allow_unknown_stations,
            allow_passwordless=config.allow_passwordless_stations,
            limits=AuthLimits(workers=config.auth_workers, backlog=config.auth_backlog),
        )
        self._commands = ChargerCommandActivities(
            self.registry, self._store, answer_within_s=config.command_timeout_s
        )
        self._liveness = Liveness(
            self.registry, self._store, config, self.task_queue, upkeep=self._offline_ids.top_up
        )
        self._worker: Worker | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._accepting = False
        self._telling: set[asyncio.Task[None]] = set()

    # --- lifecycle -------------------------------------------------------------------

    @property
    def temporal_unreachable(self) -> bool:
        """A call of this gateway found Temporal down: its relay waits for the probe to see it
        back before it tries the stored events again."""
        return self._ctx.signals.down

    async def start(self) -> None:
        # Rows naming this queue belong to an earlier life of this instance: none is live.
        await self._store.clear_queue(self.task_queue, datetime.now(UTC))
        await self._offline_ids.top_up()
        self._meters.start()
        self._worker = Worker(
            self._temporal,
            task_queue=self.task_queue,
            activities=self._commands.activities(),
            interceptors=self._activity_interceptors,
        )
        self._tasks = [
            asyncio.create_task(self._worker.run(), name="gateway-worker"),
            asyncio.create_task(self._liveness.run(), name="gateway-liveness"),
            asyncio.create_task(self.relay.run(), name="gateway-relay"),
            asyncio.create_task(self._backlog.run(), name="gateway-backlog"),
        ]
        for task in self._tasks:
            task.add_done_callback(_report_crash)
        upgrade_log.install()
        self._accepting = True
        log.info("gateway started", task_queue=self.task_queue)

    async def stop(self) -> None:
        """Clear our registry rows, close every charger with 1001, stop the worker.

        Rows go first: during a rolling deploy, workflows must route commands to the
        gateway the charger reconnects to, not to this one while its sockets close.
        """
        self._accepting = False
        with contextlib.suppress(Exception):
            await self._store.clear_queue(self.task_queue, datetime.now(UTC))
        connections = list(self.registry)
        await asyncio.gather(
            *(c.close(self.config.shutdown_close_code, "server shutting down") for c in connections)
        )
        with contextlib.suppress(Exception):
            await self._liveness.flush_last_seen()
        if self._worker is not None:
            await self._worker.shutdown()
            self._worker = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._meters.stop()
        with contextlib.suppress(Exception):
            await self._backlog.flush()
        try:
            await self._store.clear_queue(self.task_queue, datetime.now(UTC))
        except Exception as exc:
            # Stopping during a database outage: the other gateways' stale sweep clears
            # the rows (their last_seen stops moving); the rest of the shutdown must run.
            log_failure(log, "could not clear registry rows", exc, task_queue=self.task_queue)
        if self._backlog:
            log.warning("gateway stopped with unwritten rows", writes=len(self._backlog))
        self._auth.close()
        log.info("gateway stopped", task_queue=self.task_queue, closed=len(connections))

    async def _stop_refused_start(self, event: PendingEvent) -> None:
        """A start answered Accepted during a Temporal outage was refused by its session once
        relayed: stop the charger if it is ours, so it delivers no unpaid energy. (A session
        still running stops it too, at its end; see workflows/charging.py.)"""
        connection = self.registry.get(event.station_id)
        if connection is None:
            return
        request = call.RemoteStopTransaction(transaction_id=event.transaction_id)
        try:
            answer = await connection.call(request, self.config.command_timeout_s)
            status = str(answer.status)
        except Exception as exc:
            status = repr(exc)
        log.warning(
            "stopped a transaction its session refused",
            station_id=event.station_id,
            transaction_id=event.transaction_id,
            remote_stop=status,
        )

    # --- ASGI ------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return  # the dispatcher only routes websocket scopes here
        # Kept flat on purpose: this frame lives as long as the charger stays connected,
        # so the upgrade and the bookkeeping run in helpers whose frames are gone by then.
        connection = await self._admit(scope, receive, send)
        if connection is None:
            return
        try:
            await self._attach(connection)
            await connection.serve(receive, self.config.max_frame_bytes)
        except Exception:
            log.exception("connection failed", station_id=connection.station_id)
            await connection.close(1011, "internal error")
        finally:
            await self._detach(connection)

    async def _admit(self, scope: Scope, receive: Receive, send: Send) -> StationHandler | None:
        """Run the upgrade: the accepted charger's handler, or None once it was refused."""
        if (await receive())["type"] != "websocket.connect":
            return None
        remote_ip, remote = client_address(scope.get("client"))
        station_id = station_id_from_path(str(scope.get("path", "")))
        if not self._accepting:
            await _refuse(scope, send, 503, "gateway is not accepting connections", 5)
            return None
        if station_id is None:
            await self._reject(
                scope, send, 404, "not a station path", station_id=None, remote=remote
            )
            return None
        acceptable, subprotocol = choose_subprotocol(scope.get("subprotocols") or ())
        if not acceptable:
            reason = "no supported subprotocol (this server speaks ocpp1.6)"
            await self._reject(scope, send, 400, reason, station_id=station_id, remote=remote)
            return None
        ticket = self.admission.try_enter()
        if ticket is None:  # shed before any database read; the gate counts, no log line
            await _refuse(scope, send, 503, "try again later", self.admission.retry_after_s())
            return None
        try:
            verdict = await self._auth.check(
                station_id, basic_credentials(scope.get("headers", ())), remote_ip
            )
        except Exception as exc:
            ticket.release()
            # The database is away or saturated: the charger retries, spread out, and one
            # warning per charger says why (no traceback: it is the same for all of them).
            log.warning("could not check the charger", station_id=station_id, error=repr(exc))
            await _refuse(scope, send, 503, "try again later", busy_retry_after())
            return None
        if verdict.registration is None:
            ticket.release()
            await self._reject(
                scope,
                send,
                verdict.status,
                verdict.reason,
                station_id=station_id,
                remote=remote,
                retry_after_s=verdict.retry_after_s,
                logged=verdict.logged,
            )
            return None
        upgrade_log.ANSWERED.set(True)  # the line below is this connect's only one
        await send({"type": "websocket.accept", "subprotocol": subprotocol})
        log.info(
            "charger connected",
            station_id=station_id,
            remote_address=remote,
            registration=verdict.registration,
        )
        handler = StationHandler(
            station_id,
            send,
            self._ctx,
            registration=verdict.registration,
            remote_address=remote,
            connected_at=datetime.now(UTC),
            wire=scope.get("extensions", {}).get(WIRE_LIVENESS),
        )
        handler.admission = ticket  # released once its BootNotification is answered
        return handler

    async def _attach(self, connection: StationHandler) -> None:
        """Take over the station from any older connection and record where it is held."""
        replaced = self.registry.add(connection)
        if replaced is not None:
            log.info("replacing older connection", station_id=connection.station_id)
            await replaced.close(_REPLACED, "replaced by a new connection")
        if connection.registration == "pending":
            return  # no stations row yet, so nothing to record
        session_ids = await self._bookkeeping.connect(
            connection.station_id, connection.connected_at, connection.remote_address
        )
        if not session_ids:
            return
        # In the background: the charger's boot must not wait for Temporal.
        telling = asyncio.create_task(
            tell_sessions(
                self._ctx.signals,
                connection.station_id,
                session_ids,
                self.task_queue,
                connection.connected_at,
            )
        )
        self._telling.add(telling)
        telling.add_done_callback(self._telling.discard)

    async def _detach(self, connection: StationHandler) -> None:
        connection.end_admission()
        self.registry.remove(connection)
        if connection.registration != "pending":
            await self._forget(connection)
        log.info("charger disconnected", station_id=connection.station_id)

    async def _forget(self, connection: StationHandler) -> None:
        try:
            await self._store.disconnect(
                connection.station_id,
                self.task_queue,
                connection.connected_at,
                datetime.fromtimestamp(connection.heard_at(), UTC),
                at=datetime.now(UTC),
            )
        except Exception as exc:
            # The liveness sweep of whichever gateway sees the row next clears it.
            log_failure(
                log, "could not clear connection row", exc, station_id=connection.station_id
            )

    async def _reject(
        self,
        scope: Scope,
        send: Send,
        status: int,
        reason: str,
        *,
        station_id: str | None,
        remote: str | None,
        retry_after_s: int | None = None,
        logged: bool = True,
    ) -> None:
        """A refusal is a normal answer: one info line with the reason (none for refusals
        while throttled, whose first failure said so), and the charger learns only the status."""
        REJECTED_UPGRADES.labels(str(status)).inc()
        if logged:
            log.info(
                "charger refused",
                station_id=station_id,
                remote_address=remote,
                status=status,
                reason=reason,
            )
        await _refuse(scope, send, status, _PUBLIC_REASONS.get(status, reason), retry_after_s)


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("gateway task died", task=task.get_name(), error=repr(task.exception()))


async def _refuse(
    scope: Scope, send: Send, status: int, reason: str, retry_after_s: int | None = None
) -> None:
    """An HTTP answer to the upgrade where the server supports it, else a close before accept."""
    upgrade_log.ANSWERED.set(True)
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    if status == 401:
        headers.append((b"www-authenticate", b'Basic realm="OCPP", charset="UTF-8"'))
    if retry_after_s is not None:
        headers.append((b"retry-after", str(retry_after_s).encode()))
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": reason.encode()})
