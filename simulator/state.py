"""The simulated hardware: connectors, their energy meters and the transactions on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

MWH_PER_WH = 1000
MS_PER_HOUR = 3_600_000


def ocpp_timestamp(moment: datetime | None = None) -> str:
    """UTC with millisecond precision and a `Z`, as OCPP 1.6J peers expect."""
    value = (moment or datetime.now(UTC)).astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


@dataclass
class Transaction:
    """One charging transaction as the charger sees it."""

    connector_id: int
    id_tag: str
    meter_start_wh: int
    started_at: str  # the timestamp sent in StartTransaction (part of the CSMS's natural key)
    transaction_id: int | None = None
    id_tag_status: str | None = None
    # Every transactionId the CSMS answered with; more than one entry means retries were sent.
    assigned_ids: list[int] = field(default_factory=list)
    meter_now_wh: int = 0
    samples_sent: int = 0
    meter_stop_wh: int | None = None
    stop_reason: str | None = None
    stopped_at: str | None = None
    stop_acknowledged: bool = False

    @property
    def started(self) -> bool:
        return self.transaction_id is not None

    @property
    def finished(self) -> bool:
        return self.stop_reason is not None

    @property
    def energy_wh(self) -> int:
        end = self.meter_stop_wh if self.meter_stop_wh is not None else self.meter_now_wh
        return end - self.meter_start_wh


@dataclass
class Connector:
    """A connector with its own energy register (kept in mWh so fractional samples add up)."""

    connector_id: int
    register_mwh: int = 0
    status: str = "Available"
    error_code: str = "NoError"
    operative: bool = True
    inoperative_scheduled: bool = False  # ChangeAvailability(Inoperative) during a transaction
    pending_id_tag: str | None = None  # RemoteStart accepted, StartTransaction not sent yet
    transaction: Transaction | None = None

    @property
    def register_wh(self) -> int:
        return self.register_mwh // MWH_PER_WH

    @property
    def free(self) -> bool:
        return self.operative and self.transaction is None and self.pending_id_tag is None

    def add_sample(self, *, power_w: int, interval_s: float, fast_forward_wh: int | None) -> None:
        if fast_forward_wh is not None:
            self.register_mwh += fast_forward_wh * MWH_PER_WH
        else:
            interval_ms = round(interval_s * 1000)
            self.register_mwh += power_w * interval_ms * MWH_PER_WH // MS_PER_HOUR
        if self.transaction is not None:
            self.transaction.meter_now_wh = self.register_wh


def soc_percent(start_percent: int, delivered_wh: int, battery_wh: int) -> int:
    return min(100, start_percent + delivered_wh * 100 // max(battery_wh, 1))


def meter_value(
    connector: Connector,
    *,
    power_w: int,
    context: str,
    soc: int | None,
) -> dict[str, object]:
    """One `meterValue` element: the energy register in Wh, power and optionally SoC."""
    sampled: list[dict[str, str]] = [
        {
            "value": str(connector.register_wh),
            "context": context,
            "measurand": "Energy.Active.Import.Register",
            "location": "Outlet",
            "unit": "Wh",
        },
        {
            "value": str(power_w),
            "context": context,
            "measurand": "Power.Active.Import",
            "location": "Outlet",
            "unit": "W",
        },
    ]
    if soc is not None:
        sampled.append(
            {
                "value": str(soc),
                "context": context,
                "measurand": "SoC",
                "location": "EV",
                "unit": "Percent",
            }
        )
    return {"timestamp": ocpp_timestamp(), "sampledValue": sampled}
