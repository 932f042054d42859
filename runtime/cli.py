"""The `evpower` command line: one subcommand per module in `runtime.commands`."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import uvloop

from runtime.embedded import EmbeddedServiceError
from runtime.readiness import StartupError
from runtime.settings import ConfigError

T = TypeVar("T")

# Each module defines `register(subparsers)`, which adds a parser whose `handler` default is
# a function (sync or async) taking the parsed arguments and returning an exit code.
COMMAND_MODULES = (
    "runtime.commands.dev",
    "runtime.commands.serve",
    "runtime.commands.worker",
    "runtime.commands.migrate",
    "runtime.commands.temporal_setup",
    "runtime.commands.healthcheck",
    "runtime.commands.stations",
    "runtime.commands.simulate",
    "runtime.commands.pay",
    "runtime.commands.payments",
    "runtime.commands.ops",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evpower", description="EvPower central system")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that command is not built yet
                continue
            raise
        module.register(subparsers)
    return parser


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command on uvloop: the gateway handles more Heartbeats and MeterValues per
    CPU-second on it than on asyncio's own loop (docs/benchmarks.md)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.handler(args)
        if inspect.iscoroutine(result):
            result = run_coroutine(result)
    except ConfigError as exc:
        print(f"evpower: configuration error: {exc}", file=sys.stderr)
        return 2
    except (StartupError, EmbeddedServiceError) as exc:
        print(f"evpower: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
