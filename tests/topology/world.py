"""What the topology tests put in the database and how they talk to the system: stations,
a client with money, chargers from the simulator and the Temporal client of the namespace."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from activities.ledger import ClientBalance, Ledger, LedgerMovement
from db.engine import create_engine, session_factory
from db.models import Connector, Station
from domain.ledger import Operation
from gateway.auth import ChargerKeys
from simulator import SimulatedStation, StationConfig

CHARGER_KEY = "topology-charger-key-0001"
# OCPP_KEY_PEPPER of the topology deployment (the same for every gateway, as in compose).
KEY_PEPPER = "topology-key-pepper-0123456789abcdef"
PRICE_TYIYN_PER_KWH = 1_500


def engine_for(database_url: str) -> AsyncEngine:
    return create_engine(database_url, pool_size=2)


async def add_stations(engine: AsyncEngine, station_ids: list[str]) -> None:
    db_sessions = session_factory(engine)
    async with db_sessions() as session, session.begin():
        for station_id in station_ids:
            session.add(
                Station(
                    id=station_id,
                    name=station_id,
                    price_tyiyn_per_kwh=PRICE_TYIYN_PER_KWH,
                    password_hash=ChargerKeys(KEY_PEPPER.encode()).hash(CHARGER_KEY),
                    registration_status="accepted",
                )
            )
        await session.flush()
        for station_id in station_ids:
            session.add(Connector(station_id=station_id, connector_id=1))


async def fund_client(engine: AsyncEngine, amount_tyiyn: int) -> str:
    client_id = str(uuid.uuid4())
    await Ledger(session_factory(engine)).apply(
        Operation.CREDIT_TOPUP,
        LedgerMovement(f"topology:{client_id}", client_id, amount_tyiyn, provider="TEST"),
    )
    return client_id


async def balance(engine: AsyncEngine, client_id: str) -> ClientBalance:
    return await Ledger(session_factory(engine)).balance(client_id)


def charger(station_id: str, gateway_ws_url: str, **overrides: object) -> SimulatedStation:
    config: dict[str, object] = {
        "station_id": station_id,
        "url": f"{gateway_ws_url}/ocpp",
        "password": CHARGER_KEY,
        "meter_interval_s": 0.2,
        "energy_per_sample_wh": 500,
        "meter_start_wh": 1_000_000,
        "reconnect_delay_s": 0.2,
        **overrides,
    }
    return SimulatedStation(StationConfig(**config))  # type: ignore[arg-type]


async def eventually(check: Callable[[], Awaitable[bool]], what: str, attempts: int = 600) -> None:
    """Poll a condition; bounded by attempts as a safety net, not a timing assertion."""
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")
