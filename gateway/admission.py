"""Load shedding at the websocket upgrade: how many chargers may be in admission at once.

A charger is in admission from the start of its upgrade until its first BootNotification
has been answered (or its connection ends, or `max_age_s` passes: a charger that never
boots must not hold a place for ever). Past the limit, a new upgrade is answered 503 with a
spread Retry-After before any database read and without a log line of its own. Without this,
a reconnect storm takes every attempt on at once; upgrades then outlast the chargers' open
timeout, the chargers come back while the gateway still works for the attempts they gave up
on, and the storm never converges (docs/benchmarks.md). With it, the storm becomes a paced
inflow. Refusals are counted; one summary line per `summary_every_s` says how many.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger("gateway")

MIN_RETRY_AFTER_S = 2
MAX_RETRY_AFTER_S = 60
# How long the memory of refusals lasts when spreading retries (an exponential decay).
PRESSURE_HALF_LIFE_S = 10.0
# How long a charger is taken to stay in admission before any has passed through; then the
# gate's own measure (a moving average of upgrade-to-boot times) replaces it.
INITIAL_ADMISSION_S = 8.0
_ADMISSION_WEIGHT = 0.1  # of each new upgrade-to-boot time in that average


class AdmissionTicket:
    """A charger's place in admission; `release()` may be called any number of times."""

    __slots__ = ("_gate", "_number")

    def __init__(self, gate: AdmissionGate, number: int) -> None:
        self._gate = gate
        self._number = number

    def release(self) -> None:
        self._gate._release(self._number)


class AdmissionGate:
    def __init__(
        self,
        limit: int,
        *,
        max_age_s: float = 30.0,
        summary_every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("the admission limit must be positive")
        self.limit = limit
        self._max_age_s = max_age_s
        self._summary_every_s = summary_every_s
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._numbers = itertools.count()
        self._entered: dict[int, float] = {}  # ticket -> entered at; insertion = time order
        self.refused_total = 0
        self._refused_unreported = 0
        self._last_summary = clock()
        self._pressure = 0.0  # refusals, decayed: how big the crowd that will come back is
        self._pressure_at = clock()
        self._admission_s = INITIAL_ADMISSION_S  # a charger's usual time in admission

    @property
    def in_flight(self) -> int:
        self._expire()
        return len(self._entered)

    def try_enter(self) -> AdmissionTicket | None:
        """A ticket, or None: answer the upgrade 503 with `retry_after_s()`."""
        if self.in_flight >= self.limit:
            self._count_refusal()
            return None
        number = next(self._numbers)
        self._entered[number] = self._clock()
        return AdmissionTicket(self, number)

    def retry_after_s(self) -> int:
        """Spread the crowd turned away: the more refusals lately, the wider the window, so
        the returning chargers arrive at about the rate admission lets them through. That
        rate is `limit` chargers per usual time in admission, as measured here: a gateway
        that boots a charger in 0.2 s calls the crowd back sooner than one that takes 8 s."""
        crowds = 1 + self._decayed_pressure() / self.limit
        spread = MIN_RETRY_AFTER_S + self._admission_s * crowds
        high = max(MIN_RETRY_AFTER_S + 1, min(MAX_RETRY_AFTER_S, math.ceil(spread)))
        return self._rng.randint(MIN_RETRY_AFTER_S, high)

    def _release(self, number: int) -> None:
        entered = self._entered.pop(number, None)
        if entered is not None:
            took = self._clock() - entered
            self._admission_s += _ADMISSION_WEIGHT * (took - self._admission_s)

    def _expire(self) -> None:
        oldest_allowed = self._clock() - self._max_age_s
        while self._entered:
            number, entered = next(iter(self._entered.items()))
            if entered >= oldest_allowed:
                return
            del self._entered[number]

    def _decayed_pressure(self) -> float:
        now = self._clock()
        elapsed = now - self._pressure_at
        self._pressure *= 0.5 ** (elapsed / PRESSURE_HALF_LIFE_S)
        self._pressure_at = now
        return self._pressure

    def _count_refusal(self) -> None:
        self.refused_total += 1
        self._refused_unreported += 1
        self._pressure = self._decayed_pressure() + 1
        now = self._clock()
        if now - self._last_summary >= self._summary_every_s:
            log.warning(
                "upgrades refused: admission full",
                refused=self._refused_unreported,
                in_admission=len(self._entered),
                limit=self.limit,
            )
            self._refused_unreported = 0
            self._last_summary = now
