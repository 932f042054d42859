"""Idempotency-Key on POST: replay, conflicting reuse, in-flight duplicates, failures."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import select

from db.models import IdempotencyKey
from tests.api.conftest import Probe, Tokens, bearer

pytestmark = pytest.mark.integration

ORDERS = "/api/v1/_probe/orders"


def _headers(token: str, key: str | None) -> dict[str, str]:
    headers = bearer(token)
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


async def test_same_key_and_body_replays_the_first_response(
    client: httpx.AsyncClient, probe: Probe, tokens: Tokens
) -> None:
    token = tokens.hs256()
    key = str(uuid.uuid4())
    first = await client.post(
        ORDERS, json={"amount_tyiyn": 500, "a": 1}, headers=_headers(token, key)
    )
    # Same JSON with another key order is the same request.
    again = await client.post(
        ORDERS,
        content=b'{"a": 1, "amount_tyiyn": 500}',
        headers={**_headers(token, key), "Content-Type": "application/json"},
    )
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert probe.runs == 1
    assert probe.keys_seen == [key]


async def test_same_key_with_another_body_is_refused(
    client: httpx.AsyncClient, probe: Probe, tokens: Tokens
) -> None:
    token = tokens.hs256()
    key = str(uuid.uuid4())
    assert (
        await client.post(ORDERS, json={"n": 1}, headers=_headers(token, key))
    ).status_code == 201
    reused = await client.post(ORDERS, json={"n": 2}, headers=_headers(token, key))
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert probe.runs == 1


async def test_keys_belong_to_one_client(
    client: httpx.AsyncClient, probe: Probe, tokens: Tokens
) -> None:
    key = str(uuid.uuid4())
    one = await client.post(ORDERS, json={"n": 1}, headers=_headers(tokens.hs256(), key))
    other = await client.post(ORDERS, json={"n": 1}, headers=_headers(tokens.hs256(), key))
    assert one.status_code == other.status_code == 201
    assert one.json()["client_id"] != other.json()["client_id"]
    assert probe.runs == 2


async def test_without_a_key_every_post_runs(
    client: httpx.AsyncClient, probe: Probe, tokens: Tokens, db_sessions
) -> None:
    token = tokens.hs256()
    for _ in range(2):
        assert (await client.post(ORDERS, json={"n": 1}, headers=bearer(token))).status_code == 201
    assert probe.runs == 2
    assert probe.keys_seen == [None, None]
    async with db_sessions() as session:
        assert (await session.scalars(select(IdempotencyKey))).all() == []


async def test_duplicate_in_flight_gets_409(
    client: httpx.AsyncClient, probe: Probe, tokens: Tokens
) -> None:
    headers = _headers(tokens.hs256(), str(uuid.uuid4()))
    first = asyncio.create_task(client.post("/api/v1/_probe/slow", json={}, headers=headers))
    await probe.entered.wait()
    duplicate = await client.post("/api/v1/_probe/slow", json={}, headers=headers)
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "idempotency_in_progress"
    probe.release.set()
    assert (await first).status_code == 200
    replay = await client.post("/api/v1/_probe/slow", json={}, headers=headers)
    assert replay.json() == {"run": 1}
    assert probe.runs == 1


async def test_a_failed_request_can_be_retried_with_the_same_key(
    client: httpx.AsyncClient, probe: Probe, tokens: Tokens, db_sessions
) -> None:
    headers = _headers(tokens.hs256(), str(uuid.uuid4()))
    for _ in range(2):
        response = await client.post("/api/v1/_probe/fails", json={}, headers=headers)
        assert response.status_code == 500
    assert probe.runs == 2
    async with db_sessions() as session:
        assert (await session.scalars(select(IdempotencyKey))).all() == []


async def test_the_stored_response_expires_after_24_hours(
    client: httpx.AsyncClient, probe: Probe, tokens: Tokens, db_sessions
) -> None:
    token = tokens.hs256()
    key = str(uuid.uuid4())
    await client.post(ORDERS, json={"n": 1}, headers=_headers(token, key))
    async with db_sessions() as session, session.begin():
        row = (await session.scalars(select(IdempotencyKey))).one()
        assert row.status_code == 201
        assert 23 * 3600 < (row.expires_at - row.created_at).total_seconds() <= 24 * 3600
        row.expires_at = row.created_at  # as if a day had passed
    second = await client.post(ORDERS, json={"n": 2}, headers=_headers(token, key))
    assert second.status_code == 201
    assert second.json()["run"] == 2


async def test_bad_key_is_refused_before_anything_runs(
    client: httpx.AsyncClient, probe: Probe, tokens: Tokens
) -> None:
    response = await client.post(ORDERS, json={}, headers=_headers(tokens.hs256(), "a b"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert probe.runs == 0


async def test_unauthenticated_post_is_not_stored_and_gets_401(
    client: httpx.AsyncClient, probe: Probe, db_sessions
) -> None:
    response = await client.post(ORDERS, json={}, headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 401
    async with db_sessions() as session:
        assert (await session.scalars(select(IdempotencyKey))).all() == []
