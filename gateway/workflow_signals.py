"""Signals and the StartTransaction update from the gateway to ChargingSession workflows, with
'no such workflow' and 'refused' made explicit."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain.contracts.card_sessions import CARD_TRANSACTION_UPDATE, CardStartAnswer
from domain.contracts.charging import (
    WORKFLOW_NAME,
    ChargingRequest,
    SessionView,
    charging_workflow_id,
    initial_search_attributes,
)
from domain.contracts.session_signals import (
    START_ACCEPTED,
    START_REFUSED,
    TRANSACTION_STARTED,
    TransactionStarted,
)


class SignalFailed(Exception):
    """Temporal did not take the signal (unreachable, timed out): the charger should retry.

    `unavailable` is True when Temporal could not be reached or did not answer in time (worth
    retrying as soon as it is back), False when it answered with an error of its own.
    """

    def __init__(self, message: str, *, unavailable: bool = True) -> None:
        super().__init__(message)
        self.unavailable = unavailable


_UNAVAILABLE = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.RESOURCE_EXHAUSTED,
    }
)


def _failed(what: str, exc: RPCError) -> SignalFailed:
    return SignalFailed(f"{what}: {exc.message}", unavailable=exc.status in _UNAVAILABLE)


class WorkflowSignals:
    """While Temporal is known to be down (a call found it unreachable), calls fail at once
    instead of each waiting for its own timeout: the gateway answers chargers from what it
    stored, and the relay's probe (`probe()`) says when Temporal is back."""

    def __init__(self, client: Client, *, rpc_timeout_s: float) -> None:
        self._client = client
        self._rpc_timeout = timedelta(seconds=rpc_timeout_s)
        self._down = False
        self.on_down: Callable[[], None] | None = None  # the relay's wake-up: go probe

    @property
    def down(self) -> bool:
        return self._down

    def _check(self, what: str) -> None:
        if self._down:
            raise SignalFailed(f"{what}: Temporal is unreachable")

    def _note(self, failure: SignalFailed) -> SignalFailed:
        if failure.unavailable and not self._down:
            self._down = True
            if self.on_down is not None:
                self.on_down()
        return failure

    async def send(self, session_id: str, signal: str, arg: object) -> bool:
        """True once the session's workflow accepted the signal; False when it does not exist.

        A workflow that never existed or has already closed answers NOT_FOUND; the caller
        records the event and still answers the charger. Anything else raises SignalFailed.
        """
        self._check(signal)
        handle = self._client.get_workflow_handle(charging_workflow_id(session_id))
        try:
            await handle.signal(signal, arg, rpc_timeout=self._rpc_timeout)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise self._note(_failed(f"{signal} to session {session_id}", exc)) from exc
        return True

    async def start_transaction(self, session_id: str, started: TransactionStarted) -> bool:
        """True when the session's workflow takes this StartTransaction as its own.

        False when there is no such workflow (never existed, closed) or it refused the
        transaction (another connector, gave up, settling, a second one): the charger gets
        Invalid. Temporal unreachable or too slow raises SignalFailed, so the charger retries.
        """
        self._check("StartTransaction")
        handle = self._client.get_workflow_handle(charging_workflow_id(session_id))
        try:
            answer = await handle.execute_update(
                TRANSACTION_STARTED, started, result_type=str, rpc_timeout=self._rpc_timeout
            )
        except WorkflowUpdateFailedError:
            return False  # refused by the validator
        except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
            failure = SignalFailed(f"StartTransaction to session {session_id}: no answer")
            raise self._note(failure) from exc
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise self._note(_failed(f"StartTransaction to session {session_id}", exc)) from exc
        return bool(answer == START_ACCEPTED)

    async def start_card_session(
        self, request: ChargingRequest, task_queue: str, summary: str
    ) -> CardStartAnswer:
        """Start (or join) the card session's workflow with its `card_transaction` update;
        the answer says whether the charger may deliver (the reservation holds).

        A retried StartTransaction names the same workflow and gets the same answer while it
        runs; a workflow that has closed (refused, or long over) is not started again and
        answers Invalid. Temporal unreachable or too slow raises SignalFailed: the caller
        cannot tell whether the workflow started."""
        self._check("StartTransaction (card)")
        card = request.card
        assert card is not None
        operation: WithStartWorkflowOperation[Any, SessionView] = WithStartWorkflowOperation(
            WORKFLOW_NAME,
            request,
            id=charging_workflow_id(request.session_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=initial_search_attributes(request),
            static_summary=summary,
        )
        refused = CardStartAnswer(status=START_REFUSED, session_id=request.session_id)
        try:
            answer: CardStartAnswer = await self._client.execute_update_with_start_workflow(
                CARD_TRANSACTION_UPDATE,
                card.transaction,
                start_workflow_operation=operation,
                result_type=CardStartAnswer,
                rpc_timeout=self._rpc_timeout,
            )
        except WorkflowAlreadyStartedError:
            # The operation keeps the same error for its handle; collect it so it is not
            # reported as never retrieved.
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await operation.workflow_handle()
            return refused
        except WorkflowUpdateFailedError:
            return refused  # the validator: not this session's transaction
        except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
            failure = SignalFailed(f"card session {request.session_id}: no answer")
            raise self._note(failure) from exc
        except RPCError as exc:
            raise self._note(_failed(f"card session {request.session_id}", exc)) from exc
        return answer

    async def probe(self) -> bool:
        """Whether Temporal answers at all; a success ends the known outage."""
        try:
            healthy = await self._client.service_client.check_health(timeout=self._rpc_timeout)
        except Exception:
            healthy = False
        if healthy:
            self._down = False
        return healthy
