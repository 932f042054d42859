"""Recorded TopUp, PaymentReconciliation and sweep histories must replay against today's code.

A failure here means a change is not replay-safe: top-ups in flight (up to ~15 minutes each)
and reconciliations would break on deploy. Guard the change with `workflow.patched(...)` (see
docs/payments.md). The fixtures are real histories recorded by tests/payments with
EVPOWER_RECORD_HISTORIES=1; they are refreshed only together with a deliberate, patched
change, never to make this test pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.reconciliation import PAYMENT_WORKFLOWS

FIXTURES = sorted(Path(__file__).parent.glob("payments_*.json"))


def _read(path: Path) -> str:
    return path.read_text()


def test_every_payment_workflow_has_histories_to_replay() -> None:
    recorded = {path.stem.split("_")[1] for path in FIXTURES}
    assert recorded >= {"topup", "reconciliation", "sweep"}
    assert len(FIXTURES) >= 10


@pytest.mark.parametrize("fixture", FIXTURES, ids=[path.stem for path in FIXTURES])
async def test_recorded_history_replays_deterministically(fixture: Path) -> None:
    history = WorkflowHistory.from_json(fixture.stem, _read(fixture))
    replayer = Replayer(workflows=list(PAYMENT_WORKFLOWS))
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
