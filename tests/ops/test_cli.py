"""`evpower ops ...` against the real stack: the command line calls the operations API over
HTTP with the token from EVPOWER_OPS_TOKEN, prints tables and JSON, and turns refusals into one
clear line on stderr with a non-zero exit."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from activities.ledger import Ledger
from api.dev_tokens import issue_dev_token
from db.models import RfidCard
from runtime.cli import main
from tests.ops.conftest import audit_rows
from tests.ops.review_items import session_in_review
from tests.ops.stack import KEY_PEPPER, SECRET, add_station, ops_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def answer(out: str) -> Any:
    """The JSON the CLI printed (the worker in this process logs to stdout too)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line in {"{", "["})
    return json.loads("\n".join(lines[start:]))


def token(role: str | None) -> str:
    return issue_dev_token(SECRET, str(uuid.uuid4()), operator_role=role)


async def test_the_ops_command_line_on_the_real_stack(
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_env: WorkflowEnvironment,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    station_id = f"CLI-{uuid.uuid4().hex[:6]}"
    driver = str(uuid.uuid4())
    await add_station(db_sessions, station_id)
    session_id = await session_in_review(db_sessions, station_id, driver)
    async with db_sessions() as session, session.begin():
        session.add(RfidCard(client_id=driver, id_tag="04C11C11", label="cli"))

    async with ops_stack(db_sessions, temporal_env.client) as stack:
        monkeypatch.setenv("EVPOWER_OPS_URL", stack.base_url)
        monkeypatch.setenv("EVPOWER_OPS_TOKEN", token("admin"))

        async def ops(*args: str) -> tuple[int, str, str]:
            capsys.readouterr()
            # The CLI is synchronous; the stack serves on this loop, so it runs in a thread.
            code = await asyncio.to_thread(main, ["ops", *args])
            out, err = capsys.readouterr()
            return code, out, err

        code, out, err = await ops("me")
        assert code == 0, err
        assert answer(out)["role"] == "admin"

        code, out, _ = await ops("stations")
        assert code == 0
        assert out.splitlines()[0].split()[:2] == ["id", "online"]
        assert any(line.startswith(station_id) for line in out.splitlines())

        code, out, _ = await ops("review", "list")
        assert code == 0 and session_id in out and "implausible_step" in out

        code, out, _ = await ops(
            "review", "resolve", "session", session_id, "refund", "--amount-tyiyn", "1000",
            "--reason", "meter jump, refund a third",
        )  # fmt: skip
        assert code == 0, out
        resolved = answer(out)
        assert (resolved["amount_tyiyn"], resolved["state"]) == (1_000, "reviewed")

        code, out, err = await ops("adjust", driver, "-500", "--reason", "correction")
        assert code == 0, err
        assert answer(out)["amount_tyiyn"] == -500 and "Idempotency-Key" in err

        code, out, _ = await ops("card", "block", "04c11c11", "--reason", "lost")
        assert code == 0 and answer(out)["status"] == "blocked"

        code, out, _ = await ops("--json", "sessions", "--state", "reviewed")
        assert code == 0 and [s["session_id"] for s in answer(out)["items"]] == [session_id]

        code, out, _ = await ops(
            "report",
            "revenue",
            "--from",
            "2020-01-01",
            "--to",
            "2020-02-01",
            "--group-by",
            "station",
        )
        assert code == 0 and "total" in out

        # Refusals: one line naming the API's code, exit 1.
        code, _, err = await ops("stop", "nosuchsession1", "--reason", "testing")
        assert code == 1 and "404 session_not_found" in err
        code, _, err = await ops(
            "command", station_id, "reset", "--field", "type=Soft", "--reason", "stuck"
        )
        assert code == 1 and "409 station_offline" in err
        code, _, err = await ops("adjust", driver, "-1000000", "--reason", "too much")
        assert code == 1 and "409 balance_would_go_negative" in err

        monkeypatch.setenv("EVPOWER_OPS_TOKEN", token("operator"))
        code, _, err = await ops(
            "review", "resolve", "session", session_id, "close", "--reason", "operator tries"
        )
        assert code == 1 and "403 forbidden" in err
        monkeypatch.setenv("EVPOWER_OPS_TOKEN", token(None))
        code, _, err = await ops("stations")
        assert code == 1 and "403 forbidden" in err
        monkeypatch.delenv("EVPOWER_OPS_TOKEN")
        code, _, err = await ops("stations")
        assert code == 2 and "EVPOWER_OPS_TOKEN is not set" in err
        monkeypatch.setenv("EVPOWER_OPS_TOKEN", token("admin"))
        monkeypatch.setenv("EVPOWER_OPS_URL", "http://127.0.0.1:9")
        code, _, err = await ops("stations")
        assert code == 1 and "cannot reach http://127.0.0.1:9" in err

    balance = await Ledger(db_sessions).balance(driver)
    # fund 50 000 - reserve 10 000 + release 7 000 + refund 1 000 - adjustment 500
    assert balance.available_tyiyn == 50_000 - 3_000 + 1_000 - 500
    actions = [row.action for row in await audit_rows(db_sessions) if row.role == "admin"]
    for expected in ("operator.me", "review.refund", "clients.adjust", "cards.block"):
        assert expected in actions


async def test_fleet_changes_from_the_command_line(
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_env: WorkflowEnvironment,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Locations and stations added and changed through `evpower ops location|station`, each a
    StationChange workflow behind the API; a key is shown once, a retry with the same
    Idempotency-Key applies once."""
    station_id = f"CLIS-{uuid.uuid4().hex[:6]}"
    location_id = f"loc-{uuid.uuid4().hex[:6]}"
    async with ops_stack(db_sessions, temporal_env.client, key_pepper=KEY_PEPPER) as stack:
        monkeypatch.setenv("EVPOWER_OPS_URL", stack.base_url)
        monkeypatch.setenv("EVPOWER_OPS_TOKEN", token("operator"))

        async def ops(*args: str) -> tuple[int, str, str]:
            capsys.readouterr()
            code = await asyncio.to_thread(main, ["ops", *args])
            out, err = capsys.readouterr()
            return code, out, err

        code, out, err = await ops(
            "location", "add", "--field", f"id={location_id}", "--field", "name=Bishkek Park",
            "--field", "city=Bishkek", "--reason", "new site",
        )  # fmt: skip
        assert code == 0, err
        assert answer(out)["id"] == location_id

        code, out, err = await ops(
            "station", "add", "--field", f"id={station_id}", "--field", "connectors=2",
            "--field", "price_tyiyn_per_kwh=1500", "--field", f"location_id={location_id}",
            "--reason", "new charger",
        )  # fmt: skip
        assert code == 0, err
        created = answer(out)
        assert created["id"] == station_id and len(created["authorization_key"]) >= 16

        code, out, err = await ops(
            "station", "price", station_id, "2", "--field", "price_tyiyn_per_kwh=1800",
            "--reason", "fast connector",
        )  # fmt: skip
        assert code == 0, err
        prices = {c["connector_id"]: c["price_tyiyn_per_kwh"] for c in answer(out)["connectors"]}
        assert prices[2] == 1_800

        key = uuid.uuid4().hex
        for _ in range(2):  # a retried request with its key applies once
            code, out, err = await ops(
                "station", "update", station_id, "--field", "enabled=false",
                "--reason", "site closed", "--idempotency-key", key,
            )  # fmt: skip
            assert code == 0, err
            assert answer(out)["enabled"] is False

        code, out, err = await ops("station", "rotate-key", station_id, "--reason", "leaked")
        assert code == 0, err
        assert answer(out)["authorization_key"] != created["authorization_key"]

        code, _, err = await ops(
            "station", "update", "NOSUCH-STATION", "--field", "enabled=false", "--reason", "typo"
        )
        assert code == 1 and "404" in err

    actions = [row.action for row in await audit_rows(db_sessions)]
    for expected in ("location.create", "station.create", "station.update"):
        assert expected in actions
