"""The durable record of each charging session (the workflow owns it; the API reads it).

Its columns are the fields of `domain.contracts.session_record.SessionRecord` (the session id
in `id`) plus the row's own times; `values_of` and `to_record` are the only translation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, created_at_column
from domain.contracts.session_record import SessionRecord, record_fields


class ChargingSessionRecord(Base):
    __tablename__ = "charging_sessions"
    __table_args__ = (
        Index("ix_charging_sessions_client_id_created_at", "client_id", "created_at"),
        # Backstop for the workflow's own check: one live session per connector.
        Index(
            "uq_charging_sessions_live_connector",
            "station_id",
            "connector_id",
            unique=True,
            postgresql_where=text("state IN ('pending', 'starting', 'charging', 'stopping')"),
        ),
        # One live session per RFID card: two chargers presenting it at once get one session.
        Index(
            "uq_charging_sessions_live_card",
            "card_id",
            unique=True,
            postgresql_where=text(
                "card_id IS NOT NULL AND state IN ('pending', 'starting', 'charging', 'stopping')"
            ),
        ),
    )

    # The session id is short (<= 20 chars) because it is also the RemoteStart idTag, so the
    # StartTransaction that answers a RemoteStart names its workflow without a lookup.
    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), ForeignKey("clients.id"))
    station_id: Mapped[str] = mapped_column(String(64), ForeignKey("stations.id"))
    connector_id: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(32))
    price_tyiyn_per_kwh: Mapped[int] = mapped_column(BigInteger)
    reserved_tyiyn: Mapped[int] = mapped_column(BigInteger)
    # What the reservation buys at the snapshotted price: stored, never recomputed.
    energy_limit_wh: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    energy_wh: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_tyiyn: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_tyiyn: Mapped[int] = mapped_column(BigInteger, default=0)
    transaction_id: Mapped[int | None] = mapped_column(Integer)
    stop_reason: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What the meter check found: why the session needs review, or `register_reset` when the
    # energy was rebuilt from the samples (domain/meter_readings.py).
    meter_note: Mapped[str | None] = mapped_column(String(64))
    # The RFID card the session was started with at the charger; NULL: started from the app.
    card_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("rfid_cards.id"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()

    @property
    def session_id(self) -> str:
        return self.id

    def to_record(self) -> SessionRecord:
        return SessionRecord(**record_fields(self))

    @staticmethod
    def values_of(record: SessionRecord) -> dict[str, Any]:
        """The row's column values for `record`."""
        values = record_fields(record)
        values["id"] = values.pop("session_id")
        return values
