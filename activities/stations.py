"""Station lookup for charging: which gateway queue holds a station, its connector, its tariff."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from db.models import Connector, OcppTransaction, Station, StationConnection
from db.stations_admin import DISABLED_REGISTRATION
from domain.meter_readings import max_power_w

LOCATE_STATION = "locate_station"

# OCPP 1.6 ChargePointStatus values a new session may start from: free, or a car plugged in.
STARTABLE_STATUSES = frozenset({"Available", "Preparing"})
OUT_OF_ORDER_STATUSES = frozenset({"Unavailable", "Faulted"})


@dataclass(frozen=True)
class LocateStation:
    station_id: str
    connector_id: int
    # When set, also look for an open OCPP transaction started with this idTag: a charger may
    # have started even though its StartTransaction never reached the workflow.
    id_tag: str | None = None


@dataclass(frozen=True)
class StationLocation:
    station_id: str
    known: bool
    gateway_queue: str | None  # None: the station is not connected to any gateway
    connector_status: str | None  # None: the station has no such connector
    price_tyiyn_per_kwh: int  # 0 when the station is unknown
    open_transaction_id: int | None = None
    # The connector's maximum power (configured, else its type's default); 0 when unknown.
    max_power_w: int = 0
    # False once an operator disabled the station (registration `rejected`): no new sessions.
    enabled: bool = True


class StationDirectory:
    """Reads stations, connectors, connections and transactions inside a caller's session."""

    async def locate(self, session: AsyncSession, request: LocateStation) -> StationLocation:
        station = await session.get(Station, request.station_id)
        if station is None:
            return StationLocation(request.station_id, False, None, None, 0)
        connection = await session.get(StationConnection, request.station_id)
        connector = await session.get(Connector, (request.station_id, request.connector_id))
        open_transaction_id = None
        if request.id_tag is not None:
            open_transaction_id = await session.scalar(
                select(OcppTransaction.id)
                .where(
                    OcppTransaction.station_id == request.station_id,
                    or_(
                        OcppTransaction.id_tag == request.id_tag,
                        OcppTransaction.session_id == request.id_tag,
                    ),
                    OcppTransaction.stopped_at.is_(None),
                )
                .order_by(OcppTransaction.id.desc())
                .limit(1)
            )
        return StationLocation(
            station_id=station.id,
            known=True,
            gateway_queue=connection.gateway_queue if connection is not None else None,
            connector_status=connector.status if connector is not None else None,
            price_tyiyn_per_kwh=connector_price(station, connector),
            open_transaction_id=open_transaction_id,
            max_power_w=(
                max_power_w(connector.max_power_w, connector.current_type)
                if connector is not None
                else 0
            ),
            enabled=station.registration_status != DISABLED_REGISTRATION,
        )


def connector_price(station: Station, connector: Connector | None) -> int:
    """The price a session started now is billed at: the connector's own, else the station's."""
    if connector is not None and connector.price_tyiyn_per_kwh is not None:
        return connector.price_tyiyn_per_kwh
    return station.price_tyiyn_per_kwh


class StationActivities:
    """`locate_station`: asked before every command, so a moved or dead gateway is noticed."""

    def __init__(self, db_sessions: async_sessionmaker[AsyncSession]) -> None:
        self._db_sessions = db_sessions
        self._directory = StationDirectory()

    @activity.defn(name=LOCATE_STATION)
    async def locate_station(self, request: LocateStation) -> StationLocation:
        async with self._db_sessions() as session:
            return await self._directory.locate(session, request)
