"""Callers of a batch are woken a chunk at a time, so other work runs in between."""

from __future__ import annotations

import asyncio

from gateway import wake


async def test_other_tasks_run_while_a_large_batch_is_answered():
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[int]] = [loop.create_future() for _ in range(200)]
    done_when_other_ran: list[int] = []

    async def other() -> None:
        await asyncio.sleep(0)
        done_when_other_ran.append(sum(f.done() for f in futures))

    task = asyncio.create_task(other())
    await wake.answer((future, number) for number, future in enumerate(futures))
    await task
    assert [f.result() for f in futures] == list(range(200))
    assert done_when_other_ran[0] < len(futures)


async def test_a_failed_batch_fails_every_waiting_caller_once():
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[int]] = [loop.create_future() for _ in range(40)]
    futures[0].cancel()  # that caller is gone
    await wake.fail(futures, OSError("database away"))
    assert futures[0].cancelled()
    assert all(isinstance(f.exception(), OSError) for f in futures[1:])
