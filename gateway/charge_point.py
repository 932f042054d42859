"""One charger's websocket: frame routing, CallErrors, and CSMS -> charger calls.

This plays the part of the `ocpp` library's ChargePoint with the same handler style
(`@on(Action.x)` methods returning `call_result` dataclasses, `call()` raising on a
CallError like `suppress=False`) but is built for many thousands of connections: the
route table is per class, not per instance; validation is compiled and inline
(gateway/schemas.py) instead of a thread-pool hop; per-connection state is a handful
of slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar

import structlog
from ocpp.exceptions import (
    InternalError,
    NotImplementedError,
    NotSupportedError,
    OCPPError,
    SecurityError,
)
from ocpp.v16 import call_result

from db.outage import log_failure
from gateway import framing, metrics, schemas

log = structlog.get_logger("gateway")

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Handler = Callable[..., Awaitable[Any]]
H = TypeVar("H", bound=Handler)


class Wire(Protocol):
    """What the websocket transport reports below OCPP (runtime/websocket.py)."""

    heard_at: float  # time.time() of the last ping or pong from the charger


# Our own marker, so the route table below depends on nothing private in the `ocpp` library.
_ACTION_ATTRIBUTE = "__ocpp_action__"


def on(action: str) -> Callable[[H], H]:
    """Marks a handler for one OCPP action, like the `ocpp` library's `@on(Action.x)`."""

    def mark(handler: H) -> H:
        setattr(handler, _ACTION_ATTRIBUTE, str(action))
        return handler

    return mark


# While a station is Pending or Rejected (OCPP 1.6 §4.2.1) it may only do these.
_ALLOWED_UNREGISTERED = frozenset({"BootNotification", "Heartbeat"})


class StationDisconnected(Exception):
    """The charger went away while a call to it was outstanding."""


class ChargePoint:
    """Base class: subclasses declare `@on(Action.x)` handlers (see gateway/handlers.py)."""

    routes: ClassVar[dict[str, Handler]] = {}

    __slots__ = (
        "_call_lock",
        "_deferred",
        "_pending",
        "_send",
        "closed",
        "connected_at",
        "last_seen",
        "registration",
        "remote_address",
        "station_id",
        "wire",
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        routes = dict(cls.routes)
        for attribute in vars(cls).values():
            action = getattr(attribute, _ACTION_ATTRIBUTE, None)
            if action is not None:
                routes[action] = attribute
        cls.routes = routes

    def __init__(
        self,
        station_id: str,
        send: Send,
        *,
        registration: str,
        remote_address: str | None,
        connected_at: datetime,
        wire: Wire | None = None,
    ) -> None:
        self.station_id = station_id
        self.wire = wire  # the transport's ping/pong times, when it reports them
        self.registration = registration  # accepted | pending | rejected
        self.remote_address = remote_address
        self.connected_at = connected_at
        self.last_seen = time.time()
        self.closed = False
        self._send = send
        self._pending: tuple[str, asyncio.Future[framing.Incoming]] | None = None
        self._call_lock: asyncio.Lock | None = None
        self._deferred: Coroutine[Any, Any, None] | None = None

    def heard_at(self) -> float:
        """When the charger last showed life: an OCPP frame, or a ping/pong on the socket."""
        wire = self.wire
        return self.last_seen if wire is None else max(self.last_seen, wire.heard_at)

    # --- receiving -----------------------------------------------------------------

    async def serve(self, receive: Receive, max_frame_bytes: int) -> None:
        """Handle frames until the socket closes. Frames of one charger are handled in order."""
        try:
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    return  # websocket.disconnect
                raw = message.get("text")
                if raw is None:
                    raw = message.get("bytes") or b""
                if len(raw) > max_frame_bytes:
                    log.warning("frame too large", station_id=self.station_id, size=len(raw))
                    await self.close(1009, "frame too large")
                    return
                self.last_seen = time.time()
                await self._route(raw)
        except (OSError, StationDisconnected):
            return  # the charger is gone (uvicorn's ClientDisconnected) or we closed it
        finally:
            self.closed = True
            self._fail_pending()

    async def _route(self, raw: str | bytes) -> None:
        try:
            frame = framing.parse_frame(raw)
        except framing.FrameError as exc:
            log.warning(
                "malformed frame",
                station_id=self.station_id,
                code=exc.error.code,
                cause=str(exc),
            )
            metrics.count_message("in", "malformed", exc.error.code)
            await self._send_text(framing.error_frame(exc.unique_id, exc.error))
            return
        if isinstance(frame, framing.IncomingCall):
            await self._answer(frame)
        else:
            self._resolve(frame)

    async def _answer(self, frame: framing.IncomingCall) -> None:
        action = frame.action if frame.action in schemas.KNOWN_ACTIONS else "unknown"
        try:
            payload = await self._dispatch(frame)
        except OCPPError as error:
            metrics.count_message("in", action, error.code)
            log.warning(
                "call rejected",
                station_id=self.station_id,
                action=action,
                code=error.code,
                cause=error.details.get("cause") if isinstance(error.details, dict) else None,
            )
            self._drop_deferred()
            await self._send_text(framing.error_frame(frame.unique_id, error))
            return
        except Exception as exc:
            metrics.count_message("in", action, "InternalError")
            log_failure(log, "handler failed", exc, station_id=self.station_id, action=action)
            internal = InternalError(details={"cause": "the central system failed to handle it"})
            self._drop_deferred()
            await self._send_text(framing.error_frame(frame.unique_id, internal))
            return
        metrics.count_message("in", action, "result")
        try:
            await self._send_text(framing.result_frame(frame.unique_id, payload))
        except BaseException:
            self._drop_deferred()  # the charger is gone: what was to follow the answer too
            raise
        deferred, self._deferred = self._deferred, None
        if deferred is not None:
            spawn(deferred)

    async def _dispatch(self, frame: framing.IncomingCall) -> dict[str, Any]:
        handler = self.routes.get(frame.action)
        if handler is None:
            if schemas.has_schema(frame.action):
                raise NotSupportedError(details={"cause": f"{frame.action} is not supported"})
            raise NotImplementedError(details={"cause": f"unknown action {frame.action!r}"})
        if self.registration != "accepted" and frame.action not in _ALLOWED_UNREGISTERED:
            raise SecurityError(details={"cause": f"station is {self.registration}, not accepted"})
        schemas.validate_request(frame.action, frame.payload)
        result = await handler(self, **framing.to_snake(frame.payload))
        payload: dict[str, Any] = framing.to_camel(result)
        schemas.validate_response(frame.action, payload)
        return payload

    def defer(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` after the current answer has been sent (it may call the charger)."""
        if self._deferred is not None:
            self._deferred.close()
        self._deferred = work

    def _drop_deferred(self) -> None:
        """The call failed, so work promised after its answer never runs; closing the
        coroutine says so (no "never awaited" warning, its `finally` blocks are skipped)."""
        deferred, self._deferred = self._deferred, None
        if deferred is not None:
            deferred.close()

    # --- calling the charger ---------------------------------------------------------

    async def call(self, request: Any, answer_within_s: float) -> Any:
        """Send a CALL (an `ocpp.v16.call` dataclass) and return the `call_result` dataclass.

        A CALLERROR answer raises the matching OCPPError; no answer raises TimeoutError;
        a closed socket raises StationDisconnected. One call is outstanding at a time, and
        `answer_within_s` covers waiting for the earlier one too: the caller's deadline is
        for the whole command, not only for the charger's part of it.
        """
        action = type(request).__name__
        payload = framing.to_camel(request)
        schemas.validate_request(action, payload)
        if self._call_lock is None:
            self._call_lock = asyncio.Lock()
        async with asyncio.timeout(answer_within_s), self._call_lock:
            if self.closed:
                raise StationDisconnected(self.station_id)
            unique_id = str(uuid.uuid4())
            answer: asyncio.Future[framing.Incoming] = asyncio.get_running_loop().create_future()
            self._pending = (unique_id, answer)
            try:
                await self._send_text(framing.call_frame(unique_id, action, payload))
                response = await answer
            finally:
                self._pending = None
        if isinstance(response, framing.IncomingError):
            metrics.count_message("out", action, response.code)
            raise response.to_exception()
        assert isinstance(response, framing.IncomingResult)
        schemas.validate_response(action, response.payload)
        metrics.count_message("out", action, "result")
        return getattr(call_result, action)(**framing.to_snake(response.payload))

    def _resolve(self, frame: framing.IncomingResult | framing.IncomingError) -> None:
        pending = self._pending
        if pending is None or pending[0] != frame.unique_id or pending[1].done():
            log.warning("answer to no call", station_id=self.station_id, unique_id=frame.unique_id)
            return
        pending[1].set_result(frame)

    def _fail_pending(self) -> None:
        pending = self._pending
        if pending is not None and not pending[1].done():
            pending[1].set_exception(StationDisconnected(self.station_id))

    # --- sending -------------------------------------------------------------------

    async def _send_text(self, text: str) -> None:
        if self.closed:  # closed from another task while this one was still working
            raise StationDisconnected(self.station_id)
        await self._send({"type": "websocket.send", "text": text})

    async def close(self, code: int, reason: str) -> None:
        """Close the socket (from any task); the serve loop then ends."""
        if self.closed:
            return
        self.closed = True
        self._fail_pending()
        with contextlib.suppress(OSError, RuntimeError):  # already gone
            await self._send({"type": "websocket.close", "code": code, "reason": reason})


_background: set[asyncio.Task[None]] = set()


def spawn(work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.create_task(work)
    _background.add(task)
    task.add_done_callback(_background.discard)
