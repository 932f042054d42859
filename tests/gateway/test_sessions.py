"""Paid sessions end to end through the gateway: RemoteStart from a workflow, the charger's
transaction messages turned into signals, the energy limit enforced by the gateway itself."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from ocpp.v16 import call
from sqlalchemy import func, select
from temporalio.worker import Worker

from db.models import MeterValue, OcppTransaction
from domain.contracts.charging import charging_workflow_id
from domain.contracts.session_signals import (
    ENERGY_LIMIT_REACHED,
    METER_SAMPLE,
    TRANSACTION_STARTED,
    TRANSACTION_STOPPED,
)
from domain.contracts.station_commands import (
    REMOTE_START,
    REMOTE_STOP,
    STATION_NOT_CONNECTED,
    STATION_TIMEOUT,
    RemoteStartRequest,
    RemoteStopRequest,
)
from tests.gateway.conftest import charger_session
from tests.gateway.workflows import (
    CommandCall,
    CommandOutcome,
    CommandProbe,
    SignalSink,
    StartRefuser,
)

pytestmark = pytest.mark.integration


def new_session_id() -> str:
    return uuid.uuid4().hex[:16]


async def start_sink(temporal_env, queue: str, session_id: str):
    return await temporal_env.client.start_workflow(
        SignalSink.run, id=charging_workflow_id(session_id), task_queue=queue
    )


async def run_command(temporal_env, queue: str, gateway, activity: str, argument: Any):
    return await temporal_env.client.execute_workflow(
        CommandProbe.run,
        CommandCall(activity=activity, task_queue=gateway.gateway.task_queue, argument=argument),
        id=f"probe-{uuid.uuid4().hex}",
        task_queue=queue,
        result_type=CommandOutcome,
    )


async def signals_when(sink, predicate, attempts: int = 300) -> list[tuple[str, Any]]:
    """The sink's signals once `predicate` holds for them (polled; fails after a while)."""
    received: list[tuple[str, Any]] = []
    for _ in range(attempts):
        received = await sink.query(SignalSink.signals)
        if predicate(received):
            return received
        await asyncio.sleep(0.05)
    pytest.fail(f"signals never matched; got {received}")


def names(received: list[tuple[str, Any]]) -> list[str]:
    return [name for name, _ in received]


def meter(transaction_id: int, register_wh: int, at: str) -> call.MeterValues:
    return call.MeterValues(
        connector_id=1,
        transaction_id=transaction_id,
        meter_value=[
            {
                "timestamp": at,
                "sampled_value": [
                    {"value": str(register_wh), "measurand": "Energy.Active.Import.Register"},
                    {"value": "11000", "measurand": "Power.Active.Import", "unit": "W"},
                ],
            }
        ],
    )


async def test_paid_session_from_remote_start_to_stop(
    gateway, add_station, db_sessions, temporal_env, signal_worker
):
    await add_station("EVP-401")
    session_id = new_session_id()
    sink = await start_sink(temporal_env, signal_worker, session_id)
    async with charger_session(gateway.url("EVP-401"), "EVP-401") as connected:
        charger = connected.charger
        outcome = await run_command(
            temporal_env,
            signal_worker,
            gateway,
            REMOTE_START,
            RemoteStartRequest(
                station_id="EVP-401", connector_id=1, id_tag=session_id, energy_limit_wh=50_000
            ),
        )
        assert outcome.result is not None and outcome.result.status == "Accepted"
        assert charger.remote_starts == [{"connector_id": 1, "id_tag": session_id}]

        started = await charger.call(
            call.StartTransaction(
                connector_id=1,
                id_tag=session_id,
                meter_start=1_000,
                timestamp="2026-01-01T10:00:00Z",
            ),
            suppress=False,
        )
        assert started.id_tag_info["status"] == "Accepted"
        tx_id = started.transaction_id
        # Two samples inside one throttle window: both stored, one signal.
        await charger.call(meter(tx_id, 2_000, "2026-01-01T10:01:00Z"), suppress=False)
        await charger.call(meter(tx_id, 3_500, "2026-01-01T10:02:00Z"), suppress=False)
        await charger.call(
            call.StopTransaction(
                meter_stop=4_250,
                timestamp="2026-01-01T10:03:00Z",
                transaction_id=tx_id,
                reason="EVDisconnected",
                id_tag=session_id,
            ),
            suppress=False,
        )
    received = await signals_when(sink, lambda got: TRANSACTION_STOPPED in names(got))
    assert names(received) == [TRANSACTION_STARTED, METER_SAMPLE, TRANSACTION_STOPPED]
    started_signal, sample, stopped = (payload for _, payload in received)
    assert started_signal["transaction_id"] == tx_id
    assert started_signal["station_id"] == "EVP-401"
    assert started_signal["meter_start_wh"] == 1_000
    assert sample["energy_wh"] == 1_000 and sample["power_w"] == 11_000
    assert stopped["energy_wh"] == 3_250 and stopped["reason"] == "EVDisconnected"
    async with db_sessions() as session:
        tx = await session.get(OcppTransaction, tx_id)
        stored = await session.scalar(select(func.count()).select_from(MeterValue))
    assert tx.session_id == session_id
    assert tx.energy_limit_wh == 50_000
    assert stored == 2


async def test_energy_limit_stops_the_charger_and_tells_the_workflow(
    gateway, add_station, temporal_env, signal_worker
):
    await add_station("EVP-402")
    session_id = new_session_id()
    sink = await start_sink(temporal_env, signal_worker, session_id)
    async with charger_session(gateway.url("EVP-402"), "EVP-402") as connected:
        charger = connected.charger
        await run_command(
            temporal_env,
            signal_worker,
            gateway,
            REMOTE_START,
            RemoteStartRequest(
                station_id="EVP-402", connector_id=1, id_tag=session_id, energy_limit_wh=2_000
            ),
        )
        started = await charger.call(
            call.StartTransaction(
                connector_id=1,
                id_tag=session_id,
                meter_start=10_000,
                timestamp="2026-01-01T10:00:00Z",
            ),
            suppress=False,
        )
        tx_id = started.transaction_id
        await charger.call(meter(tx_id, 11_500, "2026-01-01T10:05:00Z"), suppress=False)
        assert charger.remote_stops == []
        await charger.call(meter(tx_id, 12_100, "2026-01-01T10:10:00Z"), suppress=False)
        await asyncio.wait_for(charger.remote_stop_received.wait(), 10)
        received = await signals_when(sink, lambda got: ENERGY_LIMIT_REACHED in names(got))
        # Samples after the stop was accepted do not send it again.
        await charger.call(meter(tx_id, 12_200, "2026-01-01T10:10:30Z"), suppress=False)
        await charger.call(call.Heartbeat(), suppress=False)
    assert charger.remote_stops == [tx_id]
    reached = dict(received)[ENERGY_LIMIT_REACHED]
    assert reached == {
        "transaction_id": tx_id,
        "energy_wh": 2_100,
        "remote_stop_status": "Accepted",
    }


async def test_energy_limit_survives_a_gateway_restart(
    start_gateway, add_station, temporal_env, signal_worker
):
    """The limit travels on the transaction row, not in the process that got RemoteStart."""
    await add_station("EVP-403")
    session_id = new_session_id()
    await start_sink(temporal_env, signal_worker, session_id)
    first = await start_gateway()
    async with charger_session(first.url("EVP-403"), "EVP-403") as connected:
        await run_command(
            temporal_env,
            signal_worker,
            first,
            REMOTE_START,
            RemoteStartRequest(
                station_id="EVP-403", connector_id=1, id_tag=session_id, energy_limit_wh=1_000
            ),
        )
        started = await connected.charger.call(
            call.StartTransaction(
                connector_id=1,
                id_tag=session_id,
                meter_start=0,
                timestamp="2026-01-01T10:00:00Z",
            ),
            suppress=False,
        )
    await first.gateway.stop()
    second = await start_gateway()
    async with charger_session(second.url("EVP-403"), "EVP-403") as connected:
        await connected.charger.call(
            meter(started.transaction_id, 1_000, "2026-01-01T10:30:00Z"), suppress=False
        )
        await asyncio.wait_for(connected.charger.remote_stop_received.wait(), 10)
    assert connected.charger.remote_stops == [started.transaction_id]


async def test_start_for_a_session_without_workflow_is_recorded_and_acked(
    gateway, add_station, db_sessions
):
    await add_station("EVP-404")
    orphan = new_session_id()
    async with charger_session(gateway.url("EVP-404"), "EVP-404") as connected:
        started = await connected.charger.call(
            call.StartTransaction(
                connector_id=1, id_tag=orphan, meter_start=0, timestamp="2026-01-01T10:00:00Z"
            ),
            suppress=False,
        )
        await connected.charger.call(
            meter(started.transaction_id, 300, "2026-01-01T10:01:00Z"), suppress=False
        )
        stopped = await connected.charger.call(
            call.StopTransaction(
                meter_stop=400,
                timestamp="2026-01-01T10:02:00Z",
                transaction_id=started.transaction_id,
            ),
            suppress=False,
        )
    assert started.transaction_id > 0
    assert started.id_tag_info["status"] == "Invalid"
    assert stopped is not None
    async with db_sessions() as session:
        tx = await session.get(OcppTransaction, started.transaction_id)
    assert tx.id_tag == orphan and tx.session_id is None and tx.meter_stop_wh == 400


async def test_remote_stop_reaches_the_charger(gateway, add_station, temporal_env, signal_worker):
    await add_station("EVP-405")
    async with charger_session(gateway.url("EVP-405"), "EVP-405") as connected:
        outcome = await run_command(
            temporal_env,
            signal_worker,
            gateway,
            REMOTE_STOP,
            RemoteStopRequest(station_id="EVP-405", transaction_id=77),
        )
    assert outcome.result is not None
    assert outcome.result.status == "Accepted"
    assert outcome.result.payload == {"status": "Accepted"}
    assert connected.charger.remote_stops == [77]


async def test_command_to_a_station_that_is_not_connected_fails_clearly(
    gateway, add_station, temporal_env, signal_worker
):
    await add_station("EVP-406")
    outcome = await run_command(
        temporal_env,
        signal_worker,
        gateway,
        REMOTE_STOP,
        RemoteStopRequest(station_id="EVP-406", transaction_id=1),
    )
    assert outcome.result is None
    assert outcome.error_type == STATION_NOT_CONNECTED


async def test_command_the_charger_never_answers_times_out_clearly(
    start_gateway, add_station, temporal_env, signal_worker
):
    running = await start_gateway(command_timeout_s=1.0)
    await add_station("EVP-407")
    async with charger_session(running.url("EVP-407"), "EVP-407") as connected:
        connected.charger.answer_commands = False
        outcome = await run_command(
            temporal_env,
            signal_worker,
            running,
            REMOTE_STOP,
            RemoteStopRequest(station_id="EVP-407", transaction_id=5),
        )
    assert outcome.error_type == STATION_TIMEOUT


async def test_a_start_its_session_refuses_is_recorded_and_answered_invalid(
    gateway, add_station, temporal_env, db_sessions
):
    await add_station("EVP-409")
    session_id = new_session_id()
    queue = f"refuser-{uuid.uuid4().hex[:8]}"
    async with Worker(temporal_env.client, task_queue=queue, workflows=[StartRefuser]):
        refuser = await temporal_env.client.start_workflow(
            StartRefuser.run, id=charging_workflow_id(session_id), task_queue=queue
        )
        async with charger_session(gateway.url("EVP-409"), "EVP-409") as connected:
            started = await connected.charger.call(
                call.StartTransaction(
                    connector_id=1,
                    id_tag=session_id,
                    meter_start=0,
                    timestamp="2026-01-01T10:00:00Z",
                ),
                suppress=False,
            )
        await refuser.terminate("test over")
    assert started.id_tag_info["status"] == "Invalid"
    async with db_sessions() as session:
        tx = await session.get(OcppTransaction, started.transaction_id)
    assert tx.id_tag == session_id and tx.session_id is None  # recorded, billed to nobody
