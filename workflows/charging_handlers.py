"""The ChargingSession workflow's message handlers: gateway signals, the transaction_started,
start and stop updates, and the state query. Mixed into the workflow class."""

from __future__ import annotations

from dataclasses import replace

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.contracts.card_sessions import CARD_TRANSACTION_UPDATE, CardStartAnswer
    from domain.contracts.charging import (
        SESSION_NOT_FOUND,
        START_REJECTED,
        START_REQUEST_MISMATCH,
        STATE_QUERY,
        ChargingRequest,
        ChargingSettings,
        SessionView,
        StartCommand,
        StopCommand,
    )
    from domain.contracts.session_signals import (
        CONNECTOR_IDLE,
        ENERGY_LIMIT_REACHED,
        FOREIGN_TRANSACTION,
        METER_SAMPLE,
        START_ACCEPTED,
        START_REFUSED,
        STATION_CONNECTED,
        TRANSACTION_STARTED,
        TRANSACTION_STOPPED,
        ConnectorIdle,
        EnergyLimitReached,
        MeterSample,
        StationConnected,
        TransactionStarted,
        TransactionStopped,
    )
    from domain.sessions import FINAL_STATES, SessionState
    from domain.tariff import Tariff
    from workflows.charging_commands import GatewayCommands


def current_details(view: SessionView) -> str:
    """What the Temporal UI shows for a session (a review adds what the operator needs)."""
    details = (
        f"**{view.state}** at {view.station_id}/{view.connector_id}: "
        f"{view.energy_wh} Wh, {view.cost_tyiyn} of {view.reserved_tyiyn} tyiyn "
        f"(price {view.price_tyiyn_per_kwh}/kWh, limit {view.energy_limit_wh} Wh)"
    )
    review = view.meter_review
    if review is not None:
        readings = ", ".join(f"{p.at.isoformat()} {p.register_wh} Wh" for p in review.readings)
        details += (
            f"\n\n**meter review: {review.reason}**: claimed {review.claimed_wh} Wh, billed "
            f"{review.billed_wh} Wh, limit {review.limit_wh} Wh at {review.max_power_w} W, "
            f"{review.at_stake_tyiyn} tyiyn at stake. Readings: {readings}"
        )
    elif view.meter_note is not None:
        details += f"\n\nmeter: {view.meter_note}"
    return details


BEFORE_STOP = frozenset({SessionState.PENDING, SessionState.STARTING, SessionState.CHARGING})


class SessionHandlers:
    """State the handlers share with the run, and the handlers themselves."""

    _request: ChargingRequest
    _settings: ChargingSettings
    _view: SessionView
    _commands: GatewayCommands
    _transaction: TransactionStarted | None
    _admitted: bool
    _start_sent: bool  # RemoteStart is on its way: a StartTransaction may answer it
    _stop_requested: bool
    _operator_stop: str | None  # who forced the stop and why, for the Temporal UI
    _stopped: TransactionStopped | None
    _limit: EnergyLimitReached | None
    _idle: ConnectorIdle | None  # the charger says the connector is idle: it has stopped
    _gave_up: bool  # decided the charger never started, or settling: late starts are refused
    _late_transactions: list[int]  # refused transactions on our connector: stopped at the end

    # ---- gateway -> workflow -----------------------------------------------------------

    @workflow.update(name=TRANSACTION_STARTED)
    def transaction_started(self, started: TransactionStarted) -> str:
        """The charger's StartTransaction; the answer is the idTagInfo status it gets."""
        return self._take_start(started)

    def _take_start(self, started: TransactionStarted) -> str:
        current = self._transaction
        if current is not None and current.transaction_id == started.transaction_id:
            return START_ACCEPTED  # the gateway asked again (a retried StartTransaction)
        accepting = self._start_sent and not self._gave_up
        if current is None and accepting and self._view.state not in FINAL_STATES:
            self._transaction = started
            return START_ACCEPTED
        # Too late, or a second transaction: Invalid tells the charger not to deliver, and
        # a RemoteStop at the end makes sure of it.
        self._note_late(started.transaction_id)
        return START_REFUSED

    @transaction_started.validator
    def _validate_transaction_started(self, started: TransactionStarted) -> None:
        # An idTag replayed at another charger must not bill this session; nothing to
        # remember, so the validator refuses it without a history event.
        request = self._request
        if (started.station_id, started.connector_id) != (
            request.station_id,
            request.connector_id,
        ):
            raise ApplicationError(
                "StartTransaction from another connector than the session's",
                type=FOREIGN_TRANSACTION,
                non_retryable=True,
            )

    @workflow.update(name=CARD_TRANSACTION_UPDATE)
    async def card_transaction(self, started: TransactionStarted) -> CardStartAnswer:
        """The gateway's update-with-start for a card's StartTransaction (and each retry of
        it): answered once the reservation holds (Accepted) or the start was refused."""
        await workflow.wait_condition(lambda: self._admitted or self._view.rejection is not None)
        view = self._view
        # A stop already in (the gateway closed the transaction it could not get an answer
        # for) means the charger was told Invalid: a retry of the start is told so too.
        taking = (
            self._admitted
            and self._stopped is None
            and not self._gave_up
            and view.state not in FINAL_STATES
        )
        return CardStartAnswer(
            status=START_ACCEPTED if taking else START_REFUSED,
            session_id=view.session_id,
            reserved_tyiyn=view.reserved_tyiyn if taking else 0,
            energy_limit_wh=view.energy_limit_wh if taking else 0,
            refusal=view.rejection,
        )

    @card_transaction.validator
    def _validate_card_transaction(self, started: TransactionStarted) -> None:
        card = self._request.card
        if card is None or (started.transaction_id, started.station_id) != (
            card.transaction.transaction_id,
            card.transaction.station_id,
        ):
            raise ApplicationError(
                "not the StartTransaction this card session was started for",
                type=FOREIGN_TRANSACTION,
                non_retryable=True,
            )

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
        # Only the accepted transaction counts: the gateway acks a StartTransaction after
        # this workflow accepted it, so its StopTransaction can never come first, and a stop
        # of a refused transaction must never be billed.
        current = self._transaction
        if self._stopped is not None or current is None:
            return
        if current.transaction_id == stopped.transaction_id:
            self._stopped = stopped

    @workflow.signal(name=ENERGY_LIMIT_REACHED)
    def energy_limit_reached(self, reached: EnergyLimitReached) -> None:
        current = self._transaction
        if current is None or current.transaction_id != reached.transaction_id:
            return
        if self._limit is None:
            self._limit = reached

    @workflow.signal(name=CONNECTOR_IDLE)
    def connector_idle(self, idle: ConnectorIdle) -> None:
        current = self._transaction
        if current is None or current.transaction_id != idle.transaction_id:
            return
        if self._stopped is None and self._idle is None:
            self._idle = idle

    @workflow.signal(name=STATION_CONNECTED)
    def station_connected(self, connected: StationConnected) -> None:
        if connected.station_id == self._request.station_id:
            self._commands.station_connected(connected.gateway_queue)

    # ---- API -> workflow -----------------------------------------------------------------

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
        if command.operator is not None and self._operator_stop is None:
            # Details and a log line only: no command, so histories replay unchanged.
            self._operator_stop = f"stop forced by operator {command.operator}: {command.reason}"
            workflow.logger.info(
                "operator stop",
                extra={"operator": command.operator, "reason": command.reason},
            )
            self._show_details()
        self._stop_requested = True
        await workflow.wait_condition(
            lambda: (
                SessionState(self._view.state) not in BEFORE_STOP
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

    # ---- small helpers -------------------------------------------------------------------

    def _tariff(self) -> Tariff:
        return Tariff(self._view.price_tyiyn_per_kwh)

    def _note_late(self, transaction_id: int) -> None:
        if transaction_id not in self._late_transactions:
            self._late_transactions.append(transaction_id)

    def _set_state(self, state: SessionState) -> None:
        self._view = replace(self._view, state=state.value)
        self._show_details()

    def _show_details(self) -> None:
        details = current_details(self._view)
        if self._operator_stop is not None:
            details += f"\n\n{self._operator_stop}"
        workflow.set_current_details(details)
