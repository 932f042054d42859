"""`evpower simulate`: run simulated OCPP 1.6J chargers against a gateway until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any

from runtime.settings import get_settings
from simulator.config import StationConfig
from simulator.fleet import CardScript, fleet_configs, run_fleet, station_ids

# Exit code of a second Ctrl-C, which does not wait for the sockets to close.
INTERRUPTED = 130

log = logging.getLogger("simulator")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "simulate", help="run simulated chargers (boot, heartbeat, answer remote start/stop)"
    )
    parser.add_argument(
        "--stations", default="", help="comma-separated station ids, e.g. EVP-001,EVP-002"
    )
    parser.add_argument("--count", type=int, default=0, help="also generate N station ids")
    parser.add_argument("--prefix", default="SIM-", help="prefix of generated ids (default SIM-)")
    parser.add_argument(
        "--url", help="gateway base URL (default: ws://HOST:PORT/ws, as `evpower dev` serves it)"
    )
    parser.add_argument("--password", help="HTTP Basic password of every station")
    parser.add_argument("--connectors", type=int, default=2, help="connectors per station")
    parser.add_argument("--power-w", type=int, default=22_000, help="charging power in W")
    parser.add_argument(
        "--meter-interval", type=float, default=10.0, help="seconds between MeterValues"
    )
    parser.add_argument("--soc", type=int, help="report SoC, starting at this percent")
    parser.add_argument(
        "--no-compression", action="store_true", help="do not offer permessage-deflate"
    )
    parser.add_argument(
        "--card",
        metavar="TAG",
        help="present this RFID card at connector 1 of the first station once it has booted",
    )
    parser.add_argument(
        "--card-seconds",
        type=float,
        help="present the card again this many seconds after the start was accepted (stops it)",
    )
    parser.add_argument(
        "--card-no-authorize",
        action="store_true",
        help="start at once with the card (no Authorize first)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every OCPP frame")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> Coroutine[Any, Any, int] | int:
    explicit = [part.strip() for part in args.stations.split(",") if part.strip()]
    url = args.url or _local_gateway_url()
    try:
        ids = station_ids(explicit, args.count, args.prefix)
        if not ids:
            raise ValueError("name stations with --stations or ask for --count N")
        template = StationConfig(
            station_id=ids[0],
            url=url,
            password=args.password,
            connectors=args.connectors,
            power_w=args.power_w,
            meter_interval_s=args.meter_interval,
            soc_start_percent=args.soc,
            compression=not args.no_compression,
        )
    except ValueError as exc:
        sys.stderr.write(f"evpower simulate: {exc}\n")
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    # The ocpp library logs every frame at INFO; that is only wanted when asked for.
    logging.getLogger("ocpp").setLevel(logging.INFO if args.verbose else logging.WARNING)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started in the background by a shell: Ctrl-C (kill -INT) still means stop.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    log.info("simulating %d station(s) against %s (Ctrl-C stops)", len(ids), url)
    card = None
    if args.card:
        card = CardScript(
            args.card, authorize=not args.card_no_authorize, stop_after_s=args.card_seconds
        )
    return _run(fleet_configs(template, ids), card)


def _local_gateway_url() -> str:
    # The same HOST and PORT settings `evpower dev` and `evpower serve` listen on.
    settings = get_settings()
    return f"ws://{settings.host}:{settings.port}/ws"


async def _run(configs: list[StationConfig], card: CardScript | None = None) -> int:
    """Run until the first Ctrl-C (or SIGTERM), then close every socket; a second Ctrl-C
    exits at once. Our own handlers, in every state (connected, reconnecting, closing), and
    even where the shell started us with SIGINT ignored (a background job)."""
    loop = asyncio.get_running_loop()
    fleet = asyncio.create_task(run_fleet(configs, card=card), name="fleet")

    def on_signal(sig: signal.Signals) -> None:
        if fleet.cancelling():
            log.warning("%s again: exiting without closing the connections", sig.name)
            logging.shutdown()
            os._exit(INTERRUPTED)
        log.info("%s: closing the connections (Ctrl-C again exits at once)", sig.name)
        fleet.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await fleet
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # we were cancelled ourselves, not stopped by a signal
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    log.info("stopped")
    return 0
