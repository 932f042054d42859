"""Security headers, CORS allowlist, request size limit, and `/metrics`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.conftest import AppFactory, Tokens, bearer

pytestmark = pytest.mark.integration


async def test_every_response_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/api/v1/stations"),
        await client.get("/api/v1/nowhere"),
        await client.get("/api/v1/_probe/whoami"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in response.headers


async def test_hsts_only_behind_https(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/stations", headers={"X-Forwarded-Proto": "https"})
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_cors_allows_only_the_configured_origins(make_app: AppFactory) -> None:
    app = make_app(cors_origins=("https://app.evpower.kg",))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        preflight = await http.options(
            "/api/v1/charging/start",
            headers={
                "Origin": "https://app.evpower.kg",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, idempotency-key, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.evpower.kg"
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert "idempotency-key" in allowed and "authorization" in allowed

        foreign = await http.get("/api/v1/stations", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in foreign.headers
        refused = await http.options(
            "/api/v1/stations",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in refused.headers


async def test_body_over_the_limit_is_refused_with_413(
    make_app: AppFactory, probe, tokens: Tokens
) -> None:
    app = make_app(probe, max_request_bytes=2048)
    transport = httpx.ASGITransport(app=app)
    headers = {**bearer(tokens.hs256()), "Idempotency-Key": str(uuid.uuid4())}
    big = b'{"pad": "' + b"x" * 4096 + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 512):
            yield big[start : start + 512]

    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        declared = await http.post("/api/v1/_probe/orders", content=big, headers=headers)
        streamed = await http.post("/api/v1/_probe/orders", content=chunks(), headers=headers)
        small = await http.post("/api/v1/_probe/orders", json={"ok": True}, headers=headers)
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
        assert response.headers["x-content-type-options"] == "nosniff"
    assert probe.runs == 1
    assert small.status_code == 201


async def test_metrics_expose_http_latency_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/stations/EVP-404/status")
    await client.get("/api/v1/no/such/path")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'evpower_http_request_duration_seconds_count{method="GET",'
        'route="/api/v1/stations/{station_id}/status",status="404"}'
    ) in text
    assert 'route="unmatched"' in text
    assert "EVP-404" not in text


async def test_docs_page_loads_only_from_this_origin(make_app: AppFactory) -> None:
    """Swagger UI's assets are served here (no CDN), and the page's CSP names exactly this
    origin plus the hash of its one inline script."""
    app = make_app(enable_swagger=True)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        page = await http.get("/docs")
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["script-src"].startswith("'self' 'sha256-")
        assert directives["connect-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert "http" not in policy and "unsafe" not in policy
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
            assert f"/docs/assets/{asset}" in page.text
            loaded = await http.get(f"/docs/assets/{asset}")
            assert loaded.status_code == 200 and len(loaded.content) > 1000
        assert (await http.get("/docs/assets/secrets.txt")).status_code == 404
        assert (await http.get("/openapi.json")).status_code == 200
        # JSON keeps the strict policy.
        spec = await http.get("/openapi.json")
        assert spec.headers["content-security-policy"].startswith("default-src 'none';")


async def test_no_docs_without_swagger(make_app: AppFactory) -> None:
    transport = httpx.ASGITransport(app=make_app(enable_swagger=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert (await http.get("/docs")).status_code == 404
        assert (await http.get("/docs/assets/swagger-ui.css")).status_code == 404
