"""`GET /ops/reports/revenue`: captured and released money, energy and billed sessions per
day, station or location over a period — JSON, or CSV with `Accept: text/csv`."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from api.deps import DbSession
from api.openapi import errors
from api.ops_audit import audit_action
from api.v1.ops.report_period import MAX_BOUND_LENGTH, parse_period
from api.v1.ops.revenue_query import GroupBy, RevenueGroup, revenue_groups
from api.v1.receipt_service import TIME_ZONE
from domain.money import format_som

router = APIRouter()

CSV_COLUMNS = (
    "kind",
    "key",
    "name",
    "captured_tyiyn",
    "captured_som",
    "released_tyiyn",
    "released_som",
    "energy_wh",
    "sessions",
)
# A spreadsheet runs a cell that starts with one of these as a formula; names are free text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class RevenueTotals(BaseModel):
    captured_tyiyn: int
    captured_som: str
    released_tyiyn: int
    released_som: str
    energy_wh: int
    sessions: int


class RevenueRow(RevenueTotals):
    key: str | None  # day (YYYY-MM-DD), station id or location id (None: no location)
    name: str | None


class RevenueReport(BaseModel):
    period_from: datetime
    period_to: datetime  # excluded
    time_zone: str
    group_by: GroupBy
    rows: list[RevenueRow]
    totals: RevenueTotals


def _row(group: RevenueGroup) -> RevenueRow:
    return RevenueRow(
        key=group.key,
        name=group.name,
        captured_tyiyn=group.captured_tyiyn,
        captured_som=format_som(group.captured_tyiyn),
        released_tyiyn=group.released_tyiyn,
        released_som=format_som(group.released_tyiyn),
        energy_wh=group.energy_wh,
        sessions=group.sessions,
    )


def _totals(rows: list[RevenueRow]) -> RevenueTotals:
    captured = sum(row.captured_tyiyn for row in rows)
    released = sum(row.released_tyiyn for row in rows)
    return RevenueTotals(
        captured_tyiyn=captured,
        captured_som=format_som(captured),
        released_tyiyn=released,
        released_som=format_som(released),
        energy_wh=sum(row.energy_wh for row in rows),
        sessions=sum(row.sessions for row in rows),
    )


def _cell(text: str | None) -> str:
    if text is None:
        return ""
    return "'" + text if text.startswith(_FORMULA_START) else text


def as_csv(report: RevenueReport) -> str:
    """The same rows as the JSON, then one `total` row; integers only, no floats."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    lines: list[tuple[str, str | None, str | None, RevenueTotals]] = [
        ("group", row.key, row.name, row) for row in report.rows
    ]
    lines.append(("total", None, None, report.totals))
    for kind, key, name, money in lines:
        writer.writerow(
            (
                kind,
                _cell(key),
                _cell(name),
                money.captured_tyiyn,
                money.captured_som,
                money.released_tyiyn,
                money.released_som,
                money.energy_wh,
                money.sessions,
            )
        )
    return out.getvalue()


def wants_csv(request: Request) -> bool:
    return "text/csv" in request.headers.get("accept", "").lower()


@router.get(
    "/reports/revenue",
    response_model=RevenueReport,
    responses={
        **errors(422),
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
    },
)
async def revenue(
    request: Request,
    db: DbSession,
    from_: Annotated[str, Query(alias="from", min_length=1, max_length=MAX_BOUND_LENGTH)],
    to: Annotated[str, Query(min_length=1, max_length=MAX_BOUND_LENGTH)],
    group_by: GroupBy = GroupBy.DAY,
) -> RevenueReport | Response:
    """Money the ledger captured and released for charging sessions in [from, to), with the
    energy and count of the billed sessions, per day (Asia/Bishkek), station or location.
    `from`/`to`: ISO dates (local midnight) or datetimes (naive ones are local)."""
    note = audit_action(request, "reports.revenue", f"revenue:{group_by.value}")
    period = parse_period(from_, to)
    rows = [_row(group) for group in await revenue_groups(db, period, group_by)]
    report = RevenueReport(
        period_from=period.start,
        period_to=period.end,
        time_zone=TIME_ZONE,
        group_by=group_by,
        rows=rows,
        totals=_totals(rows),
    )
    note.result = {"rows": len(rows), "captured_tyiyn": report.totals.captured_tyiyn}
    if wants_csv(request):
        name = f"revenue-{group_by.value}-{period.start.date()}-{period.end.date()}.csv"
        return Response(
            as_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return report
