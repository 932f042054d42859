"""Group commit for meter values: samples from every charger share one INSERT per round trip."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from gateway.store import GatewayStore

log = structlog.get_logger("gateway.meter_writer")

Row = Mapping[str, Any]


class MeterWriter:
    """Callers await `write()`; it returns once their rows are committed.

    While one INSERT is in flight, new rows queue up and go in the next one, so a thousand
    chargers cost a handful of transactions per second instead of a thousand, without
    adding any delay when traffic is light.
    """

    def __init__(self, store: GatewayStore, *, max_batch_rows: int = 5000) -> None:
        self._store = store
        self._max_batch_rows = max_batch_rows
        self._queue: deque[tuple[Sequence[Row], asyncio.Future[None]]] = deque()
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="meter-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wakeup.set()
        await task

    async def write(self, rows: Sequence[Row]) -> None:
        if not rows:
            return
        if self._task is None:
            await self._store.insert_meter_values(rows)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((rows, done))
        self._wakeup.set()
        await done

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                await self._flush()
            if self._stopping:
                return

    def _take_batch(self) -> list[tuple[Sequence[Row], asyncio.Future[None]]]:
        batch: list[tuple[Sequence[Row], asyncio.Future[None]]] = []
        count = 0
        while self._queue and (not batch or count + len(self._queue[0][0]) <= self._max_batch_rows):
            item = self._queue.popleft()
            batch.append(item)
            count += len(item[0])
        return batch

    async def _flush(self) -> None:
        batch = self._take_batch()
        try:
            await self._store.insert_meter_values([row for rows, _ in batch for row in rows])
        except Exception:
            # One charger's bad row must not fail everyone's batch: retry each on its own.
            log.warning("meter batch failed; retrying per charger", requests=len(batch))
            for rows, done in batch:
                await self._write_alone(rows, done)
            return
        for _, done in batch:
            if not done.done():
                done.set_result(None)

    async def _write_alone(self, rows: Sequence[Row], done: asyncio.Future[None]) -> None:
        try:
            await self._store.insert_meter_values(rows)
        except Exception as exc:
            if not done.done():
                done.set_exception(exc)
        else:
            if not done.done():
                done.set_result(None)
