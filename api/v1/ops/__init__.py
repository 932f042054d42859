"""`/ops`: the operations API. Every route in it requires an operator (the router's own
dependency, so a new route cannot forget it) and is audited by api/ops_audit.py."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.openapi import errors
from api.v1.ops import (
    adjustments,
    cards,
    commands,
    fleet,
    locations,
    me,
    reports,
    review,
    session_stop,
    sessions,
    station_keys,
    stations,
)
from api.v1.ops.access import current_operator

router = APIRouter(
    prefix="/ops",
    tags=["operations"],
    dependencies=[Depends(current_operator)],
    responses=errors(401, 403),
)
router.include_router(me.router)
router.include_router(fleet.router)
router.include_router(commands.router)
router.include_router(reports.router)
router.include_router(sessions.router)
router.include_router(session_stop.router)
router.include_router(locations.router)
router.include_router(stations.router)
router.include_router(station_keys.router)
router.include_router(review.router)
router.include_router(adjustments.router)
router.include_router(cards.router)
