"""`POST /ops/locations`, `PATCH /ops/locations/{location_id}`: create, change and disable
(`enabled: false`, hidden from drivers) the places stations stand, each as a StationChange
workflow (api/v1/ops/station_change_runner.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import DbSession
from api.openapi import errors
from api.v1.ops.station_bodies import LocationCreate, LocationUpdate
from api.v1.ops.station_change_runner import PENDING, Changes
from api.v1.ops.station_views import LocationDetail, location_detail
from db.models import Location
from db.station_changes import check_changes
from db.stations_admin import LocationNotFound
from domain.contracts.station_changes import ChangeAction

router = APIRouter()

LocationPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


def json_fields(body: BaseModel, fields: dict[str, Any]) -> dict[str, Any]:
    """The fields as the workflow carries them (coordinates as decimal strings)."""
    dumped = body.model_dump(mode="json")
    return {name: dumped[name] for name in fields}


@router.post(
    "/locations",
    status_code=201,
    response_model=LocationDetail,
    responses={**errors(409), **PENDING},
)
async def add_location(
    *,
    changes: Changes,
    db: DbSession,
    body: LocationCreate,
) -> LocationDetail | JSONResponse:
    """A new location (409 `location_exists` for a taken id)."""
    note = changes.name(ChangeAction.LOCATION_CREATE, f"location:{body.id}", body)
    fields = body.model_dump(exclude={"id", "reason"})
    run = await changes.run(body, location_id=body.id, changes=json_fields(body, fields))
    if isinstance(run, JSONResponse):
        return run
    location = await db.get(Location, body.id, populate_existing=True)
    assert location is not None  # just created; locations are never deleted
    note.result = {"location_id": body.id, "workflow_id": run.workflow_id}
    return location_detail(location)


@router.patch(
    "/locations/{location_id}",
    response_model=LocationDetail,
    responses={**errors(404, 409), **PENDING},
)
async def change_location(
    *,
    location_id: LocationPath,
    changes: Changes,
    db: DbSession,
    body: LocationUpdate,
) -> LocationDetail | JSONResponse:
    """Change a location's fields; `enabled: false` hides it from drivers, refused (409
    `location_in_use`) while any of its stations is enabled."""
    note = changes.name(ChangeAction.LOCATION_UPDATE, f"location:{location_id}", body)
    changed = body.changes()
    check_changes(changed)  # 422 before any workflow starts
    if await db.get(Location, location_id) is None:
        raise LocationNotFound(f"no location {location_id}")
    run = await changes.run(body, location_id=location_id, changes=json_fields(body, changed))
    if isinstance(run, JSONResponse):
        return run
    location = await db.get(Location, location_id, populate_existing=True)
    assert location is not None  # the workflow found and changed it
    note.result = {"changed": sorted(changed), "workflow_id": run.workflow_id}
    return location_detail(location)
