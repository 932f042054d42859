"""Lets callers wait for any change of a station's state without polling."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Changes:
    """`touch()` after every state change; `wait_until(predicate)` re-checks on each one."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def touch(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float | None) -> None:
        async with asyncio.timeout(timeout_s):
            while True:
                event = self._event  # taken before the check, so no change is missed
                if predicate():
                    return
                await event.wait()
