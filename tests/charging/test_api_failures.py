"""The charging API when the session service does not answer, is unreachable, or a start failed
for a reason that is not a refusal: 503 with a clear body, never a 500 or a lost session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api import errors as api_errors
from api.app import create_app
from api.deps import ApiConfig, ApiContext
from api.v1 import charging_service
from api.v1.charging_schemas import StartCharging
from api.v1.charging_service import ChargingService
from domain.contracts.charging import charging_workflow_id
from runtime.embedded import temporal_binary
from tests.charging.api_world import SECRET, ApiWorld, api_world
from tests.charging.fakes import FakeWorld, register_search_attributes
from workflows.charging import ChargingSessionWorkflow

pytestmark = pytest.mark.integration

BODY = {"station_id": "FAIL-1", "connector_id": 1, "amount_tyiyn": 10_000}


@pytest.fixture
async def world(db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment):
    async with api_world(db_sessions, temporal_env.client) as built:
        yield built


@asynccontextmanager
async def http_for(world: ApiWorld, temporal: Client, task_queue: str) -> AsyncIterator[Any]:
    app = create_app(
        ApiContext(
            world.db_sessions,
            temporal,
            ApiConfig.of(supabase_jwt_secret=SECRET, task_queue=task_queue),
        )
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://evpower.test") as http:
        yield http


async def test_a_start_without_key_that_times_out_names_its_session(
    world: ApiWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(charging_service, "UPDATE_WAIT_S", 0.5)
    client = await world.new_client(50_000)
    # No worker serves this queue: the workflow starts but never answers the update.
    async with http_for(world, world.temporal, f"nobody-{uuid.uuid4().hex[:8]}") as http:
        answer = await http.post(
            "/api/v1/charging/start", json=BODY, headers=world.client_headers(client)
        )
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["code"] == "temporarily_unavailable"
    assert answer.headers["Retry-After"] == "5"  # a start without an answer, like any 503
    handle = world.temporal.get_workflow_handle(charging_workflow_id(error["session_id"]))
    assert (await handle.describe()).id == charging_workflow_id(error["session_id"])
    await handle.terminate("test over")


async def test_a_retry_of_a_start_whose_run_was_terminated_is_503_not_500(
    world: ApiWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(charging_service, "UPDATE_WAIT_S", 0.5)
    client = await world.new_client(50_000)
    headers = world.client_headers(client, key="terminated-1")
    async with http_for(world, world.temporal, f"nobody-{uuid.uuid4().hex[:8]}") as http:
        first = await http.post("/api/v1/charging/start", json=BODY, headers=headers)
        session_id = first.json()["error"]["session_id"]
        await world.temporal.get_workflow_handle(charging_workflow_id(session_id)).terminate(
            "operator"
        )
        retried = await http.post("/api/v1/charging/start", json=BODY, headers=headers)
    assert retried.status_code == 503
    assert retried.json()["error"]["code"] == "start_failed"


async def test_temporal_unreachable_is_503_for_start_and_stop(world: ApiWorld) -> None:
    client = await world.new_client(50_000)
    # A Temporal that was there and went away: every call is an RPCError (unavailable).
    gone = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary())
    await gone.shutdown()
    async with http_for(world, gone.client, world.task_queue) as http:
        start = await http.post(
            "/api/v1/charging/start", json=BODY, headers=world.client_headers(client)
        )
        stop = await http.post(
            "/api/v1/charging/stop",
            json={"session_id": "abc123"},
            headers=world.client_headers(client, key="stop-dead"),
        )
    assert (start.status_code, start.json()["error"]["code"]) == (503, "temporal_unavailable")
    assert "session_id" in start.json()["error"]
    assert (stop.status_code, stop.json()["error"]["code"]) == (503, "temporal_unavailable")
    assert start.headers["Retry-After"] == stop.headers["Retry-After"] == "5"


async def test_a_start_that_failed_answers_the_same_on_a_retry(
    world: ApiWorld, temporal_env: WorkflowEnvironment
) -> None:
    await register_search_attributes(temporal_env.client)
    queue = f"charging-boom-{uuid.uuid4().hex[:8]}"
    fake = FakeWorld(temporal_env.client, gateway_queue="unused", open_error="Boom")
    service = ChargingService(
        ApiContext(world.db_sessions, temporal_env.client, ApiConfig(task_queue=queue))
    )
    body = StartCharging(station_id="FAIL-1", connector_id=1, amount_tyiyn=10_000)
    answers = []
    async with Worker(
        temporal_env.client,
        task_queue=queue,
        workflows=[ChargingSessionWorkflow],
        activities=fake.workflow_activities(),  # type: ignore[arg-type]
    ):
        for _ in range(2):
            with pytest.raises(api_errors.ApiError) as failed:
                await service.start("client-boom", body, f"boom-{queue}")
            answers.append((failed.value.status, failed.value.code))
    assert answers == [(503, "start_failed"), (503, "start_failed")]
