"""Metrics: the Temporal SDK's through our registry, and EvPower's money/outcome counters."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.runtime import BUFFERED_METRIC_KIND_COUNTER, BUFFERED_METRIC_KIND_HISTOGRAM
from temporalio.testing import WorkflowEnvironment

from activities.ledger import Ledger, LedgerMovement
from domain.errors import InsufficientFunds
from domain.ledger import Operation
from runtime.temporal_metrics import TemporalMetrics, TemporalMetricsCollector


@dataclass
class FakeMetric:
    name: str
    kind: int
    description: str | None = None
    unit: str | None = None


@dataclass
class FakeUpdate:
    metric: FakeMetric
    value: float
    attributes: dict[str, str]


class NoBuffer:
    def retrieve_updates(self) -> list[FakeUpdate]:
        return []


def test_sdk_updates_become_prometheus_counters_and_histograms() -> None:
    registry = CollectorRegistry()
    collector = TemporalMetricsCollector(NoBuffer())  # type: ignore[arg-type]
    registry.register(collector)
    polls = FakeMetric("temporal_request", BUFFERED_METRIC_KIND_COUNTER, "RPCs")
    latency = FakeMetric(
        "temporal_activity_schedule_to_start_latency", BUFFERED_METRIC_KIND_HISTOGRAM, None, "s"
    )
    queue = {"task_queue": "evpower"}
    collector.apply(
        [
            FakeUpdate(polls, 2, {"operation": "PollWorkflowTaskQueue"}),  # type: ignore[list-item]
            FakeUpdate(polls, 3, {"operation": "PollWorkflowTaskQueue"}),  # type: ignore[list-item]
            FakeUpdate(latency, 0.02, queue),  # type: ignore[list-item]
            FakeUpdate(latency, 12.0, queue),  # type: ignore[list-item]
        ]
    )
    assert (
        registry.get_sample_value("temporal_request_total", {"operation": "PollWorkflowTaskQueue"})
        == 5
    )
    name = "temporal_activity_schedule_to_start_latency"
    assert registry.get_sample_value(f"{name}_bucket", {**queue, "le": "0.025"}) == 1
    assert registry.get_sample_value(f"{name}_bucket", {**queue, "le": "+Inf"}) == 2
    assert registry.get_sample_value(f"{name}_count", queue) == 2


@pytest.mark.integration
async def test_a_client_on_the_metrics_runtime_reports_its_rpcs(
    temporal_env: WorkflowEnvironment,
) -> None:
    registry = CollectorRegistry()
    metrics = TemporalMetrics(registry)
    client = await Client.connect(
        temporal_env.client.service_client.config.target_host, runtime=metrics.runtime
    )
    await client.count_workflows()
    exposed = generate_latest(registry).decode()
    assert "temporal_request_total" in exposed, exposed[:2000]


@pytest.mark.integration
async def test_ledger_operations_are_counted_once_per_entry(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    def count(operation: str, outcome: str) -> float:
        labels = {"operation": operation, "outcome": outcome}
        return REGISTRY.get_sample_value("evpower_ledger_operations_total", labels) or 0.0

    before = {
        key: count(*key)
        for key in [
            ("credit_topup", "applied"),
            ("credit_topup", "replayed"),
            ("reserve", "insufficient_funds"),
        ]
    }
    ledger = Ledger(db_sessions)
    client_id = str(uuid.uuid4())
    credit = LedgerMovement(f"metrics:{client_id}", client_id, 1_000, provider="TEST")
    await ledger.apply(Operation.CREDIT_TOPUP, credit)
    await ledger.apply(Operation.CREDIT_TOPUP, credit)  # a retry: no new entry
    with pytest.raises(InsufficientFunds):
        await ledger.apply(
            Operation.RESERVE, LedgerMovement(f"reserve:{client_id}", client_id, 5_000)
        )
    assert {key: count(*key) - value for key, value in before.items()} == {
        ("credit_topup", "applied"): 1,
        ("credit_topup", "replayed"): 1,
        ("reserve", "insufficient_funds"): 1,
    }
