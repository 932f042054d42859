"""Temporal task-queue names: the worker's shared queue and one queue per gateway process."""

from __future__ import annotations

# The worker's queue for workflows and their activities (`TEMPORAL_TASK_QUEUE` overrides it).
DEFAULT_TASK_QUEUE = "evpower"


def gateway_task_queue(instance_id: str) -> str:
    """The queue a gateway serves its station commands on; `station_connections` names it."""
    return f"gateway-{instance_id}"
