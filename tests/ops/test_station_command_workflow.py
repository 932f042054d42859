"""The StationCommand workflow alone (time-skipping server, activities faked by name): where it
sends, what ends it at once, and that nothing is retried for ever."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.station_commands import STATION_COMMAND_TARGET, CommandTarget, CommandTargetQuery
from domain.contracts.operator_commands import Outcome, StationCommandRequest, StationCommandResult
from domain.contracts.station_commands import (
    RESET,
    STATION_CALL_ERROR,
    STATION_TIMEOUT,
    StationCommand,
)
from tests.replay.recording import write_fixture
from workflows.station_command import ATTEMPTS, LOOKUP_RETRY, StationCommandWorkflow

STATION = "CP-1"


@dataclass
class World:
    """Where the station is on each lookup, and what its gateway does with a Reset."""

    queues: list[str | None]  # one per lookup; the last repeats
    live_sessions: list[str] = field(default_factory=list)
    lookups: list[CommandTargetQuery] = field(default_factory=list)
    sent: list[tuple[str, StationCommand]] = field(default_factory=list)
    gateway_answer: Callable[[StationCommand], dict[str, Any]] = lambda _: {
        "status": "Accepted",
        "payload": {"status": "Accepted"},
    }
    lookup_fails: bool = False


def _gateway(world: World, queue: str) -> Callable[..., Any]:
    @activity.defn(name=RESET)
    async def reset(command: StationCommand) -> dict[str, Any]:
        world.sent.append((queue, command))
        return world.gateway_answer(command)

    return reset


@asynccontextmanager
async def running(env: WorkflowEnvironment, world: World) -> AsyncIterator[str]:
    task_queue = f"ops-wf-{uuid.uuid4().hex[:8]}"

    @activity.defn(name=STATION_COMMAND_TARGET)
    async def target(query: CommandTargetQuery) -> CommandTarget:
        world.lookups.append(query)
        if world.lookup_fails:
            raise RuntimeError("database down")
        queue = world.queues[min(len(world.lookups), len(world.queues)) - 1]
        return CommandTarget(STATION, True, queue, world.live_sessions)

    async with (
        Worker(
            env.client,
            task_queue=task_queue,
            workflows=[StationCommandWorkflow],
            activities=[target],
        ),
        # "gw-live" serves; "gw-dead" is a gateway that died: nobody polls its queue.
        Worker(env.client, task_queue="gw-live", activities=[_gateway(world, "gw-live")]),
    ):
        yield task_queue


async def _run(
    env: WorkflowEnvironment,
    world: World,
    request: StationCommandRequest | None = None,
    record: str | None = None,
) -> StationCommandResult:
    async with running(env, world) as task_queue:
        handle = await env.client.start_workflow(
            StationCommandWorkflow.run,
            request or StationCommandRequest(STATION, RESET, {"type": "Soft"}, "op-1", "test"),
            id=f"station-command-{STATION}-reset-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        result = await handle.result()
        if record and os.environ.get("EVPOWER_RECORD_HISTORIES") == "1":
            write_fixture(await handle.fetch_history(), f"station_command_{record}")
        return result


async def test_the_charger_answer_comes_back(time_skipping_env: WorkflowEnvironment) -> None:
    world = World(queues=["gw-live"])
    result = await _run(time_skipping_env, world, record="answered")
    assert (result.outcome, result.status) == (Outcome.ANSWERED, "Accepted")
    assert [(queue, command.params) for queue, command in world.sent] == [
        ("gw-live", {"type": "Soft"})
    ]


async def test_offline_ends_at_once_without_sending(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    world = World(queues=[None])
    result = await _run(time_skipping_env, world, record="offline")
    assert result.outcome == Outcome.OFFLINE
    assert len(world.lookups) == 1 and world.sent == []


async def test_a_dead_gateway_is_left_for_where_the_charger_is_now(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    world = World(queues=["gw-dead", "gw-live"])
    result = await _run(time_skipping_env, world, record="dead_gateway_then_moved")
    assert result.outcome == Outcome.ANSWERED
    assert len(world.lookups) == 2 and [queue for queue, _ in world.sent] == ["gw-live"]


async def test_dead_gateways_are_tried_a_bounded_number_of_times(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    world = World(queues=["gw-dead"])
    result = await _run(time_skipping_env, world)
    assert result.outcome == Outcome.OFFLINE
    assert len(world.lookups) == ATTEMPTS


@pytest.mark.parametrize(
    ("error_type", "outcome"),
    [(STATION_CALL_ERROR, Outcome.CALL_ERROR), (STATION_TIMEOUT, Outcome.NO_ANSWER)],
)
async def test_a_final_failure_is_sent_once(
    time_skipping_env: WorkflowEnvironment, error_type: str, outcome: Outcome
) -> None:
    def fail(_: StationCommand) -> dict[str, Any]:
        raise ApplicationError("no", type=error_type, non_retryable=True)

    world = World(queues=["gw-live"], gateway_answer=fail)
    result = await _run(time_skipping_env, world)
    assert result.outcome == outcome
    assert len(world.sent) == 1


async def test_a_live_session_refuses_inoperative_unless_forced(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    def request(force: bool) -> StationCommandRequest:
        return StationCommandRequest(
            STATION,
            RESET,  # the fake gateway serves Reset; the guard is what is under test
            {"connector_id": 1, "type": "Inoperative"},
            "op-1",
            "repair",
            guard_connector_id=1,
            force=force,
        )

    world = World(queues=["gw-live"], live_sessions=["s-1"])
    refused = await _run(time_skipping_env, world, request(False), record="busy")
    assert (refused.outcome, refused.live_sessions, world.sent) == (Outcome.BUSY, ["s-1"], [])
    assert world.lookups[0].sessions_on_connector == 1
    forced = await _run(time_skipping_env, world, request(True))
    assert forced.outcome == Outcome.ANSWERED and len(world.sent) == 1


async def test_a_lookup_that_keeps_failing_ends_the_workflow(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    world = World(queues=["gw-live"], lookup_fails=True)
    with pytest.raises(WorkflowFailureError):
        await _run(time_skipping_env, world)
    assert len(world.lookups) == LOOKUP_RETRY.maximum_attempts
