"""The ChargingSession workflow (id `charging-{session_id}`): admission, start, charging, stop,
settlement. Deterministic: only timers, activities, signals, updates and queries.

Cost discipline: every activity, timer, signal, update and search-attribute upsert is a
billable action, so the search attribute and the database row change only when a session
starts charging and when it ends; the short `starting`/`stopping` phases are visible in the
`state` query and the current details. See docs/charging.md for the count.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.sessions import FINAL_STATES, SessionState, StopReason
    from domain.tariff import Tariff
    from workflows import charging_commands as commands
    from workflows.charging_commands import (
        CommandOutcome,
        GatewayCommands,
        session_record,
    )
    from workflows.charging_state import (
        SESSION_NOT_FOUND,
        SESSION_STATE,
        START_REJECTED,
        START_REQUEST_MISMATCH,
        STATE_QUERY,
        WORKFLOW_NAME,
        CarriedSession,
        ChargingRequest,
        SessionView,
        StartCommand,
        StopCommand,
        current_details,
    )
    from workflows.signals import (
        ENERGY_LIMIT_REACHED,
        METER_SAMPLE,
        TRANSACTION_STARTED,
        TRANSACTION_STOPPED,
        EnergyLimitReached,
        MeterSample,
        TransactionStarted,
        TransactionStopped,
    )

_BEFORE_STOP = frozenset({SessionState.PENDING, SessionState.STARTING, SessionState.CHARGING})
_MIN_TIMER = timedelta(seconds=1)


@workflow.defn(name=WORKFLOW_NAME)
class ChargingSessionWorkflow:
    @workflow.init
    def __init__(self, request: ChargingRequest) -> None:
        self._request = request
        self._settings = request.settings
        carried = request.carried
        self._view = carried.view if carried else request.initial_view()
        self._transaction: TransactionStarted | None = carried.transaction if carried else None
        self._cap_deadline = carried.cap_deadline if carried else None
        self._commands = GatewayCommands(
            request.station_id,
            request.connector_id,
            request.settings,
            carried.gateway_queue if carried else None,
        )
        self._admitted = carried is not None
        self._stop_requested = False
        self._stop_cause: StopReason | None = None
        self._stopped: TransactionStopped | None = None
        self._limit: EnergyLimitReached | None = None
        self._gave_up = False  # decided the charger never started: late starts get stopped
        self._late_transactions: list[int] = []

    # ---- run ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: ChargingRequest) -> SessionView:
        if request.carried is None:
            if not await self._admit():
                return await self._finish()
            if not await self._launch():
                return await self._finish()
        if await self._charge_until_stop():
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(replace(request, carried=self._carry()))
        await self._confirm_stop()
        await self._settle()
        return await self._finish()

    async def _admit(self) -> bool:
        """Check and claim the connector, then reserve. A refusal leaves nothing behind."""
        request = self._request
        try:
            opened = await commands.open_session_for(request)
        except ActivityError as exc:
            self._reject(exc.cause)
            return False
        tariff = Tariff(opened.price_tyiyn_per_kwh)
        energy_limit_wh = tariff.energy_limit_wh(request.amount_tyiyn)
        if energy_limit_wh == 0:
            await commands.discard_session(request.session_id)
            self._reject(
                ApplicationError("the amount buys no energy at this tariff", type="InvalidAmount")
            )
            return False
        try:
            await commands.reserve(self._view)
        except ActivityError as exc:
            await commands.discard_session(request.session_id)
            self._reject(exc.cause)
            return False
        self._commands.gateway_queue = opened.gateway_queue
        self._view = replace(
            self._view,
            price_tyiyn_per_kwh=opened.price_tyiyn_per_kwh,
            energy_limit_wh=energy_limit_wh,
        )
        self._admitted = True
        self._show_details()
        return True

    async def _launch(self) -> bool:
        """RemoteStart and wait for StartTransaction; False when the session ended here."""
        if self._stop_requested:  # never sent to the charger: nothing to look for
            return await self._end_without_charging(
                SessionState.CANCELLED, StopReason.USER, look_for_start=False
            )
        outcome = await self._commands.remote_start(
            self._request.session_id, self._view.energy_limit_wh
        )
        if outcome is CommandOutcome.REJECTED:
            return await self._end_without_charging(
                SessionState.FAILED_TO_START, StopReason.START_REJECTED, look_for_start=False
            )
        if outcome is CommandOutcome.UNREACHABLE:
            return await self._end_without_charging(
                SessionState.FAILED_TO_START, StopReason.STATION_UNAVAILABLE, look_for_start=False
            )
        self._set_state(SessionState.STARTING)
        if not await self._wait_for_transaction():
            if self._stop_requested:
                return await self._end_without_charging(SessionState.CANCELLED, StopReason.USER)
            return await self._end_without_charging(
                SessionState.FAILED_TO_START, StopReason.NO_START
            )
        transaction = self._transaction
        assert transaction is not None
        self._cap_deadline = workflow.now() + self._settings.time_cap
        self._view = replace(
            self._view,
            transaction_id=transaction.transaction_id,
            started_at=transaction.started_at,
        )
        if self._stop_requested:  # stopping right away: no need to record a passing state
            self._set_state(SessionState.CHARGING)
        else:
            await self._persist_state(SessionState.CHARGING)
        return True

    async def _wait_for_transaction(self) -> bool:
        deadline = workflow.now() + self._settings.start_timeout
        try:
            await workflow.wait_condition(
                lambda: self._transaction is not None or self._stop_requested,
                timeout=self._settings.start_timeout,
                timeout_summary="waiting for StartTransaction",
            )
        except TimeoutError:
            return False
        if self._transaction is None:
            # The driver gave up before the car was plugged in. A StartTransaction may already
            # be on its way; give it the grace period so it can be stopped and settled.
            self._set_state(SessionState.STOPPING)
            grace = min(self._settings.stop_grace, deadline - workflow.now())
            try:
                await workflow.wait_condition(
                    lambda: self._transaction is not None,
                    timeout=max(grace, _MIN_TIMER),
                    timeout_summary="StartTransaction still on its way?",
                )
            except TimeoutError:
                return False
        return True

    async def _charge_until_stop(self) -> bool:
        """Wait for any reason to stop; True when the run should continue as new instead."""
        assert self._cap_deadline is not None
        remaining = max(self._cap_deadline - workflow.now(), _MIN_TIMER)
        try:
            await workflow.wait_condition(
                lambda: (
                    self._stop_requested
                    or self._stopped is not None
                    or self._limit is not None
                    or self._continue_as_new_due()
                ),
                timeout=remaining,
                timeout_summary="12 h cap",
            )
        except TimeoutError:
            self._stop_cause = StopReason.TIME_CAP
            return False
        if self._stopped is not None:
            self._stop_cause = StopReason.CHARGER
        elif self._limit is not None:
            self._stop_cause = StopReason.LIMIT_REACHED
        elif self._stop_requested:
            self._stop_cause = StopReason.USER
        else:
            return True
        return False

    async def _confirm_stop(self) -> None:
        """Ask the charger to stop when it has not yet, then give it the grace period."""
        if self._stopped is not None:
            return
        self._set_state(SessionState.STOPPING)
        transaction = self._transaction
        assert transaction is not None
        gateway_stopped = self._limit is not None and self._limit.remote_stop_status == "Accepted"
        if not gateway_stopped:
            await self._commands.remote_stop(transaction.transaction_id)
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._stopped is not None,
                timeout=self._settings.stop_grace,
                timeout_summary="waiting for StopTransaction",
            )

    async def _settle(self) -> None:
        """Pay for confirmed energy only: a stop the charger never confirmed costs nothing."""
        stopped = self._stopped
        if stopped is None:
            self._view = replace(
                self._view,
                stop_reason=StopReason.NO_STOP_CONFIRMATION.value,
                stopped_at=workflow.now(),
            )
            await self._close_with_money(SessionState.HUNG, cost_tyiyn=0)
            return
        energy_wh = max(stopped.energy_wh, 0)
        cost_tyiyn = self._tariff().cost_tyiyn(energy_wh, reserved_tyiyn=self._view.reserved_tyiyn)
        self._view = replace(
            self._view,
            energy_wh=energy_wh,
            stop_reason=(self._stop_cause or StopReason.CHARGER).value,
            stopped_at=stopped.stopped_at,
        )
        await self._close_with_money(SessionState.COMPLETED, cost_tyiyn=cost_tyiyn)

    async def _end_without_charging(
        self, state: SessionState, reason: StopReason, *, look_for_start: bool = True
    ) -> bool:
        """Release everything. When the charger may have started anyway, stop it."""
        self._gave_up = True
        if look_for_start:
            hidden = await commands.find_open_transaction(self._view)
            if hidden is not None:
                self._note_late(hidden)
        self._view = replace(self._view, stop_reason=reason.value, stopped_at=workflow.now())
        await self._close_with_money(state, cost_tyiyn=0)
        return False

    async def _close_with_money(self, state: SessionState, *, cost_tyiyn: int) -> None:
        refund = await commands.settle(self._view, cost_tyiyn)
        self._view = replace(self._view, cost_tyiyn=cost_tyiyn, refunded_tyiyn=refund)
        await self._persist_state(state)
        for transaction_id in self._late_transactions:
            await self._commands.remote_stop(transaction_id)

    async def _finish(self) -> SessionView:
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._view

    # ---- signals -------------------------------------------------------------------------

    @workflow.signal(name=TRANSACTION_STARTED)
    def transaction_started(self, started: TransactionStarted) -> None:
        current = self._transaction
        if current is None and not self._gave_up and self._view.state not in FINAL_STATES:
            self._transaction = started
        elif current is None or current.transaction_id != started.transaction_id:
            self._note_late(started.transaction_id)

    @workflow.signal(name=METER_SAMPLE)
    def meter_sample(self, sample: MeterSample) -> None:
        current = self._transaction
        if current is None or current.transaction_id != sample.transaction_id:
            return
        if self._stopped is not None or sample.energy_wh <= self._view.energy_wh:
            return  # after the stop, or older than what we know: the stop's figure wins
        self._view = replace(
            self._view,
            energy_wh=sample.energy_wh,
            cost_tyiyn=self._tariff().cost_tyiyn(
                sample.energy_wh, reserved_tyiyn=self._view.reserved_tyiyn
            ),
        )
        self._show_details()

    @workflow.signal(name=TRANSACTION_STOPPED)
    def transaction_stopped(self, stopped: TransactionStopped) -> None:
        if self._stopped is not None or self._gave_up:
            return
        current = self._transaction
        if current is None:
            # The stop overtook its start: the transaction is ours (its idTag named us).
            self._transaction = TransactionStarted(
                transaction_id=stopped.transaction_id,
                station_id=self._request.station_id,
                connector_id=self._request.connector_id,
                meter_start_wh=stopped.meter_stop_wh - stopped.energy_wh,
                started_at=stopped.stopped_at,
            )
        elif current.transaction_id != stopped.transaction_id:
            return
        self._stopped = stopped

    @workflow.signal(name=ENERGY_LIMIT_REACHED)
    def energy_limit_reached(self, reached: EnergyLimitReached) -> None:
        current = self._transaction
        if current is None or current.transaction_id != reached.transaction_id:
            return
        if self._limit is None:
            self._limit = reached

    # ---- updates and query ---------------------------------------------------------------

    # Bare decorators keep the async return types visible to typed callers; the method names
    # are the update names (START_UPDATE, STOP_UPDATE).
    @workflow.update
    async def start(self, command: StartCommand) -> SessionView:
        await workflow.wait_condition(lambda: self._admitted or self._view.rejection is not None)
        if self._view.rejection is not None:
            raise ApplicationError(
                self._view.rejection_message or "start refused",
                self._view.rejection,
                type=START_REJECTED,
                non_retryable=True,
            )
        return self._view

    @start.validator
    def _validate_start(self, command: StartCommand) -> None:
        if command != self._request.command:
            raise ApplicationError(
                "this Idempotency-Key was already used for another start request",
                type=START_REQUEST_MISMATCH,
                non_retryable=True,
            )

    @workflow.update
    async def stop(self, command: StopCommand) -> SessionView:
        self._stop_requested = True
        await workflow.wait_condition(
            lambda: (
                SessionState(self._view.state) not in _BEFORE_STOP
                or self._view.rejection is not None
            )
        )
        if self._view.rejection is not None:
            raise ApplicationError("no such session", type=SESSION_NOT_FOUND, non_retryable=True)
        return self._view

    @stop.validator
    def _validate_stop(self, command: StopCommand) -> None:
        # Someone else's session and a refused start look exactly like no session at all.
        if command.client_id != self._request.client_id or self._view.rejection is not None:
            raise ApplicationError("no such session", type=SESSION_NOT_FOUND, non_retryable=True)

    @workflow.query(name=STATE_QUERY)
    def state(self) -> SessionView:
        return self._view

    # ---- helpers -------------------------------------------------------------------------

    def _tariff(self) -> Tariff:
        return Tariff(self._view.price_tyiyn_per_kwh)

    def _reject(self, cause: BaseException | None) -> None:
        kind = cause.type if isinstance(cause, ApplicationError) else None
        self._view = replace(
            self._view,
            rejection=kind or "StartFailed",
            rejection_message=str(cause) if cause is not None else "start failed",
        )
        workflow.set_current_details(f"start refused: {self._view.rejection_message}")

    def _note_late(self, transaction_id: int) -> None:
        if transaction_id not in self._late_transactions:
            self._late_transactions.append(transaction_id)

    def _set_state(self, state: SessionState) -> None:
        self._view = replace(self._view, state=state.value)
        self._show_details()

    async def _persist_state(self, state: SessionState) -> None:
        """A state operators filter by: search attribute and database row both follow it."""
        self._set_state(state)
        workflow.upsert_search_attributes([SESSION_STATE.value_set(state.value)])
        await commands.record_session(session_record(self._view))

    def _show_details(self) -> None:
        workflow.set_current_details(current_details(self._view))

    def _continue_as_new_due(self) -> bool:
        info = workflow.info()
        limit = self._settings.history_events_limit
        if limit and info.get_current_history_length() >= limit:
            return True
        return info.is_continue_as_new_suggested()

    def _carry(self) -> CarriedSession:
        assert self._transaction is not None and self._cap_deadline is not None
        return CarriedSession(
            view=self._view,
            transaction=self._transaction,
            gateway_queue=self._commands.gateway_queue,
            cap_deadline=self._cap_deadline,
        )
