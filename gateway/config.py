"""GatewayConfig: every knob the OCPP gateway has, handed in by the composition root."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.contracts.task_queues import DEFAULT_TASK_QUEUE
from gateway.auth import MIN_PEPPER_BYTES


class GatewaySettings(BaseModel):
    """The gateway's knobs an operator sets, each with its bounds. runtime/settings.py's
    `Settings` inherits this group, so each environment variable (the alias) and its validation
    is written once, and `GatewayConfig.of` hands the group over whole."""

    heartbeat_interval_s: int = Field(  # answered in BootNotification
        default=300, ge=1, le=86_400, validation_alias="ocpp_heartbeat_interval_s"
    )
    # At most one meter_sample signal per transaction per this. The timeline's samples only
    # (money and live energy come from the stored readings): one signal per hour keeps a
    # one-hour session within 20 billable actions.
    meter_signal_interval_s: int = Field(default=3600, ge=0)
    # Accept unknown stations as Pending (onboarding).
    allow_unknown_stations: bool = Field(
        default=False, validation_alias="ocpp_allow_unknown_stations"
    )
    # Accept stations whose password_hash is NULL without credentials (security profile 0):
    # only for closed networks and load tests, never for chargers on the internet.
    allow_passwordless_stations: bool = Field(
        default=False, validation_alias="ocpp_allow_passwordless_stations"
    )
    # Larger frames close the socket with 1009. StopTransaction.transactionData of a long
    # session runs past 64 KiB on some chargers; a frame over the limit closes the socket and
    # the charger resends it forever.
    max_frame_bytes: int = Field(
        default=1024 * 1024, ge=1024, validation_alias="ocpp_max_frame_bytes"
    )
    # Threads for legacy (scrypt) key hashes, until each is upgraded.
    auth_workers: int = Field(default=1, ge=1, le=64, validation_alias="ocpp_auth_workers")
    # Chargers between upgrade and first BootNotification answered; past it an upgrade gets
    # 503 + Retry-After before any database read (gateway/admission.py).
    admission_limit: int = Field(
        default=50, ge=1, le=100_000, validation_alias="ocpp_admission_limit"
    )
    # PostgreSQL connections of the admission path alone (key reads, connect / boot / status
    # bookkeeping), apart from the pool transaction messages are stored with; the composition
    # root builds that pool (runtime/server.py: admission_engine).
    admission_pool_size: int = Field(
        default=4, ge=1, le=64, validation_alias="ocpp_admission_pool_size"
    )
    # How long a CSMS -> charger call waits for the answer.
    command_timeout_s: float = Field(
        default=30.0, gt=0, le=600, validation_alias="ocpp_command_timeout_s"
    )
    # Per Temporal signal RPC; past it the charger gets a CallError.
    signal_timeout_s: float = Field(
        default=10.0, gt=0, le=300, validation_alias="ocpp_signal_timeout_s"
    )
    # Authorize accepts an RFID card only when its owner has at least this much available
    # (tyiyn; 5,000 = 50 som), so a card does not start a session its balance cannot pay for.
    card_min_balance_tyiyn: int = Field(default=5_000, ge=0)
    # A StartTransaction with an active card starts a ChargingSession that reserves this much
    # (tyiyn; 50,000 = 500 som), capped by the owner's available balance, before the charger is
    # answered Accepted; the energy it buys is the session's limit (docs/charging.md, *Cards*).
    card_reserve_tyiyn: int = Field(default=50_000, gt=0)


class GatewayConfig(GatewaySettings):
    """Built by `runtime/` from settings; the gateway never reads the environment itself."""

    # Knobs are set by their own names here (the aliases are the environment's).
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    # Names the Temporal task queue `gateway-{instance_id}`; unique per process.
    instance_id: str = Field(min_length=1)
    # Server-side secret every charger key hash is keyed with (domain/charger_keys.py); the same
    # for every gateway and `evpower stations add` of a deployment.
    key_pepper: bytes = Field(repr=False, min_length=MIN_PEPPER_BYTES)
    # The worker's task queue: card-started ChargingSession workflows are started on it.
    task_queue: str = Field(default=DEFAULT_TASK_QUEUE, min_length=1)
    last_seen_flush_s: float = 15.0  # how often traffic timestamps are written to stations
    auth_backlog: int = 64  # legacy hash jobs queued or running; past it upgrades get 503
    shutdown_close_code: int = 1001
    # An idle connector status is checked against open transactions after this long, so a
    # StopTransaction sent along with it is stored first and no signal is spent.
    idle_report_delay_s: float = 5.0
    # The relay of transaction events (gateway/relay.py): it looks for rows other gateways
    # left every relay_poll_s, and retries a failed delivery or probes a Temporal that is
    # down after relay_retry_first_s, doubling up to relay_retry_max_s.
    relay_poll_s: float = 5.0
    relay_retry_first_s: float = 0.5
    relay_retry_max_s: float = 30.0
    relay_batch: int = 50
    # A delivery that fails for good (a row that cannot be decoded, a call Temporal refuses)
    # is tried this many times with the backoff above, then dead-lettered (docs/operations.md).
    relay_dead_letter_after: int = 5
    # A StopTransaction for a transaction not recorded yet (its start held in a gateway's
    # memory during a database outage) is kept as an orphan stop and matched once the row
    # appears; if it has not appeared after this long, the orphan is dead-lettered.
    relay_orphan_wait_s: float = 3_600.0
    # Writes held in memory while PostgreSQL is down (their messages reached Temporal).
    backlog_max_writes: int = 10_000
    # Transaction ids reserved for StartTransactions that arrive while PostgreSQL is down.
    offline_transaction_ids: int = 16
    # A charger that sent no Heartbeat (nor BootNotification) for this long is asked for one
    # with TriggerMessage: OCPP-J lets ping/pong replace Heartbeats, not the daily clock sync.
    clock_sync_interval_s: float = 86_400.0

    @classmethod
    def of(cls, settings: GatewaySettings, /, **values: Any) -> GatewayConfig:
        """The group read from `settings` (runtime's Settings) whole; `values` are the rest."""
        group = {name: getattr(settings, name) for name in GatewaySettings.model_fields}
        return cls(**{**group, **values})

    @model_validator(mode="after")
    def _check(self) -> GatewayConfig:
        if self.auth_backlog < 1:
            raise ValueError("auth_backlog must be positive")
        if min(self.relay_poll_s, self.relay_retry_first_s, self.clock_sync_interval_s) <= 0:
            raise ValueError("relay and clock sync intervals must be positive")
        if self.relay_retry_max_s < self.relay_retry_first_s or self.relay_batch < 1:
            raise ValueError("relay_retry_max_s must be >= relay_retry_first_s, batch >= 1")
        if self.relay_dead_letter_after < 1:
            raise ValueError("relay_dead_letter_after must be at least 1")
        return self

    @property
    def relay_lease_s(self) -> float:
        """How long a claimed event is left to one gateway: longer than any delivery takes."""
        return max(30.0, 3 * self.signal_timeout_s)

    @property
    def offline_after_s(self) -> float:
        """A station silent for this long is considered gone."""
        return 2.0 * self.heartbeat_interval_s

    @property
    def sweep_interval_s(self) -> float:
        # Often enough that an offline station shows within a fraction of its timeout.
        return max(1.0, min(self.last_seen_flush_s, self.heartbeat_interval_s / 2))
