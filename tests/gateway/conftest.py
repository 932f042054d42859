"""Gateway fixtures: the real OcppGateway behind uvicorn on a free port, real PostgreSQL and
Temporal, and a plain `ocpp` library charge point talking to it over a real websocket."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, RemoteStartStopStatus
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from db.models import Connector, Location, Station
from gateway.auth import ChargerKeys, legacy_hash
from gateway.config import GatewayConfig
from gateway.server import OcppGateway
from runtime.asgi import OcppDispatcher, Receive, Scope, Send
from runtime.websocket import LivenessWebSocketProtocol
from tests.gateway.workflows import CommandProbe, SignalSink

PASSWORD = "correct horse battery"
KEY_PEPPER = b"gateway-tests-pepper-0123456789abcdef"  # the deployment secret, for tests
KEYS = ChargerKeys(KEY_PEPPER)


async def plain_api(scope: Scope, receive: Receive, send: Send) -> None:
    """Stands in for FastAPI: the dispatcher must send OCPP paths to the gateway, not here."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    elif scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})


@dataclass
class RunningGateway:
    gateway: OcppGateway
    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int

    def url(self, station_id: str, prefix: str = "ws") -> str:
        return f"ws://127.0.0.1:{self.port}/{prefix}/{station_id}"


GatewayFactory = Callable[..., Awaitable[RunningGateway]]


@pytest.fixture
async def start_gateway(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> AsyncIterator[GatewayFactory]:
    """Start a gateway (config overrides as keyword arguments); all are stopped afterwards."""
    running: list[RunningGateway] = []

    async def start(**overrides: Any) -> RunningGateway:
        settings: dict[str, Any] = {
            "instance_id": f"test-{uuid.uuid4().hex[:8]}",
            "key_pepper": KEY_PEPPER,
            "heartbeat_interval_s": 60,
            "max_frame_bytes": 16 * 1024,
            "command_timeout_s": 5.0,
        }
        ping_interval = overrides.pop("ws_ping_interval", 20.0)  # uvicorn's default
        admission_engine = overrides.pop("admission_engine", None)
        settings.update(overrides)
        config = GatewayConfig(**settings)
        gateway = OcppGateway(
            db_sessions, temporal_env.client, config, admission_engine=admission_engine
        )
        await gateway.start()
        server = uvicorn.Server(
            uvicorn.Config(
                OcppDispatcher(plain_api, gateway),
                host="127.0.0.1",
                port=0,
                ws=LivenessWebSocketProtocol,
                ws_max_size=config.max_frame_bytes,
                ws_ping_interval=ping_interval,
                ws_per_message_deflate=False,
                lifespan="off",
                log_level="warning",
            )
        )
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        handle = RunningGateway(gateway, server, task, port)
        running.append(handle)
        return handle

    yield start
    for handle in running:
        await handle.gateway.stop()
        handle.server.should_exit = True
        await handle.task


@pytest.fixture
async def gateway(start_gateway: GatewayFactory) -> RunningGateway:
    return await start_gateway()


@pytest.fixture
async def add_station(
    db_sessions: async_sessionmaker[AsyncSession],
) -> Callable[..., Awaitable[str]]:
    async def add(
        station_id: str,
        *,
        password: str | None = PASSWORD,
        connectors: int = 2,
        legacy: bool = False,
    ) -> str:
        if password is None:
            stored = None
        else:  # legacy: the scrypt hash deployments stored before the HMAC scheme
            stored = legacy_hash(password) if legacy else KEYS.hash(password)
        async with db_sessions.begin() as session:
            if await session.get(Location, "loc-test") is None:
                session.add(Location(id="loc-test", name="Test location"))
                await session.flush()
            session.add(
                Station(
                    id=station_id,
                    location_id="loc-test",
                    name=station_id,
                    price_tyiyn_per_kwh=1500,
                    password_hash=stored,
                )
            )
            await session.flush()
            for number in range(1, connectors + 1):
                session.add(Connector(station_id=station_id, connector_id=number))
        return station_id

    return add


def basic_auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class Charger(ChargePoint):  # type: ignore[misc]
    """A plain ocpp-library charge point that obeys remote commands and records them."""

    def __init__(self, station_id: str, connection: ClientConnection) -> None:
        super().__init__(station_id, connection, response_timeout=10)
        self.remote_starts: list[dict[str, Any]] = []
        self.remote_stops: list[int] = []
        self.answer_commands = True
        self.remote_stop_received = asyncio.Event()

    @on(Action.remote_start_transaction)
    async def on_remote_start(self, connector_id: int, id_tag: str, **kwargs: Any):
        self.remote_starts.append({"connector_id": connector_id, "id_tag": id_tag})
        if not self.answer_commands:
            await asyncio.sleep(3600)
        return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.accepted)

    @on(Action.remote_stop_transaction)
    async def on_remote_stop(self, transaction_id: int):
        self.remote_stops.append(transaction_id)
        self.remote_stop_received.set()
        if not self.answer_commands:
            await asyncio.sleep(3600)
        return call_result.RemoteStopTransaction(status=RemoteStartStopStatus.accepted)


@dataclass
class Connected:
    charger: Charger
    socket: ClientConnection
    task: asyncio.Task[None]
    extra: dict[str, Any] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def charger_session(
    url: str,
    station_id: str,
    password: str | None = PASSWORD,
    subprotocols: list[str] | None = None,
) -> AsyncIterator[Connected]:
    """A connected ocpp-library charger whose receive loop runs in the background."""
    headers = basic_auth(station_id, password) if password is not None else {}
    offered = ["ocpp1.6"] if subprotocols is None else subprotocols
    socket = await connect(
        url,
        subprotocols=[Subprotocol(item) for item in offered] or None,
        additional_headers=headers,
        open_timeout=10,
    )
    charger = Charger(station_id, socket)
    task = asyncio.create_task(charger.start())
    try:
        yield Connected(charger, socket, task)
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        await socket.close()


@pytest.fixture
async def signal_worker(temporal_env: WorkflowEnvironment) -> AsyncIterator[str]:
    """A worker for the test workflows (signal sink, command probe); yields its task queue."""
    queue = f"gateway-tests-{uuid.uuid4().hex[:8]}"
    async with Worker(temporal_env.client, task_queue=queue, workflows=[SignalSink, CommandProbe]):
        yield queue
