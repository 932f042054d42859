"""CLI commands find the embedded PostgreSQL of the data dir, or run one just for themselves."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from runtime.cli_database import cli_database
from runtime.embedded import EmbeddedPostgres
from runtime.settings import load_settings

pytestmark = pytest.mark.integration


def _alive(server: EmbeddedPostgres) -> bool:
    return server.is_running()


async def _tables(url: str) -> set[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
    finally:
        await connection.close()
    return {row["tablename"] for row in rows}


async def test_without_a_running_server_one_is_started_migrated_and_stopped(
    tmp_path: Path,
) -> None:
    settings = load_settings(database_url=None, evpower_data_dir=tmp_path)

    async with cli_database(settings) as url:
        assert "stations" in await _tables(url)

    assert not _alive(EmbeddedPostgres(tmp_path, own=False))


async def test_a_running_server_is_attached_to_and_left_running(tmp_path: Path) -> None:
    owner = EmbeddedPostgres(tmp_path, own=True)
    owner_url = owner.start()
    try:
        settings = load_settings(database_url=None, evpower_data_dir=tmp_path)
        async with cli_database(settings) as url:
            assert url == owner_url

        assert _alive(owner)
    finally:
        owner.stop()
