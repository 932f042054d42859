"""Every change to a location, a station, a connector's price or a charger's key is a
StationChange workflow (real PostgreSQL, the Temporal dev server): its history holds the
operator and the reason and never a key; a request repeated with its Idempotency-Key applies
once, and so does an activity retried after its commit; a refusal is final; Temporal down is
503 `temporal_unavailable` and changes nothing."""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.station_changes import StationChangeActivities
from api.app import create_app
from api.deps import ApiConfig, ApiContext
from db.models import Station
from domain.charger_keys import ChargerKeys, KeyCheck
from domain.contracts.search_attributes import STATION_ID
from domain.contracts.station_changes import (
    WORKFLOW_NAME,
    ChangeAction,
    StationChangeRequest,
)
from runtime.embedded import temporal_binary
from tests.api.conftest import JWT_SECRET, AppFactory, JwksServer, Tokens
from tests.ops.conftest import audit_rows, operator_token
from tests.ops.stack import station_change_worker
from tests.replay.recording import write_fixture

pytestmark = pytest.mark.integration

PEPPER = b"station-change-workflows-pepper-0123456789"
OPERATOR = "7d1c2e4a-5b6f-4c3d-9e8f-0a1b2c3d4e5f"  # the operator's Supabase user id
REASON = "site survey 2026-11-30: second charger bay"
GIVEN_KEY = "operator-chosen-key-4567"


@dataclass
class Api:
    http: httpx.AsyncClient
    headers: dict[str, str]

    async def send(
        self, method: str, path: str, body: dict[str, Any], key: str | None = None
    ) -> httpx.Response:
        headers = self.headers if key is None else {**self.headers, "Idempotency-Key": key}
        return await self.http.request(
            method, f"/api/v1/ops{path}", json={"reason": REASON, **body}, headers=headers
        )

    async def ok(
        self, method: str, path: str, body: dict[str, Any], key: str | None = None
    ) -> dict[str, Any]:
        response = await self.send(method, path, body, key)
        assert response.status_code in (200, 201), response.text
        found: dict[str, Any] = response.json()
        return found


@pytest.fixture
async def api(
    make_app: AppFactory,
    tokens: Tokens,
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_env: WorkflowEnvironment,
) -> AsyncIterator[Api]:
    task_queue = f"changes-{uuid.uuid4().hex[:8]}"
    app = make_app(key_pepper=PEPPER, task_queue=task_queue)
    async with (
        station_change_worker(db_sessions, temporal_env.client, task_queue),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://testserver",
        ) as http,
    ):
        token = operator_token(tokens, sub=OPERATOR)
        yield Api(http, {"Authorization": f"Bearer {token}"})


async def _workflow_ids(db_sessions: async_sessionmaker[AsyncSession]) -> dict[str, list[str]]:
    """Audit action -> the workflow ids its rows report, in order."""
    found: dict[str, list[str]] = {}
    for row in await audit_rows(db_sessions):
        if row.result and "workflow_id" in row.result:
            found.setdefault(row.action, []).append(row.result["workflow_id"])
    return found


def readable(history_json: str) -> str:
    """The history with every payload decoded (they are base64 in its JSON), to search in."""
    payloads = re.findall(r'"data": "([A-Za-z0-9+/=]+)"', history_json)
    decoded = (base64.b64decode(data).decode("utf-8", "replace") for data in payloads)
    return "\n".join([history_json, *decoded])


def _record(name: str) -> bool:
    return os.environ.get("EVPOWER_RECORD_HISTORIES") == "1" and bool(name)


async def test_every_change_is_a_workflow_with_who_and_why_and_never_a_key(
    api: Api, db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    await api.ok("POST", "/locations", {"id": "osh-1", "name": "Osh bazaar", "city": "Osh"})
    await api.ok("PATCH", "/locations/osh-1", {"latitude": "40.527600", "address": "Kurmanjan 1"})
    created = await api.ok(
        "POST",
        "/stations",
        {"id": "OSH-01", "connectors": 2, "price_tyiyn_per_kwh": 1_600, "location_id": "osh-1"},
    )
    given = await api.ok(
        "POST",
        "/stations",
        {
            "id": "OSH-02",
            "connectors": 1,
            "price_tyiyn_per_kwh": 1_600,
            "authorization_key": GIVEN_KEY,
        },
    )
    await api.ok("PATCH", "/stations/OSH-01", {"name": "Osh bazaar north", "connectors": 3})
    await api.ok("PATCH", "/stations/OSH-01/connectors/2", {"price_tyiyn_per_kwh": 2_200})
    rotated = await api.ok("POST", "/stations/OSH-01/rotate-key", {})
    await api.ok("PATCH", "/stations/OSH-01", {"enabled": False})
    keys = [created["authorization_key"], given["authorization_key"], rotated["authorization_key"]]
    assert given["authorization_key"] == GIVEN_KEY and len(set(keys)) == 3

    ids = await _workflow_ids(db_sessions)
    assert {action: len(found) for action, found in ids.items()} == {
        "location.create": 1,
        "location.update": 1,
        "station.create": 2,
        "station.update": 2,
        "connector.update": 1,
        "station.rotate_key": 1,
    }
    assert ids["station.rotate_key"][0].startswith("station-change:station:OSH-01:rotate_key:")
    assert ids["connector.update"][0].startswith("station-change:station:OSH-01:connector:2:")
    for action, workflow_ids in ids.items():
        for workflow_id in workflow_ids:
            handle = temporal_env.client.get_workflow_handle(workflow_id)
            described = await handle.describe()
            assert described.workflow_type == WORKFLOW_NAME
            assert described.status is WorkflowExecutionStatus.COMPLETED
            assert await described.static_summary() == (
                f"{action} {workflow_id.split(':', 1)[1].rsplit(':', 2)[0]} by {OPERATOR}"
            )
            if action.startswith(("station.", "connector.")):
                assert described.typed_search_attributes.get(STATION_ID) in {"OSH-01", "OSH-02"}
            history = await handle.fetch_history()
            recorded = readable(history.to_json())
            assert OPERATOR in recorded and REASON in recorded, workflow_id
            for key in keys:
                assert key not in recorded, f"a charger key is in {workflow_id}'s history"
            if action == "station.rotate_key" and _record(action):
                write_fixture(history, "station_change_rotate_key")
            if action == "location.update" and _record(action):
                write_fixture(history, "station_change_location_update")
    # The audit keeps no key either, and the stored hashes are of the keys shown.
    for row in await audit_rows(db_sessions):
        for key in keys:
            assert key not in str(row.request) + str(row.result)
    async with db_sessions() as session:
        station = await session.get(Station, "OSH-01")
        assert station is not None and station.password_hash and station.previous_password_hash
        checks = ChargerKeys(PEPPER)
        assert checks.check(rotated["authorization_key"], station.password_hash) is KeyCheck.MATCH
        assert (
            checks.check(created["authorization_key"], station.previous_password_hash)
            is KeyCheck.MATCH
        )
        assert station.registration_status == "rejected"


async def test_a_repeated_request_applies_once(
    api: Api, db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    created = await api.ok(
        "POST", "/stations", {"id": "DUP-1", "connectors": 1, "price_tyiyn_per_kwh": 1_000}, "c-1"
    )
    first_key = created["authorization_key"]

    async def forget_answers() -> None:
        """The Idempotency-Key store lost the first answers (or never kept them: no-store)."""
        async with db_sessions() as session, session.begin():
            await session.execute(text("DELETE FROM idempotency_keys"))

    # Updates: the retry joins the finished workflow and answers the same; one application.
    body = {"price_tyiyn_per_kwh": 1_900}
    updated = await api.ok("PATCH", "/stations/DUP-1", body, "u-1")
    await forget_answers()
    assert await api.ok("PATCH", "/stations/DUP-1", body, "u-1") == updated
    await forget_answers()
    other = await api.send("PATCH", "/stations/DUP-1", {"price_tyiyn_per_kwh": 2_500}, "u-1")
    assert (other.status_code, other.json()["error"]["code"]) == (422, "idempotency_key_reused")
    update_ids = (await _workflow_ids(db_sessions))["station.update"]
    assert len(update_ids) == 3 and len(set(update_ids)) == 1  # all three joined one workflow
    events = [
        event
        async for event in temporal_env.client.get_workflow_handle(
            update_ids[0]
        ).fetch_history_events()
    ]
    scheduled = [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert len(scheduled) == 1

    # A rotation's answer is never stored; its repetition rotates nothing and shows no key.
    rotated = await api.ok("POST", "/stations/DUP-1/rotate-key", {}, "r-1")
    again = await api.send("POST", "/stations/DUP-1/rotate-key", {}, "r-1")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "key_already_issued")
    assert rotated["authorization_key"] not in again.text
    # The same for a registration whose key was generated.
    repeated = await api.send(
        "POST", "/stations", {"id": "DUP-1", "connectors": 1, "price_tyiyn_per_kwh": 1_000}, "c-1"
    )
    assert (repeated.status_code, repeated.json()["error"]["code"]) == (409, "key_already_issued")
    async with db_sessions() as session:
        station = await session.get(Station, "DUP-1")
        assert station is not None and station.password_hash and station.previous_password_hash
        checks = ChargerKeys(PEPPER)
        assert checks.check(rotated["authorization_key"], station.password_hash) is KeyCheck.MATCH
        # Rotated once: the key it replaced still has its grace.
        assert checks.check(first_key, station.previous_password_hash) is KeyCheck.MATCH
        stored = list(
            await session.scalars(text("SELECT response_body::text FROM idempotency_keys"))
        )
        assert stored  # answers without a key are kept for replay ...
        for body in stored:  # ... and none that held one
            assert first_key not in body and rotated["authorization_key"] not in body


async def test_a_refusal_is_final_and_answers_as_before(
    api: Api, db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    await api.ok("POST", "/locations", {"id": "naryn-1", "name": "Naryn"})
    await api.ok(
        "POST",
        "/stations",
        {"id": "NR-1", "connectors": 1, "price_tyiyn_per_kwh": 1_000, "location_id": "naryn-1"},
    )
    refused = await api.send("PATCH", "/locations/naryn-1", {"enabled": False})
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "location_in_use")
    taken = await api.send("POST", "/locations", {"id": "naryn-1", "name": "Again"})
    assert (taken.status_code, taken.json()["error"]["code"]) == (409, "location_exists")
    ids = await _workflow_ids(db_sessions)
    for workflow_id in (ids["location.update"][0], ids["location.create"][1]):
        handle = temporal_env.client.get_workflow_handle(workflow_id)
        result = await handle.result()
        assert result["outcome"] == "refused"
        events = [event async for event in handle.fetch_history_events()]
        started = [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED]
        assert [e.activity_task_started_event_attributes.attempt for e in started] == [1]
        if _record("refused") and workflow_id == ids["location.update"][0]:
            write_fixture(await handle.fetch_history(), "station_change_refused")


async def test_temporal_down_is_503_and_changes_nothing(
    db_sessions: async_sessionmaker[AsyncSession],
    tokens: Tokens,
    jwks_server: JwksServer,
) -> None:
    async with db_sessions() as session, session.begin():
        session.add(Station(id="GONE-1", name="before", price_tyiyn_per_kwh=1_000))
    gone = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary())
    await gone.shutdown()
    config = ApiConfig.of(
        supabase_url=jwks_server.url, supabase_jwt_secret=JWT_SECRET, key_pepper=PEPPER
    )
    app = create_app(ApiContext(db_sessions=db_sessions, temporal=gone.client, config=config))
    headers = {"Authorization": f"Bearer {operator_token(tokens, sub=OPERATOR)}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://testserver",
    ) as http:
        for path, body in (
            ("/stations/GONE-1", {"name": "after"}),
            ("/stations/GONE-1/rotate-key", {}),
        ):
            method = "POST" if path.endswith("rotate-key") else "PATCH"
            response = await http.request(
                method, f"/api/v1/ops{path}", json={"reason": REASON, **body}, headers=headers
            )
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "temporal_unavailable"
            assert "Retry-After" in response.headers
    async with db_sessions() as session:
        station = await session.get(Station, "GONE-1")
        assert station is not None and station.name == "before" and station.password_hash is None


async def test_a_retried_activity_writes_nothing_twice(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """An activity retried after its commit (its worker died before reporting) finds its own
    write: creations by their hash or, on a later attempt, identical fields; a rotation by its
    hash — rotating twice would end the replaced key's grace at once."""
    activities = StationChangeActivities(db_sessions)
    keys = ChargerKeys(PEPPER)
    first_hash, second_hash = keys.hash("a-first-key-0123456789"), keys.hash("second-0123456789")
    create = StationChangeRequest(
        ChangeAction.STATION_CREATE,
        "station:RT-1",
        OPERATOR,
        REASON,
        station_id="RT-1",
        changes={"connectors": 1, "price_tyiyn_per_kwh": 1_000},
        password_hash=first_hash,
    )
    rotate = StationChangeRequest(
        ChangeAction.STATION_ROTATE_KEY,
        "station:RT-1",
        OPERATOR,
        REASON,
        station_id="RT-1",
        password_hash=second_hash,
        key_grace_s=3600,
    )
    location = StationChangeRequest(
        ChangeAction.LOCATION_CREATE,
        "location:rt-loc",
        OPERATOR,
        REASON,
        location_id="rt-loc",
        changes={"name": "Talas", "latitude": "42.5", "longitude": None},
    )
    first_try, retry = ActivityEnvironment(), ActivityEnvironment()
    retry.info = dataclasses.replace(retry.info, attempt=2)
    assert not (await first_try.run(activities.apply_station_change, create)).replayed
    assert (await retry.run(activities.apply_station_change, create)).replayed
    rotated = await first_try.run(activities.apply_station_change, rotate)
    rotated_again = await retry.run(activities.apply_station_change, rotate)
    assert (rotated.replayed, rotated_again.replayed) == (False, True)
    assert rotated_again.previous_key_valid_until == rotated.previous_key_valid_until
    assert not (await first_try.run(activities.apply_station_change, location)).replayed
    assert (await retry.run(activities.apply_station_change, location)).replayed
    with pytest.raises(ApplicationError) as refused:  # a first attempt: another's location
        await first_try.run(activities.apply_station_change, location)
    assert refused.value.non_retryable and refused.value.type == "LocationExists"
    async with db_sessions() as session:
        station = await session.get(Station, "RT-1")
        assert station is not None
        assert (station.password_hash, station.previous_password_hash) == (second_hash, first_hash)


async def test_a_change_no_worker_took_is_202_and_its_retry_joins_it(
    make_app: AppFactory,
    tokens: Tokens,
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_env: WorkflowEnvironment,
) -> None:
    task_queue = f"late-{uuid.uuid4().hex[:8]}"
    app = make_app(key_pepper=PEPPER, task_queue=task_queue, ops_command_wait_s=1)
    async with db_sessions() as session, session.begin():
        session.add(Station(id="LATE-1", name="before", price_tyiyn_per_kwh=1_000))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://testserver",
    ) as http:
        api = Api(http, {"Authorization": f"Bearer {operator_token(tokens, sub=OPERATOR)}"})
        pending = await api.send("PATCH", "/stations/LATE-1", {"name": "after"}, "late-1")
        assert pending.status_code == 202, pending.text
        assert pending.headers["Cache-Control"] == "no-store"  # so the retry is not a replay
        workflow_id = pending.json()["workflow_id"]
        async with station_change_worker(db_sessions, temporal_env.client, task_queue):
            for _ in range(30):  # each retry joins the one workflow until it answers
                retried = await api.send("PATCH", "/stations/LATE-1", {"name": "after"}, "late-1")
                if retried.status_code != 202:
                    break
    assert retried.status_code == 200, retried.text
    assert retried.json()["name"] == "after"
    ids = (await _workflow_ids(db_sessions))["station.update"]
    assert ids[0] == workflow_id and set(ids) == {workflow_id}


async def test_a_retry_after_a_failed_change_runs_it_again(
    make_app: AppFactory,
    tokens: Tokens,
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_env: WorkflowEnvironment,
) -> None:
    task_queue = f"failed-{uuid.uuid4().hex[:8]}"
    app = make_app(key_pepper=PEPPER, task_queue=task_queue, ops_command_wait_s=1)
    async with db_sessions() as session, session.begin():
        session.add(Station(id="FAIL-1", name="before", price_tyiyn_per_kwh=1_000))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://testserver",
    ) as http:
        api = Api(http, {"Authorization": f"Bearer {operator_token(tokens, sub=OPERATOR)}"})
        pending = await api.send("PATCH", "/stations/FAIL-1", {"name": "after"}, "fail-1")
        assert pending.status_code == 202, pending.text
        handle = temporal_env.client.get_workflow_handle(pending.json()["workflow_id"])
        await handle.terminate("nothing was written; the operator gave up on it")
        async with station_change_worker(db_sessions, temporal_env.client, task_queue):
            for _ in range(30):  # a new run: each retry joins it until it answers
                retried = await api.send("PATCH", "/stations/FAIL-1", {"name": "after"}, "fail-1")
                if retried.status_code != 202:
                    break
    assert retried.status_code == 200, retried.text
    assert retried.json()["name"] == "after"
    assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED
