"""Builds and runs the Temporal worker: workflows plus ledger, session and payment activities."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from temporalio.worker import Worker

from activities.ledger import Ledger, LedgerActivities
from runtime.services import Services

log = structlog.get_logger(__name__)


def worker_parts(services: Services) -> tuple[Sequence[type], Sequence[Callable[..., Any]]]:
    """Every workflow class and activity callable this worker serves."""
    ledger = LedgerActivities(Ledger(services.sessions))
    workflows: list[type] = []
    activities: list[Callable[..., Any]] = [
        ledger.credit_topup,
        ledger.reserve,
        ledger.capture,
        ledger.release,
    ]
    return workflows, activities


def build_worker(services: Services) -> Worker:
    workflows, activities = worker_parts(services)
    return Worker(
        services.temporal,
        task_queue=services.settings.temporal_task_queue,
        workflows=workflows,
        activities=activities,
        max_concurrent_activities=50,
    )


async def run_worker(services: Services, stop: asyncio.Event) -> None:
    """Run until `stop` is set; in-flight activities finish or are retried elsewhere."""
    worker = build_worker(services)
    log.info("worker started", task_queue=services.settings.temporal_task_queue)
    async with worker:
        await stop.wait()
    log.info("worker stopped")


if __name__ == "__main__":
    from runtime.cli import main

    raise SystemExit(main(["worker", *__import__("sys").argv[1:]]))
