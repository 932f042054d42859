"""A fake world for ChargingSession workflow tests: every activity mocked by name, recording
what the workflow asked for, plus a fake gateway worker on its own task queue."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.card_sessions import OPEN_CARD_SESSION, OpenCardSession, OpenedCardSession
from activities.ledger import SETTLE_SESSION, LedgerMovement, LedgerResult, SessionSettlement
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
    RecordSource,
)
from domain import meter_readings
from domain.contracts.charging import (
    STATE_QUERY,
    ChargingRequest,
    ChargingSettings,
    SessionView,
    StartCommand,
    charging_workflow_id,
)
from domain.contracts.search_attributes import SEARCH_ATTRIBUTES
from domain.contracts.session_record import SessionRecord
from domain.contracts.session_signals import (
    TRANSACTION_STARTED,
    TRANSACTION_STOPPED,
    TransactionStarted,
    TransactionStopped,
)
from domain.contracts.station_commands import (
    REMOTE_START,
    REMOTE_STOP,
    STATION_NOT_CONNECTED,
    CommandResult,
    RemoteStartRequest,
    RemoteStopRequest,
)
from domain.meter_readings import MeterPoint
from domain.tariff import Tariff
from tests.replay.recording import write_fixture
from workflows.charging import ChargingSessionWorkflow

PRICE = 1_500  # tyiyn per kWh
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeWorld:
    """What the workflow sees of the database, the ledger and the gateway."""

    client: Client
    gateway_queue: str
    price: int = PRICE
    open_error: str | None = None  # ApplicationError type open_session raises
    reserve_error: str | None = None
    remote_start_status: str = "Accepted"
    remote_start_error: str | None = None
    not_connected_times: int = 0  # the first commands fail with StationNotConnected
    remote_stop_error: str | None = None  # ApplicationError type remote_stop raises
    remote_stop_status: str = "Accepted"  # the charger's answer to RemoteStop
    capture_error: str | None = None  # non-retryable ApplicationError type capture raises
    # Local attempts of the database steps fail (a database that does not answer in time);
    # the regular activity the workflow falls back to succeeds.
    local_steps_fail: bool = False
    # record_session fails for good (DataRejected) when it records a session in this state.
    record_fails_in_state: str | None = None
    located_queue: str | None = None  # what locate_station answers; default gateway_queue
    offline: bool = False  # locate_station finds the station connected nowhere
    open_transaction_id: int | None = None  # what locate_station finds for an idTag
    # When set, remote_stop answers by sending this StopTransaction to the workflow.
    stop_on_remote_stop: TransactionStopped | None = None
    # What recorded_transaction answers (default: nothing recorded after the start).
    recorded: RecordedTransaction | None = None
    # What recorded_start answers (default: no StartTransaction recorded for the session).
    recorded_start_answer: TransactionStarted | None = None
    start_lookups: int = 0
    # The transaction's stored meter samples the meter check reads, and the connector's power.
    samples: list[MeterPoint] = field(default_factory=list)
    max_power_w: int = meter_readings.DEFAULT_MAX_POWER_W["DC"]
    open_gate: asyncio.Event | None = None  # open_session waits for it
    capture_gate: asyncio.Event | None = None  # capture waits for it
    release_gate: asyncio.Event | None = None  # release waits for it
    first_queue: str | None = None  # open_session's answer; default gateway_queue
    card_available_tyiyn: int = 1_000_000  # the card owner's available balance
    card_opens: list[OpenCardSession] = field(default_factory=list)
    ledger: list[tuple[str, LedgerMovement]] = field(default_factory=list)
    records: list[SessionRecord] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)
    located: list[LocateStation] = field(default_factory=list)
    starts: list[RemoteStartRequest] = field(default_factory=list)
    stops: list[RemoteStopRequest] = field(default_factory=list)
    lookups: list[RecordedTransactionRequest] = field(default_factory=list)
    meter_checks: list[MeterReadingsRequest] = field(default_factory=list)

    @activity.defn(name=ASSESS_METER_READINGS)
    async def assess_meter_readings(self, request: MeterReadingsRequest) -> MeterAssessment:
        """The real domain rules over the samples this world holds."""
        self.meter_checks.append(request)
        power = request.max_power_w or self.max_power_w
        window = [
            point for point in self.samples if request.started_at <= point.at <= request.stopped_at
        ]
        return MeterAssessment(
            power,
            meter_readings.assess(
                MeterPoint(request.started_at, request.meter_start_wh),
                window,
                MeterPoint(request.stopped_at, request.meter_stop_wh),
                power,
            ),
        )

    @activity.defn(name=ADMIT_SESSION)
    async def admit_session(self, request: AdmitSession) -> Admitted:
        """Claim and reserve as one step: a refusal of either moves nothing."""
        if self.open_gate is not None:
            await self.open_gate.wait()
        if self.open_error is not None:
            raise ApplicationError("refused", type=self.open_error, non_retryable=True)
        reserved = request.amount_tyiyn
        if request.id_tag is not None:
            reserved = min(reserved, self.card_available_tyiyn)
        limit = Tariff(self.price).energy_limit_wh(reserved)
        if limit == 0:
            raise ApplicationError(
                "the amount buys no energy at this tariff", type="InvalidAmount", non_retryable=True
            )
        if self.reserve_error is not None:
            raise ApplicationError("not enough", type=self.reserve_error, non_retryable=True)
        self.ledger.append(
            (
                "reserve",
                LedgerMovement(
                    f"reserve:{request.session_id}",
                    request.client_id,
                    reserved,
                    request.session_id,
                ),
            )
        )
        queue = self.first_queue or self.gateway_queue
        return Admitted(reserved, self.price, limit, queue, self.max_power_w)

    @activity.defn(name=OPEN_SESSION)
    async def open_session(self, request: OpenSession) -> OpenedSession:
        if self.open_gate is not None:
            await self.open_gate.wait()
        if self.open_error is not None:
            raise ApplicationError("refused", type=self.open_error, non_retryable=True)
        return OpenedSession(self.price, self.first_queue or self.gateway_queue, self.max_power_w)

    @activity.defn(name=OPEN_CARD_SESSION)
    async def open_card_session(self, request: OpenCardSession) -> OpenedCardSession:
        self.card_opens.append(request)
        if self.open_error is not None:
            raise ApplicationError("refused", type=self.open_error, non_retryable=True)
        reserved = min(request.most_tyiyn, self.card_available_tyiyn)
        return OpenedCardSession(self.price, reserved, self.gateway_queue, self.max_power_w, 1)

    @activity.defn(name=RECORD_SESSION)
    async def record_session(self, record: SessionRecord) -> None:
        if self.local_steps_fail and activity.info().is_local:
            raise ApplicationError("the database did not answer")  # retryable
        if record.state == self.record_fails_in_state:
            raise ApplicationError(
                "the database refused the data", type="DataRejected", non_retryable=True
            )
        if self.records and self.records[-1] == record:
            return  # the same upsert again (a local activity run twice) changes nothing
        self.records.append(record)

    @activity.defn(name=DISCARD_SESSION)
    async def discard_session(self, session_id: str) -> None:
        self.discarded.append(session_id)

    @activity.defn(name=LOCATE_STATION)
    async def locate_station(self, request: LocateStation) -> StationLocation:
        self.located.append(request)
        queue = None if self.offline else (self.located_queue or self.gateway_queue)
        return StationLocation(
            request.station_id,
            True,
            queue,
            "Available",
            self.price,
            self.open_transaction_id if request.id_tag else None,
        )

    @activity.defn(name=RECORDED_TRANSACTION)
    async def recorded_transaction(
        self, request: RecordedTransactionRequest
    ) -> RecordedTransaction:
        self.lookups.append(request)
        if self.recorded is not None:
            return self.recorded
        return RecordedTransaction(request.transaction_id, RecordSource.NOTHING.value)

    @activity.defn(name=RECORDED_START)
    async def recorded_start(self, request: RecordedStartRequest) -> RecordedStart:
        self.start_lookups += 1
        return RecordedStart(self.recorded_start_answer)

    async def _move(self, operation: str, movement: LedgerMovement) -> LedgerResult:
        """Idempotent per op_key, as the ledger is: a local activity runs again when the
        workflow task it ran in did not complete (its marker was not recorded)."""
        for number, (done, earlier) in enumerate(self.ledger, start=1):
            if earlier.op_key == movement.op_key:
                return LedgerResult(number, movement.op_key, done, earlier.amount_tyiyn, True)
        self.ledger.append((operation, movement))
        return LedgerResult(
            len(self.ledger), movement.op_key, operation, movement.amount_tyiyn, False
        )

    @activity.defn(name=SETTLE_SESSION)
    async def settle_session(self, settlement: SessionSettlement) -> None:
        """Capture and release as one step: a refusal moves neither."""
        movements = settlement.movements()
        operations = [operation.value for operation, _ in movements]
        if "capture" in operations:
            if self.capture_gate is not None:
                await self.capture_gate.wait()
            if self.capture_error is not None:
                raise ApplicationError("refused", type=self.capture_error, non_retryable=True)
        if "release" in operations and self.release_gate is not None:
            await self.release_gate.wait()
        for operation, movement in movements:
            await self._move(operation.value, movement)

    @activity.defn(name="reserve")
    async def reserve(self, movement: LedgerMovement) -> LedgerResult:
        if self.reserve_error is not None:
            raise ApplicationError("not enough", type=self.reserve_error, non_retryable=True)
        return await self._move("reserve", movement)

    @activity.defn(name="capture")
    async def capture(self, movement: LedgerMovement) -> LedgerResult:
        if self.capture_gate is not None:
            await self.capture_gate.wait()
        if self.capture_error is not None:
            raise ApplicationError("refused", type=self.capture_error, non_retryable=True)
        return await self._move("capture", movement)

    @activity.defn(name="release")
    async def release(self, movement: LedgerMovement) -> LedgerResult:
        if self.release_gate is not None:
            await self.release_gate.wait()
        return await self._move("release", movement)

    def _blip(self) -> None:
        if self.not_connected_times > 0:
            self.not_connected_times -= 1
            raise ApplicationError("gone", type=STATION_NOT_CONNECTED, non_retryable=True)

    @activity.defn(name=REMOTE_START)
    async def remote_start(self, request: RemoteStartRequest) -> CommandResult:
        self._blip()
        self.starts.append(request)
        if self.remote_start_error is not None:
            raise ApplicationError("no", type=self.remote_start_error, non_retryable=True)
        # Shaped like the gateway's answer, whose payload repeats the charger's fields.
        return CommandResult(self.remote_start_status, {"status": self.remote_start_status})

    @activity.defn(name=REMOTE_STOP)
    async def remote_stop(self, request: RemoteStopRequest) -> CommandResult:
        self._blip()
        if self.remote_stop_error is not None:
            raise ApplicationError("no", type=self.remote_stop_error, non_retryable=True)
        self.stops.append(request)
        answer = self.stop_on_remote_stop
        if answer is not None:
            workflow_id = activity.info().workflow_id
            assert workflow_id is not None
            await self.client.get_workflow_handle(workflow_id).signal(TRANSACTION_STOPPED, answer)
        status = self.remote_stop_status
        return CommandResult(status, {"status": status})

    def workflow_activities(self) -> list[object]:
        return [
            self.admit_session,
            self.open_session,
            self.open_card_session,
            self.record_session,
            self.discard_session,
            self.locate_station,
            self.recorded_transaction,
            self.recorded_start,
            self.assess_meter_readings,
            self.reserve,
            self.capture,
            self.release,
            self.settle_session,
        ]

    def moved(self) -> list[tuple[str, str, int]]:
        return [(op, movement.op_key, movement.amount_tyiyn) for op, movement in self.ledger]


@dataclass
class Harness:
    env: WorkflowEnvironment
    world: FakeWorld
    task_queue: str
    started: list[str] = field(default_factory=list)  # workflow ids, ended with the harness

    @property
    def client(self) -> Client:
        return self.env.client

    def request(self, session_id: str | None = None, **overrides: object) -> ChargingRequest:
        values: dict[str, object] = {
            "session_id": session_id or uuid.uuid4().hex[:16],
            "client_id": "client-a",
            "station_id": "ST-1",
            "connector_id": 1,
            "amount_tyiyn": 10_000,
            "settings": ChargingSettings(),
        }
        values.update(overrides)
        return ChargingRequest(**values)  # type: ignore[arg-type]

    async def begin(
        self, request: ChargingRequest
    ) -> WorkflowHandle[ChargingSessionWorkflow, SessionView]:
        """Start the workflow without its start update (see TOOLCHAIN.md's quirk)."""
        handle = await self.client.start_workflow(
            ChargingSessionWorkflow.run,
            request,
            id=charging_workflow_id(request.session_id),
            task_queue=self.task_queue,
        )
        self.started.append(handle.id)
        return handle

    async def start(
        self, request: ChargingRequest
    ) -> tuple[WorkflowHandle[ChargingSessionWorkflow, SessionView], SessionView]:
        handle = await self.begin(request)
        view = await handle.execute_update(ChargingSessionWorkflow.start, command(request))
        return handle, view


def command(request: ChargingRequest) -> StartCommand:
    return StartCommand(
        request.client_id, request.station_id, request.connector_id, request.amount_tyiyn
    )


def started(transaction_id: int = 7, meter_start_wh: int = 100_000) -> TransactionStarted:
    return TransactionStarted(transaction_id, "ST-1", 1, meter_start_wh, T0)


def stopped(
    energy_wh: int, transaction_id: int = 7, meter_start_wh: int = 100_000, minutes: int = 60
) -> TransactionStopped:
    return TransactionStopped(
        transaction_id,
        meter_start_wh + energy_wh,
        energy_wh,
        T0 + timedelta(minutes=minutes),
        "Remote",
    )


async def view_of(handle: WorkflowHandle[ChargingSessionWorkflow, SessionView]) -> SessionView:
    view: SessionView = await handle.query(STATE_QUERY, result_type=SessionView)
    return view


async def wait_for(
    handle: WorkflowHandle[ChargingSessionWorkflow, SessionView], *states: str
) -> SessionView:
    """Poll the state query until the session reaches one of `states` (bounded, no timing)."""
    for _ in range(500):
        view = await view_of(handle)
        if view.state in states:
            return view
        await asyncio.sleep(0.02)
    raise AssertionError(f"session stayed {view.state}, expected one of {states}")


async def signal_started(
    handle: WorkflowHandle[ChargingSessionWorkflow, SessionView], transaction: TransactionStarted
) -> str:
    """What the gateway does for a StartTransaction: the update's answer is the idTag status."""
    answer: str = await handle.execute_update(TRANSACTION_STARTED, transaction, result_type=str)
    return answer


async def register_search_attributes(client: Client) -> None:
    """The time-skipping server starts without the product's search attributes."""
    keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes=dict.fromkeys(SEARCH_ATTRIBUTES, keyword),
            )
        )
    except RPCError as exc:
        if exc.status is not RPCStatusCode.ALREADY_EXISTS:
            raise


@asynccontextmanager
async def harness(env: WorkflowEnvironment, **world: object) -> AsyncIterator[Harness]:
    """Workers for one test: the workflow queue and a fake gateway queue, both unique."""
    await register_search_attributes(env.client)
    task_queue = f"charging-{uuid.uuid4().hex[:8]}"
    gateway_queue = f"gateway-{uuid.uuid4().hex[:8]}"
    fake = FakeWorld(client=env.client, gateway_queue=gateway_queue, **world)  # type: ignore[arg-type]
    async with (
        Worker(
            env.client,
            task_queue=task_queue,
            workflows=[ChargingSessionWorkflow],
            activities=fake.workflow_activities(),  # type: ignore[arg-type]
        ),
        Worker(
            env.client,
            task_queue=gateway_queue,
            activities=[fake.remote_start, fake.remote_stop],
        ),
    ):
        harnessed = Harness(env, fake, task_queue)
        try:
            yield harnessed
        finally:
            await _terminate_running(env.client, harnessed.started)


async def _terminate_running(client: Client, workflow_ids: list[str]) -> None:
    """A test that failed half-way leaves its workflow waiting on a timer or a signal; ended
    here, it cannot hold the shared time-skipping server back in the tests after it."""
    for workflow_id in workflow_ids:
        handle = client.get_workflow_handle(workflow_id)
        try:
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("the test ended")
        except RPCError:
            continue


async def keep_history(
    handle: WorkflowHandle[ChargingSessionWorkflow, SessionView], name: str
) -> None:
    """With EVPOWER_RECORD_HISTORIES=1, store this run's history as a replay fixture."""
    if os.environ.get("EVPOWER_RECORD_HISTORIES") != "1":
        return
    write_fixture(await handle.fetch_history(), f"charging_{name}")
