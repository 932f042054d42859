"""Temporal Schedules of EvPower: created on worker start, updated when their definition changed."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import structlog
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from workflows.reconciliation import ReconcileStaleTopUps, SweepInput

log = structlog.get_logger(__name__)

SWEEP_SCHEDULE_ID = "payments-reconcile-hourly"
SWEEP_WORKFLOW_ID = "payments-reconcile-sweep"
SWEEP_EVERY = timedelta(hours=1)


def sweep_schedule(task_queue: str, sweep: SweepInput | None = None) -> Schedule:
    """The hourly payment reconciliation: `ReconcileStaleTopUps`, never two at once."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReconcileStaleTopUps.run,
            sweep or SweepInput(),
            id=SWEEP_WORKFLOW_ID,
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=SWEEP_EVERY)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def _fingerprint(client: Client, schedule: Schedule) -> tuple[object, ...]:
    """What this code decides about a schedule, comparable between a wanted schedule and the
    server's description of the existing one (whose workflow input comes back encoded)."""
    action = schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    args = list(action.args)
    if not all(isinstance(arg, Payload) for arg in args):
        args = await client.data_converter.encode(args)
    return (
        action.workflow,
        action.id,
        action.task_queue,
        tuple(arg.data for arg in args),
        tuple((spec.every, spec.offset or timedelta(0)) for spec in schedule.spec.intervals),
        schedule.policy.overlap,
    )


async def ensure_schedule(client: Client, schedule_id: str, wanted: Schedule) -> str:
    """Create the schedule, or bring an existing one up to `wanted` (an upgrade changed it).
    Its state (paused by an operator, say) is kept. Returns created | updated | unchanged."""
    try:
        await client.create_schedule(schedule_id, wanted)
        return "created"
    except ScheduleAlreadyRunningError:
        pass
    handle = client.get_schedule_handle(schedule_id)
    current: ScheduleDescription = await handle.describe()
    if await _fingerprint(client, current.schedule) == await _fingerprint(client, wanted):
        return "unchanged"

    def updated(existing: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=replace(wanted, state=existing.description.schedule.state))

    await handle.update(updated)
    log.info("schedule updated", schedule_id=schedule_id)
    return "updated"


async def ensure_schedules(client: Client, task_queue: str) -> None:
    """Every schedule this worker's task queue serves; safe for every worker to call on start."""
    outcome = await ensure_schedule(client, SWEEP_SCHEDULE_ID, sweep_schedule(task_queue))
    log.info("schedule ensured", schedule_id=SWEEP_SCHEDULE_ID, outcome=outcome)
