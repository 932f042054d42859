"""Row-level security on the real database: inside a client's scope, client-owned tables show
and accept only that client's rows, whatever the query says."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.client_scope import client_scope
from db.migrate import alembic_config
from db.models import Client, IdempotencyKey, LedgerAccount


async def _two_clients(db_sessions: async_sessionmaker[AsyncSession]) -> tuple[str, str]:
    ours, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    async with db_sessions() as session, session.begin():
        for client_id in (ours, theirs):
            session.add(Client(id=client_id, email=None))
        await session.flush()
        for client_id in (ours, theirs):
            session.add(
                LedgerAccount(
                    code=f"test:{client_id}",
                    client_id=client_id,
                    kind="available",
                    balance_tyiyn=500,
                )
            )
            session.add(
                IdempotencyKey(
                    client_id=client_id,
                    key="k1",
                    method="POST",
                    path="/x",
                    request_hash="h",
                    expires_at=datetime.now(UTC) + timedelta(hours=1),
                )
            )
    return ours, theirs


async def test_a_query_without_where_sees_only_the_scoped_clients_rows(db_sessions) -> None:
    ours, _theirs = await _two_clients(db_sessions)
    async with client_scope(db_sessions, ours) as session:
        clients = (await session.scalars(select(Client.id))).all()
        accounts = (await session.scalars(select(LedgerAccount.client_id))).all()
        keys = (await session.scalars(select(IdempotencyKey.client_id))).all()
    assert clients == [ours]
    assert accounts == [ours]
    assert keys == [ours]
    # The owner (worker, gateway) is not subject to the policies.
    async with db_sessions() as session:
        assert await session.scalar(select(func.count()).select_from(IdempotencyKey)) == 2


async def test_writing_another_clients_row_is_refused(db_sessions) -> None:
    ours, theirs = await _two_clients(db_sessions)
    with pytest.raises(ProgrammingError, match="row-level security"):
        async with client_scope(db_sessions, ours) as session:
            await session.execute(
                text(
                    "INSERT INTO idempotency_keys (client_id, key, method, path, request_hash,"
                    " expires_at) VALUES (:client_id, 'k2', 'POST', '/x', 'h', now())"
                ),
                {"client_id": theirs},
            )
    async with client_scope(db_sessions, ours) as session:
        # Their rows are invisible, so updates and deletes cannot reach them either.
        deleted = await session.scalars(
            text("DELETE FROM idempotency_keys WHERE key = 'k1' RETURNING client_id")
        )
        assert deleted.all() == [ours]
    async with db_sessions() as session:
        left = (await session.scalars(select(IdempotencyKey.client_id))).all()
    assert left == [theirs]


async def test_tables_outside_a_clients_reach_are_refused(db_sessions) -> None:
    ours, _ = await _two_clients(db_sessions)
    with pytest.raises(ProgrammingError, match="permission denied"):
        async with client_scope(db_sessions, ours) as session:
            await session.execute(text("SELECT count(*) FROM ledger_postings"))


async def test_the_scope_ends_with_its_transaction(db_sessions) -> None:
    ours, _ = await _two_clients(db_sessions)
    async with client_scope(db_sessions, ours) as session:
        assert await session.scalar(text("SELECT current_user")) == "evpower_client"
    # The pooled connection goes back as the owner with no client set.
    async with db_sessions() as session:
        assert await session.scalar(text("SELECT current_user")) != "evpower_client"
        assert not await session.scalar(text("SELECT current_setting('app.client_id', true)"))


async def test_the_migration_downgrades_and_upgrades_cleanly(
    database_url: str, db_sessions
) -> None:
    config = alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "0004")
    try:
        async with db_sessions() as session:
            enabled = await session.scalar(
                text("SELECT count(*) FROM pg_class WHERE relrowsecurity AND relkind = 'r'")
            )
            assert enabled == 0
            with pytest.raises(DBAPIError):
                await session.execute(text("SET LOCAL ROLE evpower_client"))
    finally:
        await asyncio.to_thread(command.upgrade, config, "head")
    _ours, theirs = await _two_clients(db_sessions)
    async with client_scope(db_sessions, theirs) as session:
        assert (await session.scalars(select(Client.id))).all() == [theirs]
