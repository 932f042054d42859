"""Transaction messages (Start/StopTransaction): sent in order, kept across disconnects."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ocpp.exceptions import OCPPError

log = logging.getLogger("simulator")


class Caller(Protocol):
    async def call(
        self, payload: Any, suppress: bool = ..., unique_id: str | None = ...
    ) -> Any: ...


@dataclass
class OutgoingMessage:
    action: str
    build: Callable[[], Any | None]  # built at send time; None: nothing to send any more
    on_result: Callable[[Any], None]
    repeats: int = 0  # fault injection: send again with new message ids after the answer
    on_failure: Callable[[], None] | None = None
    same_message_id: bool = False  # fault injection: every attempt reuses one message id
    # Sent only on a connection numbered above this one (fault: stop only after reconnect).
    after_connection: int = 0


class Outbox:
    """A message leaves the outbox only once the CSMS answered it. A connection lost while
    waiting leaves it at the head, so it is sent again (with a new message id) after the
    next boot: exactly what a charger that missed an answer does."""

    def __init__(self, *, attempts: int, retry_s: float) -> None:
        self._items: deque[OutgoingMessage] = deque()
        self._attempts = attempts
        self._retry_s = retry_s
        self.failed_attempts = 0  # attempts the CSMS answered with an error or not at all
        self.given_up: list[str] = []  # actions dropped after the last attempt failed

    def __len__(self) -> int:
        return len(self._items)

    def head_ready(self, connection_number: int) -> bool:
        return bool(self._items) and self._items[0].after_connection < connection_number

    def append(self, item: OutgoingMessage) -> None:
        self._items.append(item)

    async def deliver_head(self, caller: Caller, station_id: str) -> None:
        item = self._items[0]
        await self._deliver(caller, item, station_id)
        self._items.popleft()

    async def _deliver(self, caller: Caller, item: OutgoingMessage, station_id: str) -> None:
        payload = item.build()
        if payload is None:
            return
        unique_id = str(uuid.uuid4()) if item.same_message_id else None
        for attempt in range(1, self._attempts + 1):
            try:
                result = await caller.call(payload, suppress=False, unique_id=unique_id)
                break
            except (TimeoutError, OCPPError) as exc:
                self.failed_attempts += 1
                log.warning("%s: %s attempt %d failed: %r", station_id, item.action, attempt, exc)
                if attempt < self._attempts:
                    await asyncio.sleep(self._retry_s)
        else:
            log.error("%s: %s given up", station_id, item.action)
            self.given_up.append(item.action)
            if item.on_failure is not None:
                item.on_failure()
            return
        item.on_result(result)
        for _ in range(item.repeats):
            # The ocpp library gives every call a new message id: the CSMS must recognise
            # the message by its content, not by the id.
            item.on_result(await caller.call(payload, suppress=False))
