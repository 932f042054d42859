"""FastAPI dependencies that hand the process's shared resources to endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from domain.contracts.task_queues import DEFAULT_TASK_QUEUE
from payments.config import ProviderSettings
from payments.provider import ProviderName


@dataclass(frozen=True)
class ApiContext:
    """What the API needs from the composition root; built by runtime, stored on app.state."""

    db_sessions: async_sessionmaker[AsyncSession]
    temporal: Client
    config: ApiConfig


# The default for tests and tools: the simulated provider on the default port.
SIMULATED_PROVIDER = ProviderSettings(ProviderName.SIMULATED, "http://127.0.0.1:9210")


@dataclass(frozen=True)
class ApiConfig:
    """The settings the API reads (runtime maps them from Settings; the payment provider is
    the one `ProviderSettings` every process is given)."""

    enable_swagger: bool = False
    cors_origins: tuple[str, ...] = ()
    max_request_bytes: int = 64 * 1024
    supabase_url: str | None = None
    jwt_secret: str | None = None
    jwt_audience: str = "authenticated"
    operator_role_claim: str = "app_metadata.role"
    rate_limit_storage_uri: str = "memory://"
    rate_limit_money: str = "10/minute"
    rate_limit_default: str = "60/minute"
    rate_limit_webhook: str = "30/minute"
    rate_limit_ops: str = "120/minute"
    ops_command_wait_s: float = 15.0
    temporal_namespace: str = "default"
    temporal_ui_url: str | None = None  # no trailing slash; None: sessions carry no UI link
    # OCPP_KEY_PEPPER, for stations registered through the API (None: refused with 503).
    key_pepper: bytes | None = None
    key_rotation_grace_s: int = 86_400
    task_queue: str = DEFAULT_TASK_QUEUE
    topup_min_tyiyn: int = 1_000
    topup_max_tyiyn: int = 5_000_000
    charge_min_tyiyn: int = 1_000
    charge_max_tyiyn: int = 1_000_000
    provider: ProviderSettings = SIMULATED_PROVIDER


def get_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(get_context)]


async def get_db(context: Context) -> AsyncIterator[AsyncSession]:
    async with context.db_sessions() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_db)]
