"""Where a workflow's history events and billable Temporal actions go, from real histories.

    .venv/bin/python -m benchmarks.history_costs tests/replay/charging_one_hour_user_stop.json

Reads recorded histories (the replay fixtures are real histories, recorded by the tests
against a real Temporal test server) and prints, per history: events by type, billable
actions (tests/temporal_costs.py's rule), and the activities, timers, signals and updates in
order. It does not run anything: benchmarks/e2e.py runs sessions and a bare skeleton and
reads their histories from the server with `analyse_history`.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from tests.temporal_costs import billed_actions, local_activity_type


def steps(history: WorkflowHistory) -> list[str]:
    """The workflow's visible steps in order: activity names, timers, signals, updates."""
    out: list[str] = []
    for event in history.events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            out.append(
                f"activity {event.activity_task_scheduled_event_attributes.activity_type.name}"
            )
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            seconds = event.timer_started_event_attributes.start_to_fire_timeout.seconds
            out.append(f"timer {seconds}s")
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            out.append(f"signal {event.workflow_execution_signaled_event_attributes.signal_name}")
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            name = event.workflow_execution_update_accepted_event_attributes.accepted_request
            out.append(f"update {name.input.name}")
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            local = local_activity_type(event)
            if local is not None:
                out.append(f"local activity {local}")
            else:
                out.append(f"marker {event.marker_recorded_event_attributes.marker_name}")
        elif kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            out.append("upsert search attributes")
    return out


def analyse(path: Path) -> dict[str, Any]:
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    return analyse_history(path.name, history)


def analyse_history(name: str, history: WorkflowHistory) -> dict[str, Any]:
    """The figures of one history (a recorded fixture, or one fetched from a server)."""
    by_type = Counter(
        EventType.Name(event.event_type).removeprefix("EVENT_TYPE_") for event in history.events
    )
    billed = billed_actions(history)
    return {
        "history": name,
        "events": len(history.events),
        "events_by_type": dict(by_type.most_common()),
        "billable_actions": sum(billed.values()),
        "billable_by_type": dict(billed),
        "steps": steps(history),
    }


def render(result: dict[str, Any]) -> str:
    lines = [
        f"{result['history']}: {result['events']} events, "
        f"{result['billable_actions']} billable actions {result['billable_by_type']}",
        "  events by type: "
        + ", ".join(f"{name} {count}" for name, count in result["events_by_type"].items()),
        "  steps: " + "; ".join(f"{s} x{n}" if n > 1 else s for s, n in _runs(result["steps"])),
    ]
    return "\n".join(lines)


def _runs(items: list[str]) -> list[tuple[str, int]]:
    """Consecutive repeats folded: a meter signal every interval reads as one entry."""
    runs: list[tuple[str, int]] = []
    for item in items:
        if runs and runs[-1][0] == item:
            runs[-1] = (item, runs[-1][1] + 1)
        else:
            runs.append((item, 1))
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("histories", nargs="+", type=Path, help="history JSON files")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args()
    results = [analyse(path) for path in args.histories]
    print("\n".join(render(result) for result in results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
