"""Recorded StationChange histories must replay against today's workflow code (recorded by
tests/ops/test_station_change_workflows.py with EVPOWER_RECORD_HISTORIES=1): an applied
change, a key rotation and a refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.station_change import StationChangeWorkflow

FIXTURES = sorted(Path(__file__).parent.glob("station_change_*.json"))


def _read(path: Path) -> str:
    return path.read_text()


def test_there_are_histories_to_replay() -> None:
    assert len(FIXTURES) >= 3


@pytest.mark.parametrize("fixture", FIXTURES, ids=[path.stem for path in FIXTURES])
async def test_recorded_history_replays_deterministically(fixture: Path) -> None:
    history = WorkflowHistory.from_json(fixture.stem, _read(fixture))
    replayer = Replayer(workflows=[StationChangeWorkflow])
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
