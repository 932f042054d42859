"""GatewayConfig: every knob the OCPP gateway has, handed in by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.contracts.task_queues import DEFAULT_TASK_QUEUE
from gateway.auth import MIN_PEPPER_BYTES


@dataclass(frozen=True)
class GatewayConfig:
    """Built by `runtime/` from settings; the gateway never reads the environment itself."""

    instance_id: str  # names the Temporal task queue `gateway-{instance_id}`; unique per process
    # Server-side secret every charger key hash is keyed with (domain/charger_keys.py); the same
    # for every gateway and `evpower stations add` of a deployment.
    key_pepper: bytes = field(repr=False)
    heartbeat_interval_s: int = 300  # answered in BootNotification
    meter_signal_interval_s: int = 3600  # at most one meter_sample signal per transaction per this
    allow_unknown_stations: bool = False  # accept unknown stations as Pending (onboarding)
    # Accept stations whose password_hash is NULL without credentials (security profile 0):
    # only for closed networks and load tests, never for chargers on the internet.
    allow_passwordless_stations: bool = False
    max_frame_bytes: int = 64 * 1024  # larger frames close the socket with 1009
    command_timeout_s: float = 30.0  # how long a CSMS -> charger call waits for the answer
    signal_timeout_s: float = 10.0  # per Temporal signal RPC; past it the charger gets a CallError
    last_seen_flush_s: float = 15.0  # how often traffic timestamps are written to stations
    auth_workers: int = 1  # threads for legacy (scrypt) key hashes, until each is upgraded
    auth_backlog: int = 64  # legacy hash jobs queued or running; past it upgrades get 503
    # Chargers between upgrade and first BootNotification answered; past it an upgrade gets
    # 503 + Retry-After before any database read (gateway/admission.py).
    admission_limit: int = 50
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
    # Authorize accepts an RFID card only when its owner has at least this much available
    # (tyiyn; 5,000 = 50 som), so a card does not start a session its balance cannot pay for.
    card_min_balance_tyiyn: int = 5_000
    # A StartTransaction with an active card starts a ChargingSession that reserves this much
    # (tyiyn; 50,000 = 500 som), capped by the owner's available balance, before the charger is
    # answered Accepted; the energy it buys is the session's limit (docs/charging.md, *Cards*).
    card_reserve_tyiyn: int = 50_000
    # The worker's task queue: card-started ChargingSession workflows are started on it.
    task_queue: str = DEFAULT_TASK_QUEUE

    def __post_init__(self) -> None:
        if not self.instance_id:
            raise ValueError("instance_id must not be empty")
        if len(self.key_pepper) < MIN_PEPPER_BYTES:
            raise ValueError(f"key_pepper must be at least {MIN_PEPPER_BYTES} bytes")
        if self.heartbeat_interval_s <= 0:
            raise ValueError("heartbeat_interval_s must be positive")
        if self.meter_signal_interval_s < 0:
            raise ValueError("meter_signal_interval_s must not be negative")
        if self.max_frame_bytes < 1024:
            raise ValueError("max_frame_bytes must be at least 1024")
        if self.auth_workers < 1 or self.auth_backlog < 1:
            raise ValueError("auth_workers and auth_backlog must be positive")
        if self.admission_limit < 1:
            raise ValueError("admission_limit must be positive")
        if self.command_timeout_s <= 0 or self.signal_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
        if min(self.relay_poll_s, self.relay_retry_first_s, self.clock_sync_interval_s) <= 0:
            raise ValueError("relay and clock sync intervals must be positive")
        self._check_cards()
        if self.relay_retry_max_s < self.relay_retry_first_s or self.relay_batch < 1:
            raise ValueError("relay_retry_max_s must be >= relay_retry_first_s, batch >= 1")
        if self.relay_dead_letter_after < 1:
            raise ValueError("relay_dead_letter_after must be at least 1")

    def _check_cards(self) -> None:
        if self.card_min_balance_tyiyn < 0:
            raise ValueError("card_min_balance_tyiyn must not be negative")
        if self.card_reserve_tyiyn <= 0:
            raise ValueError("card_reserve_tyiyn must be positive")
        if not self.task_queue:
            raise ValueError("task_queue must not be empty")

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
