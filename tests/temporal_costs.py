"""Counting what a workflow history costs in billable Temporal actions (cost tests)."""

from __future__ import annotations

import json
from collections import Counter

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

# Event types that Temporal bills as actions (workflow start, each activity attempt, timer,
# signal, accepted update, search-attribute upsert, marker: a side effect or local activity).
BILLED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_TIMER_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    EventType.EVENT_TYPE_MARKER_RECORDED,
}


# What versioning writes is not billed (Temporal Cloud's list of actions): the marker of a
# `workflow.patched` and the upsert of the `TemporalChangeVersion` search attribute with it.
PATCH_MARKER = "core_patch"
CHANGE_VERSION = "TemporalChangeVersion"


def _versioning(event: HistoryEvent) -> bool:
    if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
        return event.marker_recorded_event_attributes.marker_name == PATCH_MARKER
    if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
        return set(fields.indexed_fields) == {CHANGE_VERSION}
    return False


def billed_actions(history: WorkflowHistory) -> Counter[str]:
    """Billed actions by event type (without the EVENT_TYPE_ prefix); activity retries,
    billed too, count as ACTIVITY_RETRY."""
    counted: Counter[str] = Counter()
    for event in history.events:
        if event.event_type in BILLED and not _versioning(event):
            counted[EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")] += 1
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            retries = event.activity_task_started_event_attributes.attempt - 1
            if retries > 0:
                counted["ACTIVITY_RETRY"] += retries
    return counted


LOCAL_ACTIVITY_MARKER = "core_local_activity"


def local_activity_type(event: HistoryEvent) -> str | None:
    """The activity type a local activity's marker records (None for any other event)."""
    marker = event.marker_recorded_event_attributes
    if marker.marker_name != LOCAL_ACTIVITY_MARKER:
        return None
    data = json.loads(marker.details["data"].payloads[0].data)
    activity_type: str = data["activity_type"]
    return activity_type
