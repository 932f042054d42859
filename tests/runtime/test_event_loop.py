"""The processes run on uvloop, and so does the suite that tests them."""

from __future__ import annotations

import asyncio

import uvloop

from runtime.cli import run_coroutine


async def test_the_suite_runs_on_uvloop() -> None:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)


def test_cli_commands_run_on_uvloop() -> None:
    async def loop_type() -> type:
        return type(asyncio.get_running_loop())

    assert run_coroutine(loop_type()) is uvloop.Loop
