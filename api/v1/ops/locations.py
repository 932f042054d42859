"""`POST /ops/locations`, `PATCH /ops/locations/{location_id}`: create, change and disable
(`enabled: false`, hidden from drivers) the places stations stand."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from api.deps import DbSession
from api.openapi import errors
from api.ops_audit import audit_note
from api.v1.ops.station_bodies import LocationCreate, LocationUpdate
from api.v1.ops.station_views import LocationDetail, location_detail
from db.station_changes import create_location, update_location

router = APIRouter()

LocationPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


@router.post("/locations", status_code=201, responses=errors(409))
async def add_location(request: Request, db: DbSession, body: LocationCreate) -> LocationDetail:
    """A new location (409 `location_exists` for a taken id)."""
    note = audit_note(request)
    note.action, note.target, note.reason = "location.create", f"location:{body.id}", body.reason
    fields = body.model_dump(exclude={"id", "reason"})
    async with db.begin():
        location = await create_location(db, body.id, **fields)
        detail = location_detail(location)
    note.result = {"location_id": body.id}
    return detail


@router.patch("/locations/{location_id}", responses=errors(404, 409))
async def change_location(
    location_id: LocationPath, request: Request, db: DbSession, body: LocationUpdate
) -> LocationDetail:
    """Change a location's fields; `enabled: false` hides it from drivers, refused (409
    `location_in_use`) while any of its stations is enabled."""
    note = audit_note(request)
    note.action, note.target, note.reason = (
        "location.update",
        f"location:{location_id}",
        body.reason,
    )
    changes = body.changes()
    async with db.begin():
        location = await update_location(db, location_id, changes)
        detail = location_detail(location)
    note.result = {"changed": sorted(changes)}
    return detail
