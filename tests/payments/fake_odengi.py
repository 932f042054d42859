"""A stand-in for O!Dengi's merchant API behind httpx.MockTransport, with scripted faults.

It checks every request's signature, keys invoices by order_id (as the provider does) and can
lose an answer after doing the work, fail with 5xx, or answer with a provider error.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import dataclass, field

import httpx

from payments.signing import request_hash

MERCHANT_ID = "5550001"
PASSWORD = "fake-odengi-pw"
API_URL = "https://odengi.test/api/json/json.php"


@dataclass
class FakeInvoice:
    invoice_id: str
    order_id: str
    amount: int
    status: str = "processing"
    trans_id: str | None = None


@dataclass
class FakeOdengi:
    invoices: dict[str, FakeInvoice] = field(default_factory=dict)  # by order_id
    calls: Counter[str] = field(default_factory=Counter)
    # Per command, faults consumed one per call: "timeout_after" does the work then times out,
    # "timeout" times out before, "503" answers 503 before doing anything.
    faults: dict[str, list[str]] = field(default_factory=dict)
    pay_on_create: bool = False
    pay_on_cancel: bool = False  # the driver pays just as we cancel
    # invoiceCancel says "paid" while statusPayment says "processing": a paid code misread
    refuse_cancel: bool = False
    refuse_create: str | None = None  # answer createInvoice with this provider error
    bad_signatures: int = 0
    unreachable_invoices: set[str] = field(default_factory=set)  # statusPayment answers 503
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(100200300))

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def by_invoice(self, invoice_id: str) -> FakeInvoice | None:
        return next((i for i in self.invoices.values() if i.invoice_id == invoice_id), None)

    def pay(self, order_id: str, trans_id: str = "777001") -> FakeInvoice:
        invoice = self.invoices[order_id]
        invoice.status, invoice.trans_id = "approved", trans_id
        return invoice

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body.get("sid") != MERCHANT_ID or body.get("hash") != request_hash(body, PASSWORD):
            self.bad_signatures += 1
            return httpx.Response(200, json={"data": {"error": "hash", "desc": "bad hash"}})
        cmd = body["cmd"]
        self.calls[cmd] += 1
        fault = self.faults.get(cmd, []).pop(0) if self.faults.get(cmd) else None
        if fault == "503" or str(body["data"].get("invoice_id")) in self.unreachable_invoices:
            return httpx.Response(503, text="Service Unavailable")
        if fault == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        answer = self._answer(cmd, body["data"])
        if fault == "timeout_after":
            raise httpx.ReadTimeout("timed out after the work was done", request=request)
        return httpx.Response(200, json={"data": answer})

    def _answer(self, cmd: str, data: dict[str, object]) -> dict[str, object]:
        if cmd == "createInvoice" and self.refuse_create:
            return {"error": "refused", "desc": self.refuse_create}
        if cmd == "createInvoice":
            order_id = str(data["order_id"])
            if order_id not in self.invoices:
                self.invoices[order_id] = FakeInvoice(
                    str(next(self._ids)), order_id, int(str(data["amount"]))
                )
                if self.pay_on_create:
                    self.pay(order_id)
            invoice = self.invoices[order_id]
            return {
                "invoice_id": invoice.invoice_id,
                "qr": f"https://odengi.test/qr/{invoice.invoice_id}.png",
                "qr_url": f"https://odengi.test/pay/{invoice.invoice_id}",
                "link_app": f"odengi://pay/{invoice.invoice_id}",
                "site_pay": f"https://odengi.test/card/{invoice.invoice_id}",
            }
        found = self.by_invoice(str(data.get("invoice_id")))
        if found is None:
            return {"error": "404", "desc": "invoice not found"}
        invoice = found
        if cmd == "statusPayment":
            payments = (
                [{"trans_id": invoice.trans_id, "amount": invoice.amount, "status": "approved"}]
                if invoice.status == "approved"
                else []
            )
            status = invoice.status
            return {"invoice_id": invoice.invoice_id, "status": status, "payments": payments}
        if cmd == "invoiceCancel":
            if self.pay_on_cancel and invoice.status == "processing":
                self.pay(invoice.order_id)
            if invoice.status == "approved" or self.refuse_cancel:
                return {"error": "already_paid", "desc": "invoice is paid"}
            invoice.status = "canceled"
            return {"invoice_id": invoice.invoice_id}
        return {"error": "cmd", "desc": f"unknown {cmd}"}
