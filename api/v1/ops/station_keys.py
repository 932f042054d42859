"""`POST /ops/stations/{station_id}/rotate-key`: a new AuthorizationKey, shown once.

The key it replaces keeps logging in for OCPP_KEY_ROTATION_GRACE_S, so the charger can be
told the new one with the `change_configuration` command (`AuthorizationKey`) before it
reconnects. The rotation is a StationChange workflow; the key is generated and hashed here and
only its keyed hash goes to the workflow, so no key is in its history. The audit's result holds
no key (the response body never reaches the audit, and a ChangeConfiguration of
AuthorizationKey is masked there); the answer is marked no-store, so neither the
Idempotency-Key store nor a cache keeps it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import DbSession
from api.errors import ApiError
from api.openapi import errors
from api.v1.ops.station_bodies import Change
from api.v1.ops.station_change_runner import PENDING, Changes, key_already_issued
from api.v1.ops.workflow_wait import NO_STORE
from db.models import Station
from domain.charger_keys import ChargerKeys, generate_key
from domain.contracts.station_changes import ChangeAction
from domain.identifiers import StationId
from domain.sessions import StationNotFound

router = APIRouter()


class RotateKey(Change):
    pass


class RotatedKey(BaseModel):
    station_id: str
    authorization_key: str  # shown once
    previous_key_valid_until: datetime


@router.post(
    "/stations/{station_id}/rotate-key",
    response_model=RotatedKey,
    responses={**errors(404, 409), **PENDING},
)
async def rotate_key(
    *,
    station_id: Annotated[StationId, Path()],
    response: Response,
    changes: Changes,
    db: DbSession,
    body: RotateKey,
) -> RotatedKey | JSONResponse:
    """A new generated key for the station; the old one logs in until
    `previous_key_valid_until`. Set it on the charger with the `change_configuration` command
    (`{"key": "AuthorizationKey", "value": ...}`)."""
    note = changes.name(ChangeAction.STATION_ROTATE_KEY, f"station:{station_id}", body)
    pepper = changes.context.config.key_pepper
    if pepper is None:
        raise ApiError(503, "charger_keys_unavailable", "OCPP_KEY_PEPPER is not set for the api")
    if await db.get(Station, station_id) is None:  # 404 before any workflow starts
        raise StationNotFound(f"station {station_id!r} does not exist")
    plain = generate_key()
    run = await changes.run(
        body,
        station_id=station_id,
        password_hash=ChargerKeys(pepper).hash(plain),
        key_grace_s=changes.context.config.ops.ocpp_key_rotation_grace_s,
    )
    if isinstance(run, JSONResponse):
        return run
    if not run.own_key:
        raise key_already_issued(run.workflow_id)
    until = run.result.previous_key_valid_until
    assert until is not None  # a rotation reports the grace's end
    note.result = {"previous_key_valid_until": until.isoformat(), "workflow_id": run.workflow_id}
    response.headers.update(NO_STORE)
    return RotatedKey(
        station_id=station_id, authorization_key=plain, previous_key_valid_until=until
    )
