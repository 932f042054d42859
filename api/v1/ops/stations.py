"""`POST /ops/stations`, `PATCH /ops/stations/{station_id}`,
`PATCH /ops/stations/{station_id}/connectors/{connector_id}`: register, change, disable
stations and price their connectors, each as a StationChange workflow
(api/v1/ops/station_change_runner.py) whose activity writes what the CLI writes
(db/stations_admin.py, db/station_changes.py).

A new station's AuthorizationKey is hashed here (same keyed hash under OCPP_KEY_PEPPER as the
CLI's); only the hash goes to the workflow, the key is in this answer alone. A station is never
deleted: `enabled: false` disables it (its charger's BootNotification is answered Rejected and
no new session starts on it) and keeps its sessions.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse

from api.deps import DbSession
from api.errors import ApiError
from api.openapi import errors
from api.v1.ops.station_bodies import ConnectorUpdate, StationCreate, StationUpdate
from api.v1.ops.station_change_runner import PENDING, Changes, key_already_issued
from api.v1.ops.station_views import NewStationDetail, StationDetail, station_detail
from api.v1.ops.workflow_wait import NO_STORE
from db.models import Location, Station
from db.station_changes import check_changes
from db.stations_admin import (
    MAX_CONNECTORS,
    InvalidStationInput,
    validate_new_station,
)
from domain.charger_keys import ChargerKeys, generate_key
from domain.contracts.station_changes import ChangeAction
from domain.identifiers import StationId
from domain.sessions import StationNotFound

router = APIRouter()

StationPath = Annotated[StationId, Path()]
ConnectorPath = Annotated[int, Path(ge=1, le=MAX_CONNECTORS)]


async def _known(db: DbSession, station_id: str) -> None:
    """404 before any workflow starts (the workflow refuses it too, should the row go)."""
    if await db.get(Station, station_id) is None:
        raise StationNotFound(f"no station {station_id}")


async def _detail(db: DbSession, station_id: str) -> StationDetail:
    station = await db.get(Station, station_id, populate_existing=True)
    assert station is not None  # the workflow found or made it; stations are never deleted
    return await station_detail(db, station)


@router.post(
    "/stations",
    status_code=201,
    response_model=NewStationDetail,
    responses={**errors(404, 409), **PENDING},
)
async def add_station(
    *,
    response: Response,
    changes: Changes,
    db: DbSession,
    body: StationCreate,
) -> NewStationDetail | JSONResponse:
    """Register a station and its connectors; the answer holds its AuthorizationKey, once."""
    note = changes.name(ChangeAction.STATION_CREATE, f"station:{body.id}", body)
    pepper = changes.context.config.key_pepper
    if pepper is None:
        raise ApiError(503, "charger_keys_unavailable", "OCPP_KEY_PEPPER is not set for the api")
    generated = body.authorization_key is None
    plain = generate_key() if body.authorization_key is None else body.authorization_key
    try:
        validate_new_station(
            body.id,
            body.connectors,
            body.price_tyiyn_per_kwh,
            plain,
            current_type=body.current_type,
            max_power_w=body.max_power_w,
        )
    except InvalidStationInput as exc:
        raise ApiError(422, "invalid_station", exc.message) from None
    if body.location_id is not None:
        location = await db.get(Location, body.location_id)
        if location is not None and not location.enabled:
            raise ApiError(409, "location_disabled", f"location {body.location_id!r} is disabled")
    run = await changes.run(
        body,
        secret=pepper,  # the body may hold the operator's own key
        station_id=body.id,
        changes=body.model_dump(
            include={
                "connectors",
                "price_tyiyn_per_kwh",
                "location_id",
                "name",
                "current_type",
                "max_power_w",
            }
        ),
        password_hash=ChargerKeys(pepper).hash(plain),
    )
    if isinstance(run, JSONResponse):
        return run
    # Joined an earlier request's registration: an operator's own key is in this body too,
    # a generated one was shown to that request alone.
    if generated and not run.own_key:
        raise key_already_issued(run.workflow_id)
    detail = await _detail(db, body.id)
    note.result = {
        "station_id": body.id,
        "key_generated": generated,
        "workflow_id": run.workflow_id,
    }
    response.headers.update(NO_STORE)
    return NewStationDetail(**detail.model_dump(), authorization_key=plain, key_generated=generated)


@router.patch(
    "/stations/{station_id}",
    response_model=StationDetail,
    responses={**errors(404, 409), **PENDING},
)
async def change_station(
    *,
    station_id: StationPath,
    changes: Changes,
    db: DbSession,
    body: StationUpdate,
) -> StationDetail | JSONResponse:
    """Change name, location, station price (sessions started after it), connector count, or
    `enabled`. A running session keeps the price it started with."""
    note = changes.name(ChangeAction.STATION_UPDATE, f"station:{station_id}", body)
    changed = body.changes()
    check_changes(changed)  # 422 before any workflow starts
    await _known(db, station_id)
    run = await changes.run(body, station_id=station_id, changes=changed)
    if isinstance(run, JSONResponse):
        return run
    detail = await _detail(db, station_id)
    note.result = {
        "changed": sorted(changed),
        "enabled": detail.enabled,
        "workflow_id": run.workflow_id,
    }
    return detail


@router.patch(
    "/stations/{station_id}/connectors/{connector_id}",
    response_model=StationDetail,
    responses={**errors(404), **PENDING},
)
async def change_connector(
    *,
    station_id: StationPath,
    connector_id: ConnectorPath,
    changes: Changes,
    db: DbSession,
    body: ConnectorUpdate,
) -> StationDetail | JSONResponse:
    """Set a connector's own price in tyiyn per kWh (null: back to the station's), for
    sessions started from now on; running sessions keep their snapshot."""
    target = f"station:{station_id}:connector:{connector_id}"
    note = changes.name(ChangeAction.CONNECTOR_UPDATE, target, body)
    await _known(db, station_id)
    run = await changes.run(
        body,
        station_id=station_id,
        connector_id=connector_id,
        changes={"price_tyiyn_per_kwh": body.price_tyiyn_per_kwh},
    )
    if isinstance(run, JSONResponse):
        return run
    note.result = {"price_tyiyn_per_kwh": body.price_tyiyn_per_kwh, "workflow_id": run.workflow_id}
    return await _detail(db, station_id)
