"""Demo data for `evpower dev`: a Bishkek location, two stations, a client with 500 som."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.ledger import Ledger, LedgerMovement
from db.clients import ensure_client
from db.models import Connector, Location, Station
from domain.ledger import Operation
from gateway.auth import ChargerKeys

DEMO_CLIENT_ID = "0d3e0000-0000-4000-8000-000000000001"
DEMO_LOCATION_ID = "bishkek-ala-too"
DEMO_STATION_IDS = ("EVP-001", "EVP-002")
DEMO_STATION_PASSWORD = "evpower-demo-key"  # noqa: S105 - printed by `evpower dev` on purpose
DEMO_PRICE_TYIYN_PER_KWH = 1_500  # 15 som per kWh
DEMO_BALANCE_TYIYN = 50_000  # 500 som
DEMO_CONNECTORS = 2


async def seed_demo_data(db_sessions: async_sessionmaker[AsyncSession], keys: ChargerKeys) -> None:
    """Idempotent: a restart of `evpower dev` finds everything in place and adds nothing."""
    async with db_sessions() as session, session.begin():
        await session.execute(
            insert(Location)
            .values(
                id=DEMO_LOCATION_ID,
                name="Ala-Too Square",
                address="Chuy Avenue 150",
                city="Bishkek",
                latitude=Decimal("42.876400"),
                longitude=Decimal("74.603700"),
            )
            .on_conflict_do_nothing()
        )
        for number, station_id in enumerate(DEMO_STATION_IDS, start=1):
            inserted = await session.execute(
                insert(Station)
                .values(
                    id=station_id,
                    location_id=DEMO_LOCATION_ID,
                    name=f"Ala-Too DC {number}",
                    price_tyiyn_per_kwh=DEMO_PRICE_TYIYN_PER_KWH,
                    password_hash=keys.hash(DEMO_STATION_PASSWORD),
                    registration_status="accepted",
                )
                .on_conflict_do_nothing()
                .returning(Station.id)
            )
            if inserted.scalar() is None:
                continue
            await session.execute(
                insert(Connector).values(
                    [
                        {"station_id": station_id, "connector_id": connector}
                        for connector in range(1, DEMO_CONNECTORS + 1)
                    ]
                )
            )
        await ensure_client(session, DEMO_CLIENT_ID)
    await Ledger(db_sessions).apply(
        Operation.CREDIT_TOPUP,
        LedgerMovement(
            op_key=f"demo:initial-balance:{DEMO_CLIENT_ID}",
            client_id=DEMO_CLIENT_ID,
            amount_tyiyn=DEMO_BALANCE_TYIYN,
            reference="demo",
            provider="DEMO",
        ),
    )
