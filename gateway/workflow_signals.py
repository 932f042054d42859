"""Signals from the gateway to ChargingSession workflows, with 'no such workflow' made explicit."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.signals import charging_workflow_id


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
