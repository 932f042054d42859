"""The simulated O!Dengi's HTTP routes under /simulator/odengi: the merchant API
(`api/json/json.php`, `h2h`) in O!Dengi's contract, the invoice page with its QR code and a Pay
button, and `POST invoices/{id}/pay` (also `evpower pay`), which pays and sends the signed
webhook. The composition root mounts them only with PAYMENT_PROVIDER=SIMULATED
(runtime/payment_simulator.py); the API itself never imports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from payments.config import SIMULATOR_PREFIX
from payments.simulator import (
    SimInvoice,
    SimulatedOdengi,
    SimulatorError,
    invoice_page,
    qr_png,
)


async def _known(sim: SimulatedOdengi, invoice_id: str) -> SimInvoice:
    invoice = await sim.get(invoice_id)
    if invoice is None:
        raise SimulatorError("not_found", f"no simulated invoice {invoice_id}", http_status=404)
    return invoice


def simulator_router(sim: SimulatedOdengi, page_headers: Mapping[str, str]) -> APIRouter:
    """The routes of one simulated merchant account. `page_headers` go on its HTML pages (the
    caller's Content-Security-Policy for them); a `SimulatorError` raised here is the caller's
    to answer in its error body."""
    router = APIRouter(prefix=SIMULATOR_PREFIX, tags=["simulator"], include_in_schema=False)

    def page(content: str) -> HTMLResponse:
        return HTMLResponse(content, headers=dict(page_headers))

    @router.post("/api/json/json.php")
    async def merchant_api(request: Request) -> dict[str, Any]:
        return await sim.handle_api(await request.body())

    @router.post("/h2h")
    async def h2h(request: Request, background: BackgroundTasks) -> dict[str, Any]:
        """Charges the card (any Luhn-valid number but DECLINED_CARD) and then, like the real
        provider, notifies result_url on its own schedule: after this answer."""
        answer = await sim.handle_api(await request.body())
        data = answer["data"]
        if data.get("status") == "approved":
            invoice = await sim.get(str(data["invoice_id"]))
            if invoice is not None:
                background.add_task(sim.send_webhook, invoice)
        return answer

    @router.get("/invoices/{invoice_id}")
    async def invoice(invoice_id: str) -> HTMLResponse:
        known = await _known(sim, invoice_id)
        return page(
            invoice_page(
                known, page_url=sim.page_url(invoice_id), qr_url=sim.qr_png_url(invoice_id)
            )
        )

    @router.get("/invoices/{invoice_id}/qr.png")
    async def qr(invoice_id: str) -> Response:
        await _known(sim, invoice_id)
        return Response(qr_png(sim.page_url(invoice_id)), media_type="image/png")

    @router.post("/invoices/{invoice_id}/pay", response_model=None)
    async def pay(
        invoice_id: str, output: Annotated[str, Query(alias="format")] = "json"
    ) -> JSONResponse | HTMLResponse:
        """Pays the invoice and sends the signed webhook; paying again re-sends it (a retry)."""
        outcome = await sim.pay(invoice_id)
        paid = outcome.invoice
        if output == "html":
            message = (
                f"paid; webhook answered HTTP {outcome.webhook_status}"
                if outcome.webhook_status is not None
                else f"paid; {outcome.webhook_error}"
            )
            return page(
                invoice_page(
                    paid,
                    page_url=sim.page_url(invoice_id),
                    qr_url=sim.qr_png_url(invoice_id),
                    message=message,
                )
            )
        return JSONResponse(
            {
                "invoice_id": paid.invoice_id,
                "order_id": paid.order_id,
                "trans_id": paid.trans_id,
                "amount_tyiyn": paid.amount_tyiyn,
                "status": "paid",
                "webhook_status": outcome.webhook_status,
                "webhook_error": outcome.webhook_error,
            }
        )

    return router
