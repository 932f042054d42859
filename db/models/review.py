"""`review_resolutions`: an admin's decision on a session or top-up that was in review."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base


class ReviewResolution(Base):
    __tablename__ = "review_resolutions"
    __table_args__ = (CheckConstraint("amount_tyiyn >= 0", name="amount"),)

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # session | topup
    item_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))  # credit | refund | close
    amount_tyiyn: Mapped[int] = mapped_column(BigInteger)  # 0 for close
    entry_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("ledger_entries.id"))
    op_key: Mapped[str | None] = mapped_column(String(200))
    operator: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500))
    workflow_id: Mapped[str] = mapped_column(String(200))
    resolved_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
