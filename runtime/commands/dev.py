"""`evpower dev`: the whole system in one foreground process on a fresh machine.

Embedded PostgreSQL and Temporal (with its UI), migrations, demo data, then the API, the
OCPP gateway and the worker; Ctrl-C stops all of it, embedded servers included.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta
from typing import Any

from api.dev_tokens import issue_dev_token
from db.migrate import upgrade
from gateway.auth import ChargerKeys
from runtime import demo
from runtime.key_pepper import data_dir_pepper, key_pepper
from runtime.logging import configure_logging
from runtime.process import run_process
from runtime.server import Role
from runtime.services import Services
from runtime.settings import DEV_JWT_SECRET, Settings, load_settings

# The developer's operator identity in `evpower dev` (not a client: no balance, no clients row).
DEMO_OPERATOR_ID = "0d3e0000-0000-4000-8000-0000000000a1"

# Defaults that make a fresh machine usable; an environment variable still wins.
DEV_DEFAULTS: dict[str, Any] = {
    "log_format": "pretty",
    "enable_swagger": True,
    "supabase_jwt_secret": DEV_JWT_SECRET,
    "payment_provider": "SIMULATED",
    "meter_signal_interval_s": 60,
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "dev", help="run everything (embedded PostgreSQL + Temporal, API, gateway, worker)"
    )
    parser.add_argument("--no-demo", action="store_true", help="skip the demo data")
    parser.set_defaults(handler=run)


def dev_settings() -> Settings:
    overrides = {key: value for key, value in DEV_DEFAULTS.items() if key.upper() not in os.environ}
    settings = load_settings(**overrides)
    if settings.ocpp_key_pepper is None:
        # Even with an external DATABASE_URL, dev keys its demo chargers with the data dir's.
        overrides["ocpp_key_pepper"] = data_dir_pepper(settings.evpower_data_dir)
        settings = load_settings(**overrides)
    return settings


async def run(args: argparse.Namespace) -> int:
    settings = dev_settings()
    configure_logging(settings.log_format, settings.log_level)

    async def prepare(services: Services) -> None:
        await upgrade(services.database_url)
        if not args.no_demo:
            await demo.seed_demo_data(services.db_sessions, ChargerKeys(key_pepper(settings)))

    def announce(services: Services) -> None:
        print(banner(services.settings), file=sys.stdout, flush=True)  # noqa: T201

    return await run_process(
        settings,
        frozenset({Role.API, Role.GATEWAY, Role.WORKER}),
        temporal_ui=True,
        prepare=prepare,
        on_ready=announce,
    )


def banner(settings: Settings) -> str:
    base = f"http://{settings.host}:{settings.port}"
    token = issue_dev_token(
        settings.supabase_jwt_secret or DEV_JWT_SECRET,
        demo.DEMO_CLIENT_ID,
        settings.supabase_url,
        ttl=timedelta(days=30),
    )
    # An admin (all of the operations API) for the developer at this terminal only: like the
    # demo token, it exists where dev tokens do, signed with the dev secret.
    ops_token = issue_dev_token(
        settings.supabase_jwt_secret or DEV_JWT_SECRET,
        DEMO_OPERATOR_ID,
        settings.supabase_url,
        ttl=timedelta(days=1),
        operator_role="admin",
        operator_role_claim=settings.operator_role_claim,
    )
    temporal_ui = (
        f"http://127.0.0.1:{settings.temporal_ui_port}"
        if settings.temporal_address is None
        else "(external Temporal: see its own UI)"
    )
    return "\n".join(
        [
            "",
            "EvPower is running. Ctrl-C stops everything.",
            f"  API            {base}   (health: {base}/health)",
            f"  API docs       {base}/docs",
            f"  Temporal UI    {temporal_ui}",
            f"  OCPP           ws://{settings.host}:{settings.port}/ws/{{station_id}}"
            f"   stations {', '.join(demo.DEMO_STATION_IDS)}, "
            f"password {demo.DEMO_STATION_PASSWORD!r}",
            f"  Demo client    {demo.DEMO_CLIENT_ID} (500 som)",
            "  Demo token     export EVPOWER_TOKEN=" + token,
            f'  Try            curl -H "Authorization: Bearer $EVPOWER_TOKEN" '
            f"{base}/api/v1/balance/current",
            "  Operator token export EVPOWER_OPS_TOKEN=" + ops_token,
            f'  Fleet          curl -H "Authorization: Bearer $EVPOWER_OPS_TOKEN" '
            f"{base}/api/v1/ops/stations",
            "",
        ]
    )
