"""`evpower worker`: the Temporal worker (workflows and activities) alone."""

from __future__ import annotations

import argparse

from runtime.logging import configure_logging
from runtime.process import run_process
from runtime.server import Role
from runtime.settings import get_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("worker", help="run the Temporal worker")
    parser.set_defaults(handler=run)


async def run(_: argparse.Namespace) -> int:
    settings = get_settings()
    settings.require_explicit_provider()
    configure_logging(settings.log_format, settings.log_level)
    return await run_process(settings, frozenset({Role.WORKER}))
