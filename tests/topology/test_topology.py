"""The production shape on one machine: external PostgreSQL and Temporal (without our search
attributes), `evpower migrate`, two gateways, two apis and two workers, each its own OS process.

The module starts the topology once; the test that kills gateway #1 runs last."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from api.dev_tokens import issue_dev_token
from domain.contracts.charging import charging_workflow_id
from domain.contracts.search_attributes import SEARCH_ATTRIBUTES
from domain.tariff import energy_cost_tyiyn
from gateway.charger_auth import AuthLimits
from tests.topology import world
from tests.topology.processes import wait_until
from tests.topology.topology import JWT_SECRET, NAMESPACE, Topology, external_servers
from workflows.charging import ChargingSessionWorkflow

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

ON_GATEWAY_1 = "TOPO-A1"
ALSO_ON_GATEWAY_1 = "TOPO-A2"
ON_GATEWAY_2 = "TOPO-B1"
LIMITS = AuthLimits()
# Enough stations that the per-address limit trips before any per-station one matters.
LOGIN_STATIONS = [
    f"TOPO-L{index:02d}"
    for index in range(-(-LIMITS.failures_per_address // LIMITS.failures_per_station))
]
INITIAL_TYIYN = 100_000


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    with external_servers() as topo:
        early = topo.command("before-migrate", "serve", "--role", "api")
        early.process.start()
        topo.early_exit = (early.process.wait(120), early.process.log_text())  # type: ignore[attr-defined]
        topo.migrate()
        engine = world.engine_for(topo.postgres.url)

        async def seed() -> None:
            try:
                await world.add_stations(
                    engine, [ON_GATEWAY_1, ALSO_ON_GATEWAY_1, ON_GATEWAY_2, *LOGIN_STATIONS]
                )
            finally:
                await engine.dispose()

        asyncio.run(seed())
        topo.start_roles(gateways=2, apis=2, workers=2)
        try:
            yield topo
        except BaseException:
            print(topo.tails())
            raise


@pytest.fixture
async def temporal(topology: Topology) -> Client:
    return await Client.connect(topology.temporal.address, namespace=NAMESPACE)


def _bearer(client_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_dev_token(JWT_SECRET, client_id)}"}


def test_a_role_on_an_unmigrated_database_says_run_migrate(topology: Topology) -> None:
    code, output = topology.early_exit  # type: ignore[attr-defined]
    assert code == 3
    assert "run `evpower migrate`" in output
    assert "Traceback" not in output


async def test_migrate_registered_our_search_attributes(temporal: Client) -> None:
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    listed = await temporal.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=NAMESPACE)
    )
    assert set(SEARCH_ATTRIBUTES) <= set(listed.custom_attributes)


async def test_every_role_is_healthy_on_its_own_port(topology: Topology) -> None:
    ports = {role.port for role in topology.roles.values() if role.name != "migrate"}
    assert len(ports) == 7  # six roles and the early api that refused to start
    async with httpx.AsyncClient(timeout=10) as http:
        for name in ("gateway1", "gateway2", "api1", "api2", "worker1", "worker2"):
            health = (await http.get(f"{topology[name].base_url}/health")).json()
            assert health["missing"] == [], (name, health)


async def test_a_session_through_api1_on_a_charger_of_gateway2_settles_exactly(
    topology: Topology, temporal: Client
) -> None:
    engine = world.engine_for(topology.postgres.url)
    client_id = await world.fund_client(engine, INITIAL_TYIYN)
    station = world.charger(ON_GATEWAY_2, topology["gateway2"].ws_url, car_takes_wh=2_000)
    async with station, httpx.AsyncClient(timeout=30) as http:
        api1 = topology["api1"].base_url
        started = await http.post(
            f"{api1}/api/v1/charging/start",
            json={"station_id": ON_GATEWAY_2, "connector_id": 1, "amount_tyiyn": 10_000},
            headers={**_bearer(client_id), "Idempotency-Key": "topology-start-1"},
        )
        assert started.status_code == 201, started.text
        session_id = started.json()["session_id"]

        async def car_full() -> bool:
            tx = station.active_transaction(1)
            return tx is not None and tx.started and tx.energy_wh >= 2_000

        await world.eventually(car_full, "the car took 2 kWh")
        stopped = await http.post(
            f"{api1}/api/v1/charging/stop",
            json={"session_id": session_id},
            headers={**_bearer(client_id), "Idempotency-Key": "topology-stop-1"},
        )
        assert stopped.status_code == 202, stopped.text
        handle = temporal.get_workflow_handle_for(
            ChargingSessionWorkflow.run, charging_workflow_id(session_id)
        )
        result = await asyncio.wait_for(handle.result(), 120)
    money = await world.balance(engine, client_id)
    await engine.dispose()
    cost = energy_cost_tyiyn(2_000, world.PRICE_TYIYN_PER_KWH)
    assert (result.state, result.energy_wh) == ("completed", 2_000)
    assert (money.available_tyiyn, money.held_tyiyn) == (INITIAL_TYIYN - cost, 0)


async def test_metrics_show_the_sdk_and_our_counters(topology: Topology) -> None:
    """After the settled session: the workers' scrapes carry Temporal SDK metrics and our
    outcome counters, a gateway's its connected chargers (runs after the session test)."""
    async with httpx.AsyncClient(timeout=10) as http:
        workers = "".join(
            [
                (await http.get(f"{topology[name].base_url}/metrics")).text
                for name in ("worker1", "worker2")
            ]
        )
        gateway = (await http.get(f"{topology['gateway2'].base_url}/metrics")).text
    assert "temporal_workflow_task_execution_latency_bucket" in workers
    # A session's database steps are local activities (workflows/charging_commands.py): the
    # workers run them in their workflow tasks and report them as such.
    assert "temporal_local_activity_execution_latency_bucket" in workers
    assert 'evpower_charging_sessions_finished_total{state="completed"}' in workers
    assert 'evpower_ledger_operations_total{operation="capture",outcome="applied"}' in workers
    assert "evpower_ocpp_connected_chargers" in gateway


async def test_a_status_change_on_gateway1_reaches_a_stream_client_of_api2(
    topology: Topology,
) -> None:
    station = world.charger(ON_GATEWAY_1, topology["gateway1"].ws_url)
    stream_url = f"{topology['api2'].ws_url}/api/v1/locations/stream"
    async with station, websockets.connect(stream_url) as stream:
        snapshot = json.loads(await stream.recv())
        assert snapshot["type"] == "snapshot"
        station.set_status(station.connector(1), "Unavailable")

        async def next_status() -> dict[str, object]:
            while True:
                message = json.loads(await stream.recv())
                if (
                    message.get("type") == "status"
                    and message.get("station_id") == ON_GATEWAY_1
                    and message.get("status") == "Unavailable"
                ):
                    return dict(message)

        message = await asyncio.wait_for(next_status(), 60)
    assert message["connector_id"] == 1


async def test_api_rate_limits_key_on_the_forwarded_client_address(topology: Topology) -> None:
    url = f"{topology['api1'].base_url}/api/v1/locations"
    async with httpx.AsyncClient(timeout=10) as http:
        answers = [
            (await http.get(url, headers={"X-Forwarded-For": "203.0.113.10"})).status_code
            for _ in range(61)
        ]
        other = await http.get(url, headers={"X-Forwarded-For": "203.0.113.11"})
    assert answers[:60] == [200] * 60 and answers[60] == 429
    assert other.status_code == 200  # another caller behind the same proxy is not limited


def test_a_worker_whose_port_is_taken_still_runs(topology: Topology) -> None:
    """`evpower serve` and `evpower worker` on one host with the default PORT: the worker
    works without its probe endpoint instead of dying."""
    worker = topology.command("worker-same-port", "worker", port=topology["api1"].port)
    worker.process.start()
    try:
        wait_until(
            lambda: all(
                line in worker.process.log_text()
                for line in ("its HTTP port is taken", "worker started")
            ),
            "the warning and the worker running",
            90,
        )
        assert worker.process.alive, worker.process.tail()
    finally:
        code = worker.process.stop()
    assert code == 0, worker.process.tail()


async def _login(topology: Topology, station_id: str, key: str, address: str) -> int:
    """The HTTP status of a charger's websocket upgrade on gateway #1 through the proxy."""
    basic = base64.b64encode(f"{station_id}:{key}".encode()).decode()
    try:
        async with websockets.connect(
            f"{topology['gateway1'].ws_url}/ocpp/{station_id}",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Basic {basic}", "X-Forwarded-For": address},
            open_timeout=30,
        ):
            return 101
    except websockets.InvalidStatus as exc:
        return exc.response.status_code


async def test_charger_login_limits_key_on_the_forwarded_client_address(
    topology: Topology,
) -> None:
    attacker, neighbour = "198.51.100.7", "198.51.100.8"
    failures = 0
    for station_id in LOGIN_STATIONS:
        for _ in range(LIMITS.failures_per_station):
            if failures == LIMITS.failures_per_address:
                break
            assert await _login(topology, station_id, "wrong-key-000000000", attacker) == 401
            failures += 1
    assert await _login(topology, ON_GATEWAY_2, "wrong-key-000000000", attacker) == 429
    # The next caller behind the same proxy is judged on its own attempts.
    assert await _login(topology, ON_GATEWAY_2, "wrong-key-000000000", neighbour) == 401
    # And a real charger behind the throttled address, its id throttled too, gets in on
    # its first try (issue 12 §2): throttling only ever answers wrong keys.
    assert await _login(topology, LOGIN_STATIONS[0], world.CHARGER_KEY, attacker) == 101


async def test_after_gateway1_dies_its_chargers_next_command_goes_through_gateway2(
    topology: Topology, temporal: Client
) -> None:
    engine = world.engine_for(topology.postgres.url)
    client_id = await world.fund_client(engine, INITIAL_TYIYN)
    first = world.charger(ALSO_ON_GATEWAY_1, topology["gateway1"].ws_url)
    await first.start()
    await asyncio.to_thread(topology["gateway1"].process.kill)
    await first.stop()
    moved = world.charger(ALSO_ON_GATEWAY_1, topology["gateway2"].ws_url)
    async with moved, httpx.AsyncClient(timeout=30) as http:
        await moved.wait_booted()
        asked = time.monotonic()
        started = await http.post(
            f"{topology['api2'].base_url}/api/v1/charging/start",
            json={"station_id": ALSO_ON_GATEWAY_1, "connector_id": 1, "amount_tyiyn": 5_000},
            headers={**_bearer(client_id), "Idempotency-Key": "topology-start-moved"},
        )
        assert started.status_code == 201, started.text

        async def remote_start_arrived() -> bool:
            return moved.active_transaction(1) is not None

        await world.eventually(remote_start_arrived, "RemoteStart reached the moved charger")
        took_s = time.monotonic() - asked
        session_id = started.json()["session_id"]
        await http.post(
            f"{topology['api2'].base_url}/api/v1/charging/stop",
            json={"session_id": session_id},
            headers={**_bearer(client_id), "Idempotency-Key": "topology-stop-moved"},
        )
        handle = temporal.get_workflow_handle(charging_workflow_id(session_id))
        await asyncio.wait_for(handle.result(), 120)
        history = await handle.fetch_history()
    await engine.dispose()
    queues = [
        event.activity_task_scheduled_event_attributes.task_queue.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name == "remote_start"
    ]
    gateway2_queues = {q for q in queues if q.startswith("gateway-")}
    assert len(queues) == 1 and len(gateway2_queues) == 1, queues  # never the dead gateway's
    print(f"RemoteStart reached the moved charger {took_s:.2f} s after the start request")
    # The outcome is the queue above. The target is 1 s (0.9 s measured on an idle machine);
    # the bound only has to tell it from the dead queue's 10 s schedule-to-start timeout,
    # with room for a loaded test machine.
    assert took_s < 8.0
