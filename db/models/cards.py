"""RFID cards linked to a client's account: one owner per idTag; blocked rows are kept."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, created_at_column


class RfidCard(Base):
    __tablename__ = "rfid_cards"
    __table_args__ = (Index("ix_rfid_cards_client_id", "client_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), ForeignKey("clients.id"))
    # Upper case (domain/cards.py); unique whatever the state: a blocked card keeps its tag.
    id_tag: Mapped[str] = mapped_column(String(20), unique=True)
    label: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = created_at_column()
    blocked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
