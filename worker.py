"""Builds and runs the Temporal worker: workflows plus ledger, session and payment activities."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.worker import Worker

from activities.failures import ACTIVITY_INTERCEPTORS
from activities.ledger import Ledger, LedgerActivities
from activities.payments import payment_activities
from activities.review import ReviewActivities
from activities.sessions import charging_activities
from activities.station_changes import StationChangeActivities
from activities.station_commands import StationCommandActivities
from payments.config import build_provider
from payments.provider import PaymentProvider
from runtime.provider_secret import provider_settings
from runtime.schedules import ensure_schedules
from runtime.services import Services
from workflows.balance_adjustment import BalanceAdjustmentWorkflow
from workflows.charging import ChargingSessionWorkflow
from workflows.reconciliation import PAYMENT_WORKFLOWS
from workflows.review import ReviewWorkflow
from workflows.station_change import StationChangeWorkflow
from workflows.station_command import StationCommandWorkflow

log = structlog.get_logger(__name__)


def payments_worker_parts(
    db_sessions: async_sessionmaker[AsyncSession], provider: PaymentProvider
) -> tuple[list[type], list[Callable[..., Any]]]:
    """Payment workflows and activities. The ledger's `credit_topup` activity, which the TopUp
    workflow also runs, is registered with the other LedgerActivities."""
    return list(PAYMENT_WORKFLOWS), payment_activities(db_sessions, provider)


def worker_parts(
    services: Services, provider: PaymentProvider
) -> tuple[Sequence[type], Sequence[Callable[..., Any]]]:
    """Every workflow class and activity callable this worker serves."""
    ledger = LedgerActivities(Ledger(services.db_sessions))
    payment_workflows, payment_activities = payments_worker_parts(services.db_sessions, provider)
    workflows: list[type] = [
        ChargingSessionWorkflow,
        StationCommandWorkflow,
        StationChangeWorkflow,
        ReviewWorkflow,
        BalanceAdjustmentWorkflow,
        *payment_workflows,
    ]
    activities: list[Callable[..., Any]] = [
        ledger.credit_topup,
        ledger.reserve,
        ledger.capture,
        ledger.release,
        ledger.refund,
        ledger.adjust_credit,
        ledger.adjust_debit,
        *charging_activities(services.db_sessions),
        *ReviewActivities(services.db_sessions).activities(),
        *StationCommandActivities(services.db_sessions).activities(),
        *StationChangeActivities(services.db_sessions).activities(),
        *payment_activities,
    ]
    return workflows, activities


def build_worker(services: Services, provider: PaymentProvider) -> Worker:
    workflows, activities = worker_parts(services, provider)
    return Worker(
        services.temporal,
        task_queue=services.settings.temporal_task_queue,
        workflows=workflows,
        activities=activities,
        interceptors=ACTIVITY_INTERCEPTORS,
        max_concurrent_activities=50,
        max_cached_workflows=services.settings.temporal_max_cached_workflows,
    )


async def run_worker(services: Services, stop: asyncio.Event) -> None:
    """Run until `stop` is set; in-flight activities finish or are retried elsewhere."""
    provider = build_provider(provider_settings(services.settings))
    try:
        worker = build_worker(services, provider)
        await ensure_schedules(services.temporal, services.settings.temporal_task_queue)
        log.info("worker started", task_queue=services.settings.temporal_task_queue)
        async with worker:
            await stop.wait()
    finally:
        await provider.aclose()
    log.info("worker stopped")


if __name__ == "__main__":
    from runtime.cli import main

    raise SystemExit(main(["worker", *sys.argv[1:]]))
