"""Station endpoints: the list with connectors and live status, and one station's status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from api.deps import DbSession
from api.openapi import errors
from api.v1.station_views import StationView, load_stations
from domain.errors import NotFound
from domain.identifiers import LocationId, StationId

router = APIRouter(tags=["stations"])


class StationList(BaseModel):
    stations: list[StationView]


@router.get("/stations")
async def list_stations(
    session: DbSession, location_id: Annotated[LocationId | None, Query()] = None
) -> StationList:
    """Every station drivers may use, with its connectors and whether it is online."""
    locations = [location_id] if location_id is not None else None
    return StationList(stations=await load_stations(session, location_ids=locations))


@router.get("/stations/{station_id}/status", responses=errors(404))
async def station_status(
    station_id: Annotated[StationId, Path()], session: DbSession
) -> StationView:
    stations = await load_stations(session, station_id=station_id)
    if not stations:
        raise NotFound(f"station {station_id} not found")
    return stations[0]
