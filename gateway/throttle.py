"""Failed-login throttling at the upgrade: failures counted per key in fixed time windows."""

from __future__ import annotations

import math


class FailureThrottle:
    """A key (station id, remote address) with `limit` failures inside one window is
    throttled until that window ends. What throttled means is the caller's choice: the
    upgrade refuses wrong keys faster and cheaper then, never a right one.

    Memory is bounded: past `max_keys`, expired windows are dropped first, then the oldest.

    Why not the `limits` library the API's rate limits use: its in-memory storage keeps one
    counter per key until that key's window ends, with no bound on the number of keys, and an
    attacker chooses how many station ids and addresses fail; it expires them from a timer
    thread that scans every key after each hit, which at the upgrade during a reconnect storm
    contends with the event loop; and its clock is its own `time.time()`, where this one is
    given the caller's monotonic `now`, so the window logic is tested without waiting.
    """

    def __init__(self, *, limit: int, window_s: float, max_keys: int = 100_000) -> None:
        if limit < 1 or window_s <= 0 or max_keys < 1:
            raise ValueError("limit, window_s and max_keys must be positive")
        self._limit = limit
        self._window_s = window_s
        self._max_keys = max_keys
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window start, failures)

    def retry_after(self, key: str, now: float) -> int | None:
        """Whole seconds until `key` may try again, or None when it may try now."""
        window = self._windows.get(key)
        if window is None:
            return None
        started, failures = window
        left = started + self._window_s - now
        if left <= 0:
            del self._windows[key]
            return None
        return max(1, math.ceil(left)) if failures >= self._limit else None

    def record(self, key: str, now: float) -> bool:
        """Count one failure; True when it is the one that starts throttling `key`."""
        window = self._windows.get(key)
        if window is None or now - window[0] >= self._window_s:
            self._windows.pop(key, None)
            if len(self._windows) >= self._max_keys:
                self._evict(now)
            self._windows[key] = (now, 1)
            return self._limit == 1
        self._windows[key] = (window[0], window[1] + 1)
        return window[1] + 1 == self._limit

    def _evict(self, now: float) -> None:
        expired = [k for k, (start, _) in self._windows.items() if now - start >= self._window_s]
        for key in expired:
            del self._windows[key]
        while len(self._windows) >= self._max_keys:
            del self._windows[next(iter(self._windows))]  # insertion order: the oldest window
