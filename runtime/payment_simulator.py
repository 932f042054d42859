"""Mounts the simulated O!Dengi on the API app, only with PAYMENT_PROVIDER=SIMULATED: with the
real provider its routes do not exist."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.deps import ApiContext
from api.errors import error_response
from api.page_policy import page_policy, source_hash
from payments.provider import ProviderName
from payments.simulator import INVOICE_PAGE_STYLE, SimulatedOdengi, SimulatorError
from payments.simulator_routes import simulator_router
from payments.simulator_store import PgInvoiceStore

# The invoice page shows its QR image, its one style block and a form posting back here.
INVOICE_PAGE_CSP = page_policy(
    style=[source_hash(INVOICE_PAGE_STYLE)], img=["'self'"], form_action=["'self'"]
)


async def _simulator_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SimulatorError)
    return error_response(exc.http_status, exc.code, exc.message)


def install_payment_simulator(app: FastAPI, context: ApiContext) -> None:
    settings = context.config.provider
    if settings.provider is not ProviderName.SIMULATED:
        return
    sim = SimulatedOdengi(
        PgInvoiceStore(context.db_sessions),
        merchant_id=settings.effective_merchant_id,
        password=settings.effective_password,
        public_base_url=settings.public_base_url,
    )
    app.add_exception_handler(SimulatorError, _simulator_error)
    app.include_router(
        simulator_router(sim, page_headers={"content-security-policy": INVOICE_PAGE_CSP})
    )
