"""Counting what a workflow history costs in billable Temporal actions (cost tests)."""

from __future__ import annotations

from collections import Counter

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

# Event types that Temporal bills as actions (workflow start, each activity attempt, timer,
# signal, accepted update, search-attribute upsert, marker).
BILLED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_TIMER_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    EventType.EVENT_TYPE_MARKER_RECORDED,
}


def billed_actions(history: WorkflowHistory) -> Counter[str]:
    """Billed actions by event type (without the EVENT_TYPE_ prefix); activity retries,
    billed too, count as ACTIVITY_RETRY."""
    counted: Counter[str] = Counter()
    for event in history.events:
        if event.event_type in BILLED:
            counted[EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")] += 1
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            retries = event.activity_task_started_event_attributes.attempt - 1
            if retries > 0:
                counted["ACTIVITY_RETRY"] += retries
    return counted
