"""The simulated O!Dengi's merchant API alone, on a free loopback port, invoices in memory: what
`evpower payments check` talks to in the contract suite (no database, no app)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from payments.provider import PayStatus
from payments.simulator import SimInvoice, SimulatedOdengi
from runtime.embedded import free_port

MERCHANT_ID = "7000000007"
PASSWORD = "contract-suite-password"
API_PATH = "/api/json/json.php"


class MemoryInvoices:
    def __init__(self) -> None:
        self.by_id: dict[str, SimInvoice] = {}

    async def create(self, invoice: SimInvoice) -> SimInvoice:
        for known in self.by_id.values():
            if known.order_id == invoice.order_id:
                return known
        self.by_id[invoice.invoice_id] = invoice
        return invoice

    async def get(self, invoice_id: str) -> SimInvoice | None:
        return self.by_id.get(invoice_id)

    async def set_status(
        self, invoice_id: str, *, expect: PayStatus, status: PayStatus, trans_id: str | None
    ) -> SimInvoice | None:
        invoice = self.by_id.get(invoice_id)
        if invoice is None or invoice.status is not expect:
            return None
        self.by_id[invoice_id] = replace(invoice, status=status, trans_id=trans_id)
        return self.by_id[invoice_id]


@dataclass
class SimServer:
    api_url: str
    simulator: SimulatedOdengi
    invoices: MemoryInvoices


@asynccontextmanager
async def sim_server(
    simulator_class: type[SimulatedOdengi] = SimulatedOdengi,
) -> AsyncIterator[SimServer]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    invoices = MemoryInvoices()
    simulator = simulator_class(
        invoices, merchant_id=MERCHANT_ID, password=PASSWORD, public_base_url=base, stand_in=True
    )

    async def api(request: Request) -> JSONResponse:
        return JSONResponse(await simulator.handle_api(await request.body()))

    app = Starlette(routes=[Route(API_PATH, api, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    try:
        yield SimServer(f"{base}{API_PATH}", simulator, invoices)
    finally:
        server.should_exit = True
        await serving
