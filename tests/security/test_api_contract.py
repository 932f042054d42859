"""The REST contract, fuzzed over HTTP: schemathesis against the real app on uvicorn (real
PostgreSQL, Temporal dev server, a worker with every workflow), every operation, a valid token,
rate limits raised. No 5xx, no status the document does not list, no body it does not describe."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.failures import ACTIVITY_INTERCEPTORS
from activities.ledger import Ledger, LedgerActivities
from activities.payments import payment_activities
from activities.sessions import charging_activities
from api.app import create_app
from api.deps import ApiConfig, ApiContext
from api.dev_tokens import issue_dev_token
from payments.config import ProviderSettings, build_provider
from payments.provider import ProviderName
from runtime.embedded import free_port
from runtime.payment_simulator import install_payment_simulator
from workflows.charging import ChargingSessionWorkflow
from workflows.reconciliation import PAYMENT_WORKFLOWS

pytestmark = pytest.mark.integration

SECRET = "contract-fuzz-secret-0123456789abcdef0123456789"
UNLIMITED = "100000/minute"
# Examples per operation: enough to walk every field and status (~1-2 minutes in all).
EXAMPLES = int(os.environ.get("EVPOWER_FUZZ_EXAMPLES", "12"))
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"


@pytest.fixture
async def served(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> AsyncIterator[str]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    config = ApiConfig.of(
        enable_swagger=True,
        supabase_jwt_secret=SECRET,
        task_queue=f"contract-{uuid.uuid4().hex[:8]}",
        provider=ProviderSettings(ProviderName.SIMULATED, base_url),
        rate_limit_money=UNLIMITED,
        rate_limit_default=UNLIMITED,
        rate_limit_webhook=UNLIMITED,
        rate_limit_ops=UNLIMITED,
        # Stations can be registered, so commands reach real (offline, workerless) stations:
        # answer 202 at once instead of waiting for a workflow no worker runs.
        key_pepper=b"contract-key-pepper-0123456789abcdef-xyz",
        ops_command_wait_s=0.1,
    )
    context = ApiContext(db_sessions, temporal_env.client, config)
    app = create_app(context)
    # As `evpower serve` does with PAYMENT_PROVIDER=SIMULATED: the provider's invoices are
    # created on this app's own simulated O!Dengi routes (without them a top-up answers 504).
    install_payment_simulator(app, context)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    provider = build_provider(config.provider)
    ledger = LedgerActivities(Ledger(db_sessions))
    worker = Worker(
        temporal_env.client,
        task_queue=config.task_queue,
        workflows=[ChargingSessionWorkflow, *PAYMENT_WORKFLOWS],
        activities=[
            ledger.credit_topup,
            ledger.reserve,
            ledger.capture,
            ledger.release,
            *charging_activities(db_sessions),
            *payment_activities(db_sessions, provider),
        ],
        interceptors=ACTIVITY_INTERCEPTORS,
    )
    try:
        async with worker:
            yield base_url
    finally:
        server.should_exit = True
        await serving
        await provider.aclose()


def schemathesis_binary() -> str:
    found = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if found is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    return found


async def test_every_operation_keeps_its_documented_contract_under_fuzzing(
    served: str, tmp_path: Path
) -> None:
    async with httpx.AsyncClient() as http:
        document = (await http.get(f"{served}/openapi.json")).json()
    assert document["paths"], "the app serves its OpenAPI document"
    # An admin is also a client (the same Supabase user): one token reaches every operation,
    # the operations API included.
    token = issue_dev_token(SECRET, str(uuid.uuid4()), operator_role="admin")
    process = await asyncio.create_subprocess_exec(
        schemathesis_binary(),
        "run",
        f"{served}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        str(EXAMPLES),
        "--header",
        f"Authorization: Bearer {token}",
        "--workers",
        "2",
        "--seed",
        "12",
        "--request-timeout",
        "60",
        "--no-color",
        "--suppress-health-check",
        "all",
        "--generation-database",
        "none",
        "--report-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    print(text[-6_000:])  # the run's summary, shown with -s
    assert process.returncode == 0, text[-20_000:]
