"""The JWT matrix over HTTP: which Supabase tokens the API accepts, and the 401 code for each
one it refuses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from db.models import Client
from tests.api.conftest import (
    JWT_SECRET,
    AppFactory,
    JwksServer,
    Probe,
    SigningKey,
    Tokens,
    bearer,
    new_signing_key,
    publish,
)

pytestmark = pytest.mark.integration

WHOAMI = "/api/v1/_probe/whoami"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict[str, Any], claims: dict[str, Any], signing_input_key: bytes | None) -> str:
    """A token built by hand, as an attacker would: PyJWT refuses to make these."""
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(claims).encode())
    if signing_input_key is None:
        return f"{head}.{body}."
    signature = hmac.new(signing_input_key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def _public_pem(key: SigningKey) -> bytes:
    pem: bytes = key.public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem


async def _refused(client: httpx.AsyncClient, token: str | None, code: str) -> None:
    headers = bearer(token) if token is not None else {}
    response = await client.get(WHOAMI, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_valid_hs256_token_identifies_the_client(client, tokens: Tokens) -> None:
    client_id = str(uuid.uuid4())
    response = await client.get(WHOAMI, headers=bearer(tokens.hs256(sub=client_id)))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "client_id": client_id,
        "role": "authenticated",
        "email": "driver@example.kg",
    }


@pytest.mark.parametrize("key_fixture", ["rsa_key", "ec_key"])
async def test_valid_asymmetric_token_verified_through_jwks(
    client, tokens: Tokens, key_fixture: str, request: pytest.FixtureRequest
) -> None:
    key: SigningKey = request.getfixturevalue(key_fixture)
    client_id = str(uuid.uuid4())
    response = await client.get(WHOAMI, headers=bearer(tokens.signed(key, sub=client_id)))
    assert response.status_code == 200, response.text
    assert response.json()["client_id"] == client_id


async def test_first_authenticated_use_creates_the_client_row(
    client, tokens: Tokens, db_sessions
) -> None:
    client_id = str(uuid.uuid4())
    token = tokens.hs256(sub=client_id, email="first@example.kg")
    for _ in range(2):
        assert (await client.get(WHOAMI, headers=bearer(token))).status_code == 200
    async with db_sessions() as session:
        rows = (await session.scalars(select(Client).where(Client.id == client_id))).all()
    assert [(row.id, row.email) for row in rows] == [(client_id, "first@example.kg")]


async def test_refused_token_creates_no_client_row(client, tokens: Tokens, db_sessions) -> None:
    client_id = str(uuid.uuid4())
    await _refused(client, tokens.hs256(sub=client_id, role="anon"), "forbidden_role")
    async with db_sessions() as session:
        assert await session.get(Client, client_id) is None


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"exp": 1_000_000_000}, "token_expired"),
        ({"aud": "someone-else"}, "invalid_audience"),
        ({"iss": "https://evil.example/auth/v1"}, "invalid_issuer"),
        ({"role": "anon"}, "forbidden_role"),
        ({"role": "service_role"}, "forbidden_role"),
        ({"role": None}, "forbidden_role"),
        ({"sub": None}, "missing_claim"),
        ({"exp": None}, "missing_claim"),
        ({"aud": None}, "missing_claim"),
        ({"iss": None}, "missing_claim"),
        ({"sub": "not-a-user-id"}, "invalid_subject"),
    ],
    ids=str,
)
async def test_bad_claims_are_refused_with_a_clear_code(
    client, tokens: Tokens, rsa_key: SigningKey, overrides: dict[str, Any], code: str
) -> None:
    await _refused(client, tokens.hs256(**overrides), code)
    await _refused(client, tokens.signed(rsa_key, **overrides), code)


async def test_missing_and_malformed_tokens(client) -> None:
    await _refused(client, None, "missing_token")
    await _refused(client, "not.a.jwt", "invalid_token")
    response = await client.get(WHOAMI, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_token"


async def test_alg_none_is_refused(client, tokens: Tokens, rsa_key: SigningKey) -> None:
    claims = tokens.claims()
    await _refused(client, _forge({"alg": "none", "typ": "JWT"}, claims, None), "invalid_token")
    forged_with_kid = _forge({"alg": "none", "kid": rsa_key.kid}, claims, None)
    await _refused(client, forged_with_kid, "invalid_token")


async def test_hs256_signed_with_the_public_key_is_refused(
    client, tokens: Tokens, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    claims = tokens.claims()
    for key in (rsa_key, ec_key):
        pem = _public_pem(key)
        # Naming the public key's kid: that key only verifies its own algorithm.
        await _refused(
            client, _forge({"alg": "HS256", "kid": key.kid}, claims, pem), "invalid_token"
        )
        # Without a kid: the only HS256 key is the shared secret, and this is not it.
        await _refused(client, _forge({"alg": "HS256"}, claims, pem), "invalid_token")


async def test_algorithm_comes_from_the_key_not_the_header(
    client, tokens: Tokens, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    # A valid ES256 signature presented under the RSA key's kid is refused.
    await _refused(client, tokens.signed(ec_key, kid=rsa_key.kid), "invalid_token")
    # A key the issuer never published cannot sign, whatever kid it claims.
    stranger = new_signing_key(ec_key.kid)
    await _refused(client, tokens.signed(stranger), "invalid_token")
    await _refused(client, tokens.signed(stranger, kid="unknown-kid"), "invalid_token")
    # An HS256 token signed with some other secret.
    await _refused(client, Tokens(tokens.supabase_url, "other-secret" * 4).hs256(), "invalid_token")


async def test_rotated_key_is_fetched_once_and_made_up_kids_do_not_hammer_the_issuer(
    client, tokens: Tokens, jwks_server: JwksServer, rsa_key: SigningKey
) -> None:
    assert (await client.get(WHOAMI, headers=bearer(tokens.signed(rsa_key)))).status_code == 200
    fetches = jwks_server.requests
    rotated = new_signing_key("ec-2")
    publish(jwks_server, rotated)
    response = await client.get(WHOAMI, headers=bearer(tokens.signed(rotated)))
    assert response.status_code == 200, response.text
    assert jwks_server.requests == fetches + 1
    for n in range(5):
        await _refused(client, tokens.signed(rotated, kid=f"made-up-{n}"), "invalid_token")
    assert jwks_server.requests == fetches + 1


async def test_without_a_shared_secret_hs256_tokens_are_refused(
    make_app: AppFactory, probe: Probe, tokens: Tokens, ec_key: SigningKey
) -> None:
    app = make_app(probe, supabase_jwt_secret=None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        await _refused(http, tokens.hs256(), "invalid_token")
        assert (await http.get(WHOAMI, headers=bearer(tokens.signed(ec_key)))).status_code == 200


async def test_unreachable_jwks_is_a_503_not_a_login_failure(
    make_app: AppFactory, probe: Probe, tokens: Tokens, ec_key: SigningKey
) -> None:
    # Port 9 on localhost: nothing listens, the fetch fails at once.
    app = make_app(probe, supabase_jwt_secret=None, supabase_url="http://127.0.0.1:9")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get(
            WHOAMI, headers=bearer(Tokens("http://127.0.0.1:9").signed(ec_key))
        )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "auth_unavailable"


async def test_dev_token_is_accepted(client, jwks_server: JwksServer) -> None:
    from api.dev_tokens import issue_dev_token

    client_id = str(uuid.uuid4())
    token = issue_dev_token(JWT_SECRET, client_id, jwks_server.url)
    response = await client.get(WHOAMI, headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["client_id"] == client_id
