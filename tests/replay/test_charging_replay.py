"""Recorded ChargingSession histories must replay against today's workflow code.

A failure here means a change is not replay-safe: running sessions would break on deploy.
Guard the change with `workflow.patched(...)` (see docs/charging.md). The fixtures are real
histories recorded by tests/charging with EVPOWER_RECORD_HISTORIES=1; they are refreshed only
together with a deliberate, patched change, never to make this test pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.charging import ChargingSessionWorkflow

FIXTURES = sorted(Path(__file__).parent.glob("charging_*.json"))


def _read(path: Path) -> str:
    return path.read_text()


def test_there_are_histories_to_replay() -> None:
    assert len(FIXTURES) >= 5


@pytest.mark.parametrize("fixture", FIXTURES, ids=[path.stem for path in FIXTURES])
async def test_recorded_history_replays_deterministically(fixture: Path) -> None:
    history = WorkflowHistory.from_json(fixture.stem, _read(fixture))
    replayer = Replayer(workflows=[ChargingSessionWorkflow])
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
