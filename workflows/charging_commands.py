"""Activity calls of the ChargingSession workflow: records, ledger, and gateway commands that
find the station's current gateway again when the one they were sent to is dead or gone."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    FailureError,
    TimeoutError,
    TimeoutType,
)

with workflow.unsafe.imports_passed_through():
    from activities.card_sessions import OPEN_CARD_SESSION, OpenCardSession, OpenedCardSession
    from activities.ledger import (
        SETTLE_SESSION,
        LedgerMovement,
        LedgerResult,
        SessionSettlement,
    )
    from activities.sessions import (
        ADMIT_SESSION,
        DISCARD_SESSION,
        OPEN_SESSION,
        RECORD_SESSION,
        AdmitSession,
        Admitted,
        OpenedSession,
        OpenSession,
    )
    from activities.stations import LOCATE_STATION, LocateStation, StationLocation
    from activities.transactions import (
        ASSESS_METER_READINGS,
        RECORDED_START,
        RECORDED_TRANSACTION,
        MeterAssessment,
        MeterReadingsRequest,
        RecordedStart,
        RecordedStartRequest,
        RecordedTransaction,
        RecordedTransactionRequest,
    )
    from domain.contracts.charging import ChargingRequest, ChargingSettings, SessionView
    from domain.contracts.session_record import SessionRecord, session_record
    from domain.contracts.station_commands import (
        INVALID_COMMAND,
        REMOTE_START,
        REMOTE_STOP,
        STATION_CALL_ERROR,
        STATION_NOT_CONNECTED,
        RemoteStartRequest,
        RemoteStopRequest,
    )
    from workflows.database_steps import database_activity

# A session's record and ledger steps are single-row writes: an attempt stuck for 15 s is
# retried sooner than database_steps' default, while a driver waits on the answer.
SESSION_STEP_TIMEOUT = timedelta(seconds=15)
# A session's capture and release are one activity and one ledger transaction (settle_session)
# instead of an activity each: one activity and one workflow task less per session.
ONE_STEP_SETTLEMENT = "one-step-settlement"
# The database steps of every session (admission, records, the meter check, settlement) run
# as local activities: in the worker that runs the workflow, inside its workflow task, a
# marker in the history instead of an activity task and the workflow task that followed it.
# A database that does not answer within LOCAL_PATIENCE hands the step to a regular activity,
# retried until it answers (running a step again is a no-op): an outage then costs what it
# did, not a workflow task heartbeat every few seconds while a local attempt waits.
LOCAL_DATABASE_STEPS = "local-database-steps"
LOCAL_ATTEMPT_TIMEOUT = timedelta(seconds=5)
LOCAL_PATIENCE = timedelta(seconds=8)
LOCAL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_attempts=3)
# A command to a charger is sent once per attempt; resending is the workflow's decision.
ONCE = RetryPolicy(maximum_attempts=1)


# The charger answered with a CallError, or the command never left the gateway.
_REFUSALS = frozenset({STATION_CALL_ERROR, INVALID_COMMAND})


class CommandOutcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"  # the charger answered no
    UNREACHABLE = "unreachable"  # no gateway holds the station
    UNCERTAIN = "uncertain"  # sent, but no answer: the charger may have acted on it


def ledger_movement(operation: str, view: SessionView, amount_tyiyn: int) -> LedgerMovement:
    """The session's movement for `operation`; its op_key makes any retry a no-op."""
    return LedgerMovement(
        f"{operation}:{view.session_id}", view.client_id, amount_tyiyn, view.session_id
    )


def _schedule_to_start_timeout(exc: ActivityError) -> bool:
    cause = exc.cause
    return isinstance(cause, TimeoutError) and cause.type is TimeoutType.SCHEDULE_TO_START


def _error_type(exc: ActivityError) -> str | None:
    cause = exc.cause
    return cause.type if isinstance(cause, ApplicationError) else None


async def open_session_for(request: ChargingRequest) -> OpenedSession:
    return await open_session(
        OpenSession(
            request.session_id,
            request.client_id,
            request.station_id,
            request.connector_id,
            request.amount_tyiyn,
        )
    )


async def admit_session(request: ChargingRequest) -> Admitted:
    """Check, claim and reserve in one transaction (activities/admission.py)."""
    card = request.card
    return await _local_first(
        ADMIT_SESSION,
        AdmitSession(
            request.session_id,
            request.client_id,
            request.station_id,
            request.connector_id,
            request.amount_tyiyn,
            id_tag=card.id_tag if card else None,
            min_balance_tyiyn=card.min_balance_tyiyn if card else 0,
        ),
        f"admit: check {request.station_id}/{request.connector_id}, claim it, reserve",
        Admitted,
    )


async def reserve(view: SessionView, amount_tyiyn: int) -> None:
    await move_money("reserve", ledger_movement("reserve", view, amount_tyiyn))


async def settle(view: SessionView, cost_tyiyn: int) -> int:
    """Capture the cost and release the rest of the reservation (zero amounts skipped);
    returns what was released. One activity and one ledger transaction (both op_keys kept)
    since ONE_STEP_SETTLEMENT; before it, `capture` and `release` were an activity each."""
    refund = view.reserved_tyiyn - cost_tyiyn
    if cost_tyiyn <= 0 and refund <= 0:
        return refund  # nothing was held: nothing to move in either version
    if workflow.patched(ONE_STEP_SETTLEMENT):
        await _local_first(
            SETTLE_SESSION,
            SessionSettlement(view.session_id, view.client_id, view.reserved_tyiyn, cost_tyiyn),
            f"settle: capture {cost_tyiyn}, release {refund} tyiyn",
            None,
        )
        return refund
    if cost_tyiyn > 0:
        await move_money("capture", ledger_movement("capture", view, cost_tyiyn))
    if refund > 0:
        await move_money("release", ledger_movement("release", view, refund))
    return refund


async def find_open_transaction(view: SessionView) -> int | None:
    """A transaction the charger started with this session's idTag that we never heard of."""
    location = await locate_station(
        LocateStation(view.station_id, view.connector_id, view.session_id)
    )
    return location.open_transaction_id


async def recorded_transaction(station_id: str, transaction_id: int) -> RecordedTransaction:
    """What the gateway stored for the transaction: its stop, else its newest meter value."""
    return await _session_step(
        RECORDED_TRANSACTION,
        RecordedTransactionRequest(station_id, transaction_id),
        f"what the gateway recorded for transaction {transaction_id}",
        RecordedTransaction,
    )


async def recorded_start(view: SessionView) -> RecordedStart:
    """The StartTransaction the gateway recorded for the session but has not passed on."""
    return await _session_step(
        RECORDED_START,
        RecordedStartRequest(view.station_id, view.connector_id, view.session_id),
        "a StartTransaction recorded but not passed on?",
        RecordedStart,
    )


async def assess_meter_readings(request: MeterReadingsRequest) -> MeterAssessment:
    """The meter check of what the session is about to bill (domain.meter_readings)."""
    return await _local_first(
        ASSESS_METER_READINGS,
        request,
        f"check the meter readings of transaction {request.transaction_id}",
        MeterAssessment,
    )


async def open_card_session(request: OpenCardSession) -> OpenedCardSession:
    return await _session_step(
        OPEN_CARD_SESSION,
        request,
        f"card {request.id_tag}: check {request.station_id}/{request.connector_id} and claim it",
        OpenedCardSession,
    )


async def open_session(request: OpenSession) -> OpenedSession:
    return await _session_step(
        OPEN_SESSION,
        request,
        f"check {request.station_id}/{request.connector_id} and claim it",
        OpenedSession,
    )


async def discard_session(session_id: str) -> None:
    await _session_step(DISCARD_SESSION, session_id, "drop the claim of a refused start", None)


async def record_session(view: SessionView) -> None:
    """Write the session's row: its record fields only (the view's own stay in the workflow)."""
    record: SessionRecord = session_record(view)
    await _local_first(RECORD_SESSION, record, f"record {record.state}", None)


async def move_money(operation: str, movement: LedgerMovement) -> LedgerResult:
    """`reserve`, `capture` or `release` through the ledger, keyed by the movement's op_key."""
    return await _session_step(
        operation, movement, f"{operation} {movement.amount_tyiyn} tyiyn", LedgerResult
    )


async def locate_station(request: LocateStation) -> StationLocation:
    return await _session_step(
        LOCATE_STATION, request, "which gateway holds the station", StationLocation
    )


# Commands wait for the charger to reconnect (a `station_connected` signal from the gateway
# that holds it now) instead of polling on a timer; histories from before replay the old way.
FOLLOW_THE_CHARGER = "commands-follow-charger"


@dataclass
class GatewayCommands:
    """Sends commands to the gateway holding the station, re-locating it when needed."""

    station_id: str
    connector_id: int
    settings: ChargingSettings
    gateway_queue: str | None
    connections: int = 0  # station_connected signals received: each names the holder now
    _dead: bool = False  # the last attempt found nobody serving its queue

    def station_connected(self, gateway_queue: str) -> None:
        """The charger (re)connected to `gateway_queue`: the next command goes there, and a
        command waiting for the charger is sent at once."""
        self.gateway_queue = gateway_queue
        self.connections += 1

    async def remote_start(self, id_tag: str, energy_limit_wh: int) -> CommandOutcome:
        request = RemoteStartRequest(self.station_id, self.connector_id, id_tag, energy_limit_wh)
        return await self._send(
            REMOTE_START, request, f"RemoteStart, limit {energy_limit_wh} Wh", patient=True
        )

    async def remote_stop(self, transaction_id: int, *, patient: bool = True) -> CommandOutcome:
        """With `patient`, a station connected nowhere is waited for a while."""
        request = RemoteStopRequest(self.station_id, transaction_id)
        return await self._send(
            REMOTE_STOP, request, f"RemoteStop transaction {transaction_id}", patient=patient
        )

    async def _send(
        self, name: str, request: object, summary: str, *, patient: bool
    ) -> CommandOutcome:
        deadline = workflow.now() + timedelta(
            seconds=self.settings.command_patience_s if patient else 0
        )
        # The first attempt is the same in every version: the patch marker (and the search
        # attribute upsert that comes with it) is paid only when a command is not delivered.
        if self.gateway_queue is None:
            await self._relocate()
        failed_queue = self.gateway_queue
        self._dead = False
        if failed_queue is not None:
            outcome = await self._attempt(name, request, summary)
            if outcome is not None:
                return outcome
        if workflow.patched(FOLLOW_THE_CHARGER):
            return await self._follow(name, request, summary, deadline, failed_queue)
        return await self._send_polling(name, request, summary, deadline, dead=self._dead)

    async def _follow(
        self,
        name: str,
        request: object,
        summary: str,
        deadline: datetime,
        failed_queue: str | None,
    ) -> CommandOutcome:
        """After a send that did not reach the charger (a dead gateway's queue, a charger
        between connections): look where it is now and send there if it moved, else wait for
        it to connect anywhere (`station_connected`) and send again at once."""
        looked_last = False
        relocate = True
        while True:
            seen = self.connections
            if relocate:
                await self._relocate()
                relocate = False
                if self.gateway_queue not in (None, failed_queue) or self.connections != seen:
                    failed_queue = self.gateway_queue
                    seen = self.connections
                    outcome = await self._attempt(name, request, summary)
                    if outcome is not None:
                        return outcome
                    relocate = True
                    continue
            left = deadline - workflow.now()
            if left <= timedelta(0):
                if looked_last:
                    return CommandOutcome.UNREACHABLE
                # A reconnect whose signal was lost (Temporal down at that moment): one look.
                looked_last = relocate = True
                continue
            try:
                await workflow.wait_condition(
                    lambda seen=seen: self.connections != seen,  # type: ignore[misc]
                    timeout=left,
                    timeout_summary="station not connected: waiting for it to reconnect",
                )
            except builtins.TimeoutError:  # the timer's, not temporalio's activity timeout
                looked_last = relocate = True
                continue
            # It connected: send there at once.
            failed_queue = self.gateway_queue
            if failed_queue is not None:
                outcome = await self._attempt(name, request, summary)
                if outcome is not None:
                    return outcome
            relocate = True

    async def _relocate(self) -> None:
        before = self.connections
        location = await locate_station(LocateStation(self.station_id, self.connector_id))
        if self.connections == before:  # else a signal named a newer holder meanwhile
            self.gateway_queue = location.gateway_queue

    async def _attempt(self, name: str, request: object, summary: str) -> CommandOutcome | None:
        """One send to the current queue; None when the charger never saw it. A station that
        reconnects elsewhere meanwhile ends the wait at once (the command is withdrawn from
        the old queue, where nobody would take it)."""
        queue = self.gateway_queue
        assert queue is not None
        seen = self.connections
        # Only `status` matters here; a plain mapping keeps the workflow's decoding
        # independent of how the gateway types the charger's payload.
        handle = workflow.start_activity(
            name,
            request,
            result_type=dict,
            task_queue=queue,
            schedule_to_start_timeout=timedelta(seconds=self.settings.command_schedule_timeout_s),
            start_to_close_timeout=timedelta(seconds=self.settings.command_timeout_s),
            retry_policy=ONCE,
            summary=summary,
        )
        await workflow.wait_condition(
            lambda: handle.done() or (self.connections != seen and self.gateway_queue != queue)
        )
        if not handle.done():
            handle.cancel()
        try:
            result: dict[str, Any] = await handle
        except ActivityError as exc:
            if _schedule_to_start_timeout(exc):
                self._dead = True
                return None
            if _error_type(exc) == STATION_NOT_CONNECTED:
                return None
            if isinstance(exc.cause, CancelledError):
                return None  # withdrawn: the charger is on another gateway now
            if _error_type(exc) in _REFUSALS:
                return CommandOutcome.REJECTED
            return CommandOutcome.UNCERTAIN
        if result.get("status") == "Accepted":
            return CommandOutcome.ACCEPTED
        return CommandOutcome.REJECTED

    async def _send_polling(
        self, name: str, request: object, summary: str, deadline: datetime, *, dead: bool
    ) -> CommandOutcome:
        """Before FOLLOW_THE_CHARGER, after a first send that did not reach the charger:
        durable pauses and lookups, as those histories recorded them; kept for replay."""
        pause_s = 2
        relocate = dead
        dead_gateways = 1 if dead else 0
        while True:
            if not relocate:
                # The station is between connections: a durable pause, then look again.
                if workflow.now() + timedelta(seconds=pause_s) > deadline:
                    return CommandOutcome.UNREACHABLE
                await workflow.sleep(
                    timedelta(seconds=pause_s), summary="station not connected; looking again"
                )
                pause_s = min(pause_s + 1, 5)
            relocate = False
            location = await locate_station(LocateStation(self.station_id, self.connector_id))
            self.gateway_queue = location.gateway_queue
            if self.gateway_queue is None:
                continue
            try:
                result: dict[str, Any] = await workflow.execute_activity(
                    name,
                    request,
                    result_type=dict,
                    task_queue=self.gateway_queue,
                    schedule_to_start_timeout=timedelta(
                        seconds=self.settings.command_schedule_timeout_s
                    ),
                    start_to_close_timeout=timedelta(seconds=self.settings.command_timeout_s),
                    retry_policy=ONCE,
                    summary=summary,
                )
            except ActivityError as exc:
                if _schedule_to_start_timeout(exc):
                    dead_gateways += 1
                    if dead_gateways >= self.settings.command_attempts:
                        return CommandOutcome.UNREACHABLE
                    relocate = True
                    continue
                if _error_type(exc) in _REFUSALS:
                    return CommandOutcome.REJECTED
                if _error_type(exc) != STATION_NOT_CONNECTED:
                    return CommandOutcome.UNCERTAIN
                continue
            if result.get("status") == "Accepted":
                return CommandOutcome.ACCEPTED
            return CommandOutcome.REJECTED


T = TypeVar("T")


async def _local_first(name: str, arg: Any, summary: str, result_type: type[T] | None) -> T:
    """A session's database step as a local activity (LOCAL_DATABASE_STEPS), falling back to
    a regular one when the database does not answer in time. A refusal or a permanent
    failure (non-retryable) is the step's answer either way."""
    if not workflow.patched(LOCAL_DATABASE_STEPS):
        return await _session_step(name, arg, summary, result_type)
    try:
        result: T = await workflow.execute_local_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=LOCAL_ATTEMPT_TIMEOUT,
            schedule_to_close_timeout=LOCAL_PATIENCE,
            retry_policy=LOCAL_RETRY,
            summary=summary,
        )
    except CancelledError:
        raise
    except FailureError as exc:
        # A local activity's own failure arrives unwrapped (an ApplicationError): wrapped here
        # as a regular activity's, so callers handle a step's refusal one way.
        cause = exc.cause if isinstance(exc, ActivityError) else exc
        if not (isinstance(cause, ApplicationError) and cause.non_retryable):
            return await _session_step(name, arg, summary, result_type)  # not in time
        if isinstance(exc, ActivityError):
            raise
        raise ActivityError(
            "local activity failed",
            scheduled_event_id=0,
            started_event_id=0,
            identity="",
            activity_type=name,
            activity_id="",
            retry_state=None,
        ) from exc
    return result


async def _session_step(name: str, arg: Any, summary: str, result_type: type[T] | None) -> T:
    """A database or ledger activity of the session, retried until it answers."""
    return await database_activity(
        name, arg, summary, result_type, start_to_close=SESSION_STEP_TIMEOUT
    )
