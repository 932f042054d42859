"""The baselines of benchmarks/e2e.py, workflows with a charging session's conversation whose
activities do nothing, and their worker:

- `SessionSkeleton`: the commands of a real session at commit 6ce8ff6 (the same activities,
  updates, signals, timers and search-attribute upserts, in the same order);
- `BareSessionSkeleton`: only what the conversation needs, the issue's "bare workflow of the
  same shape": the updates and signals, the start timeout and stop grace, and the two gateway
  commands (RemoteStart, RemoteStop) as activities; no database step, no upsert.

    .venv/bin/python -m benchmarks.e2e_skeleton --address HOST:PORT --namespace NS --task-queue Q

Whatever the real sessions cost Temporal beyond this skeleton is EvPower's own doing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from domain.contracts.search_attributes import SESSION_STATE

WORKFLOW_NAME = "SessionSkeleton"
BARE_WORKFLOW_NAME = "BareSessionSkeleton"
# The commands of a short real session with a user stop at commit 6ce8ff6 (read from
# benchmarks/e2e.py's histories), in order, kept fixed so later runs compare against the
# same baseline: 9 activities, 3 timers, 3 updates, 2 signals, 2 upserts.
ADMIT = ("open_session", "reserve")
LAUNCH = ("remote_start",)
STARTED = ("record_session",)
STOPPING = ("remote_stop",)
SETTLE = ("assess_meter_readings", "capture", "release", "record_session")
START_TIMEOUT = timedelta(minutes=10)
TIME_CAP = timedelta(hours=12)
STOP_GRACE = timedelta(minutes=2)
ACTIVITY_TIMEOUT = timedelta(seconds=30)


@activity.defn(name="skeleton_step")
async def skeleton_step(step: str) -> str:
    return step


class _Conversation:
    """The updates and signals a session answers; the subclasses choose the commands between."""

    admit: tuple[str, ...] = ()
    started: tuple[str, ...] = ()
    settle: tuple[str, ...] = ()
    upserts = False

    def __init__(self) -> None:
        self._admitted = False
        self._transaction = False
        self._stop_requested = False
        self._stopped = False
        self._stopping = False
        self._energy_wh = 0

    async def _steps(self, names: tuple[str, ...]) -> None:
        for name in names:
            await workflow.execute_activity(
                skeleton_step, name, start_to_close_timeout=ACTIVITY_TIMEOUT
            )

    def _state(self, value: str) -> None:
        if self.upserts:
            workflow.upsert_search_attributes([SESSION_STATE.value_set(value)])

    async def _session(self, session_id: str) -> str:
        await self._steps(self.admit)
        self._admitted = True
        await self._steps(LAUNCH)
        await workflow.wait_condition(lambda: self._transaction, timeout=START_TIMEOUT)
        self._state("charging")
        await self._steps(self.started)
        with contextlib.suppress(TimeoutError):  # the 12 h cap ends the session too
            await workflow.wait_condition(lambda: self._stop_requested, timeout=TIME_CAP)
        await self._steps(STOPPING)
        self._stopping = True
        with contextlib.suppress(TimeoutError):  # a charger that never reports: settle anyway
            await workflow.wait_condition(lambda: self._stopped, timeout=STOP_GRACE)
        await self._steps(self.settle)
        self._state("completed")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return session_id

    @workflow.update
    async def start(self, session_id: str) -> str:
        await workflow.wait_condition(lambda: self._admitted)
        return session_id

    @workflow.update
    def transaction_started(self, transaction_id: int) -> str:
        self._transaction = True
        return "accepted"

    @workflow.update
    async def stop(self, session_id: str) -> str:
        self._stop_requested = True
        await workflow.wait_condition(lambda: self._stopping)
        return "stopping"

    @workflow.signal
    def meter_sample(self, energy_wh: int) -> None:
        self._energy_wh = energy_wh

    @workflow.signal
    def transaction_stopped(self, meter_stop_wh: int) -> None:
        self._stopped = True


@workflow.defn(name=WORKFLOW_NAME)
class SessionSkeleton(_Conversation):
    admit, started, settle, upserts = ADMIT, STARTED, SETTLE, True

    @workflow.run
    async def run(self, session_id: str) -> str:
        return await self._session(session_id)


@workflow.defn(name=BARE_WORKFLOW_NAME)
class BareSessionSkeleton(_Conversation):
    @workflow.run
    async def run(self, session_id: str) -> str:
        return await self._session(session_id)


async def run_worker(address: str, namespace: str, task_queue: str) -> None:
    client = await Client.connect(address, namespace=namespace)
    # max_concurrent_activities as worker.py sets it, so both workers are shaped alike.
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[SessionSkeleton, BareSessionSkeleton],
        activities=[skeleton_step],
        max_concurrent_activities=50,
    )
    async with worker:
        print("ready", flush=True)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    asyncio.run(run_worker(args.address, args.namespace, args.task_queue))


if __name__ == "__main__":
    main()
