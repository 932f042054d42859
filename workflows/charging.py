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
    from activities.card_sessions import OpenCardSession, OpenedCardSession
    from activities.sessions import OpenedSession
    from activities.transactions import MeterReadingsRequest, RecordSource
    from domain.contracts.charging import (
        WORKFLOW_NAME,
        CarriedSession,
        ChargingRequest,
        MeterReview,
        SessionView,
    )
    from domain.contracts.search_attributes import SESSION_STATE
    from domain.contracts.session_signals import START_ACCEPTED, TransactionStopped
    from domain.meter_readings import Verdict
    from domain.sessions import SessionState, StopReason
    from domain.tariff import Tariff
    from workflows import charging_commands as commands
    from workflows.charging_commands import CommandOutcome, GatewayCommands
    from workflows.charging_handlers import SessionHandlers

_MIN_TIMER = timedelta(seconds=1)
# A charger that has stopped is not waited on: the session settles on what the gateway
# recorded (histories from before it replay the old way).
SETTLE_FROM_RECORD = "settle-from-record"
# A start timer that fires while the gateway holds an accepted StartTransaction (answered from
# the stored RemoteStart during a Temporal outage longer than the timer, its relay event not
# delivered yet) adopts it instead of releasing a reservation the charger is drawing on.
START_FROM_RECORD = "start-from-record"
# Admission is one activity and one database transaction (the session's row and its hold
# together) instead of a claim and a `reserve` activity: one activity and one workflow task less.
ONE_STEP_ADMISSION = "one-step-admission"


@workflow.defn(name=WORKFLOW_NAME)
class ChargingSessionWorkflow(SessionHandlers):
    @workflow.init
    def __init__(self, request: ChargingRequest) -> None:
        self._request = request
        self._settings = request.settings
        carried = request.carried
        self._view = carried.view if carried else request.initial_view()
        # A card-started session knows its transaction from the start: the gateway started it
        # for the charger's StartTransaction (its stop may even come before admission ends).
        card = request.card
        self._transaction = carried.transaction if carried else (card.transaction if card else None)
        self._cap_deadline = carried.cap_deadline if carried else None
        self._commands = GatewayCommands(
            request.station_id,
            request.connector_id,
            request.settings,
            carried.gateway_queue if carried else None,
        )
        self._admitted = carried is not None
        self._start_sent = carried is not None
        self._stop_requested = False
        self._operator_stop: str | None = None
        self._stop_cause: StopReason | None = None
        self._stopped: TransactionStopped | None = None
        self._limit = None
        self._idle = None
        self._gave_up = False
        self._settled = False  # the ledger settlement (capture/release) is done
        self._late_transactions = list(carried.late_transactions) if carried else []

    # ---- run ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: ChargingRequest) -> SessionView:
        try:
            return await self._run(request)
        except ActivityError as failure:
            if not self._admitted:
                raise  # nothing reserved: the money is untouched
            await self._end_for_review(failure)
            return await self._finish()

    async def _run(self, request: ChargingRequest) -> SessionView:
        if request.carried is None:
            if not await self._admit():
                return await self._finish()
            # A card-started session's charger has started already: no RemoteStart.
            if request.card is None and not await self._launch():
                return await self._finish()
        if await self._charge_until_stop():
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(replace(request, carried=self._carry()))
        await self._confirm_stop()
        await self._settle()
        return await self._finish()

    async def _admit(self) -> bool:
        """Check and claim the connector (and a card), and reserve; False when refused. A
        refusal leaves nothing behind.

        A card-started session reserves the configured amount capped by the balance, and
        takes the charger's transaction: the `card_transaction` update answers the charger only
        after this (Accepted once the reservation holds)."""
        if workflow.patched(ONE_STEP_ADMISSION):
            held = await self._admit_at_once()
        else:
            held = await self._claim_then_reserve()
        if not held:
            return False
        self._admitted = True
        card = self._request.card
        if card is None:
            self._show_details()
            return True
        self._start_sent = True
        self._cap_deadline = workflow.now() + self._settings.time_cap
        self._view = replace(
            self._view,
            transaction_id=card.transaction.transaction_id,
            started_at=card.transaction.started_at,
        )
        if self._stop_requested or self._stopped is not None:
            self._set_state(SessionState.CHARGING)  # stopping right away
        else:
            await self._persist_state(SessionState.CHARGING)
        return True

    async def _admit_at_once(self) -> bool:
        """One activity, one database transaction: the session's row and its hold are
        written together, or (refused) neither is."""
        try:
            admitted = await commands.admit_session(self._request)
        except ActivityError as exc:
            self._reject(exc.cause)
            return False
        self._hold(
            admitted.reserved_tyiyn,
            admitted.price_tyiyn_per_kwh,
            admitted.max_power_w,
            admitted.gateway_queue,
        )
        return True

    async def _claim_then_reserve(self) -> bool:
        """The two-step admission of histories from before ONE_STEP_ADMISSION: claim (a
        `pending` row), then reserve as an activity of its own; a reservation refused drops
        the claim."""
        request = self._request
        card = request.card
        opened: OpenedSession | OpenedCardSession
        try:
            if card is None:
                opened = await commands.open_session_for(request)
                amount, buys_nothing = request.amount_tyiyn, "the amount"
            else:
                opened = await commands.open_card_session(
                    OpenCardSession(
                        request.session_id,
                        request.client_id,
                        request.station_id,
                        request.connector_id,
                        id_tag=card.id_tag,
                        most_tyiyn=request.amount_tyiyn,
                        min_balance_tyiyn=card.min_balance_tyiyn,
                    )
                )
                amount, buys_nothing = opened.reserved_tyiyn, "the balance"
        except ActivityError as exc:
            self._reject(exc.cause)
            return False
        refusal: BaseException | None = None
        if Tariff(opened.price_tyiyn_per_kwh).energy_limit_wh(amount) == 0:
            refusal = ApplicationError(
                f"{buys_nothing} buys no energy at this tariff", type="InvalidAmount"
            )
        else:
            try:
                await commands.reserve(self._view, amount)
            except ActivityError as exc:
                refusal = exc.cause
        if refusal is not None:
            await commands.discard_session(request.session_id)
            self._reject(refusal)
            return False
        self._hold(amount, opened.price_tyiyn_per_kwh, opened.max_power_w, opened.gateway_queue)
        return True

    def _hold(
        self,
        reserved_tyiyn: int,
        price_tyiyn_per_kwh: int,
        max_power_w: int,
        gateway_queue: str | None,
    ) -> None:
        """The reservation holds: the view says `reserved` from now on, with its tariff
        snapshot and the energy it buys."""
        if self._commands.connections == 0:  # else a signal already named a newer holder
            self._commands.gateway_queue = gateway_queue
        self._view = replace(
            self._view,
            reserved_tyiyn=reserved_tyiyn,
            price_tyiyn_per_kwh=price_tyiyn_per_kwh,
            energy_limit_wh=Tariff(price_tyiyn_per_kwh).energy_limit_wh(reserved_tyiyn),
            max_power_w=max_power_w,
        )

    async def _launch(self) -> bool:
        """RemoteStart and wait for StartTransaction; False when the session ended here."""
        if self._stop_requested:  # never sent to the charger: nothing to look for
            return await self._end_without_charging(
                SessionState.CANCELLED, StopReason.USER, look_for_start=False
            )
        self._start_sent = True
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
            return await self._adopt_recorded_start()
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

    async def _adopt_recorded_start(self) -> bool:
        """The start timer fired: True when the gateway recorded a start for the session that
        has not reached it yet, which is then taken as the charger's StartTransaction."""
        if not workflow.patched(START_FROM_RECORD):
            return False
        recorded = await commands.recorded_start(self._view)
        if recorded.transaction is None:
            return False
        workflow.logger.info(
            "StartTransaction taken from the gateway's record",
            extra={"transaction_id": recorded.transaction.transaction_id},
        )
        return self._take_start(recorded.transaction) == START_ACCEPTED

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
                    or self._idle is not None
                    or self._continue_as_new_due()
                ),
                timeout=remaining,
                timeout_summary="12 h cap",
            )
        except TimeoutError:
            self._stop_cause = StopReason.TIME_CAP
            return False
        if self._stopped is not None or self._idle is not None:
            self._stop_cause = StopReason.CHARGER
        elif self._limit is not None:
            self._stop_cause = StopReason.LIMIT_REACHED
        elif self._stop_requested:
            self._stop_cause = StopReason.USER
        else:
            return True
        return False

    async def _confirm_stop(self) -> None:
        """Ask the charger to stop when it has not yet, and wait for its StopTransaction.

        A charger that could not be reached (offline, no answer) may still be in its
        transaction and will send the queued StopTransaction when it is back: wait for it,
        asking again now and then, until the cap deadline or the offline wait. A charger that
        has stopped already (it refused the RemoteStop, reported the connector idle, or
        stayed silent for the grace period) is not waited on: the session settles on what the
        gateway recorded for the transaction (`_settle_from_record`).
        """
        if self._stopped is not None:
            return
        self._set_state(SessionState.STOPPING)
        transaction = self._transaction
        assert transaction is not None and self._cap_deadline is not None
        settings = self._settings
        if self._idle is not None and workflow.patched(SETTLE_FROM_RECORD):
            await self._settle_from_record(f"connector {self._idle.status}: StopTransaction?")
            return
        if self._limit is not None and self._limit.remote_stop_status == "Accepted":
            outcome = CommandOutcome.ACCEPTED  # the gateway stopped it already
        else:
            outcome = await self._commands.remote_stop(transaction.transaction_id)
        give_up_at = max(self._cap_deadline, workflow.now() + settings.offline_stop_wait)
        pause = settings.stop_retry_first
        while outcome is not CommandOutcome.ACCEPTED:
            if outcome is CommandOutcome.REJECTED and workflow.patched(SETTLE_FROM_RECORD):
                # The charger has no such transaction any more: it stopped, and its
                # StopTransaction is recorded, on its way, or lost.
                await self._settle_from_record("RemoteStop rejected: StopTransaction?")
                return
            left = give_up_at - workflow.now()
            if left <= timedelta(0):
                if workflow.patched(SETTLE_FROM_RECORD):
                    await self._stop_from_record(final=True)
                return
            if await self._wait_for_stop(
                min(pause, left),
                "charger unreachable: StopTransaction?",
                or_idle=True,
                or_connected=self._commands.connections,
            ):
                return
            if self._idle is not None and workflow.patched(SETTLE_FROM_RECORD):
                await self._settle_from_record(f"connector {self._idle.status}: StopTransaction?")
                return
            pause = min(pause * 2, settings.stop_retry_max)
            outcome = await self._commands.remote_stop(transaction.transaction_id, patient=False)
        if await self._wait_for_stop(settings.stop_grace, "waiting for StopTransaction"):
            return
        if workflow.patched(SETTLE_FROM_RECORD):
            await self._stop_from_record(final=True)

    async def _settle_from_record(self, summary: str) -> None:
        """The charger has stopped: its recorded StopTransaction at once, else wait the grace
        period for one on its way, then whatever the gateway recorded last."""
        if await self._stop_from_record(final=False):
            return
        if await self._wait_for_stop(self._settings.stop_grace, summary):
            return
        await self._stop_from_record(final=True)

    async def _stop_from_record(self, *, final: bool) -> bool:
        """Take the gateway's record of the transaction as its stop: the StopTransaction it
        stored, or (when `final`) the newest meter value. Nothing at all leaves it unstopped
        (`hung`). True when the session has its stop now."""
        transaction = self._transaction
        assert transaction is not None
        recorded = await commands.recorded_transaction(
            self._request.station_id, transaction.transaction_id
        )
        if self._stopped is not None:
            return True  # the charger's own stop arrived meanwhile: it wins
        if recorded.source == RecordSource.STOP_TRANSACTION or (
            final and recorded.source == RecordSource.METER_VALUE
        ):
            assert recorded.at is not None and recorded.meter_wh is not None
            self._stopped = TransactionStopped(
                transaction_id=transaction.transaction_id,
                meter_stop_wh=recorded.meter_wh,
                energy_wh=recorded.energy_wh,
                stopped_at=recorded.at,
                reason=recorded.reason,
            )
            workflow.logger.warning(
                "settling on what the gateway recorded",
                extra={
                    **self._log_ids(),
                    "transaction_id": transaction.transaction_id,
                    "source": recorded.source,
                    "energy_wh": recorded.energy_wh,
                },
            )
        return self._stopped is not None

    async def _wait_for_stop(
        self,
        within: timedelta,
        summary: str,
        *,
        or_idle: bool = False,
        or_connected: int | None = None,
    ) -> bool:
        """True when the StopTransaction came. With `or_idle`, an idle report also ends the
        wait; with `or_connected` (the count of station_connected signals seen), the charger
        reconnecting does: the RemoteStop is sent again at once, not after the pause."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: (
                    self._stopped is not None
                    or (or_idle and self._idle is not None)
                    or (or_connected is not None and self._commands.connections != or_connected)
                ),
                timeout=max(within, _MIN_TIMER),
                timeout_summary=summary,
            )
        return self._stopped is not None

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
        state = SessionState.COMPLETED
        # Energy is billed only as far as the readings can stand for it. The version switch is
        # the max-power snapshot taken at admission: sessions admitted before the check (and
        # their recorded histories) have none and settle on the raw figures as they did. It
        # does what workflow.patched would, without a billable marker in every session.
        if self._view.max_power_w > 0:
            energy_wh, state = await self._check_meter(stopped)
        cost_tyiyn = self._tariff().cost_tyiyn(energy_wh, reserved_tyiyn=self._view.reserved_tyiyn)
        self._view = replace(
            self._view,
            energy_wh=energy_wh,
            stop_reason=(self._stop_cause or StopReason.CHARGER).value,
            stopped_at=stopped.stopped_at,
        )
        await self._close_with_money(state, cost_tyiyn=cost_tyiyn)

    async def _check_meter(self, stopped: TransactionStopped) -> tuple[int, SessionState]:
        """The energy the readings can stand for, and whether an operator must look: an
        implausible claim is billed for its certain part only (maybe 0), never in full."""
        transaction = self._transaction
        assert transaction is not None
        view = self._view
        assessed = await commands.assess_meter_readings(
            MeterReadingsRequest(
                station_id=view.station_id,
                connector_id=view.connector_id,
                transaction_id=transaction.transaction_id,
                meter_start_wh=transaction.meter_start_wh,
                started_at=transaction.started_at,
                meter_stop_wh=stopped.meter_stop_wh,
                stopped_at=stopped.stopped_at,
                max_power_w=view.max_power_w,
            )
        )
        found = assessed.assessment
        if found.verdict != Verdict.REVIEW:
            note = (
                "register_reset" if found.reset else ("glitch_ignored" if found.glitches else None)
            )
            self._view = replace(view, meter_note=note)
            return found.billable_wh, SessionState.COMPLETED
        assert found.reason is not None
        tariff, reserved = self._tariff(), view.reserved_tyiyn
        billed = tariff.cost_tyiyn(found.billable_wh, reserved_tyiyn=reserved)
        claimed = (
            reserved
            if found.claimed_wh is None
            else tariff.cost_tyiyn(found.claimed_wh, reserved_tyiyn=reserved)
        )
        review = MeterReview(
            reason=str(found.reason),
            max_power_w=assessed.max_power_w,
            claimed_wh=found.claimed_wh,
            billed_wh=found.billable_wh,
            limit_wh=found.limit_wh,
            at_stake_tyiyn=max(claimed - billed, 0),
            readings=found.readings,
        )
        self._view = replace(view, meter_note=review.reason, meter_review=review)
        workflow.logger.warning(
            "meter readings implausible; billing the certain part, session needs review",
            extra={
                **self._log_ids(),
                "transaction_id": transaction.transaction_id,
                "reason": review.reason,
                "claimed_wh": found.claimed_wh,
                "billed_wh": found.billable_wh,
                "limit_wh": found.limit_wh,
                "at_stake_tyiyn": review.at_stake_tyiyn,
            },
        )
        return found.billable_wh, SessionState.NEEDS_REVIEW

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
        self._gave_up = True  # settling: a StartTransaction from now on is refused
        try:
            refund = await commands.settle(self._view, cost_tyiyn)
            self._settled = True
        except ActivityError as exc:
            # The ledger refused for good (a manual intervention changed the accounts). The
            # workflow must still end and free the connector; an operator settles by hand.
            workflow.logger.error(
                "settlement refused by the ledger; session needs review",
                extra={
                    **self._log_ids(),
                    "cost_tyiyn": cost_tyiyn,
                    "error": str(exc.cause or exc),
                },
            )
            state, refund = SessionState.NEEDS_REVIEW, 0
        self._view = replace(self._view, cost_tyiyn=cost_tyiyn, refunded_tyiyn=refund)
        await self._persist_state(state)
        for transaction_id in self._late_transactions:
            await self._commands.remote_stop(transaction_id, patient=False)

    async def _end_for_review(self, failure: ActivityError) -> None:
        """A step failed for good after the reservation (a non-retryable failure, see
        activities/failures.py): free what is still held and hand the session to an operator,
        so no reservation stays held behind a failed workflow."""
        reason = (
            f"{failure.activity_type or 'activity'} failed for good: {failure.cause or failure}"
        )
        workflow.logger.error(
            "session step failed for good; session needs review",
            extra={
                **self._log_ids(),
                "error": reason,
            },
        )
        self._gave_up = True
        if not self._settled:
            with contextlib.suppress(ActivityError):  # a ledger refusal is for the operator too
                refund = await commands.settle(self._view, 0)
                self._settled = True
                self._view = replace(self._view, cost_tyiyn=0, refunded_tyiyn=refund)
        self._set_state(SessionState.NEEDS_REVIEW)
        workflow.upsert_search_attributes(
            [SESSION_STATE.value_set(SessionState.NEEDS_REVIEW.value)]
        )
        workflow.set_current_details(f"needs review: {reason}"[:500])
        with contextlib.suppress(ActivityError):  # the row may be what cannot be written
            await commands.record_session(self._view)

    async def _finish(self) -> SessionView:
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._view

    # ---- helpers -------------------------------------------------------------------------

    def _reject(self, cause: BaseException | None) -> None:
        kind = cause.type if isinstance(cause, ApplicationError) else None
        self._view = replace(
            self._view,
            state=SessionState.REJECTED.value,
            rejection=kind or "StartFailed",
            rejection_message=str(cause) if cause is not None else "start failed",
        )
        # Without it the refused start would stay `pending` in visibility forever.
        workflow.upsert_search_attributes([SESSION_STATE.value_set(SessionState.REJECTED.value)])
        workflow.set_current_details(f"start refused: {self._view.rejection_message}")

    async def _persist_state(self, state: SessionState) -> None:
        """A state operators filter by: search attribute and database row both follow it."""
        self._set_state(state)
        workflow.upsert_search_attributes([SESSION_STATE.value_set(state.value)])
        await commands.record_session(self._view)

    def _log_ids(self) -> dict[str, str]:
        """What every log line about a session carries."""
        return {
            "session_id": self._view.session_id,
            "station_id": self._view.station_id,
            "workflow_id": workflow.info().workflow_id,
        }

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
            late_transactions=tuple(self._late_transactions),
        )
