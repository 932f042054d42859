"""One connection's cache of the transactions its MeterValues name, so samples cost no lookup."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.meter_readings import UNKNOWN_TYPE_MAX_POWER_W, MeterPoint
from gateway.schemas import INT32 as _INT32
from gateway.store import GatewayStore, TransactionRow

_MAX_CACHED_TRANSACTIONS = 8


@dataclass(slots=True)
class RunningTx:
    """What MeterValues needs about a running transaction, kept so samples cost no lookup."""

    id: int
    id_tag: str
    session_id: str | None
    meter_start_wh: int
    energy_limit_wh: int | None
    last_signal_at: float | None = None
    limit_stop_accepted: bool = False
    limit_signalled: bool = False
    connector_id: int = 0
    started_at: datetime | None = None
    # False while the StartTransaction waits in the relay (answered without the workflow).
    start_delivered: bool = True
    # The limit watch's count of plausible energy (gateway/meter_guard.py). The bound is the
    # largest default (350 kW): the watch only ignores what no connector could deliver;
    # settlement judges the stored readings by the connector's own power.
    max_power_w: int = UNKNOWN_TYPE_MAX_POWER_W
    counted_wh: int = 0
    trusted_reading: MeterPoint | None = None
    previous_reading: MeterPoint | None = None

    @classmethod
    def of(cls, row: TransactionRow) -> RunningTx:
        return cls(
            row.id,
            row.id_tag,
            row.session_id,
            row.meter_start_wh,
            row.energy_limit_wh,
            connector_id=row.connector_id,
            started_at=row.started_at,
        )


class TransactionCache:
    """The last few transactions of one station, oldest evicted first."""

    __slots__ = ("_entries", "_station_id", "_store")

    def __init__(self, store: GatewayStore, station_id: str) -> None:
        self._store = store
        self._station_id = station_id
        self._entries: dict[int, RunningTx | None] = {}

    def remember(self, transaction_id: int, tx: RunningTx | None) -> None:
        """Cache a transaction (None: not a running one of this station) for later samples."""
        while len(self._entries) >= _MAX_CACHED_TRANSACTIONS:
            self._entries.pop(next(iter(self._entries)))
        self._entries[transaction_id] = tx

    def forget(self, transaction_id: int) -> None:
        self._entries.pop(transaction_id, None)

    def cached(self, transaction_id: int | None, connector_id: int) -> RunningTx | None:
        """What this connection knows without the database (which may be down)."""
        if transaction_id is not None:
            return self._entries.get(transaction_id)
        for tx in reversed(list(self._entries.values())):  # newest first
            if tx is not None and tx.connector_id == connector_id:
                return tx
        return None

    async def transaction(self, transaction_id: int) -> RunningTx | None:
        if transaction_id in self._entries:
            return self._entries[transaction_id]
        row = None
        if 0 < transaction_id <= _INT32:
            row = await self._store.transaction(self._station_id, transaction_id)
        tx = None if row is None or row.stopped_at is not None else RunningTx.of(row)
        self.remember(transaction_id, tx)
        return tx

    async def running_on(self, connector_id: int) -> RunningTx | None:
        """The connector's running transaction, for samples that do not name one."""
        if connector_id < 1:
            return None
        for tx in reversed(list(self._entries.values())):  # newest first
            if tx is not None and tx.connector_id == connector_id:
                return tx
        row = await self._store.running_transaction(self._station_id, connector_id)
        if row is None:
            return None
        tx = RunningTx.of(row)
        self.remember(row.id, tx)
        return tx
