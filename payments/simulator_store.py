"""The simulated O!Dengi's invoices in PostgreSQL (`simulated_invoices`): every process of one
system sees the same ones, and they survive a restart."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import SimulatedInvoice
from payments.provider import PayStatus
from payments.simulator import SimInvoice


def _invoice(row: SimulatedInvoice) -> SimInvoice:
    return SimInvoice(
        invoice_id=row.invoice_id,
        order_id=row.order_id,
        amount_tyiyn=row.amount_tyiyn,
        currency=row.currency,
        description=row.description,
        result_url=row.result_url,
        test=row.test,
        status=PayStatus(row.status),
        trans_id=row.trans_id,
        expires_at=row.expires_at,
    )


class PgInvoiceStore:
    """The simulator's invoices in PostgreSQL: shared by every process, kept across restarts."""

    def __init__(self, db_sessions: async_sessionmaker[AsyncSession]) -> None:
        self._db_sessions = db_sessions

    async def create(self, invoice: SimInvoice) -> SimInvoice:
        async with self._db_sessions() as session, session.begin():
            await session.execute(
                insert(SimulatedInvoice)
                .values(
                    invoice_id=invoice.invoice_id,
                    order_id=invoice.order_id,
                    amount_tyiyn=invoice.amount_tyiyn,
                    currency=invoice.currency,
                    description=invoice.description[:500],
                    result_url=invoice.result_url[:1000],
                    test=invoice.test,
                    status=int(invoice.status),
                    expires_at=invoice.expires_at,
                )
                .on_conflict_do_nothing(index_elements=["order_id"])
            )
            row = await session.scalar(
                select(SimulatedInvoice).where(SimulatedInvoice.order_id == invoice.order_id)
            )
        assert row is not None
        return _invoice(row)

    async def get(self, invoice_id: str) -> SimInvoice | None:
        async with self._db_sessions() as session:
            row = await session.get(SimulatedInvoice, invoice_id)
        return _invoice(row) if row is not None else None

    async def set_status(
        self, invoice_id: str, *, expect: PayStatus, status: PayStatus, trans_id: str | None
    ) -> SimInvoice | None:
        async with self._db_sessions() as session, session.begin():
            row = await session.scalar(
                update(SimulatedInvoice)
                .where(
                    SimulatedInvoice.invoice_id == invoice_id,
                    SimulatedInvoice.status == int(expect),
                )
                .values(status=int(status), trans_id=trans_id, updated_at=datetime.now(UTC))
                .returning(SimulatedInvoice)
            )
        return _invoice(row) if row is not None else None
