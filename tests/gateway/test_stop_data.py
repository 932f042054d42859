"""A StopTransaction's transactionData is stored with the stop itself: the session never gets
a stop whose samples its meter check (activities/transactions.py) would not find yet."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from ocpp.v16 import call
from sqlalchemy import select

from db.models import MeterValue
from domain.contracts.session_signals import TRANSACTION_STOPPED
from gateway.meter_writer import MeterWriter
from tests.gateway.conftest import charger_session
from tests.gateway.test_sessions import names, signals_when, start_sink

pytestmark = pytest.mark.integration


def sample(at: str, register_wh: int) -> dict[str, Any]:
    return {
        "timestamp": at,
        "sampled_value": [
            {"value": str(register_wh), "measurand": "Energy.Active.Import.Register"}
        ],
    }


async def test_the_stop_reaches_the_session_only_with_its_transaction_data_stored(
    start_gateway, add_station, db_sessions, temporal_env, signal_worker, monkeypatch
) -> None:
    await add_station("EVP-721")
    session_id = uuid.uuid4().hex[:16]
    sink = await start_sink(temporal_env, signal_worker, session_id)
    running = await start_gateway(relay_poll_s=0.1, relay_retry_first_s=0.05)
    async with charger_session(running.url("EVP-721"), "EVP-721") as connected:
        started = await connected.charger.call(
            call.StartTransaction(
                connector_id=1,
                id_tag=session_id,
                meter_start=1_000,
                timestamp="2026-11-30T10:00:00Z",
            ),
            suppress=False,
        )
        transaction_id = started.transaction_id

        # The group-commit writer is busy (a large batch of other chargers' samples): the
        # relay must not pass the stop on before its samples are in.
        released = asyncio.Event()
        write = MeterWriter.write

        async def busy(self: MeterWriter, rows: Sequence[Any]) -> None:
            await released.wait()
            await write(self, rows)

        monkeypatch.setattr(MeterWriter, "write", busy)
        try:
            await connected.charger.call(
                call.StopTransaction(
                    meter_stop=1_900,
                    timestamp="2026-11-30T10:30:00Z",
                    transaction_id=transaction_id,
                    reason="Local",
                    transaction_data=[
                        sample("2026-11-30T10:10:00Z", 1_300),
                        sample("2026-11-30T10:20:00Z", 1_600),
                    ],
                ),
                suppress=False,
            )
        finally:
            released.set()
        await signals_when(sink, lambda got: TRANSACTION_STOPPED in names(got))
        async with db_sessions() as session:
            stored = (
                await session.execute(
                    select(MeterValue.energy_wh, MeterValue.connector_id)
                    .where(MeterValue.transaction_id == transaction_id)
                    .order_by(MeterValue.measured_at)
                )
            ).all()
    assert [tuple(row) for row in stored] == [(1_300, 1), (1_600, 1)]
