"""Waking the callers of a batch (gateway/bookkeeping.py, gateway/charger_auth.py) a few at a
time: resuming hundreds of chargers' coroutines in one go keeps the event loop from every
other charger's frames for that long, and a connected charger's Heartbeat waits behind them
(docs/benchmarks.md, reconnect storm). Between chunks the loop reads its sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")

CHUNK = 32


async def answer(pairs: Iterable[tuple[asyncio.Future[T], T]]) -> None:
    """Set each future's result (a future already done, its caller gone, is skipped)."""
    woken = 0
    for future, result in pairs:
        if future.done():
            continue
        future.set_result(result)
        woken += 1
        if woken % CHUNK == 0:
            await asyncio.sleep(0)


async def fail(futures: Iterable[asyncio.Future[T]], error: BaseException) -> None:
    """Fail every waiting caller with the batch's error."""
    woken = 0
    for future in futures:
        if future.done():
            continue
        future.set_exception(error)
        woken += 1
        if woken % CHUNK == 0:
            await asyncio.sleep(0)
