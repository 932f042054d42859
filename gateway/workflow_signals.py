"""Signals and the StartTransaction update from the gateway to ChargingSession workflows, with
'no such workflow' and 'refused' made explicit."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode

from workflows.signals import (
    START_ACCEPTED,
    TRANSACTION_STARTED,
    TransactionStarted,
    charging_workflow_id,
)


class SignalFailed(Exception):
    """Temporal did not take the signal (unreachable, timed out): the charger should retry."""


class WorkflowSignals:
    def __init__(self, client: Client, *, rpc_timeout_s: float) -> None:
        self._client = client
        self._rpc_timeout = timedelta(seconds=rpc_timeout_s)

    async def send(self, session_id: str, signal: str, arg: object) -> bool:
        """True once the session's workflow accepted the signal; False when it does not exist.

        A workflow that never existed or has already closed answers NOT_FOUND; the caller
        records the event and still answers the charger. Anything else raises SignalFailed.
        """
        handle = self._client.get_workflow_handle(charging_workflow_id(session_id))
        try:
            await handle.signal(signal, arg, rpc_timeout=self._rpc_timeout)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise SignalFailed(f"{signal} to session {session_id}: {exc.message}") from exc
        return True

    async def start_transaction(self, session_id: str, started: TransactionStarted) -> bool:
        """True when the session's workflow takes this StartTransaction as its own.

        False when there is no such workflow (never existed, closed) or it refused the
        transaction (another connector, gave up, settling, a second one): the charger gets
        Invalid. Temporal unreachable or too slow raises SignalFailed, so the charger retries.
        """
        handle = self._client.get_workflow_handle(charging_workflow_id(session_id))
        try:
            answer = await handle.execute_update(
                TRANSACTION_STARTED, started, result_type=str, rpc_timeout=self._rpc_timeout
            )
        except WorkflowUpdateFailedError:
            return False  # refused by the validator
        except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
            raise SignalFailed(f"StartTransaction to session {session_id}: no answer") from exc
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise SignalFailed(f"StartTransaction to session {session_id}: {exc.message}") from exc
        return bool(answer == START_ACCEPTED)
