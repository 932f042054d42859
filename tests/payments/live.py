"""The whole top-up path on real infrastructure: the app on uvicorn (API + simulated O!Dengi),
a Temporal dev server, a worker with the payment activities, the real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import httpx
import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from activities.failures import ACTIVITY_INTERCEPTORS
from activities.ledger import Ledger, LedgerActivities
from activities.payments import payment_activities
from api.app import create_app
from api.deps import ApiConfig, ApiContext
from api.dev_tokens import issue_dev_token
from payments.config import ProviderSettings, build_provider
from payments.provider import ProviderName
from payments.simulator import SimulatedOdengi
from payments.simulator_store import PgInvoiceStore
from runtime.embedded import free_port
from runtime.payment_simulator import install_payment_simulator
from workflows.reconciliation import PAYMENT_WORKFLOWS

JWT_SECRET = "payments-test-secret-0123456789abcdef0123456789"
FINAL = {"paid", "expired", "needs_review", "failed"}


@dataclass
class LiveSystem:
    base_url: str
    http: httpx.AsyncClient
    temporal: Client
    db_sessions: async_sessionmaker[AsyncSession]
    config: ApiConfig
    simulator: SimulatedOdengi

    def auth(self, client_id: str, key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {issue_dev_token(JWT_SECRET, client_id)}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    async def topup_qr(self, client_id: str, amount_tyiyn: int, key: str | None = None) -> Any:
        response = await self.http.post(
            "/api/v1/balance/topup-qr",
            json={"amount_tyiyn": amount_tyiyn},
            headers=self.auth(client_id, key or str(uuid.uuid4())),
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def wait_state(self, client_id: str, topup_id: str, timeout_s: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            response = await self.http.get(
                "/api/v1/payment/status",
                params={"topup_id": topup_id},
                headers=self.auth(client_id),
            )
            assert response.status_code == 200, response.text
            body = response.json()
            if body["state"] in FINAL or time.monotonic() > deadline:
                return body
            await asyncio.sleep(0.2)


@asynccontextmanager
async def live_system(
    temporal: Client,
    db_sessions: async_sessionmaker[AsyncSession],
    provider: dict[str, Any] | None = None,
    **overrides: Any,
) -> AsyncIterator[LiveSystem]:
    """`provider` changes fields of the payment provider's settings (simulated by default),
    `overrides` settings of the API (by their names) or ApiConfig's own fields."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    settings = replace(ProviderSettings(ProviderName.SIMULATED, base_url), **(provider or {}))
    config = ApiConfig.of(
        **{
            "supabase_jwt_secret": JWT_SECRET,
            "task_queue": f"payments-{uuid.uuid4().hex}",
            "provider": settings,
            **overrides,
        }
    )
    context = ApiContext(db_sessions=db_sessions, temporal=temporal, config=config)
    app = create_app(context)
    install_payment_simulator(app, context)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    payment_provider = build_provider(config.provider)
    simulator = SimulatedOdengi(
        PgInvoiceStore(db_sessions),
        merchant_id=settings.effective_merchant_id,
        password=settings.effective_password,
        public_base_url=base_url,
    )
    worker = Worker(
        temporal,
        task_queue=config.task_queue,
        interceptors=ACTIVITY_INTERCEPTORS,
        workflows=list(PAYMENT_WORKFLOWS),
        activities=[
            *payment_activities(db_sessions, payment_provider),
            LedgerActivities(Ledger(db_sessions)).credit_topup,
        ],
    )
    try:
        async with worker, httpx.AsyncClient(base_url=base_url, timeout=30.0) as http:
            yield LiveSystem(base_url, http, temporal, db_sessions, config, simulator)
    finally:
        server.should_exit = True
        await serving
        await payment_provider.aclose()
