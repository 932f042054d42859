"""Apply Alembic migrations programmatically (used by `evpower migrate`, `evpower dev`, tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_sync(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Run in a thread: Alembic's env.py drives its own event loop."""
    await asyncio.to_thread(upgrade_sync, database_url, revision)


def heads() -> list[str]:
    return list(ScriptDirectory.from_config(alembic_config("postgresql://unused/")).get_heads())
