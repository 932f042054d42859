"""What `/charging` does: start and stop through the session's workflow; read live sessions from
the workflow (state) and the database (energy), finished ones and lists from the database."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import structlog
from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.client_scope import client_scope
from api.deps import ApiContext
from api.errors import ApiError, temporal_calls, temporal_error, unavailable
from api.v1.charging_schemas import ChargingSession, ChargingSessionPage, StartCharging
from api.v1.live_energy import delivered_wh
from api.workflow_start import collect_start_error
from db.models import ChargingSessionRecord
from db.session_rows import own_session_row
from domain.contracts.charging import (
    SESSION_NOT_FOUND,
    START_REJECTED,
    START_REQUEST_MISMATCH,
    ChargingRequest,
    SessionView,
    StopCommand,
    charging_workflow_id,
    initial_search_attributes,
)
from domain.contracts.session_record import session_record, with_live_energy
from domain.identifiers import is_session_id, new_id, session_id_for_key
from domain.money import CURRENCY, check_amount, format_som
from domain.sessions import (
    FINAL_STATE_VALUES,
    START_REJECTIONS,
    SessionNotFound,
    SessionState,
)
from workflows.charging import ChargingSessionWorkflow

log = structlog.get_logger(__name__)

# How long a request waits for the workflow's answer before telling the caller to retry
# (with the same Idempotency-Key the retry reaches the same workflow).
UPDATE_WAIT_S = 20.0
START_UNANSWERED = (
    "the session service did not answer; read or stop error.session_id, or retry with an "
    "Idempotency-Key"
)
_METERED = {SessionState.CHARGING.value, SessionState.STOPPING.value}


class StartUnanswered(ApiError):
    """A start that got no clear answer. The session may exist: its id goes into the error
    body so a client without an Idempotency-Key can still read or stop it."""

    def __init__(self, session_id: str, error: ApiError) -> None:
        super().__init__(error.status, error.code, error.message, error.headers)
        self.session_id = session_id


def _no_answer(message: str = "the session service did not answer; retry") -> ApiError:
    """Temporal took the update but the session did not answer within UPDATE_WAIT_S (a worker
    or the charger's gateway slow or gone): the same 503 as an outage, its own code."""
    return unavailable("temporarily_unavailable", message)


def _start_failed() -> ApiError:
    return unavailable("start_failed", "the session could not be started; retry later")


def _not_found(session_id: str) -> SessionNotFound:
    return SessionNotFound(f"no charging session {session_id!r}")


def _from_row(row: ChargingSessionRecord) -> ChargingSession:
    return ChargingSession.of(row.to_record(), row.created_at)


def _refusal(exc: WorkflowUpdateFailedError) -> Exception:
    """The workflow's refusal as a domain error (api/errors maps it to its status)."""
    cause = exc.cause
    if not isinstance(cause, ApplicationError):
        return _no_answer()
    if cause.type == SESSION_NOT_FOUND:
        return SessionNotFound("no such charging session")
    if cause.type == START_REQUEST_MISMATCH:
        return ApiError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a different request",
        )
    if cause.type == START_REJECTED and cause.details:
        refusal = START_REJECTIONS.get(str(cause.details[0]))
        if refusal is not None:
            return refusal(cause.message)
    log.warning("start failed", error_type=cause.type, message=cause.message)
    return _start_failed()


def encode_cursor(created_at: datetime, session_id: str) -> str:
    raw = f"{created_at.isoformat()}|{session_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, session_id = raw.partition("|")
        parsed = datetime.fromisoformat(moment)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(422, "invalid_cursor", "cursor is not one this API handed out") from None
    # The cursor is the caller's text: what it decodes to is checked like any identifier.
    if parsed.tzinfo is None or not is_session_id(session_id):
        raise ApiError(422, "invalid_cursor", "cursor is not one this API handed out")
    return parsed, session_id


class ChargingService:
    def __init__(self, context: ApiContext) -> None:
        self._context = context
        self._temporal = context.temporal

    def _handle(self, session_id: str) -> WorkflowHandle[ChargingSessionWorkflow, SessionView]:
        return self._temporal.get_workflow_handle_for(
            ChargingSessionWorkflow.run, charging_workflow_id(session_id)
        )

    # ---- start / stop --------------------------------------------------------------------

    async def start(
        self, client_id: str, body: StartCharging, idempotency_key: str | None
    ) -> ChargingSession:
        config = self._context.config
        check_amount(
            body.amount_tyiyn, config.amounts.charge_min_tyiyn, config.amounts.charge_max_tyiyn
        )
        session_id = session_id_for_key(client_id, idempotency_key) if idempotency_key else new_id()
        request = ChargingRequest(
            session_id=session_id,
            client_id=client_id,
            station_id=body.station_id,
            connector_id=body.connector_id,
            amount_tyiyn=body.amount_tyiyn,
        )
        operation = WithStartWorkflowOperation(
            ChargingSessionWorkflow.run,
            request,
            id=charging_workflow_id(session_id),
            task_queue=self._context.config.task_queue,
            # A retry reaches the running session; a finished one is never started again.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=initial_search_attributes(request),
            static_summary=(
                f"charging at {body.station_id}/{body.connector_id}, "
                f"{format_som(body.amount_tyiyn)} {CURRENCY} reserved"
            ),
        )
        try:
            async with asyncio.timeout(UPDATE_WAIT_S):
                view = await self._temporal.execute_update_with_start_workflow(
                    ChargingSessionWorkflow.start,
                    request.command,
                    start_workflow_operation=operation,
                )
        except WorkflowUpdateFailedError as exc:
            raise _refusal(exc) from None
        except WorkflowAlreadyStartedError:
            return await self._finished_start(client_id, session_id)
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            # asyncio.timeout cancels the update call, which the SDK reports as its own error.
            raise StartUnanswered(session_id, _no_answer(START_UNANSWERED)) from None
        except RPCError as exc:
            error = temporal_error(exc, START_UNANSWERED)
            if error is None:
                raise
            raise StartUnanswered(session_id, error) from None
        finally:
            collect_start_error(operation)
        log.info(
            "charging session started",
            session_id=session_id,
            station_id=body.station_id,
            workflow_id=charging_workflow_id(session_id),
            reserved_tyiyn=view.reserved_tyiyn,
        )
        return await self._live(client_id, view)

    async def _finished_start(self, client_id: str, session_id: str) -> ChargingSession:
        """A retry of a start whose workflow has already closed: answer what it became."""
        found = await self.record(client_id, session_id)
        if found is not None:
            return _from_row(found)
        try:
            with temporal_calls():
                view = await self._handle(session_id).result()
        except WorkflowFailureError:
            # Terminated or failed before it recorded anything: no session came of it.
            log.error("charging workflow failed", session_id=session_id)
            raise _start_failed() from None
        if view.rejection is not None and view.rejection in START_REJECTIONS:
            raise START_REJECTIONS[view.rejection](view.rejection_message or "start refused")
        if view.rejection is not None:
            raise _start_failed()  # the first answer was the same (see _refusal)
        raise _not_found(session_id)

    async def stop(
        self, client_id: str, session_id: str, command: StopCommand | None = None
    ) -> ChargingSession:
        """The driver's stop; an operator's forced stop is the same update with `command`
        naming the operator and the reason (api/v1/ops/session_stop.py)."""
        try:
            with temporal_calls():
                async with asyncio.timeout(UPDATE_WAIT_S):
                    view = await self._handle(session_id).execute_update(
                        ChargingSessionWorkflow.stop, command or StopCommand(client_id)
                    )
        except WorkflowUpdateFailedError as exc:
            raise _refusal(exc) from None
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
            # No running workflow: never existed, or finished already.
            found = await self.record(client_id, session_id)
            if found is None:
                raise _not_found(session_id) from None
            return _from_row(found)
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise _no_answer() from None
        log.info("charging stop requested", session_id=session_id, state=view.state)
        return await self._live(client_id, view)

    # ---- reads ---------------------------------------------------------------------------

    async def get(self, client_id: str, session_id: str) -> ChargingSession:
        found = await self.record(client_id, session_id)
        if found is not None and found.state in FINAL_STATE_VALUES:
            return _from_row(found)
        try:
            view = await self._handle(session_id).query(ChargingSessionWorkflow.state)
        except (RPCError, WorkflowQueryFailedError):
            if found is None:
                raise _not_found(session_id) from None
            return _from_row(found)  # the workflow is unreachable: the last recorded state
        if view.client_id != client_id or view.rejection is not None:
            raise _not_found(session_id)
        return await self._live(client_id, view, found)

    async def _live(
        self, client_id: str, view: SessionView, found: ChargingSessionRecord | None = None
    ) -> ChargingSession:
        """The workflow's view with energy and cost from the newest stored meter reading: the
        workflow only hears of the energy every few minutes (throttled meter signals). The
        creation time is the row's, which admission wrote before any answer."""
        energy = None
        if view.state in _METERED and view.transaction_id is not None:
            energy = await self._delivered_wh(client_id, view.transaction_id, view.max_power_w)
        if found is None:
            found = await self.record(client_id, view.session_id)
        record = with_live_energy(session_record(view), energy)
        return ChargingSession.of(record, found.created_at if found is not None else None)

    async def page(self, client_id: str, limit: int, cursor: str | None) -> ChargingSessionPage:
        statement = (
            select(ChargingSessionRecord)
            .where(ChargingSessionRecord.client_id == client_id)
            .order_by(ChargingSessionRecord.created_at.desc(), ChargingSessionRecord.id.desc())
            .limit(limit + 1)
        )
        if cursor is not None:
            before = decode_cursor(cursor)
            statement = statement.where(
                tuple_(ChargingSessionRecord.created_at, ChargingSessionRecord.id) < before
            )
        async with self._client_session(client_id) as session:
            rows = list((await session.scalars(statement)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more else None
        return ChargingSessionPage(items=[_from_row(row) for row in rows], next_cursor=next_cursor)

    async def record(self, client_id: str, session_id: str) -> ChargingSessionRecord | None:
        async with self._client_session(client_id) as session:
            return await own_session_row(session, client_id, session_id)

    async def _delivered_wh(
        self, client_id: str, transaction_id: int, max_power_w: int
    ) -> int | None:
        async with self._client_session(client_id) as session:
            return await delivered_wh(session, transaction_id, max_power_w)

    @asynccontextmanager
    async def _client_session(self, client_id: str) -> AsyncIterator[AsyncSession]:
        """A read transaction under row-level security: only this client's rows are visible."""
        async with client_scope(self._context.db_sessions, client_id) as session:
            yield session
