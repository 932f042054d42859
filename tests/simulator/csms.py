"""A minimal OCPP 1.6J central system for simulator tests: records every message it gets,
allocates transaction ids by natural key and lets a test send commands to a station."""

from __future__ import annotations

import base64
import contextlib
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from ocpp.exceptions import InternalError
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from simulator.changes import Changes


@dataclass(frozen=True)
class Received:
    station_id: str
    action: str
    unique_id: str
    payload: dict[str, Any]


@dataclass
class MiniCsms:
    passwords: dict[str, str] = field(default_factory=dict)  # empty: no auth
    heartbeat_interval: int = 300
    registration: str = "Accepted"
    drop_on_next_start: bool = False  # lose the connection instead of answering once
    fail_stops: int = 0  # answer this many StopTransaction with a CallError InternalError
    # Authorize answers per idTag (any other: Invalid).
    tags: dict[str, str] = field(default_factory=dict)
    messages: list[Received] = field(default_factory=list)
    chargers: dict[str, CentralChargePoint] = field(default_factory=dict)
    changes: Changes = field(default_factory=Changes)
    # How each station's last connection ended: the close code it sent (1006: no close frame).
    close_codes: dict[str, int | None] = field(default_factory=dict)
    _ids: dict[tuple[Any, ...], int] = field(default_factory=dict)
    _next_id: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    shed_upgrades: int = 0  # refuse this many upgrades with 503 and Retry-After: shed_retry_after
    shed_retry_after: str = "1"
    url: str = ""
    _server: Server | None = None

    async def start(self) -> str:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            process_request=self._check_auth,
        )
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ws"
        return self.url

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def _check_auth(self, _conn: ServerConnection, request: Request) -> Response | None:
        if self.shed_upgrades > 0:
            self.shed_upgrades -= 1
            headers = Headers({"Retry-After": self.shed_retry_after})
            return Response(HTTPStatus.SERVICE_UNAVAILABLE, "Busy", headers, b"")
        if not self.passwords:
            return None
        station_id = request.path.rsplit("/", 1)[-1]
        expected = base64.b64encode(
            f"{station_id}:{self.passwords.get(station_id, '')}".encode()
        ).decode()
        if request.headers.get("Authorization") == f"Basic {expected}":
            return None
        return Response(HTTPStatus.UNAUTHORIZED, "Unauthorized", Headers(), b"")

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        station_id = ws.request.path.rsplit("/", 1)[-1]
        charger = CentralChargePoint(station_id, ws, self)
        self.chargers[station_id] = charger
        self.changes.touch()
        # The connection ending (any way) is the end of the test's interest in it.
        with contextlib.suppress(Exception):
            await charger.start()
        self.close_codes[station_id] = ws.close_code
        self.changes.touch()

    def record(self, station_id: str, action: str, unique_id: str, payload: dict[str, Any]) -> None:
        self.messages.append(Received(station_id, action, unique_id, payload))
        self.changes.touch()

    def of(self, action: str, station_id: str | None = None) -> list[Received]:
        return [
            m
            for m in self.messages
            if m.action == action and (station_id is None or m.station_id == station_id)
        ]

    async def wait_for(
        self, action: str, count: int = 1, timeout_s: float = 10.0
    ) -> list[Received]:
        await self.changes.wait_until(lambda: len(self.of(action)) >= count, timeout_s)
        return self.of(action)

    async def send(self, station_id: str, payload: Any) -> Any:
        return await self.chargers[station_id].call(payload, suppress=False)

    def transaction_id(self, key: tuple[Any, ...]) -> int:
        if key not in self._ids:
            self._ids[key] = next(self._next_id)
        return self._ids[key]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CentralChargePoint(ChargePoint):  # type: ignore[misc]
    def __init__(self, station_id: str, ws: ServerConnection, csms: MiniCsms) -> None:
        super().__init__(station_id, ws, response_timeout=5)
        self._csms = csms
        self._ws = ws

    @on(Action.boot_notification)
    def on_boot(self, call_unique_id: str, **payload: Any) -> call_result.BootNotification:
        self._csms.record(self.id, "BootNotification", call_unique_id, payload)
        return call_result.BootNotification(
            current_time=_now(),
            interval=self._csms.heartbeat_interval,
            status=self._csms.registration,
        )

    @on(Action.heartbeat)
    def on_heartbeat(self, call_unique_id: str) -> call_result.Heartbeat:
        self._csms.record(self.id, "Heartbeat", call_unique_id, {})
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification)
    def on_status(self, call_unique_id: str, **payload: Any) -> call_result.StatusNotification:
        self._csms.record(self.id, "StatusNotification", call_unique_id, payload)
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, call_unique_id: str, id_tag: str) -> call_result.Authorize:
        self._csms.record(self.id, "Authorize", call_unique_id, {"id_tag": id_tag})
        return call_result.Authorize(id_tag_info={"status": self._csms.tags.get(id_tag, "Invalid")})

    @on(Action.start_transaction)
    def on_start(self, call_unique_id: str, **payload: Any) -> call_result.StartTransaction:
        self._csms.record(self.id, "StartTransaction", call_unique_id, payload)
        if self._csms.drop_on_next_start:
            self._csms.drop_on_next_start = False
            self._ws.transport.abort()
        key = (
            self.id,
            payload["connector_id"],
            payload["id_tag"],
            payload["meter_start"],
            payload["timestamp"],
        )
        return call_result.StartTransaction(
            transaction_id=self._csms.transaction_id(key), id_tag_info={"status": "Accepted"}
        )

    @on(Action.meter_values)
    def on_meter_values(self, call_unique_id: str, **payload: Any) -> call_result.MeterValues:
        self._csms.record(self.id, "MeterValues", call_unique_id, payload)
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    def on_stop(self, call_unique_id: str, **payload: Any) -> call_result.StopTransaction:
        self._csms.record(self.id, "StopTransaction", call_unique_id, payload)
        if self._csms.fail_stops > 0:
            self._csms.fail_stops -= 1
            raise InternalError(description="session service unavailable")
        return call_result.StopTransaction(id_tag_info={"status": "Accepted"})

    @on(Action.diagnostics_status_notification)
    def on_diagnostics(self, call_unique_id: str, **payload: Any) -> Any:
        self._csms.record(self.id, "DiagnosticsStatusNotification", call_unique_id, payload)
        return call_result.DiagnosticsStatusNotification()


def sampled(payload: dict[str, Any], measurand: str) -> str | None:
    for value in payload["meter_value"][0]["sampled_value"]:
        if value.get("measurand") == measurand:
            return str(value["value"])
    return None
