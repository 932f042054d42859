"""The chaos suite, short version (the soak is benchmarks/chaos.py, same code): ≥ 30 sessions
and ≥ 10 top-ups on the production topology while processes are killed, Temporal and
PostgreSQL go away, chargers misbehave and the payment provider fails; then every invariant
of the money and the sessions must hold. CHAOS_SEED replays a run's choices."""

from __future__ import annotations

import os
import random

import pytest

from tests.chaos.params import ChaosParams
from tests.chaos.run import run_chaos

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1500)]


async def test_every_invariant_holds_after_chaos() -> None:
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1, 2**31))
    params = ChaosParams.short(seed)
    params.sessions = int(os.environ.get("CHAOS_SESSIONS", params.sessions))
    params.topups = int(os.environ.get("CHAOS_TOPUPS", params.topups))
    report = await run_chaos(params)
    print(report.table())
    assert report.sessions >= params.sessions and report.topups >= params.topups, report.table()
    assert report.holds, report.table()
