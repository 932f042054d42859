"""The limit watch's count of plausible energy (gateway/meter_guard.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.meter_guard import count_reading
from gateway.transactions import RunningTx

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def running(meter_start_wh: int = 10_000) -> RunningTx:
    return RunningTx(7, "tag", "session", meter_start_wh, 5_000, started_at=T0)


def feed(tx: RunningTx, *readings: tuple[int, int]) -> list[bool]:
    return [count_reading(tx, wh, T0 + timedelta(seconds=s)) for s, wh in readings]


def test_a_genuine_meter_counts_exactly() -> None:
    tx = running()
    assert feed(tx, (600, 11_000), (1200, 12_500)) == [True, True]
    assert tx.counted_wh == 2_500


def test_a_jump_is_ignored_and_the_meter_counts_on_after_it() -> None:
    tx = running()
    assert feed(tx, (1, 999_999_999), (1800, 11_000)) == [False, True]
    assert tx.counted_wh == 1_000


def test_a_jump_that_stays_counts_only_the_steps_after_it() -> None:
    tx = running()
    assert feed(tx, (1, 5_000_000), (600, 5_000_500)) == [False, True]
    assert tx.counted_wh == 500


def test_a_reset_counts_the_new_run() -> None:
    tx = running()
    assert feed(tx, (600, 11_000), (1200, 0), (1800, 1_200)) == [True, False, True]
    assert tx.counted_wh == 1_000 + 1_200


def test_a_dip_is_ignored() -> None:
    tx = running()
    assert feed(tx, (600, 11_000), (700, 5), (1200, 11_500)) == [True, False, True]
    assert tx.counted_wh == 1_500
