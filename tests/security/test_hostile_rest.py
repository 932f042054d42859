"""Hostile input through the real stack (app, PostgreSQL, Temporal dev server, a worker): each
is a 4xx with the JSON error body at once, and nothing is left running or stored."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from api.rate_limit import RateLimiter
from api.security import MAX_JSON_DEPTH
from db.models import PaymentAudit
from domain.identifiers import session_id_for_key
from payments.provider import PayStatus
from payments.webhook import signed_notice_fields
from tests.charging.api_world import ApiWorld, api_world
from tests.payments.live import live_system

pytestmark = pytest.mark.integration

# A safety net only: the bug answered after 20 s; a validation error answers at once.
ANSWER_WITHIN_S = 10.0


@pytest.fixture
async def world(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> AsyncIterator[ApiWorld]:
    async with api_world(db_sessions, temporal_env.client) as built:
        yield built


async def answer(request: Any) -> httpx.Response:
    async with asyncio.timeout(ANSWER_WITHIN_S):
        response: httpx.Response = await request
    return response


def assert_client_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) >= {"code", "message"}


async def assert_no_workflow(world: ApiWorld, session_id: str) -> None:
    with pytest.raises(RPCError) as raised:
        await world.handle(session_id).describe()
    assert raised.value.status is RPCStatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "station_id", ["EVP\x00", "EVP-1\n", "x" * 5_000, "EVP\u202e1", "EVP\ud800"], ids=repr
)
async def test_start_with_an_unstorable_station_id_is_422_and_starts_no_workflow(
    world: ApiWorld, station_id: str
) -> None:
    client = await world.new_client(50_000)
    key = str(uuid.uuid4())
    body = json.dumps(
        {"station_id": station_id, "connector_id": 1, "amount_tyiyn": 5_000}, ensure_ascii=True
    )
    headers = {**world.client_headers(client, key), "Content-Type": "application/json"}
    response = await answer(
        world.http.post("/api/v1/charging/start", content=body, headers=headers)
    )
    assert_client_error(response, 422)
    await assert_no_workflow(world, session_id_for_key(client, key))
    assert await world.held(client) == (50_000, 0)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/stations/EVP%00/status",
        "/api/v1/stations/EVP%0A/status",
        "/api/v1/stations?location_id=%00",
        "/api/v1/payment/status?topup_id=%00",
        "/api/v1/payment/status?topup_id=" + "a" * 5_000,
        "/api/v1/balance/history?before_id=9223372036854775808",
        "/api/v1/balance/history?before_id=-1",
        "/api/v1/charging/%00",
        "/api/v1/charging?cursor=%00",
        "/api/v1/charging?cursor="
        + base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|ab\x00cd").decode().rstrip("="),
        "/api/v1/charging?cursor="
        + base64.urlsafe_b64encode(("2026-01-01T00:00:00+00:00|" + "a" * 100).encode())
        .decode()
        .rstrip("="),
    ],
)
async def test_reads_with_hostile_identifiers_are_422(world: ApiWorld, path: str) -> None:
    client = await world.new_client(0)
    response = await answer(world.http.get(path, headers=world.client_headers(client)))
    assert_client_error(response, 422)


async def test_stop_with_a_nul_session_id_is_422(world: ApiWorld) -> None:
    client = await world.new_client(0)
    response = await answer(
        world.http.post(
            "/api/v1/charging/stop",
            json={"session_id": "abc\x00"},
            headers=world.client_headers(client, str(uuid.uuid4())),
        )
    )
    assert_client_error(response, 422)


async def audit_rows(world: ApiWorld) -> int:
    async with world.db_sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(PaymentAudit)) or 0)


@pytest.mark.parametrize("field", ["order_id", "trans_id"])
async def test_forged_webhook_with_a_nul_field_is_401_and_audited(
    world: ApiWorld, field: str
) -> None:
    fields = {"trans_id": "1", "order_id": "2", "status_pay": "1", "amount": "100", "hash": "x"}
    fields[field] = "evil\x00" + "z" * 300
    response = await answer(world.http.post("/api/v1/payment/webhook", json=fields))
    assert_client_error(response, 401)
    async with world.db_sessions() as session:
        row = (await session.scalars(select(PaymentAudit))).one()
    assert row.event == "webhook_rejected"
    assert "\x00" not in json.dumps(row.details) and "\x00" not in (row.trans_id or "")


async def test_forged_webhooks_from_one_sender_are_audited_in_bounded_volume(
    world: ApiWorld,
) -> None:
    fields = {"trans_id": "1", "order_id": "2", "status_pay": "1", "amount": "100", "hash": "x"}
    for _ in range(60):
        response = await world.http.post("/api/v1/payment/webhook", json=fields)
        assert response.status_code in {401, 429}
    assert 1 <= await audit_rows(world) <= 20


def signed(world: ApiWorld, **changes: Any) -> dict[str, str]:
    password = world_config(world).provider.effective_password
    values: dict[str, Any] = {
        "trans_id": "9001",
        "invoice_id": "inv-1",
        "order_id": "order-1",
        "status": PayStatus.PAID,
        "amount_tyiyn": 10_000,
        "currency": "KGS",
        "site_id": "",
        "mktime": "1700000000",
        "test": True,
        "password": password,
    }
    values.update(changes)
    return signed_notice_fields(**values)


def world_config(world: ApiWorld) -> Any:
    app = world.http._transport.app  # type: ignore[attr-defined]
    return app.state.context.config


@pytest.mark.parametrize(
    "changes",
    [
        {"trans_id": "7" * 5_000},
        {"order_id": "o" * 65},
        {"trans_id": "12\x003"},
        {"invoice_id": "inv\n1"},
        {"currency": "K\x00S"},
    ],
    ids=["long trans_id", "long order_id", "nul trans_id", "newline invoice_id", "nul currency"],
)
async def test_a_signed_notice_with_an_unstorable_field_is_kept_for_review_not_503(
    world: ApiWorld, changes: dict[str, Any]
) -> None:
    """Signed, so never dropped (docs/payments.md): kept as `unread` with its raw body made
    storable, answered 200 so the provider stops retrying; never a 5xx retried for ever."""
    response = await answer(
        world.http.post("/api/v1/payment/webhook", json=signed(world, **changes))
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "routed": "review"}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("path", "authenticated"),
    [
        ("/api/v1/payment/webhook", False),
        ("/api/v1/charging/start", True),
        ("/api/v1/balance/topup-qr", True),
    ],
)
async def test_json_nested_30000_deep_is_400_before_anyone_parses_or_hashes_it(
    world: ApiWorld, path: str, authenticated: bool
) -> None:
    client = await world.new_client(0)
    headers = world.client_headers(client, str(uuid.uuid4())) if authenticated else {}
    body = '{"order_id": ' + nested(30_000) + "}"
    response = await answer(
        world.http.post(path, content=body, headers={**headers, "Content-Type": "application/json"})
    )
    assert_client_error(response, 400)
    shallow = '{"a": ' + nested(MAX_JSON_DEPTH - 1) + "}"
    ok = await world.http.post(
        path, content=shallow, headers={**headers, "Content-Type": "application/json"}
    )
    assert ok.status_code != 400 or ok.json()["error"]["code"] != "bad_request", ok.text


async def test_an_oversized_chunked_body_is_413(world: ApiWorld) -> None:
    client = await world.new_client(0)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"amount_tyiyn": 1, "pad": "'
        for _ in range(200):
            yield b"x" * 1024
        yield b'"}'

    response = await answer(
        world.http.post(
            "/api/v1/balance/topup-qr",
            content=chunks(),
            headers={
                **world.client_headers(client, str(uuid.uuid4())),
                "Content-Type": "application/json",
            },
        )
    )
    assert_client_error(response, 413)


async def test_a_500_raised_in_middleware_still_carries_the_security_headers(
    world: ApiWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: RateLimiter, *args: Any) -> int | None:
        raise RuntimeError("rate limit storage broke")

    monkeypatch.setattr(RateLimiter, "hit", broken)
    response = await world.http.get("/api/v1/stations")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in response.headers


async def test_an_oversized_chunked_body_over_a_real_socket_is_413(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    # uvicorn hands a chunked body over in pieces; the limit must still answer 413, not the
    # 400 "error parsing the body" FastAPI gives when a reader fails mid-body.
    async with live_system(temporal_env.client, db_sessions) as live:

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"amount_tyiyn": 1, "pad": "'
            for _ in range(200):
                yield b"x" * 1024
            yield b'"}'

        response = await answer(
            live.http.post(
                "/api/v1/balance/topup-qr",
                content=chunks(),
                # No Idempotency-Key: nothing but the app itself reads this body.
                headers={**live.auth(str(uuid.uuid4())), "Content-Type": "application/json"},
            )
        )
        assert "content-length" not in response.request.headers  # it really was chunked
        assert_client_error(response, 413)
