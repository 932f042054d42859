"""Fixtures for API platform tests: the real app factory on the real database and Temporal
dev server, a local stand-in for Supabase's JWKS endpoint, and token builders."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import APIRouter, FastAPI, Request

from api.app import create_app
from api.auth import CurrentClient
from api.deps import ApiConfig, ApiContext
from api.idempotency import IdempotencyKey
from api.jwks import JWKS_PATH

JWT_SECRET = "test-secret-for-hs256-tokens-0123456789abcdef"


@dataclass
class JwksServer:
    """Supabase's `/auth/v1/.well-known/jwks.json`, served on 127.0.0.1."""

    url: str
    keys: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        state = self.server.state
        if self.path != JWKS_PATH:
            self.send_error(404)
            return
        state.requests += 1
        body = json.dumps({"keys": state.keys}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    state: JwksServer


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private: Any
    public: Any


def _jwk(key: SigningKey) -> dict[str, Any]:
    algorithm = jwt.get_algorithm_by_name(key.algorithm)
    jwk: dict[str, Any] = json.loads(algorithm.to_jwk(key.public))
    jwk.update({"kid": key.kid, "use": "sig", "alg": key.algorithm})
    return jwk


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey("rsa-1", "RS256", private, private.public_key())


@pytest.fixture(scope="session")
def ec_key() -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    return SigningKey("ec-1", "ES256", private, private.public_key())


def new_signing_key(kid: str) -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    return SigningKey(kid, "ES256", private, private.public_key())


@pytest.fixture
def jwks_server(rsa_key: SigningKey, ec_key: SigningKey) -> Iterator[JwksServer]:
    server = _Server(("127.0.0.1", 0), _Handler)
    state = JwksServer(url=f"http://127.0.0.1:{server.server_address[1]}")
    state.keys = [_jwk(rsa_key), _jwk(ec_key)]
    server.state = state
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def publish(server: JwksServer, key: SigningKey) -> None:
    server.keys.append(_jwk(key))


@dataclass
class Tokens:
    """Builds Supabase-shaped access tokens for one issuer."""

    supabase_url: str
    secret: str = JWT_SECRET

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = datetime.now(UTC)
        claims: dict[str, Any] = {
            "sub": str(uuid.uuid4()),
            "aud": "authenticated",
            "role": "authenticated",
            "iss": f"{self.supabase_url}/auth/v1",
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(hours=1)).timestamp()),
            "email": "driver@example.kg",
        }
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def hs256(self, **overrides: Any) -> str:
        return jwt.encode(self.claims(**overrides), self.secret, algorithm="HS256")

    def signed(self, key: SigningKey, *, kid: str | None = None, **overrides: Any) -> str:
        headers = {"kid": kid if kid is not None else key.kid}
        return jwt.encode(self.claims(**overrides), key.private, key.algorithm, headers=headers)


@pytest.fixture
def tokens(jwks_server: JwksServer) -> Tokens:
    return Tokens(jwks_server.url)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Probe:
    """Test-only endpoints mounted on the real app: who am I, and a POST that counts runs."""

    runs: int = 0
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    keys_seen: list[str | None] = field(default_factory=list)

    def router(self) -> APIRouter:
        router = APIRouter(prefix="/api/v1/_probe")

        @router.get("/whoami")
        async def whoami(client: CurrentClient) -> dict[str, Any]:
            return {"client_id": client.client_id, "role": client.role, "email": client.email}

        @router.post("/orders", status_code=201)
        async def create_order(
            request: Request, client: CurrentClient, key: IdempotencyKey
        ) -> dict[str, Any]:
            self.runs += 1
            self.keys_seen.append(key)
            return {"run": self.runs, "client_id": client.client_id, "body": await request.json()}

        @router.post("/slow")
        async def slow(client: CurrentClient) -> dict[str, Any]:
            self.runs += 1
            self.entered.set()
            await self.release.wait()
            return {"run": self.runs}

        @router.post("/fails")
        async def fails(client: CurrentClient) -> dict[str, Any]:
            self.runs += 1
            raise RuntimeError("boom")

        return router


AppFactory = Callable[..., FastAPI]


@pytest.fixture
def make_app(db_sessions, temporal_env, jwks_server: JwksServer) -> AppFactory:
    """The real app factory; keyword arguments are settings (by their names) or ApiConfig's
    own fields."""

    def build(probe: Probe | None = None, **overrides: Any) -> FastAPI:
        config = ApiConfig.of(
            **{"supabase_url": jwks_server.url, "supabase_jwt_secret": JWT_SECRET, **overrides}
        )
        context = ApiContext(db_sessions=db_sessions, temporal=temporal_env.client, config=config)
        app = create_app(context)
        if probe is not None:
            app.include_router(probe.router())
        return app

    return build


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
async def client(make_app: AppFactory, probe: Probe) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(probe)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://testserver",
    ) as http:
        yield http


@pytest.fixture
async def live_server(make_app: AppFactory) -> AsyncIterator[str]:
    """The app served by uvicorn on 127.0.0.1 (websockets need a real server)."""
    app = make_app()
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    await task
