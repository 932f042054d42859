"""`evpower temporal-setup`: our namespace and search attributes on the configured Temporal."""

from __future__ import annotations

import argparse

import structlog

from runtime.logging import configure_logging
from runtime.readiness import wait_for_temporal
from runtime.settings import Settings, get_settings
from runtime.temporal_setup import ensure_temporal_setup

log = structlog.get_logger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "temporal-setup",
        help="create the namespace (where allowed) and the search attributes; idempotent",
    )
    parser.set_defaults(handler=run)


async def run(_: argparse.Namespace) -> int:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    return await setup_temporal(settings)


async def setup_temporal(settings: Settings) -> int:
    if settings.temporal_address is None:
        # `evpower dev` starts its embedded server with the search attributes already.
        print("temporal setup skipped: embedded Temporal registers its search attributes")  # noqa: T201
        return 0
    client = await wait_for_temporal(settings, settings.temporal_address)
    report = await ensure_temporal_setup(client, settings.temporal_address)
    added = ", ".join(report.added) or "none"
    print(  # noqa: T201
        f"temporal namespace {settings.temporal_namespace} ready"
        f"{' (created)' if report.namespace_created else ''}; search attributes added: {added}"
    )
    return 0
