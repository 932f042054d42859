"""`evpower healthcheck`: the container's HEALTHCHECK; exit 0 when this process's /health is 200.

The slim image has no curl; this asks the process in the same container on its PORT."""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request

from runtime.settings import get_settings

WILDCARD_HOSTS = {"0.0.0.0", "::", ""}  # noqa: S104 - we connect to them, not bind


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("healthcheck", help="exit 0 when this container's /health is ok")
    parser.add_argument("--timeout", type=float, default=4.0, help="seconds (default 4)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    host = "127.0.0.1" if settings.host in WILDCARD_HOSTS else settings.host
    url = f"http://{host}:{settings.port}/health"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:
            body = response.read(2048).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        sys.stderr.write(f"unhealthy: {exc.code} {exc.read(2048).decode(errors='replace')}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"unhealthy: {url}: {exc}\n")
        return 1
    sys.stdout.write(body + "\n")
    return 0
