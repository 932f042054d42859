"""The gateway under test in its own process: uvicorn with runtime.asgi.OcppDispatcher
around OcppGateway, on the production uvicorn options (runtime.server.uvicorn_config).

Run as `python -m benchmarks.gateway_server --port P --database-url U --temporal-address A`;
prints `ready` once it accepts chargers; SIGTERM stops it the way production does.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal
import sys
from typing import Any

from benchmarks.infra import BENCHMARK_KEY_PEPPER
from benchmarks.load_client import CONNECT_CONCURRENCY
from gateway.config import GatewayConfig
from gateway.server import OcppGateway
from runtime.asgi import OcppDispatcher
from runtime.logging import configure_logging
from runtime.server import ManagedUvicorn, gateway_config, uvicorn_config
from runtime.services import open_services
from runtime.settings import LogFormat, Settings, load_settings


def config_for(settings: Settings) -> GatewayConfig:
    """The production gateway config of `settings` (which allow the passwordless stations the
    benchmark seeds, benchmarks/infra.py: hashing is not what is measured here). The
    load client connects 64 chargers at a time and does not retry a 503, so admission is
    not limited below that (the storm mode measures the production limit)."""
    config = gateway_config(settings)
    return config.model_copy(
        update={"admission_limit": max(config.admission_limit, 2 * CONNECT_CONCURRENCY)}
    )


async def _not_found(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def main(args: argparse.Namespace) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    settings = load_settings(
        database_url=args.database_url,
        temporal_address=args.temporal_address,
        host="127.0.0.1",
        port=args.port,
        log_level=args.log_level,
        # benchmarks/infra.py seeds stations without passwords: hashing is not what is measured.
        ocpp_allow_passwordless_stations=True,
        ocpp_key_pepper=BENCHMARK_KEY_PEPPER,
    )
    configure_logging(LogFormat.JSON, settings.log_level)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_services(
        settings, database_url=args.database_url, temporal_address=args.temporal_address
    ) as services:
        gateway = OcppGateway(services.db_sessions, services.temporal, config_for(settings))
        await gateway.start()
        config = uvicorn_config(OcppDispatcher(_not_found, gateway), settings)
        config.ws_per_message_deflate = args.deflate
        if args.ws is not None:  # an experiment: production uses runtime.server.uvicorn_config
            config.ws = args.ws
        server = ManagedUvicorn(config)
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                await serving
                return
            await asyncio.sleep(0.05)
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await stop.wait()
        await gateway.stop()
        server.should_exit = True
        await serving


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--temporal-address", required=True)
    parser.add_argument("--deflate", action="store_true")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--ws", help="uvicorn websocket implementation (experiment)")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (as evpower does)")
    arguments = parser.parse_args()
    if arguments.uvloop:
        import uvloop

        uvloop.run(main(arguments))
    else:
        asyncio.run(main(arguments))
