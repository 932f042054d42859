"""Rate limits by route class and caller: 429 with Retry-After in the standard error body."""

from __future__ import annotations

import httpx
import pytest
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.rate_limit import route_class, webhook_order_id
from tests.api.conftest import Tokens, bearer

pytestmark = pytest.mark.integration


def test_route_classes_follow_method_and_path_prefixes() -> None:
    assert route_class("/api/v1/charging/start", "POST").name == "charging"
    assert route_class("/api/v1/balance/topup-qr", "POST").name == "balance"
    assert route_class("/api/v1/payment/h2h-create", "POST").name == "payment_card"
    assert route_class("/api/v1/payment/webhook", "POST").name == "payment_webhook"
    # Reads share the default budget: polling a live session or the balance is normal use.
    assert route_class("/api/v1/charging/abc", "GET").name == "default"
    assert route_class("/api/v1/balance/current", "GET").name == "default"
    assert route_class("/api/v1/payment/status").name == "default"
    assert route_class("/api/v1/chargingfoo", "POST").name == "default"
    assert route_class("/api/v1/stations").name == "default"


async def _statuses(http: httpx.AsyncClient, n: int, path: str, **kwargs) -> list[int]:
    return [(await http.get(path, **kwargs)).status_code for _ in range(n)]


async def _posts(http: httpx.AsyncClient, n: int, path: str, **kwargs) -> list[int]:
    return [(await http.post(path, **kwargs)).status_code for _ in range(n)]


async def test_charging_posts_allow_ten_a_minute_per_client(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # The path need not exist: the budget is per route class, counted before routing.
    path = "/api/v1/charging/rate-probe"
    alice, bob = bearer(tokens.hs256()), bearer(tokens.hs256())
    assert 429 not in await _posts(client, 10, path, headers=alice)
    limited = await client.post(path, headers=alice)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # Another client has a budget of its own; so do alice's reads.
    assert (await client.post(path, headers=bob)).status_code != 429
    assert (await client.get("/api/v1/stations", headers=alice)).status_code == 200
    assert 429 not in await _statuses(client, 30, "/api/v1/charging/abc", headers=alice)


async def test_anonymous_callers_share_a_budget_per_ip(client: httpx.AsyncClient) -> None:
    statuses = await _statuses(client, 61, "/api/v1/stations")
    assert statuses[:60] == [200] * 60
    assert statuses[60] == 429
    # A forged token does not buy a fresh budget.
    forged = bearer(Tokens("http://nowhere", "not-the-secret" * 4).hs256())
    assert (await client.get("/api/v1/stations", headers=forged)).status_code == 429
    assert (await client.get("/health")).status_code != 429


async def test_webhook_allows_thirty_a_minute_per_payment(client: httpx.AsyncClient) -> None:
    """Every notice arrives from the provider's address (or the proxy's): the budget is per
    payment, so one order's retry storm is cut off and the others still get through."""
    path = "/api/v1/payment/webhook"
    storm = [
        (await client.post(path, json={"order_id": "ord-1", "status": 1})).status_code
        for _ in range(31)
    ]
    assert 429 not in storm[:30]
    assert storm[30] == 429
    others = [
        (await client.post(path, data={"order_id": f"ord-{n}", "status": "1"})).status_code
        for n in range(2, 40)
    ]
    assert 429 not in others
    # A body that names no payment is counted per address.
    nameless = [(await client.post(path, content=b"{}")).status_code for _ in range(31)]
    assert nameless[30] == 429


def test_webhook_order_id_from_json_and_form_bodies() -> None:
    form = "application/x-www-form-urlencoded"
    assert webhook_order_id("application/json", b'{"order_id": "A-1"}') == "A-1"
    assert webhook_order_id(form, b"order_id=A-2&status=1") == "A-2"
    assert webhook_order_id("application/json", b"[1, 2]") is None
    assert webhook_order_id("application/json", b'{"order_id": true}') is None
    assert webhook_order_id(form, b"\xff\xfe") is None


async def test_callers_behind_a_trusted_proxy_get_budgets_of_their_own(make_app) -> None:
    # What runtime/server.py does with FORWARDED_ALLOW_IPS: uvicorn's proxy-header handling.
    app = ProxyHeadersMiddleware(make_app(), trusted_hosts="10.0.0.2")
    transport = httpx.ASGITransport(app=app, client=("10.0.0.2", 40000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as proxy:
        first = {"X-Forwarded-For": "203.0.113.7"}
        second = {"X-Forwarded-For": "198.51.100.9"}
        assert (await _statuses(proxy, 61, "/api/v1/stations", headers=first))[60] == 429
        assert (await proxy.get("/api/v1/stations", headers=second)).status_code == 200
