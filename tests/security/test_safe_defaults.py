"""Safe defaults for a system that holds money: an explicit provider, the simulator only where
chosen and with its own key, webhooks only to ourselves, read budgets fit for polling."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.deps import ApiConfig, ApiContext
from payments.config import SIMULATED_PASSWORD, ProviderSettings
from payments.odengi import API_VERSION
from payments.provider import ProviderName
from payments.signing import signed_request_body
from payments.simulator import SimulatedOdengi
from payments.simulator_store import PgInvoiceStore
from runtime.payment_simulator import install_payment_simulator
from runtime.provider_secret import SECRET_FILE, provider_password, simulator_secret
from runtime.settings import load_settings
from tests.charging.api_world import ApiWorld, api_world


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_and_worker_refuse_to_start_without_an_explicit_provider(
    command: str, tmp_path: Path
) -> None:
    env = {key: value for key, value in os.environ.items() if key != "PAYMENT_PROVIDER"}
    env["EVPOWER_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "runtime.cli", command],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "PAYMENT_PROVIDER" in lines[0], result.stderr


def test_an_explicit_provider_is_accepted_and_dev_sets_its_own() -> None:
    load_settings(payment_provider="SIMULATED").require_explicit_provider()
    from runtime.commands.dev import DEV_DEFAULTS

    assert DEV_DEFAULTS["payment_provider"] == "SIMULATED"


def test_the_simulator_key_is_random_per_data_dir_and_owner_only(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    key = simulator_secret(first)
    assert key == simulator_secret(first)  # the api and the worker of one data dir agree
    assert key != simulator_secret(second)
    assert len(key) >= 32 and key != "simulated-odengi-password"
    assert stat.S_IMODE((first / SECRET_FILE).stat().st_mode) == 0o600
    settings = load_settings(payment_provider="SIMULATED", evpower_data_dir=first)
    assert provider_password(settings) == key
    # Without a configured key nothing in the source signs: the fallback is made at start.
    assert SIMULATED_PASSWORD != "simulated-odengi-password"


async def test_simulator_routes_do_not_exist_with_the_real_provider(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    odengi = ProviderSettings(
        ProviderName.ODENGI, "http://127.0.0.1:9210", merchant_id="m1", password="p" * 16
    )
    context = ApiContext(db_sessions, temporal_env.client, ApiConfig(provider=odengi))
    app = create_app(context)
    install_payment_simulator(app, context)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://evpower.test"
    ) as http:
        for method, path in [
            ("POST", "/simulator/odengi/api/json/json.php"),
            ("GET", "/simulator/odengi/invoices/1"),
            ("POST", "/simulator/odengi/invoices/1/pay"),
        ]:
            response = await http.request(method, path)
            assert response.status_code in {404, 405}, (path, response.status_code)


def _create_invoice(password: str, result_url: str) -> bytes:
    payload: dict[str, Any] = {
        "cmd": "createInvoice",
        "version": API_VERSION,
        "sid": "1000000001",
        "mktime": "1700000000",
        "lang": "ru",
        "data": {
            "order_id": f"o-{uuid.uuid4().hex[:8]}",
            "desc": "x",
            "amount": 1_000,
            "currency": "KGS",
            "result_url": result_url,
        },
    }
    return signed_request_body(payload, password).encode()


@pytest.mark.integration
async def test_the_simulator_sends_webhooks_only_to_public_base_url(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    sent: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        return httpx.Response(200, json={"status": "ok"})

    sim = SimulatedOdengi(
        PgInvoiceStore(db_sessions),
        merchant_id="1000000001",
        password="k" * 32,
        public_base_url="http://127.0.0.1:9",
        transport=httpx.MockTransport(record),
    )
    for elsewhere in (
        "http://169.254.169.254/latest/meta-data",
        "http://127.0.0.1:99/api/v1/payment/webhook",
        "http://127.0.0.1:9.evil.test/x",
        "",
    ):
        created = await sim.handle_api(_create_invoice("k" * 32, elsewhere))
        outcome = await sim.pay(created["data"]["invoice_id"])
        assert outcome.webhook_status is None and "PUBLIC_BASE_URL" in str(outcome.webhook_error)
    assert sent == []  # not one request left for another host
    ours = await sim.handle_api(_create_invoice("k" * 32, "http://127.0.0.1:9/api/v1/x"))
    outcome = await sim.pay(ours["data"]["invoice_id"])
    assert outcome.webhook_status == 200 and sent == ["http://127.0.0.1:9/api/v1/x"]


@pytest.fixture
async def world(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> AsyncIterator[ApiWorld]:
    async with api_world(db_sessions, temporal_env.client, rate_limit_money="3/minute") as built:
        yield built


@pytest.mark.integration
async def test_reads_are_not_throttled_like_money_and_budgets_come_from_settings(
    world: ApiWorld,
) -> None:
    client = await world.new_client(10_000)
    headers = world.client_headers(client)
    # An app polling its balance and a session every few seconds for a minute.
    for _ in range(25):
        assert (await world.http.get("/api/v1/balance/current", headers=headers)).status_code == 200
        polled = await world.http.get("/api/v1/charging/abcdefgh", headers=headers)
        assert polled.status_code != 429
    posts = [
        (await world.http.post("/api/v1/charging/stop", json={}, headers=headers)).status_code
        for _ in range(4)
    ]
    assert 429 not in posts[:3] and posts[3] == 429  # RATE_LIMIT_MONEY=3/minute
