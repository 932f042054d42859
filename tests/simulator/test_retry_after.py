"""The simulator waits out a gateway's Retry-After (with jitter) before it connects again."""

from __future__ import annotations

import random

from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response

from simulator.backoff import MAX_RETRY_AFTER_S, RETRY_AFTER_JITTER, next_delay_s, retry_after_s
from tests.simulator.conftest import StationFactory
from tests.simulator.csms import MiniCsms


def refusal(status: int, retry_after: str | None) -> InvalidStatus:
    headers = Headers() if retry_after is None else Headers({"Retry-After": retry_after})
    return InvalidStatus(Response(status, "refused", headers, b""))


def test_retry_after_of_503_and_429_is_waited_with_jitter_never_earlier() -> None:
    rng = random.Random(7)
    for status in (503, 429):
        delays = [next_delay_s(refusal(status, "4"), 1, 0.05, rng) for _ in range(200)]
        assert all(4.0 <= delay <= 4.0 * (1 + RETRY_AFTER_JITTER) for delay in delays)
        assert len(set(delays)) > 100  # spread out, not a synchronized second wave


def test_without_a_usable_retry_after_the_backoff_stays_exponential() -> None:
    assert retry_after_s(refusal(503, None)) is None
    assert retry_after_s(refusal(503, "Wed, 21 Oct 2026 07:28:00 GMT")) is None
    assert retry_after_s(refusal(503, "-1")) is None
    assert retry_after_s(refusal(401, "5")) is None  # only load shedding asks for a wait
    assert retry_after_s(OSError("refused")) is None
    assert retry_after_s(refusal(503, "100000")) == MAX_RETRY_AFTER_S
    assert next_delay_s(refusal(401, "5"), 2, 0.5) == 2.0


async def test_station_waits_out_retry_after_then_boots(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    csms.shed_upgrades = 2
    csms.shed_retry_after = "0.2"
    station = make_station()

    station.launch()  # not start(): that gives up on the first refusal
    await station.wait_until(lambda: station.registration is not None, 20)

    assert station.retry_after_waits == 2
    assert station.registration == "Accepted"
