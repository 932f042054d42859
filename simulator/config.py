"""What a simulated charge point is (identity, meter, timing) and which faults it injects."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FaultPlan:
    """Misbehaviour to inject. Fields may be changed while the station runs."""

    reject_remote_start: bool = False
    # Never answer RemoteStartTransaction at all (no CallResult, no CallError): a charger
    # whose firmware drops the command; the CSMS sees only its own call time out.
    silent_remote_start: bool = False
    # Accept RemoteStart but never send StartTransaction: a charger whose cable was never plugged.
    skip_start_transaction: bool = False
    # Accept RemoteStop but keep charging and never send StopTransaction: a hung charger.
    ignore_remote_stop: bool = False
    # Extra sends of the same StartTransaction / StopTransaction, each with a new message id,
    # as a charger does when it missed the first answer.
    start_transaction_repeats: int = 0
    stop_transaction_repeats: int = 0
    # A transaction message the CSMS answers with a CallError (or not at all) is tried
    # StationConfig.transaction_message_attempts times, then given up, as chargers do with
    # TransactionMessageAttempts. With this set, the attempts of one message reuse its first
    # message id (some firmwares do) instead of taking a new one each.
    retry_with_same_message_id: bool = False
    # StopTransaction only after a reconnect: the charger loses its socket as the transaction
    # ends and reports the stop on the next connection.
    stop_after_reconnect: bool = False
    duplicate_meter_values: bool = False  # every MeterValues sent twice (new message ids)
    meter_values_out_of_order: bool = False  # each MeterValues sent after the next one
    # No Heartbeat at all: only WebSocket ping/pong keeps the socket alive (OCPP-J allows it;
    # widely used chargers do so after a reconnect).
    ping_only: bool = False


@dataclass(frozen=True)
class StationConfig:
    """A simulated charge point. `url` is the CSMS base URL; the station id is appended."""

    station_id: str
    url: str
    password: str | None = None  # HTTP Basic (security profile 1) when set
    connectors: int = 1
    power_w: int = 22_000
    meter_interval_s: float = 10.0  # fractional values let tests run many samples quickly
    # Fast forward: energy added per sample, whatever power and interval say (5 kWh in seconds).
    energy_per_sample_wh: int | None = None
    meter_start_wh: int = 0  # the register is monotonic across transactions, as on a real meter
    # The car is full after taking this much in a transaction: power drops to 0, the
    # register stands still and the connector reports SuspendedEV. None: it never fills.
    car_takes_wh: int | None = None
    soc_start_percent: int | None = None  # None: no SoC in MeterValues
    battery_wh: int = 60_000
    vendor: str = "EvPower"
    model: str = "SimCharger"
    serial_number: str | None = None
    firmware_version: str = "sim-1.0"
    compression: bool = True  # offer permessage-deflate like most charger firmwares do
    response_timeout_s: float = 30.0
    reconnect_delay_s: float = 1.0
    transaction_message_attempts: int = 3
    transaction_message_retry_s: float = 1.0
    # The charger's own WebSocket keepalive pings (None: it only answers the CSMS's pings).
    ping_interval_s: float | None = 20.0

    def __post_init__(self) -> None:
        if not self.station_id or "/" in self.station_id:
            raise ValueError("station_id must be a non-empty path segment")
        if self.connectors < 1:
            raise ValueError("connectors must be >= 1")
        if self.power_w < 0 or self.meter_interval_s <= 0:
            raise ValueError("power_w must be >= 0 and meter_interval_s > 0")
        if self.energy_per_sample_wh is not None and self.energy_per_sample_wh < 0:
            raise ValueError("energy_per_sample_wh must be >= 0")
        if self.car_takes_wh is not None and self.car_takes_wh < 0:
            raise ValueError("car_takes_wh must be >= 0")
        if self.transaction_message_attempts < 1:
            raise ValueError("transaction_message_attempts must be >= 1")

    @property
    def endpoint(self) -> str:
        return f"{self.url.rstrip('/')}/{self.station_id}"
