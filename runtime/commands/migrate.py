"""`evpower migrate`: database migrations, then the Temporal namespace setup (search attributes).

The one-shot job of a deploy: it waits for PostgreSQL and Temporal like every role, and every
step is idempotent, so it runs on each release.
"""

from __future__ import annotations

import argparse
import asyncio

import structlog

from db.engine import create_engine
from db.migrate import upgrade
from runtime.commands.temporal_setup import setup_temporal
from runtime.infrastructure import database_url_for
from runtime.logging import configure_logging
from runtime.readiness import wait_for_database
from runtime.settings import Settings, get_settings

log = structlog.get_logger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "migrate", help="apply database migrations and register Temporal search attributes"
    )
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    parser.add_argument(
        "--database-only", action="store_true", help="skip the Temporal namespace setup"
    )
    parser.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    await migrate_database(settings, args.revision)
    print(f"database migrated to {args.revision}")  # noqa: T201
    if args.database_only:
        return 0
    return await setup_temporal(settings)


async def migrate_database(settings: Settings, revision: str) -> None:
    url, owned = await asyncio.to_thread(database_url_for, settings)
    try:
        engine = create_engine(url, pool_size=1)
        try:
            await wait_for_database(engine, url, settings)
        finally:
            await engine.dispose()
        await upgrade(url, revision)
    finally:
        if owned is not None:
            await asyncio.to_thread(owned.stop)
