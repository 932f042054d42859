"""Who may use /api/v1/ops/, and the audit row every request leaves, refused ones included."""

from __future__ import annotations

import httpx
import pytest
from fastapi.openapi.utils import get_openapi

from api.dev_tokens import issue_dev_token
from api.ops_audit import body_summary, masked
from runtime.settings import ConfigError, load_settings
from tests.api.conftest import JWT_SECRET, AppFactory, Tokens, bearer
from tests.ops.conftest import audit_rows, caller_headers, operator_token

pytestmark = pytest.mark.integration

ME = "/api/v1/ops/me"
EXPECTED = {"none": 401, "client": 403, "operator": 200, "admin": 200}
# The money actions: an operator gets 403, only an admin passes (paths as the walk below
# writes them, parameters without braces).
ADMIN_ONLY = {
    ("POST", "/api/v1/ops/review/kind/item_id"),
    ("POST", "/api/v1/ops/clients/client_id/adjustments"),
}


async def test_the_matrix_on_me_and_one_audit_row_per_request(
    ops_http: httpx.AsyncClient, tokens: Tokens, db_sessions
) -> None:
    for caller, status in EXPECTED.items():
        response = await ops_http.get(ME, headers=caller_headers(tokens, caller))
        assert response.status_code == status, (caller, response.text)
        if status == 403:
            assert response.json()["error"]["code"] == "forbidden"
        if status == 401:
            assert response.json()["error"]["code"] == "missing_token"
        if status == 200:
            assert response.json()["role"] == caller
    rows = await audit_rows(db_sessions)
    assert [(row.role, row.status_code, row.outcome) for row in rows] == [
        (None, 401, "refused"),
        ("client", 403, "refused"),
        ("operator", 200, "ok"),
        ("admin", 200, "ok"),
    ]
    assert rows[0].subject is None and rows[0].error_code == "missing_token"
    assert rows[1].subject is not None and rows[1].error_code == "forbidden"
    assert all(row.path == ME and row.method == "GET" for row in rows)
    assert rows[2].action == "operator.me" and rows[2].subject


async def test_every_ops_route_refuses_anonymous_and_client_callers_and_admits_operators(
    make_app: AppFactory, tokens: Tokens, db_sessions
) -> None:
    """Walks the mounted routes, so a route added later is covered without a new test."""
    app = make_app()
    paths = get_openapi(title=app.title, version=app.version, routes=app.routes)["paths"]
    routes = [
        (method.upper(), path.replace("{", "").replace("}", ""))  # any value for a parameter
        for path, operations in paths.items()
        if path.startswith("/api/v1/ops")
        for method in operations
    ]
    assert ("GET", ME) in routes
    assert set(routes) >= ADMIN_ONLY
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://testserver",
    ) as http:
        calls = 0
        for method, path in routes:
            for caller, status in (("none", 401), ("client", 403)):
                response = await http.request(
                    method, path, headers=caller_headers(tokens, caller), json={}
                )
                calls += 1
                assert response.status_code == status, (method, path, caller, response.text)
            # Operators and admins get past the door (the empty body or the made-up id then
            # fails validation or names nothing: 422/404, never 401/403 nor 5xx).
            for caller in ("operator", "admin"):
                response = await http.request(
                    method, path, headers=caller_headers(tokens, caller), json={}
                )
                calls += 1
                if caller == "operator" and (method, path) in ADMIN_ONLY:
                    assert response.status_code == 403, (method, path, caller)
                    assert response.json()["error"]["code"] == "forbidden"
                    continue
                assert response.status_code in {200, 404, 422}, (method, path, caller)
    rows = await audit_rows(db_sessions)
    assert len(rows) == calls
    assert {row.outcome for row in rows if row.role in {None, "client"}} == {"refused"}
    assert all(row.outcome != "refused" for row in rows if row.role == "admin")


async def test_a_bad_token_and_an_unknown_ops_path_are_audited(
    ops_http: httpx.AsyncClient, tokens: Tokens, db_sessions
) -> None:
    bad = await ops_http.get(ME, headers=bearer("not-a-jwt"))
    assert bad.status_code == 401
    missing = await ops_http.get("/api/v1/ops/nothing-here", headers=bearer(operator_token(tokens)))
    assert missing.status_code == 404
    rows = await audit_rows(db_sessions)
    assert next((row.subject, row.status_code, row.error_code) for row in rows) == (
        None,
        401,
        "invalid_token",
    )
    assert rows[1].action == "unknown" and rows[1].outcome == "rejected"
    assert rows[1].role == "operator"


async def test_the_role_claim_path_is_configurable(make_app: AppFactory, tokens: Tokens) -> None:
    app = make_app(operator_role_claim="user_role")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        moved = await http.get(ME, headers=bearer(tokens.hs256(user_role="admin")))
        assert moved.status_code == 200 and moved.json()["role"] == "admin"
        # The default place no longer counts.
        old = await http.get(ME, headers=bearer(operator_token(tokens, "admin")))
        assert old.status_code == 403


async def test_an_unknown_role_value_is_a_client(
    ops_http: httpx.AsyncClient, tokens: Tokens
) -> None:
    for role in ("superuser", "Operator", ""):
        response = await ops_http.get(ME, headers=bearer(operator_token(tokens, role)))
        assert response.status_code == 403, role


async def test_ops_have_their_own_rate_limit_bucket(make_app: AppFactory, tokens: Tokens) -> None:
    app = make_app(rate_limit_ops="2/minute", rate_limit_default="100/minute")
    token = operator_token(tokens)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        assert [(await http.get(ME, headers=bearer(token))).status_code for _ in range(3)] == [
            200,
            200,
            429,
        ]
        # The same person's other budget is untouched.
        other = await http.get("/api/v1/stations", headers=bearer(token))
        assert other.status_code == 200


async def test_a_dev_operator_token_opens_the_ops_api(make_app: AppFactory, jwks_server) -> None:
    app = make_app()
    token = issue_dev_token(
        JWT_SECRET,
        "0d3e0000-0000-4000-8000-0000000000a1",
        jwks_server.url,
        operator_role="operator",
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        response = await http.get(ME, headers=bearer(token))
    assert response.status_code == 200 and response.json()["role"] == "operator"


def test_a_malformed_claim_path_fails_at_start_naming_the_setting() -> None:
    for bad in ("", "app_metadata..role", "app metadata.role", "a.b.c.d.e.f.g.h.i"):
        with pytest.raises(ConfigError, match="OPERATOR_ROLE_CLAIM"):
            load_settings(operator_role_claim=bad)
    assert load_settings(operator_role_claim="app_metadata.role").operator_role_claim


def test_secrets_never_reach_the_audit() -> None:
    body = {
        "key": "AuthorizationKey",
        "value": "0123456789abcdef",
        "reason": "rotate",
        "nested": [{"password": "p"}],
    }
    assert masked(body) == {
        "key": "AuthorizationKey",
        "value": "***",
        "reason": "rotate",
        "nested": [{"password": "***"}],
    }
    assert masked({"key": "HeartbeatInterval", "value": "60"})["value"] == "60"
    assert body_summary(b"not json") == {"unparsed_bytes": 8}


async def test_a_nul_character_anywhere_in_the_request_still_leaves_its_audit_row(
    ops_http: httpx.AsyncClient, tokens: Tokens, db_sessions
) -> None:
    """PostgreSQL stores no NUL in text or jsonb; the fuzzer sends them in paths and bodies."""
    response = await ops_http.post(
        "/api/v1/ops/stations/ST%00X/commands/clear_cache?x=%00",
        content=b'{"reason": "a\\u0000b", "\\u0000": "\\u0000"}',
        headers={**bearer(operator_token(tokens)), "Content-Type": "application/json"},
    )
    assert response.status_code < 500, response.text
    rows = await audit_rows(db_sessions)
    assert len(rows) == 1
    assert rows[0].reason == "a\ufffdb"
    assert "\x00" not in rows[0].path
