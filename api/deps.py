"""FastAPI dependencies that hand the process's shared resources to endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from domain.contracts.task_queues import DEFAULT_TASK_QUEUE
from payments.contract import DEFAULT_CONTRACT, OdengiContract


@dataclass(frozen=True)
class ApiContext:
    """What the API needs from the composition root; built by runtime, stored on app.state."""

    sessions: async_sessionmaker[AsyncSession]
    temporal: Client
    config: ApiConfig


@dataclass(frozen=True)
class ApiConfig:
    """The settings the API reads (runtime maps them from Settings)."""

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
    task_queue: str = DEFAULT_TASK_QUEUE
    topup_min_tyiyn: int = 1_000
    topup_max_tyiyn: int = 5_000_000
    charge_min_tyiyn: int = 1_000
    charge_max_tyiyn: int = 1_000_000
    payment_provider: str = "SIMULATED"
    public_base_url: str = "http://127.0.0.1:9210"
    odengi_merchant_id: str | None = None
    odengi_password: str | None = None
    odengi_api_url: str = ""
    odengi_h2h_url: str | None = None
    odengi_contract: OdengiContract = DEFAULT_CONTRACT


def get_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(get_context)]


async def get_db(context: Context) -> AsyncIterator[AsyncSession]:
    async with context.sessions() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_db)]
