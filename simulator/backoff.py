"""How long a charger waits before its next connection attempt.

A gateway that sheds load answers the websocket upgrade with 503 or 429 and `Retry-After`
(seconds). Real chargers that honour it spread a reconnect storm out instead of hammering
the gateway; the jitter keeps a city of chargers refused in the same second from coming
back in the same second again.
"""

from __future__ import annotations

import math
import random

from websockets.exceptions import InvalidStatus

MAX_RECONNECT_BACKOFF_S = 30.0
# A Retry-After beyond this is treated as this: a broken header must not park a charger.
MAX_RETRY_AFTER_S = 300.0
# The wait is Retry-After * (1 + up to this fraction): never earlier than asked.
RETRY_AFTER_JITTER = 0.5
SHEDDING_STATUSES = frozenset({429, 503})


def retry_after_s(exc: BaseException) -> float | None:
    """The Retry-After seconds of a 503/429 upgrade refusal, else None (HTTP-date ignored)."""
    if not isinstance(exc, InvalidStatus) or exc.response.status_code not in SHEDDING_STATUSES:
        return None
    value = exc.response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if math.isnan(seconds) or seconds < 0:  # not a usable delay
        return None
    return min(seconds, MAX_RETRY_AFTER_S)


def next_delay_s(
    exc: BaseException, failures: int, base_s: float, rng: random.Random | None = None
) -> float:
    """Retry-After with jitter when the gateway asked for it, else capped exponential backoff."""
    asked = retry_after_s(exc)
    if asked is not None:
        jitter: float = (rng or random).uniform(0, RETRY_AFTER_JITTER)
        return asked * (1 + jitter)
    return min(base_s * 2.0 ** min(failures, 5), MAX_RECONNECT_BACKOFF_S)
