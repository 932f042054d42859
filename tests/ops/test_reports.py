"""`GET /api/v1/ops/reports/revenue`: the ledger's session settlements per day, station and
location — posted through the real Ledger with the workflow's own op_keys, on PostgreSQL."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.ledger import Ledger, LedgerMovement
from db.models import (
    ChargingSessionRecord,
    Client,
    LedgerAccount,
    LedgerEntry,
    LedgerPosting,
    Location,
    Station,
)
from domain.contracts.charging import SessionView
from domain.ledger import AccountKind, AccountRef, Operation
from tests.api.conftest import Tokens
from tests.ops.conftest import audit_rows, caller_headers
from workflows.charging_commands import ledger_movement

pytestmark = pytest.mark.integration

REVENUE = "/api/v1/ops/reports/revenue"
NOVEMBER = {"from": "2026-11-01", "to": "2026-12-01"}


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (session, client, station, reserved, cost, energy, settled at UTC)
SESSIONS = [
    # 23:30 in Bishkek on Nov 2 is 17:30 UTC; 00:30 on Nov 3 is 18:30 UTC the same UTC day.
    ("s-a1", 0, "ST-A1", 50_000, 12_345, 8_230, _utc("2026-11-02T17:30:00")),
    ("s-a2", 1, "ST-A2", 30_000, 30_000, 20_000, _utc("2026-11-02T18:30:00")),
    ("s-b1", 0, "ST-B1", 20_000, 1, 1, _utc("2026-11-03T18:30:00")),
    ("s-x", 1, "ST-X", 10_000, 7_777, 5_185, _utc("2026-11-05T06:00:00")),  # no location
    ("s-fail", 1, "ST-A1", 40_000, 0, 0, _utc("2026-11-10T06:00:00")),  # released only
    # Outside November (Bishkek): Oct 31 23:59 local, and Dec 1 00:00 local.
    ("s-oct", 0, "ST-A1", 9_000, 5_000, 3_000, _utc("2026-10-31T17:59:00")),
    ("s-dec", 0, "ST-A1", 9_000, 4_000, 2_000, _utc("2026-11-30T18:00:00")),
]


async def _ledger_history(db_sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    clients = [str(uuid.uuid4()), str(uuid.uuid4())]
    async with db_sessions() as session, session.begin():
        session.add_all(
            [Location(id="LOC-A", name="Ala-Too"), Location(id="LOC-B", name="=Osh bazaar")]
        )
        session.add_all([Client(id=client) for client in clients])
        await session.flush()
        for station, location in (
            ("ST-A1", "LOC-A"),
            ("ST-A2", "LOC-A"),
            ("ST-B1", "LOC-B"),
            ("ST-X", None),
        ):
            session.add(
                Station(
                    id=station,
                    name=f"{station} name",
                    location_id=location,
                    price_tyiyn_per_kwh=1_500,
                )
            )
        await session.flush()
        for session_id, client, station, reserved, cost, energy, _ in SESSIONS:
            session.add(
                ChargingSessionRecord(
                    id=session_id,
                    client_id=clients[client],
                    station_id=station,
                    connector_id=1,
                    state="completed" if cost else "failed_to_start",
                    price_tyiyn_per_kwh=1_500,
                    reserved_tyiyn=reserved,
                    energy_wh=energy,
                    cost_tyiyn=cost,
                    refunded_tyiyn=reserved - cost,
                )
            )
    ledger = Ledger(db_sessions)
    for index, client_id in enumerate(clients):
        await ledger.apply(
            Operation.CREDIT_TOPUP,
            LedgerMovement(f"topup:t-{index}", client_id, 1_000_000, provider="SIMULATED"),
        )
    for session_id, client, station, reserved, cost, _, settled_at in SESSIONS:
        view = SessionView(session_id, clients[client], station, 1, "stopping", reserved)
        # The workflow's own movements and op_keys (workflows/charging_commands.py).
        await ledger.apply(Operation.RESERVE, ledger_movement("reserve", view, reserved))
        keys = []
        if cost:
            await ledger.apply(Operation.CAPTURE, ledger_movement("capture", view, cost))
            keys.append(f"capture:{session_id}")
        if reserved - cost:
            await ledger.apply(Operation.RELEASE, ledger_movement("release", view, reserved - cost))
            keys.append(f"release:{session_id}")
        # Settled on its day: the entries are moved back in time, their amounts untouched.
        async with db_sessions() as session, session.begin():
            await session.execute(
                update(LedgerEntry)
                .where(LedgerEntry.op_key.in_(keys))
                .values(created_at=settled_at)
            )
    return clients


async def _ledger_sum(
    db_sessions: async_sessionmaker[AsyncSession], operation: Operation, start: str, end: str
) -> int:
    """What the ledger itself says: captures as postings to the revenue account, releases as
    entries, written in [start, end)."""
    query = (
        select(func.coalesce(func.sum(LedgerPosting.amount_tyiyn), 0))
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
    )
    if operation is Operation.CAPTURE:
        query = query.where(LedgerAccount.code == AccountRef(AccountKind.REVENUE).code)
    else:
        query = query.where(LedgerAccount.kind == AccountKind.AVAILABLE.value)
    query = query.where(
        LedgerEntry.operation == operation.value,
        LedgerEntry.created_at >= datetime.fromisoformat(start),
        LedgerEntry.created_at < datetime.fromisoformat(end),
    )
    async with db_sessions() as session:
        return int(await session.scalar(query) or 0)


@pytest.fixture
async def history(db_sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    return await _ledger_history(db_sessions)


async def test_totals_reconcile_with_the_ledger_and_groups_sum_to_them(
    ops_http: httpx.AsyncClient, tokens: Tokens, db_sessions, history: list[str]
) -> None:
    captured = await _ledger_sum(
        db_sessions, Operation.CAPTURE, "2026-11-01T00:00+06:00", "2026-12-01T00:00+06:00"
    )
    released = await _ledger_sum(
        db_sessions, Operation.RELEASE, "2026-11-01T00:00+06:00", "2026-12-01T00:00+06:00"
    )
    assert captured == 12_345 + 30_000 + 1 + 7_777
    assert released == (50_000 - 12_345) + (20_000 - 1) + (10_000 - 7_777) + 40_000
    headers = caller_headers(tokens, "operator")
    for group_by in ("day", "station", "location"):
        response = await ops_http.get(
            REVENUE, params={**NOVEMBER, "group_by": group_by}, headers=headers
        )
        assert response.status_code == 200, response.text
        report = response.json()
        totals = report["totals"]
        assert totals["captured_tyiyn"] == captured, group_by
        assert totals["released_tyiyn"] == released, group_by
        assert totals["captured_som"] == "501.23"
        assert totals["energy_wh"] == 8_230 + 20_000 + 1 + 5_185
        assert totals["sessions"] == 4  # billed ones; the failed start only released
        for field in ("captured_tyiyn", "released_tyiyn", "energy_wh", "sessions"):
            assert sum(row[field] for row in report["rows"]) == totals[field], (group_by, field)
        assert report["period_from"] == "2026-11-01T00:00:00+06:00"
        assert report["time_zone"] == "Asia/Bishkek"

    by_day = (await ops_http.get(REVENUE, params=NOVEMBER, headers=headers)).json()["rows"]
    assert [(row["key"], row["captured_tyiyn"], row["sessions"]) for row in by_day] == [
        ("2026-11-02", 12_345, 1),  # 23:30 local, though 17:30 UTC
        ("2026-11-03", 30_000, 1),  # 00:30 local on the 3rd, still the 2nd in UTC
        ("2026-11-04", 1, 1),
        ("2026-11-05", 7_777, 1),
        ("2026-11-10", 0, 0),
    ]
    assert by_day[-1]["released_tyiyn"] == 40_000 and by_day[-1]["released_som"] == "400.00"

    by_location = (
        await ops_http.get(REVENUE, params={**NOVEMBER, "group_by": "location"}, headers=headers)
    ).json()["rows"]
    assert [(row["key"], row["name"], row["captured_tyiyn"]) for row in by_location] == [
        ("LOC-A", "Ala-Too", 42_345),
        ("LOC-B", "=Osh bazaar", 1),
        (None, None, 7_777),
    ]


async def test_csv_has_the_same_rows_as_json(
    ops_http: httpx.AsyncClient, tokens: Tokens, history: list[str]
) -> None:
    headers = caller_headers(tokens, "admin")
    params = {**NOVEMBER, "group_by": "location"}
    report = (await ops_http.get(REVENUE, params=params, headers=headers)).json()
    response = await ops_http.get(REVENUE, params=params, headers={**headers, "Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    lines = list(csv.DictReader(io.StringIO(response.text)))
    assert len(lines) == len(report["rows"]) + 1
    for line, row in zip(lines, [*report["rows"], report["totals"]], strict=True):
        for field in ("captured_tyiyn", "released_tyiyn", "energy_wh", "sessions"):
            assert line[field] == str(row[field])  # integers, never a float
        assert line["captured_som"] == row["captured_som"]
    assert [line["kind"] for line in lines] == ["group"] * len(report["rows"]) + ["total"]
    # A name a spreadsheet would run as a formula is quoted as text.
    assert lines[1]["name"] == "'=Osh bazaar" and report["rows"][1]["name"] == "=Osh bazaar"
    assert lines[2]["key"] == "" and lines[-1]["key"] == ""


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"from": "2026-11-02", "to": "2026-11-01"}, "empty_period"),
        ({"from": "2026-11-01", "to": "2026-11-01"}, "empty_period"),
        ({"from": "2025-01-01", "to": "2026-11-01"}, "period_too_long"),
        ({"from": "yesterday", "to": "2026-11-01"}, "invalid_period"),
        ({"from": "0001-01-01T00:00:00+06:00", "to": "0001-01-02"}, "invalid_period"),
        ({"from": "9999-12-31T00:00:00-06:00", "to": "9999-12-31T23:00-06:00"}, "invalid_period"),
        ({"from": "2026-11-01"}, "validation_error"),
        ({**NOVEMBER, "group_by": "client"}, "validation_error"),
    ],
)
async def test_a_bad_period_is_a_clear_422(
    ops_http: httpx.AsyncClient, tokens: Tokens, params: dict[str, str], code: str
) -> None:
    response = await ops_http.get(
        REVENUE, params=params, headers=caller_headers(tokens, "operator")
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code


async def test_datetimes_bound_the_period_exactly(
    ops_http: httpx.AsyncClient, tokens: Tokens, history: list[str]
) -> None:
    headers = caller_headers(tokens, "operator")
    # [17:30 UTC, 18:30 UTC) holds s-a1's capture and release and nothing of s-a2.
    params = {"from": "2026-11-02T17:30:00Z", "to": "2026-11-03T00:30:00", "group_by": "station"}
    rows = (await ops_http.get(REVENUE, params=params, headers=headers)).json()["rows"]
    assert [(row["key"], row["captured_tyiyn"], row["released_tyiyn"]) for row in rows] == [
        ("ST-A1", 12_345, 50_000 - 12_345)
    ]


async def test_authorization_matrix_and_audit_row(
    ops_http: httpx.AsyncClient, tokens: Tokens, db_sessions, history: list[str]
) -> None:
    expected = {"none": 401, "client": 403, "operator": 200, "admin": 200}
    for caller, status in expected.items():
        response = await ops_http.get(
            REVENUE, params=NOVEMBER, headers=caller_headers(tokens, caller)
        )
        assert response.status_code == status, (caller, response.text)
    rows = await audit_rows(db_sessions)
    assert [(row.role, row.outcome) for row in rows] == [
        (None, "refused"),
        ("client", "refused"),
        ("operator", "ok"),
        ("admin", "ok"),
    ]
    ok = rows[2]
    assert (ok.action, ok.target) == ("reports.revenue", "revenue:day")
    assert ok.result == {"rows": 5, "captured_tyiyn": 50_123}
    assert ok.request["query"] == "from=2026-11-01&to=2026-12-01"
