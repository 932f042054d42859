"""The ChargingSession workflow's contract with whoever starts, stops and reads it (the API):
its workflow id and type, update/query names and the errors they fail with, its input and
settings, and its public state. What the gateway tells it is in `session_signals`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio.common import SearchAttributePair, TypedSearchAttributes

from domain.contracts.card_sessions import CardStart
from domain.contracts.search_attributes import CLIENT_ID, SESSION_STATE, STATION_ID
from domain.contracts.session_record import SessionRecord
from domain.contracts.session_signals import TransactionStarted
from domain.meter_readings import MeterPoint
from domain.sessions import SessionState

WORKFLOW_NAME = "ChargingSession"
START_UPDATE = "start"
STOP_UPDATE = "stop"
STATE_QUERY = "state"

# ApplicationError types the updates fail with; the API maps them (domain.sessions).
START_REJECTED = "StartRejected"
SESSION_NOT_FOUND = "SessionNotFound"
START_REQUEST_MISMATCH = "StartRequestMismatch"


def charging_workflow_id(session_id: str) -> str:
    """The session id is the RemoteStart idTag, so a StartTransaction names its workflow."""
    return f"charging-{session_id}"


@dataclass(frozen=True)
class ChargingSettings:
    """Durations in whole seconds (they travel in the workflow input, so stay JSON-simple)."""

    start_timeout_s: int = 600  # durable timer for StartTransaction after RemoteStart
    time_cap_s: int = 12 * 3600  # longest a session may charge
    stop_grace_s: int = 120  # wait for StopTransaction after a RemoteStop the charger accepted
    # A charger that could not be told to stop (offline, no answer) is waited for until the
    # 12 h cap deadline, and at least this long after the stop; RemoteStop is retried after
    # stop_retry_first_s, doubling up to stop_retry_max_s.
    offline_stop_wait_s: int = 6 * 3600
    stop_retry_first_s: int = 60
    stop_retry_max_s: int = 1800
    command_schedule_timeout_s: int = 10  # no gateway picked the command up: it is dead
    command_timeout_s: int = 60  # the gateway waits for the charger's answer within this
    command_attempts: int = 3  # re-locate and resend this often when a gateway is dead
    # A station connected nowhere (brief disconnect, rolling gateway deploy) is looked for
    # again after 2, 3, 4, 5, 5... s of durable timer for this long before giving up.
    command_patience_s: int = 60
    # Continue-as-new after this many history events (0: only when Temporal suggests it).
    history_events_limit: int = 0

    @property
    def start_timeout(self) -> timedelta:
        return timedelta(seconds=self.start_timeout_s)

    @property
    def time_cap(self) -> timedelta:
        return timedelta(seconds=self.time_cap_s)

    @property
    def stop_grace(self) -> timedelta:
        return timedelta(seconds=self.stop_grace_s)

    @property
    def offline_stop_wait(self) -> timedelta:
        return timedelta(seconds=self.offline_stop_wait_s)

    @property
    def stop_retry_first(self) -> timedelta:
        return timedelta(seconds=self.stop_retry_first_s)

    @property
    def stop_retry_max(self) -> timedelta:
        return timedelta(seconds=self.stop_retry_max_s)


@dataclass(frozen=True)
class StartCommand:
    """The start update's argument: what the driver asked for."""

    client_id: str
    station_id: str
    connector_id: int
    amount_tyiyn: int


@dataclass(frozen=True)
class StopCommand:
    client_id: str  # only the session's owner may stop it
    # An operator's forced stop (the ops API) names the session's owner too, and says who and
    # why; a driver's stop leaves both None. Defaults keep older histories' payloads valid.
    operator: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class MeterReview:
    """Why a session's readings were not billed as they stand, for the operator who decides:
    the bound that was broken, what the meter claimed, what was billed and what is at stake."""

    reason: str  # domain.meter_readings.ReviewReason
    max_power_w: int
    claimed_wh: int | None  # None: unknown (a register reset with nothing to rebuild from)
    billed_wh: int
    limit_wh: int | None
    at_stake_tyiyn: int  # what the claim would have cost beyond what was captured
    readings: tuple[MeterPoint, ...] = ()


@dataclass(frozen=True)
class SessionView(SessionRecord):
    """The whole public state of a session: the `state` query and both updates return it. The
    record's fields, plus what only the workflow and its callers need."""

    rejection: str | None = None  # domain error class name when the start was refused
    rejection_message: str | None = None
    max_power_w: int = 0  # the connector's, snapshotted with the tariff (0: before it was)
    meter_review: MeterReview | None = None


@dataclass(frozen=True)
class CarriedSession:
    """What a continued run needs to pick up a charging session where the last run was."""

    view: SessionView
    transaction: TransactionStarted
    gateway_queue: str | None
    cap_deadline: datetime
    late_transactions: tuple[int, ...] = ()  # refused transactions still to be stopped


@dataclass(frozen=True)
class SessionClaim:
    """Whose session claims which connector: the fields every admission step names first."""

    session_id: str
    client_id: str
    station_id: str
    connector_id: int


@dataclass(frozen=True)
class ChargingRequest(SessionClaim):
    """Workflow input. The API builds it; a continued run gets it back with `carried` set."""

    amount_tyiyn: int
    settings: ChargingSettings = field(default_factory=ChargingSettings)
    carried: CarriedSession | None = None
    # Set when the gateway started the session for an RFID card at StartTransaction: the
    # transaction is known from the start and no RemoteStart is sent. `amount_tyiyn` is then
    # the most to reserve; the workflow reserves it capped by the owner's available balance.
    card: CardStart | None = None

    @property
    def command(self) -> StartCommand:
        return StartCommand(self.client_id, self.station_id, self.connector_id, self.amount_tyiyn)

    def initial_view(self) -> SessionView:
        """Nothing is reserved yet: admission sets `reserved_tyiyn` once the reservation is."""
        return SessionView(
            session_id=self.session_id,
            client_id=self.client_id,
            station_id=self.station_id,
            connector_id=self.connector_id,
            state=SessionState.PENDING.value,
            reserved_tyiyn=0,
        )


def initial_search_attributes(request: ChargingRequest) -> TypedSearchAttributes:
    """Set by the starter, so the first state costs no upsert."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(STATION_ID, request.station_id),
            SearchAttributePair(CLIENT_ID, request.client_id),
            SearchAttributePair(SESSION_STATE, SessionState.PENDING.value),
        ]
    )
