"""One running EvPower for integration tests, as `evpower serve` and `evpower worker` run it:
the API and the gateway on one uvicorn port (the production websocket protocol), a worker on
its own task queue, against the test's real PostgreSQL and Temporal."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from activities.failures import ACTIVITY_INTERCEPTORS
from activities.ledger import Ledger, LedgerActivities
from activities.sessions import charging_activities
from api.app import create_app
from api.deps import ApiConfig, ApiContext
from gateway.config import GatewayConfig
from gateway.server import OcppGateway
from runtime.asgi import ASGIApp, OcppDispatcher
from runtime.websocket import LivenessWebSocketProtocol
from workflows.charging import ChargingSessionWorkflow

DbSessions = async_sessionmaker[AsyncSession]

# A gateway's settings in these tests unless a test says otherwise: no heartbeat noise, a
# charger's answer waited for generously.
GATEWAY_DEFAULTS: dict[str, Any] = {"heartbeat_interval_s": 60, "command_timeout_s": 10.0}


@dataclass
class Stack:
    port: int
    temporal: Client
    db_sessions: DbSessions
    ledger: Ledger
    gateway: OcppGateway
    task_queue: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ocpp_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"


S = TypeVar("S", bound=Stack)


def api_app(
    db_sessions: DbSessions, temporal: Client, *, jwt_secret: str, task_queue: str, **api: Any
) -> FastAPI:
    """The API as runtime builds it; `api` are settings (by name) or ApiConfig's own fields."""
    config = ApiConfig.of(supabase_jwt_secret=jwt_secret, task_queue=task_queue, **api)
    return create_app(ApiContext(db_sessions, temporal, config))


def ocpp_gateway(
    db_sessions: DbSessions,
    temporal: Client,
    *,
    key_pepper: bytes,
    name: str = "gateway",
    **config: Any,
) -> OcppGateway:
    """A gateway process of its own (its own instance id, so its own command queue)."""
    settings = {**GATEWAY_DEFAULTS, **config}
    instance_id = f"{name}-{uuid.uuid4().hex[:8]}"
    return OcppGateway(
        db_sessions,
        temporal,
        GatewayConfig(instance_id=instance_id, key_pepper=key_pepper, **settings),
    )


def charging_parts(db_sessions: DbSessions) -> tuple[list[type], list[Any]]:
    """ChargingSession and the activities it runs, as `evpower worker` registers them."""
    money = LedgerActivities(Ledger(db_sessions))
    activities = [*charging_activities(db_sessions), money.reserve, money.capture, money.release]
    return [ChargingSessionWorkflow], activities


@asynccontextmanager
async def served(
    app: ASGIApp,
    *,
    ws_ping_interval: float = 20.0,
    before_exit: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[int]:
    """uvicorn on a free port of 127.0.0.1 with the options `evpower serve` uses; the port.
    `before_exit` runs before the server stops (a gateway closes its chargers first)."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            ws=LivenessWebSocketProtocol,
            ws_ping_interval=ws_ping_interval,
            ws_per_message_deflate=False,
            lifespan="off",
            log_level="warning",
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.01)
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        try:
            if before_exit is not None:
                await before_exit()
        finally:
            server.should_exit = True
            await serving


@asynccontextmanager
async def running_stack(
    db_sessions: DbSessions,
    temporal: Client,
    *,
    jwt_secret: str,
    key_pepper: bytes,
    gateway: Mapping[str, Any] | None = None,
    api: Mapping[str, Any] | None = None,
    worker: tuple[Sequence[type], Sequence[Any]] | None = None,
    ws_ping_interval: float = 20.0,
    kind: type[S] = Stack,  # type: ignore[assignment]
) -> AsyncIterator[S]:
    """API, gateway and worker on one free port. `gateway` are GatewayConfig fields over
    GATEWAY_DEFAULTS, `api` settings of the API, `worker` its (workflows, activities):
    ChargingSession's by default."""
    task_queue = f"stack-{uuid.uuid4().hex[:8]}"
    workflows, activities = worker if worker is not None else charging_parts(db_sessions)
    # Card sessions start on the worker's queue.
    gateway = {"task_queue": task_queue, **(gateway or {})}
    ocpp = ocpp_gateway(db_sessions, temporal, key_pepper=key_pepper, **gateway)
    app = api_app(
        db_sessions, temporal, jwt_secret=jwt_secret, task_queue=task_queue, **(api or {})
    )
    async with Worker(
        temporal,
        task_queue=task_queue,
        workflows=list(workflows),
        activities=list(activities),
        interceptors=ACTIVITY_INTERCEPTORS,
    ):
        await ocpp.start()
        async with served(
            OcppDispatcher(app, ocpp), ws_ping_interval=ws_ping_interval, before_exit=ocpp.stop
        ) as port:
            yield kind(port, temporal, db_sessions, Ledger(db_sessions), ocpp, task_queue)
