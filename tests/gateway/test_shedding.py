"""Load shedding at the upgrade (gateway/admission.py): past the admission limit a charger is
answered 503 with a spread Retry-After, before any database read and without a log line of
its own; a place frees when a charger's BootNotification is answered or its socket closes."""

from __future__ import annotations

import contextlib
import random
from typing import Any

import pytest
import structlog
from ocpp.v16 import call
from websockets.exceptions import InvalidStatus

from gateway.admission import MAX_RETRY_AFTER_S, MIN_RETRY_AFTER_S, AdmissionGate
from tests.gateway.conftest import charger_session

pytestmark = pytest.mark.integration


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _shed(url: str, station_id: str) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as refused:
        async with charger_session(url, station_id):
            pass
    return refused.value


async def test_full_admission_sheds_before_the_database(start_gateway, add_station):
    running = await start_gateway(admission_limit=2)
    for station_id in ("EVP-S1", "EVP-S2", "EVP-S3"):
        await add_station(station_id)
    reads: list[list[str]] = []
    store = running.gateway._admission_store  # where the key reads go
    real_read = store.stations_auth

    async def counting_read(station_ids: list[str]) -> Any:
        reads.append(list(station_ids))
        return await real_read(station_ids)

    store.stations_auth = counting_read
    async with contextlib.AsyncExitStack() as stack:
        # Two chargers upgraded but not booted yet: both places taken.
        first = await stack.enter_async_context(charger_session(running.url("EVP-S1"), "EVP-S1"))
        await stack.enter_async_context(charger_session(running.url("EVP-S2"), "EVP-S2"))
        reads_before = sum(len(batch) for batch in reads)
        assert reads_before == 2  # the spy sees the reads of admitted chargers
        with structlog.testing.capture_logs() as lines:
            refusals = [await _shed(running.url("EVP-S3"), "EVP-S3") for _ in range(3)]
        for refused in refusals:
            assert refused.response.status_code == 503
            retry_after = int(refused.response.headers["Retry-After"])
            assert MIN_RETRY_AFTER_S <= retry_after <= MAX_RETRY_AFTER_S
        assert sum(len(batch) for batch in reads) == reads_before  # no station read
        # At most the one summary line; never a line per refused attempt.
        assert len([line for line in lines if line["log_level"] != "debug"]) <= 1
        assert running.gateway.admission.refused_total == 3

        # The first charger's boot is answered: its place goes to the next charger.
        await first.charger.call(
            call.BootNotification(charge_point_vendor="Acme", charge_point_model="One"),
            suppress=False,
        )
        await stack.enter_async_context(charger_session(running.url("EVP-S3"), "EVP-S3"))


async def test_a_closed_socket_frees_its_place(start_gateway, add_station):
    running = await start_gateway(admission_limit=1)
    await add_station("EVP-S4")
    await add_station("EVP-S5")
    async with charger_session(running.url("EVP-S4"), "EVP-S4"):
        assert (await _shed(running.url("EVP-S5"), "EVP-S5")).response.status_code == 503
    # The gateway notices the close in its own time; the charger simply tries again.
    for _ in range(200):
        with contextlib.suppress(InvalidStatus):
            async with charger_session(running.url("EVP-S5"), "EVP-S5"):
                return
    raise AssertionError("the place of a closed connection was never freed")


def test_a_charger_that_never_boots_loses_its_place_after_max_age():
    clock = _Clock()
    gate = AdmissionGate(1, max_age_s=30.0, clock=clock)
    assert gate.try_enter() is not None
    assert gate.try_enter() is None
    clock.now += 31.0
    assert gate.try_enter() is not None


def test_released_tickets_free_places_once():
    gate = AdmissionGate(2, clock=_Clock())
    ticket = gate.try_enter()
    assert ticket is not None
    assert gate.try_enter() is not None
    ticket.release()
    ticket.release()  # twice is once
    assert gate.in_flight == 1
    assert gate.try_enter() is not None
    assert gate.try_enter() is None


def test_retries_spread_wider_the_more_chargers_were_turned_away():
    clock = _Clock()
    gate = AdmissionGate(10, clock=clock, rng=random.Random(7))
    for _ in range(10):
        gate.try_enter()
    calm = max(gate.retry_after_s() for _ in range(200))
    for _ in range(1_000):
        assert gate.try_enter() is None
    crowded = max(gate.retry_after_s() for _ in range(200))
    assert calm <= 10 < crowded <= MAX_RETRY_AFTER_S
    assert min(gate.retry_after_s() for _ in range(200)) >= MIN_RETRY_AFTER_S


def test_a_gate_that_boots_chargers_fast_calls_the_crowd_back_sooner():
    def crowded_spread(admission_s: float) -> int:
        clock = _Clock()
        gate = AdmissionGate(10, clock=clock, rng=random.Random(7))
        for _ in range(200):  # chargers pass through, each in admission_s
            ticket = gate.try_enter()
            assert ticket is not None
            clock.now += admission_s
            ticket.release()
        for _ in range(10):
            gate.try_enter()
        for _ in range(1_000):
            assert gate.try_enter() is None
        return max(gate.retry_after_s() for _ in range(200))

    # 1,000 turned away at 10 places: 100 rounds of admission to come back over.
    assert crowded_spread(0.2) <= MIN_RETRY_AFTER_S + 0.2 * 101 + 1
    assert crowded_spread(8.0) == MAX_RETRY_AFTER_S


def test_refusals_are_summed_in_one_line_per_interval():
    clock = _Clock()
    gate = AdmissionGate(1, clock=clock, summary_every_s=1.0)
    gate.try_enter()
    with structlog.testing.capture_logs() as lines:
        for _ in range(50):
            gate.try_enter()
        clock.now += 1.5
        for _ in range(50):
            gate.try_enter()
    assert len(lines) == 1  # written by the first refusal after the interval
    assert lines[0]["refused"] == 51
    assert gate.refused_total == 100
