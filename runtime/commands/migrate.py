"""`evpower migrate`: apply the database migrations."""

from __future__ import annotations

import argparse

from db.migrate import upgrade_sync
from runtime.infrastructure import database_url_for
from runtime.logging import configure_logging
from runtime.settings import get_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("migrate", help="apply database migrations")
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    url, owned = database_url_for(settings)
    try:
        upgrade_sync(url, args.revision)
    finally:
        if owned is not None:
            owned.stop()
    print(f"database migrated to {args.revision}")  # noqa: T201
    return 0
