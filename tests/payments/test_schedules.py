"""The hourly reconciliation Schedule: created once, however many workers start."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.client import ScheduleActionStartWorkflow
from temporalio.testing import WorkflowEnvironment

from runtime.schedules import SWEEP_SCHEDULE_ID, ensure_schedules

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
