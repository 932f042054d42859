"""The life of one `evpower` process: infrastructure up, services open, roles run, all down."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from runtime.infrastructure import start_infrastructure
from runtime.readiness import check_schema
from runtime.server import Role, run_roles, stop_on_signals
from runtime.services import Services, open_services
from runtime.settings import Settings


async def run_process(
    settings: Settings,
    roles: frozenset[Role],
    *,
    temporal_ui: bool = False,
    prepare: Callable[[Services], Awaitable[None]] | None = None,
    on_ready: Callable[[Services], None] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run `roles` until SIGINT/SIGTERM (or `stop`); embedded servers we started stop with us."""
    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    infra = await start_infrastructure(settings, temporal_ui=temporal_ui)
    try:
        async with open_services(
            settings, database_url=infra.database_url, temporal_address=infra.temporal_address
        ) as services:
            if prepare is not None:
                await prepare(services)
            await check_schema(services.engine)
            ready = (lambda: on_ready(services)) if on_ready is not None else None
            await run_roles(services, roles, stop, on_ready=ready)
    finally:
        infra.stop()
    return 0
