"""Rate limits by route class and caller: 429 with Retry-After in the standard error body."""

from __future__ import annotations

import httpx
import pytest

from api.rate_limit import route_class
from tests.api.conftest import Tokens, bearer

pytestmark = pytest.mark.integration


def test_route_classes_follow_path_prefixes() -> None:
    assert route_class("/api/v1/charging/start").name == "charging"
    assert route_class("/api/v1/charging").name == "charging"
    assert route_class("/api/v1/balance/current").name == "balance"
    assert route_class("/api/v1/payment/webhook").name == "payment_webhook"
    assert route_class("/api/v1/payment/status").name == "default"
    assert route_class("/api/v1/chargingfoo").name == "default"
    assert route_class("/api/v1/stations").name == "default"


async def _statuses(http: httpx.AsyncClient, n: int, path: str, **kwargs) -> list[int]:
    return [(await http.get(path, **kwargs)).status_code for _ in range(n)]


async def test_charging_allows_ten_a_minute_per_client(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # The path need not exist: the budget is per route class, counted before routing.
    path = "/api/v1/charging/rate-probe"
    alice, bob = bearer(tokens.hs256()), bearer(tokens.hs256())
    assert 429 not in await _statuses(client, 10, path, headers=alice)
    limited = await client.get(path, headers=alice)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # Another client has a budget of its own; so do alice's other route classes.
    assert (await client.get(path, headers=bob)).status_code != 429
    assert (await client.get("/api/v1/stations", headers=alice)).status_code == 200


async def test_anonymous_callers_share_a_budget_per_ip(client: httpx.AsyncClient) -> None:
    statuses = await _statuses(client, 61, "/api/v1/stations")
    assert statuses[:60] == [200] * 60
    assert statuses[60] == 429
    # A forged token does not buy a fresh budget.
    forged = bearer(Tokens("http://nowhere", "not-the-secret" * 4).hs256())
    assert (await client.get("/api/v1/stations", headers=forged)).status_code == 429
    assert (await client.get("/health")).status_code != 429


async def test_webhook_allows_thirty_a_minute(client: httpx.AsyncClient) -> None:
    path = "/api/v1/payment/webhook"
    statuses = [(await client.post(path, content=b"{}")).status_code for _ in range(31)]
    assert 429 not in statuses[:30]
    assert statuses[30] == 429
