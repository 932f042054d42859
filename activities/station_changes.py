"""`apply_station_change`: an operator's change to a location, a station or a connector, written
by the functions the CLI and the API always used (db/stations_admin.py, db/station_changes.py),
each in one transaction.

A refusal (a taken id, a location still in use, ...) is the domain error as a benign,
non-retryable failure (activities/refusals.py): retrying cannot change the answer. Every change
is safe to run twice, which a retried activity does after a commit it could not report:
updates set values, and creations and key rotations recognise their own earlier write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.refusals import refusal
from db.models import Location
from db.station_changes import (
    REFUSALS,
    create_location,
    set_connector_price,
    update_location,
    update_station,
)
from db.stations_admin import register_station, rotate_station_key_hash
from domain.contracts.station_changes import ChangeAction, StationChangeRequest
from domain.errors import DomainError

APPLY_STATION_CHANGE = "apply_station_change"
# A refusal's ApplicationError type (the domain error's class name) -> the error's code.
REFUSAL_CODES = {cls.__name__: code for code, cls in REFUSALS.items()}
# Coordinates travel as decimal strings: exact, and plain JSON.
_DECIMALS = frozenset({"latitude", "longitude"})


@dataclass(frozen=True)
class StationChangeDone:
    replayed: bool = False  # found in place already: nothing written this time
    previous_key_valid_until: datetime | None = None  # station.rotate_key


def decoded(changes: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: Decimal(value) if name in _DECIMALS and value is not None else value
        for name, value in changes.items()
    }


def _same(location: Location, fields: Mapping[str, Any]) -> bool:
    return all(getattr(location, name) == value for name, value in fields.items())


class StationChangeActivities:
    def __init__(self, db_sessions: async_sessionmaker[AsyncSession]) -> None:
        self._db_sessions = db_sessions

    def activities(self) -> list[Callable[..., Any]]:
        return [self.apply_station_change]

    @activity.defn(name=APPLY_STATION_CHANGE)
    async def apply_station_change(self, request: StationChangeRequest) -> StationChangeDone:
        try:
            return await self._apply(request)
        except DomainError as exc:
            raise refusal(exc) from None

    async def _apply(self, request: StationChangeRequest) -> StationChangeDone:
        action = ChangeAction(request.action)
        changes = decoded(request.changes)
        if action is ChangeAction.STATION_CREATE:
            assert request.station_id is not None and request.password_hash is not None
            replayed = await register_station(
                self._db_sessions,
                station_id=request.station_id,
                password_hash=request.password_hash,
                **changes,
            )
            return StationChangeDone(replayed=replayed)
        if action is ChangeAction.STATION_ROTATE_KEY:
            assert request.station_id is not None and request.password_hash is not None
            until, replayed = await rotate_station_key_hash(
                self._db_sessions,
                request.station_id,
                request.password_hash,
                request.key_grace_s or 0,
            )
            return StationChangeDone(replayed=replayed, previous_key_valid_until=until)
        async with self._db_sessions() as session, session.begin():
            return await _in_transaction(session, action, request, changes)


async def _in_transaction(
    session: AsyncSession,
    action: ChangeAction,
    request: StationChangeRequest,
    changes: dict[str, Any],
) -> StationChangeDone:
    if action is ChangeAction.LOCATION_CREATE:
        assert request.location_id is not None
        # A retry finding the row its first attempt wrote; on a first attempt an existing
        # id is another operator's location (409 location_exists) however alike.
        existing = await session.get(Location, request.location_id)
        retried = activity.in_activity() and activity.info().attempt > 1
        if retried and existing is not None and _same(existing, {"enabled": True, **changes}):
            return StationChangeDone(replayed=True)
        await create_location(session, request.location_id, **changes)
    elif action is ChangeAction.LOCATION_UPDATE:
        assert request.location_id is not None
        await update_location(session, request.location_id, changes)
    elif action is ChangeAction.STATION_UPDATE:
        assert request.station_id is not None
        await update_station(session, request.station_id, changes)
    elif action is ChangeAction.CONNECTOR_UPDATE:
        assert request.station_id is not None and request.connector_id is not None
        await set_connector_price(
            session, request.station_id, request.connector_id, changes["price_tyiyn_per_kwh"]
        )
    else:  # pragma: no cover - every action is handled above
        raise AssertionError(f"unknown station change {action}")
    return StationChangeDone()
