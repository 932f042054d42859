"""Transaction ids for StartTransactions that arrive while PostgreSQL is down.

A transactionId is normally allocated by the database, once per natural key (station,
connector, idTag, meterStart, timestamp). A few ids are drawn from the table's sequence
while the database is up and kept here; a start during an outage takes one, remembered by
its natural key so the charger's retry gets the same id, and the row is written with that
id when the database is back. Unused ids are simply gaps in the sequence.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from cachetools import FIFOCache

from gateway.store import GatewayStore

log = structlog.get_logger("gateway.offline_ids")

NaturalKey = tuple[str, int, str, int, datetime]
_KEYS_KEPT = 1_000


class OfflineTransactionIds:
    def __init__(self, store: GatewayStore, *, size: int) -> None:
        self._store = store
        self._size = size
        self._free: list[int] = []
        self._given: FIFOCache[NaturalKey, int] = FIFOCache(_KEYS_KEPT)

    async def top_up(self) -> None:
        """Refill while the database answers (part of the liveness sweep); quiet otherwise."""
        missing = self._size - len(self._free)
        if missing <= 0:
            return
        try:
            self._free.extend(await self._store.reserve_transaction_ids(missing))
        except Exception as exc:
            log.debug("transaction ids not reserved", error=repr(exc))

    def take(self, key: NaturalKey) -> int | None:
        """The id for this natural key: the one given before, or a reserved one (None when
        none is left)."""
        given = self._given.get(key)
        if given is not None:
            return given
        if not self._free:
            return None
        transaction_id = self._free.pop(0)
        self._given[key] = transaction_id
        return transaction_id
