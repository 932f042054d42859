"""`evpower serve`: the API and the OCPP gateway on one port (or one of them with --role)."""

from __future__ import annotations

import argparse

from runtime.logging import configure_logging
from runtime.process import run_process
from runtime.server import Role
from runtime.settings import get_settings

ROLE_CHOICES = {
    "all": frozenset({Role.API, Role.GATEWAY}),
    "api": frozenset({Role.API}),
    "gateway": frozenset({Role.GATEWAY}),
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("serve", help="run the API and OCPP gateway (port 9210)")
    parser.add_argument("--role", choices=sorted(ROLE_CHOICES), default="all")
    parser.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    settings.require_explicit_provider()
    configure_logging(settings.log_format, settings.log_level)
    return await run_process(settings, ROLE_CHOICES[args.role])
