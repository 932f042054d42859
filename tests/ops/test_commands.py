"""Charger commands as StationCommand workflows, on the real stack with the simulator over a
real websocket: every command answered, the audit row of each, an offline charger refused at
once, a running session guarding ChangeAvailability, 202 and polling."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from db.models import ChargingSessionRecord, Client, Connector, OperatorAudit
from domain.contracts.search_attributes import STATION_ID
from tests.ops.stack import add_station, eventually, headers, ops_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# command -> (body without the reason, the charger's expected status)
COMMANDS: list[tuple[str, dict[str, Any], str | None]] = [
    ("get_configuration", {"key": ["NumberOfConnectors", "NoSuchKey"]}, None),
    ("change_configuration", {"key": "HeartbeatInterval", "value": "90"}, "Accepted"),
    ("change_configuration", {"key": "AuthorizationKey", "value": "0123abcd"}, "NotSupported"),
    ("trigger_message", {"requested_message": "StatusNotification", "connector_id": 1}, "Accepted"),
    ("clear_cache", {}, "Accepted"),
    ("data_transfer", {"vendor_id": "com.example", "message_id": "ping", "data": "x"}, None),
    ("unlock_connector", {"connector_id": 1}, "Unlocked"),
    ("change_availability", {"connector_id": 2, "type": "Inoperative"}, "Accepted"),
    ("change_availability", {"connector_id": 0, "type": "Operative"}, "Accepted"),
    ("reset", {"type": "Soft"}, "Accepted"),  # last: the charger reboots
]


def _url(station_id: str, command: str) -> str:
    return f"/api/v1/ops/stations/{station_id}/commands/{command}"


async def _audit(db_sessions: async_sessionmaker[AsyncSession]) -> list[OperatorAudit]:
    async with db_sessions() as session:
        return list(await session.scalars(select(OperatorAudit).order_by(OperatorAudit.id)))


async def _connected(db_sessions: async_sessionmaker[AsyncSession], station_id: str) -> None:
    async def reported() -> bool:
        async with db_sessions() as session:
            row = await session.get(Connector, (station_id, 2))
            return row is not None and row.status == "Available"

    await eventually(reported, "the charger connected and reported its connectors")


async def test_every_command_is_answered_by_the_charger_and_audited(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    station_id = f"OPS-{uuid.uuid4().hex[:6]}"
    await add_station(db_sessions, station_id)
    async with ops_stack(db_sessions, temporal_env.client) as stack:
        station = stack.station(station_id)
        async with station, httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
            await _connected(db_sessions, station_id)
            fleet = await http.get("/api/v1/ops/stations", headers=headers("operator"))
            (seen,) = fleet.json()["items"]
            assert seen["online"] and (seen["vendor"], seen["model"]) == ("EvPower", "SimCharger")

            answers = []
            for index, (command, body, expected) in enumerate(COMMANDS):
                caller = "admin" if index % 2 else "operator"
                response = await http.post(
                    _url(station_id, command),
                    json={**body, "reason": f"test {command}"},
                    headers=headers(caller),
                )
                assert response.status_code == 200, (command, response.text)
                answer = response.json()
                assert answer["outcome"] == "answered" and answer["command"] == command
                if expected is not None:
                    assert answer["status"] == expected, (command, answer)
                answers.append(answer)

            configuration = answers[0]["response"]
            assert configuration["configurationKey"] == [
                {"key": "NumberOfConnectors", "readonly": True, "value": "2"}
            ]
            assert configuration["unknownKey"] == ["NoSuchKey"]
            assert answers[5]["response"]["status"] == "UnknownVendorId"
            assert station.heartbeat_interval_s == 90
            got = [name for name, _ in station.received]
            for action in ("ClearCache", "DataTransfer", "UnlockConnector", "Reset"):
                assert action in got

            described = await stack.temporal.get_workflow_handle(
                answers[-1]["workflow_id"]
            ).describe()
            assert described.typed_search_attributes.get(STATION_ID) == station_id
            assert answers[-1]["workflow_id"].startswith(f"station-command-{station_id}-reset-")

    rows = await _audit(db_sessions)
    commands = [row for row in rows if row.action.startswith("station.command.")]
    assert [row.action for row in commands] == [f"station.command.{c}" for c, _, _ in COMMANDS]
    for row, answer in zip(commands, answers, strict=True):
        assert row.target == f"station:{station_id}" and row.outcome == "ok"
        assert row.reason == f"test {answer['command']}"
        assert row.result is not None and row.result["workflow_id"] == answer["workflow_id"]
        assert row.result["outcome"] == "answered"
        assert row.subject and row.role in {"operator", "admin"}
    secret = commands[2].request["body"]
    assert secret == {
        "key": "AuthorizationKey",
        "value": "***",
        "reason": "test change_configuration",
    }


async def test_an_offline_charger_is_refused_at_once(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    station_id = f"OFF-{uuid.uuid4().hex[:6]}"
    await add_station(db_sessions, station_id)
    async with (
        ops_stack(db_sessions, temporal_env.client) as stack,
        httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http,
    ):
        response = await http.post(
            _url(station_id, "reset"),
            json={"type": "Hard", "reason": "stuck"},
            headers=headers("operator"),
        )
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert error["code"] == "station_offline"
        unknown = await http.post(
            _url("NO-SUCH", "reset"), json={"type": "Hard", "reason": "x" * 3},
            headers=headers("operator"),
        )  # fmt: skip
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "station_not_found"
    rows = await _audit(db_sessions)
    assert [(row.status_code, row.error_code) for row in rows] == [
        (409, "station_offline"),
        (404, "station_not_found"),
    ]
    assert rows[0].result is not None and rows[0].result["outcome"] == "offline"


async def test_inoperative_over_a_running_session_needs_force(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    station_id = f"BUSY-{uuid.uuid4().hex[:6]}"
    await add_station(db_sessions, station_id)
    client_id = str(uuid.uuid4())
    async with db_sessions() as session, session.begin():
        session.add(Client(id=client_id))
        await session.flush()
        session.add(
            ChargingSessionRecord(
                id="busy-session-1",
                client_id=client_id,
                station_id=station_id,
                connector_id=1,
                state="charging",
                price_tyiyn_per_kwh=1_500,
                reserved_tyiyn=10_000,
            )
        )
    async with ops_stack(db_sessions, temporal_env.client) as stack:
        station = stack.station(station_id)
        async with station, httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
            await _connected(db_sessions, station_id)

            async def inoperative(connector_id: int, **extra: Any) -> httpx.Response:
                return await http.post(
                    _url(station_id, "change_availability"),
                    json={"connector_id": connector_id, "type": "Inoperative", "reason": "repair",
                          **extra},
                    headers=headers("operator"),
                )  # fmt: skip

            for connector_id in (1, 0):  # the connector, and the whole station
                refused = await inoperative(connector_id)
                assert refused.status_code == 409, refused.text
                assert refused.json()["error"]["code"] == "connector_busy"
                assert "busy-session-1" in refused.json()["error"]["message"]
            other = await inoperative(2)
            assert other.status_code == 200 and other.json()["status"] == "Accepted"
            forced = await inoperative(1, force=True)
            assert forced.status_code == 200 and forced.json()["status"] == "Accepted"
            assert [
                payload for action, payload in station.received if action == "ChangeAvailability"
            ] == [
                {"connector_id": 2, "type": "Inoperative"},
                {"connector_id": 1, "type": "Inoperative"},
            ]


async def test_a_slow_answer_is_202_then_polled(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    station_id = f"SLOW-{uuid.uuid4().hex[:6]}"
    await add_station(db_sessions, station_id)
    async with ops_stack(db_sessions, temporal_env.client, ops_command_wait_s=0.001) as stack:
        station = stack.station(station_id)
        async with station, httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
            await _connected(db_sessions, station_id)
            started = await http.post(
                _url(station_id, "clear_cache"),
                json={"reason": "poll me"},
                headers=headers("operator", key="ops-poll-1"),
            )
            assert started.status_code == 202, started.text
            workflow_id = started.json()["workflow_id"]
            await stack.temporal.get_workflow_handle(workflow_id).result()
            polled = await http.get(f"/api/v1/ops/commands/{workflow_id}", headers=headers("admin"))
            assert polled.status_code == 200, polled.text
            assert (polled.json()["command"], polled.json()["status"]) == (
                "clear_cache",
                "Accepted",
            )
            assert polled.json()["station_id"] == station_id
            missing = await http.get(
                "/api/v1/ops/commands/station-command-nope", headers=headers("admin")
            )
            assert missing.status_code == 404


@pytest.mark.parametrize(
    ("command", "body"),
    [
        ("reset", {"type": "Hard"}),  # no reason
        ("reset", {"type": "Warm", "reason": "why not"}),
        ("unlock_connector", {"connector_id": 0, "reason": "stuck"}),
        ("change_configuration", {"key": "a,b", "value": "1", "reason": "bad key"}),
        ("clear_cache", {"reason": "extra", "type": "Hard"}),
        ("get_configuration", {"key": [""], "reason": "empty key"}),
    ],
)
async def test_invalid_bodies_start_nothing(
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_env: WorkflowEnvironment,
    command: str,
    body: dict[str, Any],
) -> None:
    async with (
        ops_stack(db_sessions, temporal_env.client) as stack,
        httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http,
    ):
        response = await http.post(_url("ANY", command), json=body, headers=headers("admin"))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    (row,) = await _audit(db_sessions)
    assert row.outcome == "rejected"
