"""StationChange: an operator's change to the network — a location, a station, a connector's
price, a charger's key — as a short workflow with its own timeline: who, why, what changed,
and whether it was applied or refused.

One activity writes the change in one transaction; a refusal (a taken id, a location still in
use) is final and reported as the workflow's result, never retried. The workflow carries no
secret: a new charger key arrives here as its keyed hash only.
"""

from __future__ import annotations

import json
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.station_changes import APPLY_STATION_CHANGE, REFUSAL_CODES, StationChangeDone
    from domain.contracts.station_changes import (
        WORKFLOW_NAME,
        ChangeAction,
        StationChangeRequest,
        StationChangeResult,
        key_ref,
    )

DB_TIMEOUT = timedelta(seconds=30)
# An operator waits for the answer: a few tries ride out a database blip; one that stays away
# fails the workflow (nothing written) rather than applying the change hours later.
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=5), maximum_attempts=5
)
MAX_DETAILS = 1000


def describe(request: StationChangeRequest) -> str:
    """What the Temporal UI shows: the action, its target, who and why, and the change."""
    change = json.dumps(request.changes, sort_keys=True, default=str)
    if request.password_hash is not None:
        change += " + a new AuthorizationKey (its hash)"
    return (
        f"**{request.action}** {request.target} by {request.operator}: {request.reason}\n{change}"
    )[:MAX_DETAILS]


@workflow.defn(name=WORKFLOW_NAME)
class StationChangeWorkflow:
    @workflow.run
    async def run(self, request: StationChangeRequest) -> StationChangeResult:
        details = describe(request)
        workflow.set_current_details(details)
        try:
            done: StationChangeDone = await workflow.execute_activity(
                APPLY_STATION_CHANGE,
                request,
                result_type=StationChangeDone,
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
                summary=f"{ChangeAction(request.action).value} {request.target}"[:200],
            )
        except ActivityError as exc:
            cause = exc.cause
            if not (isinstance(cause, ApplicationError) and cause.type in REFUSAL_CODES):
                raise
            code = REFUSAL_CODES[cause.type]
            workflow.set_current_details(f"{details}\n**refused** {code}: {cause.message}")
            return StationChangeResult(
                "refused", code=code, message=cause.message, fingerprint=request.fingerprint
            )
        workflow.set_current_details(f"{details}\n**applied**")
        return StationChangeResult(
            "applied",
            replayed=done.replayed,
            previous_key_valid_until=done.previous_key_valid_until,
            fingerprint=request.fingerprint,
            key_ref=None if request.password_hash is None else key_ref(request.password_hash),
        )
