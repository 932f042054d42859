"""The hourly reconciliation Schedule: created once however many workers start, and brought up
to date on upgrade when its definition changed (an operator's pause survives)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from temporalio.client import (
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.testing import WorkflowEnvironment

from runtime.schedules import SWEEP_SCHEDULE_ID, ensure_schedule, ensure_schedules, sweep_schedule
from workflows.reconciliation import SweepInput

pytestmark = pytest.mark.integration


async def test_ensure_schedules_is_idempotent(temporal_env: WorkflowEnvironment) -> None:
    client = temporal_env.client
    task_queue = f"payments-{uuid.uuid4().hex}"
    await ensure_schedules(client, task_queue)
    await ensure_schedules(client, task_queue)  # a second worker starting
    handle = client.get_schedule_handle(SWEEP_SCHEDULE_ID)
    try:
        description = await handle.describe()
        action = description.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == "ReconcileStaleTopUps"
        assert action.task_queue == task_queue
        assert [spec.every for spec in description.schedule.spec.intervals] == [timedelta(hours=1)]
    finally:
        await handle.delete()


async def test_a_changed_definition_is_applied_on_upgrade(
    temporal_env: WorkflowEnvironment,
) -> None:
    client = temporal_env.client
    schedule_id = f"sweep-upgrade-{uuid.uuid4().hex[:8]}"
    old = replace(
        sweep_schedule("old-queue", SweepInput(limit=50)),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=6))]),
        state=ScheduleState(paused=True, note="paused by ops"),
    )
    assert await ensure_schedule(client, schedule_id, old) == "created"
    handle = client.get_schedule_handle(schedule_id)
    try:
        wanted = sweep_schedule("new-queue")
        assert await ensure_schedule(client, schedule_id, wanted) == "updated"
        described = (await handle.describe()).schedule
        action = described.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.task_queue == "new-queue"
        assert [spec.every for spec in described.spec.intervals] == [timedelta(hours=1)]
        [payload] = action.args
        assert b'"limit":200' in payload.data.replace(b" ", b"")
        assert described.state.paused  # the operator's decision stands
        assert await ensure_schedule(client, schedule_id, wanted) == "unchanged"
    finally:
        await handle.delete()
