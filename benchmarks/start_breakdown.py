"""Where a REST start's time goes, read from the session's history on the server.

A start is answered once the workflow's first task has run the admission (a local activity)
and completed the `start` update. The history's event times split the REST round trip into:

- before the workflow existed: the API's own work (auth, idempotency record) and Temporal
  creating the workflow and its first task;
- waiting for a worker: the workflow started (its first task scheduled with it) → that task
  picked up by the worker;
- in the worker: the task itself (sandboxed workflow code and the admission's transaction);
- after the update completed: Temporal answering the API, and the API answering the driver.

The load client and the servers share one machine and one clock.
"""

from __future__ import annotations

from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from benchmarks.e2e_load import TimedStart, percentile

PARTS = ("before the workflow existed", "waiting for a worker", "in the worker", "after the update")


def _first(history: WorkflowHistory, kind: EventType.ValueType) -> float | None:
    """Epoch seconds of the first event of `kind`."""
    for event in history.events:
        if event.event_type == kind:
            return float(event.event_time.ToMicroseconds()) / 1e6
    return None


def split(start: TimedStart, history: WorkflowHistory) -> dict[str, float] | None:
    """Seconds in each part of PARTS; None for a history without the first task's events."""
    started = _first(history, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
    picked = _first(history, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED)
    done = _first(history, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    answered = _first(history, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED)
    if started is None or picked is None or done is None or answered is None:
        return None
    end = start.sent_at + start.latency_s
    times = (started - start.sent_at, picked - started, done - picked, end - answered)
    return dict(zip(PARTS, times, strict=True))


def summary(splits: list[dict[str, float]]) -> dict[str, Any]:
    """p50 and max of each part, in ms, over the starts given."""
    return {
        part: {
            "p50_ms": percentile([s[part] for s in splits], 0.5) * 1000,
            "max_ms": max(s[part] for s in splits) * 1000,
        }
        for part in PARTS
    } | {"starts": len(splits)}


def render(figures: dict[str, Any]) -> str:
    parts = ", ".join(
        f"{part} p50 {figures[part]['p50_ms']:.0f} / max {figures[part]['max_ms']:.0f} ms"
        for part in PARTS
    )
    return f"{parts} ({figures['starts']} starts)"
