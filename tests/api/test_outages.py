"""Outages are 503 with Retry-After, never 500: a PostgreSQL of its own, really stopped and
started again under a running API (uvicorn on 127.0.0.1), and Temporal trouble mapped the
same way wherever it is raised."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.deps import ApiConfig, ApiContext
from db.engine import create_engine, session_factory
from db.migrate import upgrade
from runtime.embedded import EmbeddedPostgres
from tests.api.conftest import JWT_SECRET, JwksServer, Tokens, bearer

pytestmark = pytest.mark.integration


@dataclass
class Served:
    url: str
    postgres: EmbeddedPostgres


async def serve(app: FastAPI) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="critical")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, f"http://127.0.0.1:{port}"


@pytest.fixture
async def own_database(
    tmp_path: Path, temporal_env: WorkflowEnvironment, jwks_server: JwksServer
) -> AsyncIterator[Served]:
    """The API on a PostgreSQL no other test uses, so stopping it harms nobody."""
    postgres = EmbeddedPostgres(tmp_path)
    url = postgres.start()
    await upgrade(url)
    engine = create_engine(url, pool_size=2)
    config = ApiConfig.of(supabase_url=jwks_server.url, supabase_jwt_secret=JWT_SECRET)
    app = create_app(ApiContext(session_factory(engine), temporal_env.client, config))
    server, task, base = await serve(app)
    try:
        yield Served(base, postgres)
    finally:
        server.should_exit = True
        await task
        await engine.dispose()
        postgres.stop()


async def test_a_database_outage_answers_503_with_retry_after_and_recovers_after_it(
    own_database: Served, tokens: Tokens
) -> None:
    headers = bearer(tokens.hs256())
    async with httpx.AsyncClient(base_url=own_database.url, timeout=30) as http:
        before = await http.get("/api/v1/balance/current", headers=headers)
        assert before.status_code == 200, before.text  # the pool now holds connections

        # A restart between two requests: every pooled connection is dead, and the ping at
        # checkout replaces it (without it: 500 `connection is closed`).
        await asyncio.to_thread(own_database.postgres.stop)
        await asyncio.to_thread(own_database.postgres.start)
        restarted = await http.get("/api/v1/balance/current", headers=headers)
        assert restarted.status_code == 200, restarted.text

        await asyncio.to_thread(own_database.postgres.stop)
        during = await http.get("/api/v1/balance/current", headers=headers)
        assert during.status_code == 503, during.text
        assert during.json()["error"]["code"] == "database_unavailable"
        assert set(during.json()["error"]) == {"code", "message"}
        assert int(during.headers["Retry-After"]) > 0

        # Back: the first request after the outage is answered.
        await asyncio.to_thread(own_database.postgres.start)
        after = await http.get("/api/v1/balance/current", headers=headers)
        assert after.status_code == 200, after.text


async def test_temporal_trouble_is_503_with_retry_after_wherever_it_is_raised(
    temporal_env: WorkflowEnvironment,
) -> None:
    engine = create_engine("postgresql://nobody@127.0.0.1:1/none")
    app = create_app(
        ApiContext(
            session_factory(engine),
            temporal_env.client,
            ApiConfig.of(supabase_jwt_secret=JWT_SECRET),
        )
    )

    @app.get("/unavailable")
    async def unavailable() -> None:
        raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")

    @app.get("/wrapped")
    async def wrapped() -> None:
        try:
            raise RPCError("deadline", RPCStatusCode.DEADLINE_EXCEEDED, b"")
        except RPCError as exc:
            raise RuntimeError("could not start the workflow") from exc

    @app.get("/not-an-outage")
    async def not_an_outage() -> None:
        raise RPCError("bad request", RPCStatusCode.INVALID_ARGUMENT, b"")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        for path in ("/unavailable", "/wrapped"):
            answer = await http.get(path)
            assert answer.status_code == 503, (path, answer.text)
            assert answer.json()["error"]["code"] == "temporal_unavailable"
            assert answer.headers["Retry-After"] == "5"
        assert (await http.get("/not-an-outage")).status_code == 500
    await engine.dispose()
