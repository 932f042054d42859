"""The simulated O!Dengi's HTTP routes under /simulator/odengi (PAYMENT_PROVIDER=SIMULATED only).

The merchant API (`api/json/json.php`, `h2h`) speaks O!Dengi's contract; the invoice page shows
the QR code and a Pay button; `POST invoices/{id}/pay` (also `evpower pay`) pays and sends the
signed webhook. Invoices live in PostgreSQL (`simulated_invoices`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.deps import ApiContext, Context
from api.errors import ApiError
from api.page_policy import page_policy, source_hash
from db.models import SimulatedInvoice
from payments.config import SIMULATOR_PREFIX
from payments.provider import PayStatus, ProviderName
from payments.simulator import (
    INVOICE_PAGE_STYLE,
    SimInvoice,
    SimulatedOdengi,
    SimulatorError,
    invoice_page,
    qr_png,
)


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


def simulator(context: Context) -> SimulatedOdengi:
    """404 unless PAYMENT_PROVIDER=SIMULATED: with the real provider these routes do not exist."""
    settings = context.config.provider
    if settings.provider is not ProviderName.SIMULATED:
        raise ApiError(404, "not_found", "the payment simulator is off")
    return SimulatedOdengi(
        PgInvoiceStore(context.db_sessions),
        merchant_id=settings.effective_merchant_id,
        password=settings.effective_password,
        public_base_url=settings.public_base_url,
    )


Simulator = Annotated[SimulatedOdengi, Depends(simulator)]

# The invoice page shows its QR image, its one style block and a form posting back here.
INVOICE_PAGE_CSP = page_policy(
    style=[source_hash(INVOICE_PAGE_STYLE)], img=["'self'"], form_action=["'self'"]
)


def _page(content: str) -> HTMLResponse:
    return HTMLResponse(content, headers={"content-security-policy": INVOICE_PAGE_CSP})


router = APIRouter(prefix=SIMULATOR_PREFIX, tags=["simulator"], include_in_schema=False)


@router.post("/api/json/json.php")
async def merchant_api(request: Request, sim: Simulator) -> dict[str, Any]:
    return await sim.handle_api(await request.body())


@router.post("/h2h")
async def h2h(request: Request, sim: Simulator, background: BackgroundTasks) -> dict[str, Any]:
    """Charges the card (any Luhn-valid number but DECLINED_CARD) and then, like the real
    provider, notifies result_url on its own schedule: after this answer."""
    answer = await sim.handle_api(await request.body())
    data = answer["data"]
    if data.get("status") == "approved":
        invoice = await sim.get(str(data["invoice_id"]))
        if invoice is not None:
            background.add_task(sim.send_webhook, invoice)
    return answer


async def _known(sim: SimulatedOdengi, invoice_id: str) -> SimInvoice:
    invoice = await sim.get(invoice_id)
    if invoice is None:
        raise ApiError(404, "not_found", f"no simulated invoice {invoice_id}")
    return invoice


@router.get("/invoices/{invoice_id}")
async def page(invoice_id: str, sim: Simulator) -> HTMLResponse:
    invoice = await _known(sim, invoice_id)
    return _page(
        invoice_page(invoice, page_url=sim.page_url(invoice_id), qr_url=sim.qr_png_url(invoice_id))
    )


@router.get("/invoices/{invoice_id}/qr.png")
async def qr(invoice_id: str, sim: Simulator) -> Response:
    await _known(sim, invoice_id)
    return Response(qr_png(sim.page_url(invoice_id)), media_type="image/png")


@router.post("/invoices/{invoice_id}/pay", response_model=None)
async def pay(
    invoice_id: str, sim: Simulator, output: Annotated[str, Query(alias="format")] = "json"
) -> JSONResponse | HTMLResponse:
    """Pays the invoice and sends the signed webhook; paying again re-sends it (a retry)."""
    try:
        outcome = await sim.pay(invoice_id)
    except SimulatorError as exc:
        raise ApiError(exc.http_status, exc.code, exc.message) from None
    invoice = outcome.invoice
    if output == "html":
        message = (
            f"paid; webhook answered HTTP {outcome.webhook_status}"
            if outcome.webhook_status is not None
            else f"paid; {outcome.webhook_error}"
        )
        return _page(
            invoice_page(
                invoice,
                page_url=sim.page_url(invoice_id),
                qr_url=sim.qr_png_url(invoice_id),
                message=message,
            )
        )
    return JSONResponse(
        {
            "invoice_id": invoice.invoice_id,
            "order_id": invoice.order_id,
            "trans_id": invoice.trans_id,
            "amount_tyiyn": invoice.amount_tyiyn,
            "status": "paid",
            "webhook_status": outcome.webhook_status,
            "webhook_error": outcome.webhook_error,
        }
    )


def install_simulator(app: FastAPI, context: ApiContext) -> None:
    """Mount the routes when PAYMENT_PROVIDER=SIMULATED (call from the app factory)."""
    if context.config.provider.provider is ProviderName.SIMULATED:
        app.include_router(router)
