"""`GET /api/v1/ops/sessions`: every client's sessions, filtered, paged by keyset, each with
its Temporal UI link — on PostgreSQL, across clients (ops never run under the RLS role)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ChargingSessionRecord, Client, Station
from runtime.server import api_config
from runtime.settings import ConfigError, load_settings
from tests.api.conftest import AppFactory, Tokens
from tests.ops.conftest import audit_rows, caller_headers

pytestmark = pytest.mark.integration

SESSIONS = "/api/v1/ops/sessions"
START = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
STATES = ("completed", "charging", "hung", "completed", "needs_review", "cancelled", "completed")


async def _seed_sessions(db_sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    """Seven sessions an hour apart, alternating two clients and two stations; two share a
    creation time so the keyset's tie-break by id matters."""
    clients = [str(uuid.uuid4()), str(uuid.uuid4())]
    async with db_sessions() as session, session.begin():
        session.add_all([Client(id=client) for client in clients])
        session.add_all(
            [Station(id=station, price_tyiyn_per_kwh=1_500) for station in ("ST-1", "ST-2")]
        )
        await session.flush()
        for index, state in enumerate(STATES):
            session.add(
                ChargingSessionRecord(
                    id=f"s{index}",
                    client_id=clients[index % 2],
                    station_id=f"ST-{index % 2 + 1}",
                    connector_id=1 if state != "charging" else 2,
                    state=state,
                    price_tyiyn_per_kwh=1_500,
                    reserved_tyiyn=10_000,
                    energy_wh=index * 100,
                    cost_tyiyn=index * 150,
                    refunded_tyiyn=10_000 - index * 150,
                    created_at=START + timedelta(hours=min(index, 5)),
                )
            )
    return clients


@pytest.fixture
async def clients(db_sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    return await _seed_sessions(db_sessions)


async def _all_pages(http: httpx.AsyncClient, params: dict[str, Any]) -> list[str]:
    found: list[str] = []
    cursor = None
    for _ in range(20):
        page = await http.get(
            SESSIONS,
            params={**params, **({"cursor": cursor} if cursor else {})},
            headers=caller_headers_cache["operator"],
        )
        assert page.status_code == 200, page.text
        body = page.json()
        found += [item["session_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return found
    raise AssertionError("the pages never ended")


caller_headers_cache: dict[str, dict[str, str]] = {}


@pytest.fixture(autouse=True)
def _operator(tokens: Tokens) -> None:
    caller_headers_cache["operator"] = caller_headers(tokens, "operator")


async def test_pages_cover_every_client_newest_first_without_gaps_or_repeats(
    ops_http: httpx.AsyncClient, clients: list[str]
) -> None:
    newest_first = ["s6", "s5", "s4", "s3", "s2", "s1", "s0"]  # s5, s6 tie on time
    for limit in (1, 2, 3, 7, 50):
        assert await _all_pages(ops_http, {"limit": limit}) == newest_first, limit


async def test_filters_by_station_client_state_and_time(
    ops_http: httpx.AsyncClient, clients: list[str]
) -> None:
    assert await _all_pages(ops_http, {"station_id": "ST-2", "limit": 2}) == ["s5", "s3", "s1"]
    assert await _all_pages(ops_http, {"client_id": clients[0]}) == ["s6", "s4", "s2", "s0"]
    assert await _all_pages(ops_http, {"state": "completed", "limit": 1}) == ["s6", "s3", "s0"]
    # 07:00 UTC is 13:00 in Bishkek; [13:00, 15:00) local holds s1 and s2.
    assert await _all_pages(
        ops_http, {"from": "2026-11-01T13:00:00", "to": "2026-11-01T09:00:00Z"}
    ) == ["s2", "s1"]
    assert await _all_pages(ops_http, {"station_id": "ST-1", "state": "hung"}) == ["s2"]
    assert await _all_pages(ops_http, {"station_id": "NOPE"}) == []


async def test_an_item_has_the_record_and_its_workflow(
    make_app: AppFactory, tokens: Tokens, clients: list[str]
) -> None:
    app = make_app(temporal_ui_url="https://temporal.example.kg", temporal_namespace="evpower")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        response = await http.get(
            SESSIONS, params={"state": "hung"}, headers=caller_headers(tokens, "admin")
        )
    item = response.json()["items"][0]
    assert item["session_id"] == "s2" and item["client_id"] == clients[0]
    assert (item["station_id"], item["energy_wh"], item["cost_tyiyn"]) == ("ST-1", 200, 300)
    assert item["workflow_id"] == "charging-s2"
    link = item["temporal_ui_url"]
    assert link.startswith("https://temporal.example.kg/namespaces/evpower/workflows?query=")
    assert unquote(link.split("query=")[1]) == 'WorkflowId="charging-s2"'


async def test_no_ui_configured_means_no_link(
    ops_http: httpx.AsyncClient, clients: list[str]
) -> None:
    response = await ops_http.get(SESSIONS, headers=caller_headers_cache["operator"])
    assert {item["temporal_ui_url"] for item in response.json()["items"]} == {None}


def test_the_ui_url_setting() -> None:
    embedded = load_settings(temporal_ui_port=18233)
    assert api_config(embedded).temporal_ui_url == "http://127.0.0.1:18233"
    external = load_settings(temporal_address="temporal.internal:7233")
    assert api_config(external).temporal_ui_url is None
    told = load_settings(
        temporal_address="temporal.internal:7233",
        temporal_ui_url="https://ui.example.kg/",
        temporal_namespace="evpower",
    )
    assert api_config(told).temporal_ui_url == "https://ui.example.kg"
    assert api_config(told).temporal_namespace == "evpower"
    with pytest.raises(ConfigError, match="TEMPORAL_UI_URL"):
        load_settings(temporal_ui_url="javascript:alert(1)")


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"cursor": "bm90LWEtY3Vyc29y"}, "invalid_cursor"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, "empty_period"),
        ({"from": "soon"}, "invalid_period"),
        ({"state": "flying"}, "validation_error"),
        ({"limit": 0}, "validation_error"),
        ({"limit": 201}, "validation_error"),
        ({"station_id": "bad id\u0000"}, "validation_error"),
    ],
)
async def test_bad_filters_are_a_clear_422(
    ops_http: httpx.AsyncClient, params: dict[str, Any], code: str
) -> None:
    response = await ops_http.get(SESSIONS, params=params, headers=caller_headers_cache["operator"])
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code


async def test_authorization_matrix_and_audit_row(
    ops_http: httpx.AsyncClient, tokens: Tokens, db_sessions, clients: list[str]
) -> None:
    expected = {"none": 401, "client": 403, "operator": 200, "admin": 200}
    for caller, status in expected.items():
        response = await ops_http.get(
            SESSIONS, params={"station_id": "ST-1"}, headers=caller_headers(tokens, caller)
        )
        assert response.status_code == status, (caller, response.text)
    rows = await audit_rows(db_sessions)
    assert [(row.role, row.outcome, row.action) for row in rows][2:] == [
        ("operator", "ok", "sessions.search"),
        ("admin", "ok", "sessions.search"),
    ]
    assert rows[2].request["query"] == "station_id=ST-1"
