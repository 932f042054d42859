"""Runs the roles of one process (api, gateway, worker) until a stop signal, then shuts down."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import uuid
from collections.abc import Callable, Generator
from enum import StrEnum

import structlog
import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from activities.failures import ACTIVITY_INTERCEPTORS
from api import health, metrics
from api.app import create_app
from api.deps import ApiConfig, ApiContext
from api.errors import install_error_handlers
from db.engine import create_engine
from gateway.config import GatewayConfig
from gateway.server import OcppGateway
from runtime.asgi import ASGIApp, OcppDispatcher
from runtime.key_pepper import key_pepper, optional_key_pepper
from runtime.payment_simulator import install_payment_simulator
from runtime.provider_secret import provider_settings
from runtime.services import Services
from runtime.settings import Settings
from runtime.websocket import LivenessWebSocketProtocol

log = structlog.get_logger(__name__)


class Role(StrEnum):
    API = "api"
    GATEWAY = "gateway"
    WORKER = "worker"


class ManagedUvicorn(uvicorn.Server):
    """Uvicorn without its own signal handling: the process's stop event rules shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def api_config(settings: Settings) -> ApiConfig:
    return ApiConfig.of(
        settings,  # its groups, whole
        task_queue=settings.temporal_task_queue,
        temporal_namespace=settings.temporal_namespace,
        temporal_ui_url=settings.temporal_ui_base_url,
        key_pepper=optional_key_pepper(settings),
        provider=provider_settings(settings),
    )


def build_api(services: Services) -> FastAPI:
    context = ApiContext(
        db_sessions=services.db_sessions,
        temporal=services.temporal,
        config=api_config(services.settings),
    )
    app = create_app(context)
    install_payment_simulator(app, context)  # only when PAYMENT_PROVIDER=SIMULATED
    return app


def build_ops_api(services: Services) -> FastAPI:
    """What a gateway-only or worker-only process serves over HTTP: `/health` and `/metrics`
    (the OCPP or workflow counters live in this process), everything else 404 in the
    standard body."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.context = ApiContext(
        db_sessions=services.db_sessions,
        temporal=services.temporal,
        config=api_config(services.settings),
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    return app


def gateway_config(settings: Settings) -> GatewayConfig:
    # Unique per process: the command queue `gateway-{instance_id}` must name this process only.
    instance_id = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    return GatewayConfig.of(
        settings,  # its group, whole
        instance_id=instance_id,
        key_pepper=key_pepper(settings),
        task_queue=settings.temporal_task_queue,
    )


def admission_engine(services: Services) -> AsyncEngine:
    """The gateway admission path's own small pool (OCPP_ADMISSION_POOL_SIZE, no overflow):
    a reconnect storm waits for these connections, never for the ones transaction messages
    are stored with (docs/gateway.md). No pre-ping: every statement the admission path runs
    is retried once on a connection that died with a restarted database (gateway/backlog.py
    `once_more_if_stale`, used by gateway/bookkeeping.py and gateway/charger_auth.py). The
    shared engine keeps its ping: the gateway's other writes are not all retried that way."""
    return create_engine(
        services.database_url,
        pool_size=services.settings.admission_pool_size,
        max_overflow=0,
        pre_ping=False,
    )


def uvicorn_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    """The websocket options are the gateway's (docs/gateway.md): the sans-I/O implementation
    holds the least memory per charger, and permessage-deflate stays off because it triples
    a connection's memory for frames of a few hundred bytes (docs/benchmarks.md)."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="off",
        log_config=None,
        access_log=False,
        ws=LivenessWebSocketProtocol,  # websockets-sansio that reports pongs to the gateway
        ws_max_size=settings.max_frame_bytes,
        ws_ping_interval=60.0,
        ws_ping_timeout=30.0,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=10,
        backlog=4096,  # a fleet reconnecting after a restart arrives all at once
        proxy_headers=True,  # real client addresses behind Traefik, for limits and logs
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


async def run_roles(
    services: Services,
    roles: frozenset[Role],
    stop: asyncio.Event,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve the given roles until `stop` is set."""
    tasks: list[asyncio.Task[None]] = []
    gateway: OcppGateway | None = None
    own_engines: list[AsyncEngine] = []  # built here for a role, disposed of at the end
    if Role.WORKER in roles:
        from worker import run_worker

        tasks.append(asyncio.create_task(run_worker(services, stop), name="worker"))
    if Role.GATEWAY in roles:
        admission = admission_engine(services)
        own_engines.append(admission)
        gateway = OcppGateway(
            services.db_sessions,
            services.temporal,
            gateway_config(services.settings),
            activity_interceptors=ACTIVITY_INTERCEPTORS,
            admission_engine=admission,
        )
        await gateway.start()
    # Every process serves HTTP: the api its REST, a gateway or a worker alone `/health`
    # (the container's healthcheck) and `/metrics` (the SDK's and our counters live there).
    api: ASGIApp = build_api(services) if Role.API in roles else build_ops_api(services)
    server: ManagedUvicorn | None = ManagedUvicorn(
        uvicorn_config(OcppDispatcher(api, gateway), services.settings)
    )
    if roles == {Role.WORKER} and not port_free(services.settings.host, services.settings.port):
        # A worker beside `evpower serve` on one host (PORT taken) still works; only its
        # probe and scrape endpoint are missing, so say so and go on.
        log.warning(
            "worker runs without /health and /metrics: its HTTP port is taken (set PORT)",
            port=services.settings.port,
        )
        server = None
    if server is not None:
        tasks.append(asyncio.create_task(server.serve(), name="http"))
    try:
        while server is not None and not server.started:
            if tasks[-1].done():
                await tasks[-1]  # raises the bind error, for one
                raise RuntimeError("HTTP server stopped during start-up")
            await asyncio.sleep(0.05)
        if on_ready is not None:
            on_ready()
        await stop.wait()
    finally:
        stop.set()
        if gateway is not None:
            await gateway.stop()  # chargers get 1001 and the registry is cleared first
        await asyncio.gather(*(engine.dispose() for engine in own_engines))
        if server is not None:
            server.should_exit = True
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for task, result in zip(tasks, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("role failed", role=task.get_name(), error=repr(result))


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGINT/SIGTERM set `stop`; a second Ctrl-C falls back to the default (abort)."""
    loop = asyncio.get_running_loop()

    def _handle(sig: signal.Signals) -> None:
        if stop.is_set():
            loop.remove_signal_handler(sig)
            signal.raise_signal(sig)
            return
        log.info("stopping", signal=sig.name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _handle, sig)
