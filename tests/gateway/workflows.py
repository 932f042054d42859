"""Test workflows: one that collects what the gateway sends a session, one that runs a command."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.contracts.session_signals import (
        ENERGY_LIMIT_REACHED,
        METER_SAMPLE,
        START_ACCEPTED,
        START_REFUSED,
        TRANSACTION_STARTED,
        TRANSACTION_STOPPED,
    )
    from domain.contracts.station_commands import CommandResult


@workflow.defn
class SignalSink:
    """Stands in for ChargingSession: records every gateway signal, in order, as raw dicts."""

    def __init__(self) -> None:
        self.received: list[tuple[str, Any]] = []
        self.done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.done)

    @workflow.update(name=TRANSACTION_STARTED)
    def transaction_started(self, payload: dict[str, Any]) -> str:
        # An update like ChargingSession's; this stand-in takes every transaction.
        self.received.append((TRANSACTION_STARTED, payload))
        return START_ACCEPTED

    @workflow.signal(name=METER_SAMPLE)
    def meter_sample(self, payload: dict[str, Any]) -> None:
        self.received.append((METER_SAMPLE, payload))

    @workflow.signal(name=TRANSACTION_STOPPED)
    def transaction_stopped(self, payload: dict[str, Any]) -> None:
        self.received.append((TRANSACTION_STOPPED, payload))

    @workflow.signal(name=ENERGY_LIMIT_REACHED)
    def energy_limit_reached(self, payload: dict[str, Any]) -> None:
        self.received.append((ENERGY_LIMIT_REACHED, payload))

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def signals(self) -> list[tuple[str, Any]]:
        return self.received


@workflow.defn
class StartRefuser:
    """A session that refuses every StartTransaction (gave up, or not its connector)."""

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.update(name=TRANSACTION_STARTED)
    def transaction_started(self, payload: dict[str, Any]) -> str:
        return START_REFUSED


@dataclass(frozen=True)
class CommandCall:
    activity: str
    task_queue: str
    argument: Any


@dataclass(frozen=True)
class CommandOutcome:
    result: CommandResult | None = None
    error_type: str | None = None
    error_message: str | None = None


@workflow.defn
class CommandProbe:
    """Runs one gateway command activity on the gateway's queue, as a session workflow would."""

    @workflow.run
    async def run(self, command: CommandCall) -> CommandOutcome:
        try:
            result = await workflow.execute_activity(
                command.activity,
                command.argument,
                task_queue=command.task_queue,
                result_type=CommandResult,
                schedule_to_start_timeout=timedelta(seconds=10),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError):
                return CommandOutcome(error_type=cause.type, error_message=cause.message)
            return CommandOutcome(error_type=type(cause).__name__, error_message=str(cause))
        return CommandOutcome(result=result)
