"""Permanent activity failures are non-retryable: a workflow that hits one ends at once in a
final state with the money untouched, and says why; transient failures still retry."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities.failures import permanent_failure
from api.v1.charging_schemas import StartCharging
from api.v1.charging_service import ChargingService
from domain.errors import InvalidInput
from domain.identifiers import session_id_for_key
from domain.sessions import DATA_REJECTED
from payments.provider import ProviderError, ProviderRejected
from tests.charging.api_world import ApiWorld, api_world
from workflows.charging import ChargingSessionWorkflow

pytestmark = pytest.mark.integration

SAFETY_NET_S = 10.0  # the bug never answered: the activity retried for ever


@pytest.fixture
async def world(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> AsyncIterator[ApiWorld]:
    async with api_world(db_sessions, temporal_env.client) as built:
        yield built


async def database_error(
    db_sessions: async_sessionmaker[AsyncSession], sql: str, **params: object
) -> Exception:
    async with db_sessions() as session:
        try:
            await session.execute(text(sql), params)
        except Exception as exc:  # the very error an activity would see
            return exc
    raise AssertionError("the statement did not fail")


async def test_database_data_errors_are_permanent_and_outages_are_not(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    nul = await database_error(db_sessions, "SELECT id FROM stations WHERE id = :id", id="EVP\x00")
    too_long = await database_error(
        db_sessions, "INSERT INTO clients (id) VALUES (:id)", id="c" * 65
    )
    out_of_range = await database_error(
        db_sessions, "SELECT id FROM ledger_entries WHERE id = :id", id=2**63
    )
    for error in (nul, too_long, out_of_range):
        verdict = permanent_failure(error)
        assert verdict is not None and verdict[0] == DATA_REJECTED, repr(error)
    assert permanent_failure(ProviderRejected("-1", "bad request")) is not None
    for transient in (
        ConnectionRefusedError("database down"),
        TimeoutError(),
        ProviderError("provider answered HTTP 502"),
        httpx.ConnectError("unreachable"),
    ):
        assert permanent_failure(transient) is None


@pytest.mark.parametrize(
    ("station_id", "connector_id"),
    [("EVP\x00", 1), ("EVP-1", 2**40)],
    ids=["nul in a text column", "integer beyond its column"],
)
async def test_a_start_whose_data_the_database_refuses_ends_at_once_rejected_with_nothing_held(
    world: ApiWorld, station_id: str, connector_id: int
) -> None:
    # Bypasses the API's validation on purpose: the failure classification is the second
    # line of defence, for whatever a future validation gap lets through.
    client = await world.new_client(50_000)
    key = str(uuid.uuid4())
    await world.add_station("EVP-1")
    body = StartCharging.model_construct(
        station_id=station_id, connector_id=connector_id, amount_tyiyn=5_000
    )
    context = world.http._transport.app.state.context  # type: ignore[attr-defined]
    with pytest.raises(InvalidInput):
        async with asyncio.timeout(SAFETY_NET_S):
            await ChargingService(context).start(client, body, key)

    handle = world.handle(session_id_for_key(client, key))
    async with asyncio.timeout(SAFETY_NET_S):
        view = await handle.result()
    assert (view.state, view.rejection) == ("rejected", DATA_REJECTED)
    assert "database" in (view.rejection_message or "")  # the operator sees why
    assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED
    assert await world.held(client) == (50_000, 0)
    assert await world.records_of(client) == []
    history = await handle.fetch_history()
    # Admission runs as a local activity: its failure is in the step's marker; an activity
    # task's failure where the step ran as a regular activity.
    failed = [
        event.activity_task_failed_event_attributes.failure
        for event in history.events
        if event.HasField("activity_task_failed_event_attributes")
    ] + [
        event.marker_recorded_event_attributes.failure
        for event in history.events
        if event.HasField("marker_recorded_event_attributes")
        and event.marker_recorded_event_attributes.HasField("failure")
    ]
    assert len(failed) == 1  # one attempt, no retries, no fallback to a regular activity
    assert failed[0].application_failure_info.non_retryable


async def test_the_view_of_the_refused_start_names_the_refusal(world: ApiWorld) -> None:
    # The query a client's GET uses still works on the closed, refused session.
    client = await world.new_client(10_000)
    key = str(uuid.uuid4())
    body = StartCharging.model_construct(station_id="EVP\x00", connector_id=1, amount_tyiyn=5_000)
    context = world.http._transport.app.state.context  # type: ignore[attr-defined]
    with pytest.raises(InvalidInput):
        await ChargingService(context).start(client, body, key)
    view = await world.handle(session_id_for_key(client, key)).query(ChargingSessionWorkflow.state)
    assert view.state == "rejected"
