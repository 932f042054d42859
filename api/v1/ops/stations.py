"""`POST /ops/stations`, `PATCH /ops/stations/{station_id}`,
`PATCH /ops/stations/{station_id}/connectors/{connector_id}`: register, change, disable
stations and price their connectors.

Registration is the CLI's own (db/stations_admin.py: same validation, same keyed hash under
OCPP_KEY_PEPPER). A station is never deleted: `enabled: false` disables it (its charger's
BootNotification is answered Rejected and no new session starts on it) and keeps its sessions.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from api.deps import Context, DbSession
from api.errors import ApiError
from api.openapi import errors
from api.ops_audit import audit_note
from api.v1.ops.station_bodies import ConnectorUpdate, StationCreate, StationUpdate
from api.v1.ops.station_views import NewStationDetail, StationDetail, station_detail
from db.models import Location, Station
from db.station_changes import set_connector_price, update_station
from db.stations_admin import MAX_CONNECTORS, InvalidStationInput, create_station
from domain.charger_keys import ChargerKeys
from domain.errors import Conflict, NotFound
from domain.identifiers import StationId

router = APIRouter()

StationPath = Annotated[StationId, Path()]
ConnectorPath = Annotated[int, Path(ge=1, le=MAX_CONNECTORS)]


@router.post("/stations", status_code=201, responses=errors(404, 409))
async def add_station(
    request: Request, context: Context, db: DbSession, body: StationCreate
) -> NewStationDetail:
    """Register a station and its connectors; the answer holds its AuthorizationKey, once."""
    note = audit_note(request)
    note.action, note.target, note.reason = "station.create", f"station:{body.id}", body.reason
    pepper = context.config.key_pepper
    if pepper is None:
        raise ApiError(503, "charger_keys_unavailable", "OCPP_KEY_PEPPER is not set for the api")
    if body.location_id is not None:
        location = await db.get(Location, body.location_id)
        if location is not None and not location.enabled:
            raise ApiError(409, "location_disabled", f"location {body.location_id!r} is disabled")
    try:
        created = await create_station(
            context.db_sessions,
            ChargerKeys(pepper),
            station_id=body.id,
            connectors=body.connectors,
            price_tyiyn_per_kwh=body.price_tyiyn_per_kwh,
            password=body.authorization_key,
            location_id=body.location_id,
            name=body.name,
            current_type=body.current_type,
            max_power_w=body.max_power_w,
        )
    except InvalidStationInput as exc:
        raise ApiError(422, "invalid_station", exc.message) from None
    except NotFound as exc:
        raise ApiError(404, "location_not_found", exc.message) from None
    except Conflict as exc:
        raise ApiError(409, "station_exists", exc.message) from None
    station = await db.get(Station, body.id)
    assert station is not None  # just committed; stations are never deleted
    detail = await station_detail(db, station)
    note.result = {"station_id": body.id, "key_generated": created.password_generated}
    return NewStationDetail(
        **detail.model_dump(),
        authorization_key=created.password,
        key_generated=created.password_generated,
    )


@router.patch("/stations/{station_id}", responses=errors(404, 409))
async def change_station(
    station_id: StationPath, request: Request, db: DbSession, body: StationUpdate
) -> StationDetail:
    """Change name, location, station price (sessions started after it), connector count, or
    `enabled`. A running session keeps the price it started with."""
    note = audit_note(request)
    note.action, note.target, note.reason = "station.update", f"station:{station_id}", body.reason
    changes = body.changes()
    async with db.begin():
        station = await update_station(db, station_id, changes)
        detail = await station_detail(db, station)
    note.result = {"changed": sorted(changes), "enabled": detail.enabled}
    return detail


@router.patch("/stations/{station_id}/connectors/{connector_id}", responses=errors(404))
async def change_connector(
    station_id: StationPath,
    connector_id: ConnectorPath,
    request: Request,
    db: DbSession,
    body: ConnectorUpdate,
) -> StationDetail:
    """Set a connector's own price in tyiyn per kWh (null: back to the station's), for
    sessions started from now on; running sessions keep their snapshot."""
    note = audit_note(request)
    note.action = "connector.update"
    note.target = f"station:{station_id}:connector:{connector_id}"
    note.reason = body.reason
    async with db.begin():
        await set_connector_price(db, station_id, connector_id, body.price_tyiyn_per_kwh)
        station = await db.get(Station, station_id)
        assert station is not None  # the connector's row was found under it
        detail = await station_detail(db, station)
    note.result = {"price_tyiyn_per_kwh": body.price_tyiyn_per_kwh}
    return detail
