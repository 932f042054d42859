"""Locations, stations and connectors, live connections, OCPP transactions, meter values."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    func,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, created_at_column


class Location(Base):
    __tablename__ = "locations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    latitude: Mapped[Decimal | None] = mapped_column(Numeric(9, 6))
    longitude: Mapped[Decimal | None] = mapped_column(Numeric(9, 6))
    # A disabled location is hidden from drivers; it can only be disabled without enabled
    # stations (api/v1/ops/locations.py).
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = created_at_column()


class Station(Base):
    __tablename__ = "stations"
    __table_args__ = (CheckConstraint("price_tyiyn_per_kwh > 0", name="positive_price"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # OCPP charge box id
    location_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("locations.id"))
    name: Mapped[str] = mapped_column(String(200), default="")
    price_tyiyn_per_kwh: Mapped[int] = mapped_column(BigInteger)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    # The key before the last rotation, still accepted until it expires (the charger's grace
    # to be reconfigured); never a plain key.
    previous_password_hash: Mapped[str | None] = mapped_column(String(256))
    previous_key_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # accepted: known and allowed; pending: connected unknown while onboarding is allowed
    registration_status: Mapped[str] = mapped_column(String(16), default="accepted")
    vendor: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(64))
    serial_number: Mapped[str | None] = mapped_column(String(64))
    firmware_version: Mapped[str | None] = mapped_column(String(64))
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()


class Connector(Base):
    __tablename__ = "connectors"
    __table_args__ = (
        CheckConstraint("connector_id >= 1", name="positive_id"),
        CheckConstraint("max_power_w IS NULL OR max_power_w > 0", name="positive_max_power"),
        CheckConstraint(
            "price_tyiyn_per_kwh IS NULL OR price_tyiyn_per_kwh > 0", name="positive_price"
        ),
    )

    station_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("stations.id", ondelete="CASCADE"), primary_key=True
    )
    connector_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(32), default="Unavailable")
    error_code: Mapped[str] = mapped_column(String(32), default="NoError")
    status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What the connector can deliver: bills never claim more energy than this allows. NULL
    # means the default of its current type (domain/meter_readings.py, docs/charging.md).
    current_type: Mapped[str | None] = mapped_column(String(2))  # AC | DC
    max_power_w: Mapped[int | None] = mapped_column(BigInteger)
    # This connector's own price; NULL: its station's. Snapshotted into a session at its start.
    price_tyiyn_per_kwh: Mapped[int | None] = mapped_column(BigInteger)


class StationConnection(Base):
    """Which gateway process (task queue) holds a station's websocket right now."""

    __tablename__ = "station_connections"

    station_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("stations.id", ondelete="CASCADE"), primary_key=True
    )
    gateway_queue: Mapped[str] = mapped_column(String(128))
    connected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    remote_address: Mapped[str | None] = mapped_column(String(128))


class OcppTransaction(Base):
    """One OCPP transaction; its id is the transactionId handed to the charger."""

    __tablename__ = "ocpp_transactions"
    __table_args__ = (
        UniqueConstraint(
            "station_id",
            "connector_id",
            "id_tag",
            "meter_start_wh",
            "started_at",
            name="uq_ocpp_transactions_natural_key",
        ),
        Index("ix_ocpp_transactions_session_id", "session_id"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(start=1), primary_key=True)
    station_id: Mapped[str] = mapped_column(String(64), ForeignKey("stations.id"))
    connector_id: Mapped[int] = mapped_column(Integer)
    id_tag: Mapped[str] = mapped_column(String(20))
    session_id: Mapped[str | None] = mapped_column(String(20))
    energy_limit_wh: Mapped[int | None] = mapped_column(BigInteger)
    meter_start_wh: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    meter_stop_wh: Mapped[int | None] = mapped_column(BigInteger)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stop_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = created_at_column()


class MeterValue(Base):
    __tablename__ = "meter_values"
    __table_args__ = (Index("ix_meter_values_transaction_id_id", "transaction_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    station_id: Mapped[str] = mapped_column(String(64))
    connector_id: Mapped[int] = mapped_column(Integer)
    transaction_id: Mapped[int | None] = mapped_column(Integer)
    measured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    energy_wh: Mapped[int | None] = mapped_column(BigInteger)
    power_w: Mapped[int | None] = mapped_column(Integer)
    soc_percent: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at_column()


class OcppRemoteStart(Base):
    """A RemoteStartTransaction the gateway sent: StartTransaction finds its energy limit here."""

    __tablename__ = "ocpp_remote_starts"
    __table_args__ = (CheckConstraint("energy_limit_wh >= 0", name="non_negative_limit"),)

    id_tag: Mapped[str] = mapped_column(String(20), primary_key=True)  # the session id
    station_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("stations.id", ondelete="CASCADE")
    )
    connector_id: Mapped[int] = mapped_column(Integer)
    energy_limit_wh: Mapped[int] = mapped_column(BigInteger)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OcppTransactionEvent(Base):
    """A charger's transaction message (start, stop, latest meter sample) that its session
    workflow has not taken yet: written before the charger is answered, deleted once Temporal
    accepted it, kept dead-lettered when it failed for good. The gateway's relay
    (gateway/relay.py) delivers these in id order per transaction, so a stop never overtakes
    its start."""

    __tablename__ = "ocpp_transaction_events"
    __table_args__ = (
        # One pending event of each kind per transaction: a retried message adds nothing,
        # and the meter sample row always holds the newest sample. The station is part of
        # the key because an orphan stop names a charger's id that we may not have issued.
        UniqueConstraint(
            "station_id",
            "transaction_id",
            "kind",
            name="uq_ocpp_transaction_events_station_tx_kind",
        ),
        Index("ix_ocpp_transaction_events_due_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    transaction_id: Mapped[int] = mapped_column(Integer)
    station_id: Mapped[str] = mapped_column(String(64))
    # The idTag: names the workflow ('' for an orphan stop until its transaction is found).
    session_id: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(16))  # started | stopped | meter | orphan_stop
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # For `started`: the idTagInfo status the charger was given without the workflow.
    answered: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    due_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    last_error: Mapped[str | None] = mapped_column(String(300))
    # Permanent failures so far (a row that cannot be decoded, a call Temporal refuses);
    # past the relay's bound the row is dead-lettered (`dead_at`): kept for an operator, no
    # longer claimed, no longer holding back its transaction's later events.
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    dead_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
