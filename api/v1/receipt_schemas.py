"""The body of `GET /charging/{session_id}/receipt`: what a settled session cost and why.
Money in integer tyiyn plus display strings in som; energy in Wh plus kWh to 3 decimals."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class ReceiptStation(BaseModel):
    station_id: str
    name: str
    location: str | None  # the location's name, when the station belongs to one
    address: str | None  # street address and city, as the location records them


class ReceiptTime(BaseModel):
    utc: datetime
    local: datetime  # the same moment in `ChargingReceipt.time_zone`


class ReceiptTariff(BaseModel):
    price_tyiyn_per_kwh: int
    price_per_kwh: str  # som, e.g. "15.00"
    currency: str


class ReceiptLedgerEntry(BaseModel):
    """One money movement of the session, as the ledger holds it."""

    entry_id: int
    operation: str  # reserve | capture | release
    op_key: str
    amount_tyiyn: int
    amount: str
    created_at: datetime


class ChargingReceipt(BaseModel):
    """A final session. `cost_tyiyn` is what the ledger captured, `refunded_tyiyn` what it
    released back to the balance; for a completed session they add up to `reserved_tyiyn`."""

    session_id: str
    state: str
    stop_reason: str | None
    station: ReceiptStation
    connector_id: int
    time_zone: str
    started_at: ReceiptTime | None  # None: the charger never started
    stopped_at: ReceiptTime | None
    energy_wh: int
    energy_kwh: str  # exact, 3 decimals
    tariff: ReceiptTariff
    currency: str
    reserved_tyiyn: int
    reserved: str
    cost_tyiyn: int
    cost: str
    refunded_tyiyn: int
    refunded: str
    ledger_entries: list[ReceiptLedgerEntry]
