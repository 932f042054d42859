"""Which chargers this gateway process holds right now, by station id."""

from __future__ import annotations

from collections.abc import Iterator

from gateway import metrics
from gateway.handlers import StationHandler


class ConnectionRegistry:
    """At most one live connection per station: a new one replaces the old."""

    def __init__(self) -> None:
        self._by_station: dict[str, StationHandler] = {}

    def get(self, station_id: str) -> StationHandler | None:
        return self._by_station.get(station_id)

    def add(self, connection: StationHandler) -> StationHandler | None:
        """Register `connection`; returns the connection it replaced, for the caller to close."""
        replaced = self._by_station.get(connection.station_id)
        self._by_station[connection.station_id] = connection
        if replaced is None:
            metrics.CONNECTED_CHARGERS.inc()
        return replaced

    def remove(self, connection: StationHandler) -> bool:
        """Forget `connection` unless a newer one for its station already took its place."""
        if self._by_station.get(connection.station_id) is not connection:
            return False
        del self._by_station[connection.station_id]
        metrics.CONNECTED_CHARGERS.dec()
        return True

    def __len__(self) -> int:
        return len(self._by_station)

    def __iter__(self) -> Iterator[StationHandler]:
        return iter(list(self._by_station.values()))
