"""`/api/v1/cards` on the real app and database: link, list, block; one owner per idTag (409);
row-level security keeps each client to its own cards; Idempotency-Key replays a link."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from db.models import RfidCard
from tests.api.conftest import Tokens, bearer

pytestmark = pytest.mark.integration

CARDS = "/api/v1/cards"


async def test_a_card_is_linked_normalised_listed_and_blocked(
    client: httpx.AsyncClient, tokens: Tokens, db_sessions
) -> None:
    auth = bearer(tokens.hs256())
    linked = await client.post(
        CARDS, json={"id_tag": " 04 a1 b2 c3 ", "label": "blue"}, headers=auth
    )
    assert linked.status_code == 201, linked.text
    card = linked.json()
    assert card["id_tag"] == "04A1B2C3" and card["label"] == "blue" and card["status"] == "active"

    listed = await client.get(CARDS, headers=auth)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [card["id"]]

    blocked = await client.delete(f"{CARDS}/{card['id']}", headers=auth)
    assert blocked.status_code == 204
    again = await client.delete(f"{CARDS}/{card['id']}", headers=auth)
    assert again.status_code == 204  # blocking twice changes nothing
    listed = (await client.get(CARDS, headers=auth)).json()["items"]
    assert listed[0]["status"] == "blocked" and listed[0]["blocked_at"] is not None
    async with db_sessions() as session:
        row = await session.scalar(select(RfidCard).where(RfidCard.id == card["id"]))
    assert row is not None and row.blocked_at is not None  # the row is kept


async def test_one_owner_per_card(client: httpx.AsyncClient, tokens: Tokens) -> None:
    ours, theirs = bearer(tokens.hs256()), bearer(tokens.hs256())
    first = await client.post(CARDS, json={"id_tag": "04DEAD01"}, headers=ours)
    assert first.status_code == 201
    mine_again = await client.post(CARDS, json={"id_tag": "04dead01"}, headers=ours)
    assert mine_again.status_code == 409
    assert mine_again.json()["error"]["code"] == "card_exists"
    taken = await client.post(CARDS, json={"id_tag": "04 DE AD 01"}, headers=theirs)
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "card_taken"


async def test_a_client_cannot_see_or_block_anothers_card(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    ours, theirs = bearer(tokens.hs256()), bearer(tokens.hs256())
    card = (await client.post(CARDS, json={"id_tag": "04BEEF02"}, headers=ours)).json()
    assert (await client.get(CARDS, headers=theirs)).json()["items"] == []
    refused = await client.delete(f"{CARDS}/{card['id']}", headers=theirs)
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "card_not_found"
    listed = (await client.get(CARDS, headers=ours)).json()["items"]
    assert listed[0]["status"] == "active"


@pytest.mark.parametrize(
    "id_tag",
    ["", "   ", "0123456789ABCDEF01234", "04\x00A1", "карта"],
    ids=repr,
)
async def test_a_tag_that_is_no_ocpp_idtag_is_refused(
    client: httpx.AsyncClient, tokens: Tokens, id_tag: str
) -> None:
    answer = await client.post(CARDS, json={"id_tag": id_tag}, headers=bearer(tokens.hs256()))
    assert answer.status_code == 422
    assert set(answer.json()["error"]) >= {"code", "message"}


async def test_a_link_is_idempotent_with_a_key(client: httpx.AsyncClient, tokens: Tokens) -> None:
    auth = {**bearer(tokens.hs256()), "Idempotency-Key": "link-card-1"}
    first = await client.post(CARDS, json={"id_tag": "04CAFE03"}, headers=auth)
    again = await client.post(CARDS, json={"id_tag": "04CAFE03"}, headers=auth)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers.get("idempotent-replayed") == "true"


async def test_cards_need_a_bearer_token(client: httpx.AsyncClient) -> None:
    assert (await client.get(CARDS)).status_code == 401
    assert (await client.post(CARDS, json={"id_tag": "04AA"})).status_code == 401
    assert (await client.delete(f"{CARDS}/1")).status_code == 401
