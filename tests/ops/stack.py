"""The operations API on the real stack: PostgreSQL, the Temporal dev server, the gateway and
the API on one uvicorn port, a worker serving StationCommand, and the simulator connecting over
a real websocket."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from activities.failures import ACTIVITY_INTERCEPTORS
from activities.ledger import Ledger, LedgerActivities, LedgerMovement
from activities.review import ReviewActivities
from activities.sessions import charging_activities
from activities.station_changes import StationChangeActivities
from activities.station_commands import StationCommandActivities
from api.dev_tokens import issue_dev_token
from db.models import Connector, Station
from domain.ledger import Operation
from gateway.auth import ChargerKeys
from simulator import FaultPlan, SimulatedStation, StationConfig
from tests.stack import Stack, running_stack
from workflows.balance_adjustment import BalanceAdjustmentWorkflow
from workflows.charging import ChargingSessionWorkflow
from workflows.review import ReviewWorkflow
from workflows.station_change import StationChangeWorkflow
from workflows.station_command import StationCommandWorkflow

SECRET = "ops-commands-secret-0123456789abcdef-xyz"
PASSWORD = "ops charger password"
KEY_PEPPER = b"ops-commands-pepper-0123456789abcdef"


class OpsStack(Stack):
    def station(
        self,
        station_id: str,
        connectors: int = 2,
        faults: FaultPlan | None = None,
        **config: Any,
    ) -> SimulatedStation:
        return SimulatedStation(
            StationConfig(
                station_id=station_id,
                url=self.ocpp_url,
                password=PASSWORD,
                connectors=connectors,
                reconnect_delay_s=0.2,
                **config,
            ),
            faults,
        )

    def charging_station(
        self, station_id: str, faults: FaultPlan | None = None
    ) -> SimulatedStation:
        """Two connectors sampling fast: 500 Wh every 0.2 s."""
        return self.station(
            station_id, faults=faults, meter_interval_s=0.2, energy_per_sample_wh=500
        )

    async def connectors_available(self, station_id: str, connectors: int = 2) -> None:
        async def available() -> bool:
            async with self.db_sessions() as session:
                rows = await session.scalars(
                    select(Connector.status).where(Connector.station_id == station_id)
                )
                return list(rows) == ["Available"] * connectors

        await eventually(available, "the charger reported its connectors")


def driver_bearer(client_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_dev_token(SECRET, client_id)}"}


async def fund(
    db_sessions: async_sessionmaker[AsyncSession], amount: int, *client_ids: str
) -> Ledger:
    """Credit each client `amount`; the ledger, to read balances with afterwards."""
    ledger = Ledger(db_sessions)
    for client_id in client_ids:
        await ledger.apply(
            Operation.CREDIT_TOPUP,
            LedgerMovement(f"topup:{client_id}", client_id, amount, provider="TEST"),
        )
    return ledger


def headers(caller: str, *, key: str | None = None) -> dict[str, str]:
    """none, client, operator or admin; with an Idempotency-Key when given."""
    found: dict[str, str] = {} if key is None else {"Idempotency-Key": key}
    if caller == "none":
        return found
    role = None if caller == "client" else caller
    token = issue_dev_token(SECRET, str(uuid.uuid4()), operator_role=role)
    return {**found, "Authorization": f"Bearer {token}"}


async def add_station(
    db_sessions: async_sessionmaker[AsyncSession], station_id: str, connectors: int = 2
) -> None:
    async with db_sessions() as session, session.begin():
        session.add(
            Station(
                id=station_id,
                name=station_id,
                price_tyiyn_per_kwh=1_500,
                password_hash=ChargerKeys(KEY_PEPPER).hash(PASSWORD),
            )
        )
        await session.flush()
        for number in range(1, connectors + 1):
            session.add(Connector(station_id=station_id, connector_id=number))


@asynccontextmanager
async def ops_stack(
    db_sessions: async_sessionmaker[AsyncSession],
    temporal: Client,
    *,
    charging: bool = False,
    gateway_options: dict[str, Any] | None = None,
    **api: Any,
) -> AsyncIterator[OpsStack]:
    """With `charging`, the worker also runs ChargingSession and its activities (ledger,
    session records), as `evpower worker` does. `gateway_options` are GatewayConfig fields."""
    money = LedgerActivities(Ledger(db_sessions))
    # The operators' own workflows (commands, station changes, reviews, adjustments) always run.
    workflows: list[type] = [
        StationCommandWorkflow,
        StationChangeWorkflow,
        ReviewWorkflow,
        BalanceAdjustmentWorkflow,
    ]
    activities: list[Any] = [
        *StationCommandActivities(db_sessions).activities(),
        *StationChangeActivities(db_sessions).activities(),
        *ReviewActivities(db_sessions).activities(),
        money.credit_topup,
        money.refund,
        money.release,
        money.adjust_credit,
        money.adjust_debit,
    ]
    if charging:
        # release is registered above already (reviews release too).
        workflows.append(ChargingSessionWorkflow)
        activities += [*charging_activities(db_sessions), money.reserve, money.capture]
    async with running_stack(
        db_sessions,
        temporal,
        jwt_secret=SECRET,
        key_pepper=KEY_PEPPER,
        gateway=gateway_options,
        api=api,
        worker=(workflows, activities),
        kind=OpsStack,
    ) as stack:
        yield stack


@asynccontextmanager
async def station_change_worker(
    db_sessions: async_sessionmaker[AsyncSession], temporal: Client, task_queue: str
) -> AsyncIterator[None]:
    """A worker serving StationChange alone, for an app built by `make_app(task_queue=...)`."""
    async with Worker(
        temporal,
        task_queue=task_queue,
        workflows=[StationChangeWorkflow],
        activities=StationChangeActivities(db_sessions).activities(),
        interceptors=ACTIVITY_INTERCEPTORS,
    ):
        yield


async def eventually(check: Any, what: str) -> None:
    """Poll a condition (bounded by attempts, not by a clock assertion)."""
    for _ in range(1_000):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")
