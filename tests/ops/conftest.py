"""Fixtures for the operations API: tokens for each kind of caller and the audit rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import OperatorAudit
from tests.api import conftest as api_fixtures
from tests.api.conftest import AppFactory, Tokens, bearer

# The API suite's fixtures: a JWKS stand-in, token builders and the real app factory.
rsa_key = api_fixtures.rsa_key
ec_key = api_fixtures.ec_key
jwks_server = api_fixtures.jwks_server
tokens = api_fixtures.tokens
make_app = api_fixtures.make_app


def operator_token(tokens: Tokens, role: str = "operator", **claims: Any) -> str:
    return tokens.hs256(app_metadata={"provider": "email", "role": role}, **claims)


def caller_headers(tokens: Tokens, caller: str) -> dict[str, str]:
    """Headers of one caller of the authorization matrix: none, client, operator, admin."""
    if caller == "none":
        return {}
    if caller == "client":
        return bearer(tokens.hs256(app_metadata={"provider": "email"}))
    return bearer(operator_token(tokens, caller))


@pytest.fixture
async def ops_http(make_app: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://testserver",
    ) as http:
        yield http


async def audit_rows(db_sessions: async_sessionmaker[AsyncSession]) -> list[OperatorAudit]:
    async with db_sessions() as session:
        return list(await session.scalars(select(OperatorAudit).order_by(OperatorAudit.id)))
