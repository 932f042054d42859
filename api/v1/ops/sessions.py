"""`GET /ops/sessions`: every client's sessions, filtered and paged, each with a link to its
workflow in the Temporal UI."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from api.deps import ApiConfig, Context, DbSession
from api.errors import ApiError
from api.openapi import errors
from api.ops_audit import audit_note
from api.response_shapes import response_dataclass
from api.v1.charging_service import decode_cursor, encode_cursor
from api.v1.ops.report_period import MAX_BOUND_LENGTH, parse_bound
from api.v1.ops.session_search import SessionFilter, find_sessions
from db.models import ChargingSessionRecord
from domain.contracts.charging import charging_workflow_id
from domain.contracts.session_record import SessionRecord, record_fields
from domain.identifiers import StationId
from domain.sessions import SessionState

router = APIRouter()

MAX_PAGE = 200


@response_dataclass
class OpsSession(SessionRecord):
    """A session as recorded, with its creation time and the way to its workflow."""

    # Every field of the session record (domain.contracts.session_record), then these.

    created_at: datetime
    workflow_id: str
    temporal_ui_url: str | None  # None when no Temporal UI is configured (TEMPORAL_UI_URL)


class OpsSessionPage(BaseModel):
    items: list[OpsSession]
    next_cursor: str | None  # pass as `cursor` for the next (older) page


def temporal_ui_link(config: ApiConfig, workflow_id: str) -> str | None:
    """The UI's workflow list filtered to this id: every run of it (a long session continues
    as new), one click from its timeline."""
    if config.temporal_ui_url is None:
        return None
    query = quote(f'WorkflowId="{workflow_id}"', safe="")
    namespace = quote(config.temporal_namespace, safe="")
    return f"{config.temporal_ui_url}/namespaces/{namespace}/workflows?query={query}"


def _item(config: ApiConfig, row: ChargingSessionRecord) -> OpsSession:
    workflow_id = charging_workflow_id(row.id)
    return OpsSession(
        **record_fields(row.to_record()),
        created_at=row.created_at,
        workflow_id=workflow_id,
        temporal_ui_url=temporal_ui_link(config, workflow_id),
    )


@router.get("/sessions", responses=errors(422))
async def search_sessions(
    *,
    request: Request,
    db: DbSession,
    context: Context,
    station_id: Annotated[StationId | None, Query()] = None,
    client_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    state: SessionState | None = None,
    from_: Annotated[
        str | None, Query(alias="from", min_length=1, max_length=MAX_BOUND_LENGTH)
    ] = None,
    to: Annotated[str | None, Query(min_length=1, max_length=MAX_BOUND_LENGTH)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=200, pattern=r"^[A-Za-z0-9_-]+$")] = None,
) -> OpsSessionPage:
    """Sessions of every client, newest first (by creation). `from`/`to` bound the creation
    time, [from, to), as ISO dates or datetimes (Asia/Bishkek unless an offset is given)."""
    audit_note(request).action = "sessions.search"
    created_from = parse_bound("from", from_) if from_ is not None else None
    created_to = parse_bound("to", to) if to is not None else None
    if created_from is not None and created_to is not None and created_from >= created_to:
        raise ApiError(422, "empty_period", "`from` must be before `to` (the period is [from, to))")
    where = SessionFilter(
        station_id=station_id,
        client_id=client_id,
        state=state,
        created_from=created_from,
        created_to=created_to,
        after=decode_cursor(cursor) if cursor is not None else None,
    )
    rows, more = await find_sessions(db, where, limit)
    config = context.config
    last = rows[-1] if rows and more else None
    return OpsSessionPage(
        items=[_item(config, row) for row in rows],
        next_cursor=encode_cursor(last.created_at, last.id) if last is not None else None,
    )
