"""`operator_audit`: one row per request to the operations API, refused ones included."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, SmallInteger, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base


class OperatorAudit(Base):
    __tablename__ = "operator_audit"
    __table_args__ = (
        Index("ix_operator_audit_at", "at"),
        Index("ix_operator_audit_target_at", "target", "at"),
        Index("ix_operator_audit_subject_at", "subject", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    # The verified token's `sub` and operator role; NULL when the request had no valid token.
    subject: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(512))
    # What was done to what: `stations.list`, `station.command.reset` on `station:CP-1`.
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(String(500))
    request: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # ok (2xx), pending (202), refused (401/403/429), rejected (other 4xx), failed (5xx)
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int] = mapped_column(SmallInteger)
    error_code: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
