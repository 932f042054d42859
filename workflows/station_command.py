"""StationCommand: one operator command to one charger (Reset, UnlockConnector, ...), as a
short workflow with its own timeline: who asked and why, where the charger was, its answer.

It locates the station's gateway exactly as ChargingSession does (the `station_connections`
row), refuses at once when the charger is connected nowhere (no waiting for a reconnect: an
operator is waiting for the answer), and sends the command once: a command the charger may
already have acted on is never repeated blindly. A dead gateway (nobody takes the command from
its queue) is the one case that re-locates and sends again, a bounded number of times.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError, TimeoutType

with workflow.unsafe.imports_passed_through():
    from activities.station_commands import (
        STATION_COMMAND_TARGET,
        CommandTarget,
        CommandTargetQuery,
    )
    from domain.contracts.operator_commands import (
        WORKFLOW_NAME,
        Outcome,
        StationCommandRequest,
        StationCommandResult,
    )
    from domain.contracts.station_commands import (
        INVALID_COMMAND,
        STATION_CALL_ERROR,
        STATION_NOT_CONNECTED,
        STATION_TIMEOUT,
        StationCommand,
    )

# Dead gateways tolerated before the charger counts as unreachable.
ATTEMPTS = 2
# A live gateway takes a command from its queue at once; waiting longer only delays the
# verdict on a dead one.
SCHEDULE_TO_START = timedelta(seconds=5)
# The gateway's own OCPP_COMMAND_TIMEOUT_S (30 s by default) ends a silent charger's wait
# first, with StationTimeout; this only bounds a gateway that died holding the command.
START_TO_CLOSE = timedelta(seconds=120)
LOOKUP_TIMEOUT = timedelta(seconds=10)
# The lookup is a read: a few tries ride out a blip; a database that stays away fails the
# workflow instead of holding an operator's command for ever.
LOOKUP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=5), maximum_attempts=5
)
ONCE = RetryPolicy(maximum_attempts=1)


@workflow.defn(name=WORKFLOW_NAME)
class StationCommandWorkflow:
    @workflow.run
    async def run(self, request: StationCommandRequest) -> StationCommandResult:
        workflow.set_current_details(
            f"**{request.command}** on {request.station_id} by {request.operator}: {request.reason}"
        )
        for _ in range(ATTEMPTS):
            target = await self._target(request)
            if not target.known:
                return StationCommandResult(Outcome.UNKNOWN_STATION, message="no such station")
            if target.live_sessions and not request.force:
                return StationCommandResult(
                    Outcome.BUSY,
                    message="a session is running there; send force to do it anyway",
                    live_sessions=target.live_sessions,
                )
            if target.gateway_queue is None:
                return _offline()
            result = await self._send(request, target.gateway_queue)
            if result is not None:
                return result
        return _offline()

    async def _target(self, request: StationCommandRequest) -> CommandTarget:
        target: CommandTarget = await workflow.execute_activity(
            STATION_COMMAND_TARGET,
            CommandTargetQuery(request.station_id, request.guard_connector_id),
            result_type=CommandTarget,
            start_to_close_timeout=LOOKUP_TIMEOUT,
            retry_policy=LOOKUP_RETRY,
            summary="which gateway holds the station",
        )
        return target

    async def _send(
        self, request: StationCommandRequest, queue: str
    ) -> StationCommandResult | None:
        """The charger's answer, a failure that is final, or None for a dead gateway."""
        try:
            answer: dict[str, Any] = await workflow.execute_activity(
                request.command,
                StationCommand(request.station_id, dict(request.params)),
                result_type=dict,
                task_queue=queue,
                schedule_to_start_timeout=SCHEDULE_TO_START,
                start_to_close_timeout=START_TO_CLOSE,
                retry_policy=ONCE,
                summary=f"{request.command} {request.params}"[:200],
            )
        except ActivityError as exc:
            return _failure(exc)
        status = answer.get("status")
        payload = answer.get("payload")
        return StationCommandResult(
            Outcome.ANSWERED,
            status=str(status) if status is not None else None,
            response=payload if isinstance(payload, dict) else {},
        )


_FAILURES = {
    STATION_NOT_CONNECTED: Outcome.OFFLINE,
    STATION_TIMEOUT: Outcome.NO_ANSWER,
    STATION_CALL_ERROR: Outcome.CALL_ERROR,
    INVALID_COMMAND: Outcome.INVALID,
}


def _failure(exc: ActivityError) -> StationCommandResult | None:
    cause = exc.cause
    if isinstance(cause, TimeoutError) and cause.type is TimeoutType.SCHEDULE_TO_START:
        return None  # nobody serves that queue: look where the charger is now
    if isinstance(cause, ApplicationError) and cause.type in _FAILURES:
        return StationCommandResult(_FAILURES[cause.type], message=cause.message)
    # Anything else (the gateway died mid-call): the charger may have acted; say so.
    return StationCommandResult(Outcome.NO_ANSWER, message=str(cause or exc))


def _offline() -> StationCommandResult:
    return StationCommandResult(Outcome.OFFLINE, message="the charger is not connected")
