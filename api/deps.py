"""FastAPI dependencies that hand the process's shared resources to endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.config import AmountLimits, AuthSettings, HttpSettings, OpsSettings, RateLimitSettings
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


# ApiConfig's fields that hold a settings group, and the group's model.
GROUPS: dict[str, type[BaseModel]] = {
    "http": HttpSettings,
    "auth": AuthSettings,
    "rate_limits": RateLimitSettings,
    "amounts": AmountLimits,
    "ops": OpsSettings,
}


@dataclass(frozen=True)
class ApiConfig:
    """The settings the API reads: groups handed over whole (api/config.py), and the values
    the composition root derives from several settings."""

    http: HttpSettings = field(default_factory=HttpSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    amounts: AmountLimits = field(default_factory=AmountLimits)
    ops: OpsSettings = field(default_factory=OpsSettings)
    task_queue: str = DEFAULT_TASK_QUEUE
    temporal_namespace: str = "default"
    temporal_ui_url: str | None = None  # no trailing slash; None: sessions carry no UI link
    # OCPP_KEY_PEPPER, for stations registered through the API (None: refused with 503).
    key_pepper: bytes | None = None
    # The one `ProviderSettings` every process is given.
    provider: ProviderSettings = SIMULATED_PROVIDER

    @classmethod
    def of(cls, settings: object = None, /, **values: Any) -> ApiConfig:
        """Each group read from `settings` (an object with the groups' fields: runtime's
        Settings) and from `values` by setting name; the other `values` are ApiConfig's own."""
        groups: dict[str, Any] = {}
        for name, model in GROUPS.items():
            fields = model.model_fields
            given = {key: values.pop(key) for key in list(values) if key in fields}
            read = {key: getattr(settings, key) for key in fields} if settings is not None else {}
            groups[name] = model.model_validate({**read, **given})
        return cls(**groups, **values)


def get_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(get_context)]


async def get_db(context: Context) -> AsyncIterator[AsyncSession]:
    async with context.db_sessions() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_db)]
