"""`POST /ops/stations/{station_id}/rotate-key`: a new AuthorizationKey, shown once.

The key it replaces keeps logging in for OCPP_KEY_ROTATION_GRACE_S, so the charger can be
told the new one with the `change_configuration` command (`AuthorizationKey`) before it
reconnects. Only the keyed hash is stored; the audit's result holds no key (the response body
never reaches the audit, and a ChangeConfiguration of AuthorizationKey is masked there).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel

from api.deps import Context
from api.errors import ApiError
from api.openapi import errors
from api.ops_audit import audit_note
from api.v1.ops.station_bodies import Change
from db.stations_admin import rotate_station_key
from domain.charger_keys import ChargerKeys
from domain.errors import NotFound
from domain.identifiers import StationId

router = APIRouter()


class RotateKey(Change):
    pass


class RotatedKey(BaseModel):
    station_id: str
    authorization_key: str  # shown once
    previous_key_valid_until: datetime


@router.post("/stations/{station_id}/rotate-key", responses=errors(404))
async def rotate_key(
    station_id: Annotated[StationId, Path()], request: Request, context: Context, body: RotateKey
) -> RotatedKey:
    """A new generated key for the station; the old one logs in until
    `previous_key_valid_until`. Set it on the charger with the `change_configuration` command
    (`{"key": "AuthorizationKey", "value": ...}`)."""
    note = audit_note(request)
    note.action, note.target, note.reason = (
        "station.rotate_key",
        f"station:{station_id}",
        body.reason,
    )
    pepper = context.config.key_pepper
    if pepper is None:
        raise ApiError(503, "charger_keys_unavailable", "OCPP_KEY_PEPPER is not set for the api")
    try:
        key, until = await rotate_station_key(
            context.db_sessions,
            ChargerKeys(pepper),
            station_id,
            context.config.key_rotation_grace_s,
        )
    except NotFound as exc:
        raise ApiError(404, "station_not_found", exc.message) from None
    note.result = {"previous_key_valid_until": until.isoformat()}
    return RotatedKey(station_id=station_id, authorization_key=key, previous_key_valid_until=until)
