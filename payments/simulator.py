"""The simulated O!Dengi: the merchant API contract, the pay action and its signed webhook.

Storage is behind `InvoiceStore` (the app keeps it in PostgreSQL), so invoices survive restarts
and every api process sees the same ones. This module has no routes; `payments/simulator_routes.py`
serves it under /simulator/odengi when PAYMENT_PROVIDER=SIMULATED.
"""

from __future__ import annotations

import html
import io
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import segno

from domain.money import format_som
from payments.config import SIMULATOR_PREFIX
from payments.contract import DEFAULT_CONTRACT, OdengiContract
from payments.odengi import API_VERSION
from payments.provider import PayStatus
from payments.signing import hashes_match, request_hash
from payments.webhook import signed_notice_fields

ISO_CONTRACT = OdengiContract(date_life_format="%Y-%m-%dT%H:%M:%S")
# A card number that passes Luhn but the simulated bank declines, for trying the unhappy path.
DECLINED_CARD = "4000000000000002"


@dataclass(frozen=True)
class SimInvoice:
    invoice_id: str
    order_id: str
    amount_tyiyn: int
    currency: str
    description: str
    result_url: str
    test: bool
    status: PayStatus
    trans_id: str | None
    expires_at: datetime | None


class InvoiceStore(Protocol):
    async def create(self, invoice: SimInvoice) -> SimInvoice:
        """Insert, or return the invoice already stored for the same order_id."""

    async def get(self, invoice_id: str) -> SimInvoice | None: ...

    async def set_status(
        self, invoice_id: str, *, expect: PayStatus, status: PayStatus, trans_id: str | None
    ) -> SimInvoice | None:
        """Compare-and-set; None when the invoice was not in `expect`."""


class SimulatorError(Exception):
    def __init__(self, code: str, message: str, *, http_status: int = 200) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


@dataclass(frozen=True)
class PayOutcome:
    invoice: SimInvoice
    webhook_status: int | None  # HTTP status of our result_url, None if unreachable
    webhook_error: str | None = None


def _error(code: str, message: str) -> dict[str, Any]:
    return {"data": {"error": code, "desc": message}}


class SimulatedOdengi:
    """One simulated merchant account served at `public_base_url` + SIMULATOR_PREFIX."""

    def __init__(
        self,
        store: InvoiceStore,
        *,
        merchant_id: str,
        password: str,
        public_base_url: str,
        transport: httpx.AsyncBaseTransport | None = None,
        stand_in: bool = False,
    ) -> None:
        self._store = store
        # As a stand-in for the real provider (the contract suite's own server), it posts to
        # whatever result_url the merchant gives, as O!Dengi does; inside EvPower it never does.
        self._stand_in = stand_in
        self._merchant_id = merchant_id
        self._password = password
        self._public = public_base_url.rstrip("/")
        self._base = self._public + SIMULATOR_PREFIX
        self._transport = transport

    def _own_url(self, url: str) -> bool:
        """The simulator posts webhooks to this system only, never to a URL a caller chose
        (that would make it a signed-request cannon aimed anywhere: a blind SSRF)."""
        return self._stand_in or url.startswith(self._public + "/")

    # ---- links shown to the driver -------------------------------------------------------

    def page_url(self, invoice_id: str) -> str:
        return f"{self._base}/invoices/{invoice_id}"

    def qr_png_url(self, invoice_id: str) -> str:
        return f"{self._base}/invoices/{invoice_id}/qr.png"

    # ---- the merchant API (json.php) -----------------------------------------------------

    async def handle_api(self, body: bytes) -> dict[str, Any]:
        try:
            request = json.loads(body)
        except ValueError:
            return _error("bad_json", "request body is not JSON")
        if not isinstance(request, dict) or not isinstance(request.get("data"), dict):
            return _error("bad_request", "expected {cmd, version, sid, mktime, lang, data, hash}")
        if str(request.get("sid")) != self._merchant_id:
            return _error("unknown_sid", "unknown merchant sid")
        if not hashes_match(request_hash(request, self._password), request.get("hash")):
            return _error("bad_hash", "request hash does not match")
        if request.get("version") != API_VERSION:
            return _error("bad_version", f"version must be {API_VERSION}")
        data: dict[str, Any] = request["data"]
        try:
            match request.get("cmd"):
                case "createInvoice":
                    return {"data": await self._create_invoice(data)}
                case "statusPayment":
                    return {"data": await self._status(data)}
                case "invoiceCancel":
                    return {"data": await self._cancel(data)}
                case "h2hPayment":
                    return {"data": await self._h2h(data)}
                case other:
                    return _error("unknown_cmd", f"unknown cmd {other!r}")
        except SimulatorError as exc:
            return _error(exc.code, exc.message)

    async def _create_invoice(self, data: dict[str, Any]) -> dict[str, Any]:
        amount = data.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise SimulatorError("bad_amount", "amount must be a positive integer of tyiyn")
        order_id = str(data.get("order_id") or "")
        if not order_id:
            raise SimulatorError("bad_order_id", "order_id is required")
        if data.get("currency") != "KGS":
            raise SimulatorError("bad_currency", "only KGS is accepted")
        result_url = str(data.get("result_url") or "")
        date_life = data.get("date_life")
        expires_at = read_date_life(str(date_life)) if date_life else None
        invoice = await self._store.create(
            SimInvoice(
                invoice_id=str(secrets.randbelow(9 * 10**11) + 10**11),
                order_id=order_id,
                amount_tyiyn=amount,
                currency="KGS",
                description=str(data.get("desc") or ""),
                result_url=result_url,
                test=bool(data.get("test")),
                status=PayStatus.AWAITING,
                trans_id=None,
                expires_at=expires_at,
            )
        )
        if invoice.amount_tyiyn != amount:
            raise SimulatorError(
                "order_exists", "order_id already has an invoice for another amount"
            )
        return {
            "invoice_id": invoice.invoice_id,
            "qr": self.qr_png_url(invoice.invoice_id),
            "qr_url": self.page_url(invoice.invoice_id),
            "link_app": f"{self.page_url(invoice.invoice_id)}?app=1",
            "site_pay": f"{self.page_url(invoice.invoice_id)}?card=1",
        }

    async def _invoice(self, data: dict[str, Any]) -> SimInvoice:
        invoice = await self._store.get(str(data.get("invoice_id") or ""))
        if invoice is None:
            raise SimulatorError("not_found", "no such invoice", http_status=404)
        return invoice

    async def _status(self, data: dict[str, Any]) -> dict[str, Any]:
        return status_view(await self._invoice(data))

    async def _cancel(self, data: dict[str, Any]) -> dict[str, Any]:
        invoice = await self._invoice(data)
        if invoice.status is PayStatus.PAID:
            raise SimulatorError("already_paid", "a paid invoice cannot be cancelled")
        await self._store.set_status(
            invoice.invoice_id, expect=PayStatus.AWAITING, status=PayStatus.CANCELLED, trans_id=None
        )
        return {"invoice_id": invoice.invoice_id, "status": "canceled"}

    async def _h2h(self, data: dict[str, Any]) -> dict[str, Any]:
        invoice = await self._invoice(data)
        if str(data.get("card_number")) == DECLINED_CARD:
            return {"invoice_id": invoice.invoice_id, "status": "declined", "desc": "card declined"}
        paid = await self.mark_paid(invoice.invoice_id)
        return {"invoice_id": paid.invoice_id, "status": "approved", "trans_id": paid.trans_id}

    # ---- paying --------------------------------------------------------------------------

    async def get(self, invoice_id: str) -> SimInvoice | None:
        return await self._store.get(invoice_id)

    async def mark_paid(self, invoice_id: str) -> SimInvoice:
        """Pay an awaiting invoice; paying a paid one again changes nothing (same trans_id)."""
        invoice = await self._store.get(invoice_id)
        if invoice is None:
            raise SimulatorError("not_found", "no such invoice", http_status=404)
        if invoice.status is PayStatus.CANCELLED:
            raise SimulatorError("cancelled", "the invoice was cancelled", http_status=409)
        if invoice.status is PayStatus.AWAITING:
            trans_id = f"sim{secrets.randbelow(9 * 10**11) + 10**11}"
            updated = await self._store.set_status(
                invoice_id, expect=PayStatus.AWAITING, status=PayStatus.PAID, trans_id=trans_id
            )
            if updated is None:  # a concurrent pay or cancel won; report what it left
                return await self.mark_paid(invoice_id)
            return updated
        return invoice

    def webhook_fields(self, invoice: SimInvoice) -> dict[str, str]:
        return signed_notice_fields(
            trans_id=invoice.trans_id or "",
            invoice_id=invoice.invoice_id,
            order_id=invoice.order_id,
            status=invoice.status,
            amount_tyiyn=invoice.amount_tyiyn,
            currency=invoice.currency,
            site_id=self._merchant_id,
            mktime=str(int(time.time())),
            test=invoice.test,
            password=self._password,
        )

    async def send_webhook(self, invoice: SimInvoice) -> PayOutcome:
        """POST the signed notice to the invoice's result_url, as O!Dengi does (JSON body)."""
        if not self._own_url(invoice.result_url):
            return PayOutcome(invoice, None, "webhook not sent: result_url is not PUBLIC_BASE_URL")
        try:
            async with httpx.AsyncClient(timeout=10.0, transport=self._transport) as http:
                response = await http.post(invoice.result_url, json=self.webhook_fields(invoice))
        except httpx.HTTPError as exc:
            return PayOutcome(invoice, None, f"webhook not delivered: {type(exc).__name__}")
        return PayOutcome(invoice, response.status_code)

    async def pay(self, invoice_id: str) -> PayOutcome:
        """The "pay" button and `evpower pay`: every call sends the webhook, like a retry."""
        return await self.send_webhook(await self.mark_paid(invoice_id))


def read_date_life(text: str) -> datetime:
    """Today's reading (Bishkek wall clock), or unix seconds / milliseconds, so the simulator
    follows a merchant's ODENGI_DATE_LIFE_FORMAT; anything else is refused like a provider would."""
    if text.isascii() and text.isdigit():
        seconds = int(text) / (1000 if len(text) > 11 else 1)
        return datetime.fromtimestamp(seconds, UTC)
    for contract in (DEFAULT_CONTRACT, ISO_CONTRACT):
        try:
            return contract.read_date_life(text)
        except ValueError:
            continue
    raise SimulatorError("bad_date_life", "date_life must be YYYY-MM-DD HH:MM:SS or a unix time")


def status_view(invoice: SimInvoice) -> dict[str, Any]:
    words = {
        PayStatus.AWAITING: "processing",
        PayStatus.CANCELLED: "canceled",
        PayStatus.PAID: "approved",
    }
    payments = []
    if invoice.status is PayStatus.PAID:
        payments.append(
            {
                "trans_id": invoice.trans_id,
                "amount": invoice.amount_tyiyn,
                "currency": invoice.currency,
                "status": "approved",
            }
        )
    return {
        "invoice_id": invoice.invoice_id,
        "order_id": invoice.order_id,
        "status": words[invoice.status],
        "amount": invoice.amount_tyiyn,
        "currency": invoice.currency,
        "payments": payments,
    }


def qr_png(content: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(content, error="m").save(buffer, kind="png", scale=8, border=2)
    return buffer.getvalue()


# The page's only style, kept apart so the page's CSP can allow exactly it (by hash).
INVOICE_PAGE_STYLE = (
    "body{font-family:sans-serif;max-width:26rem;margin:2rem auto;text-align:center}"
    "button{font-size:1.3rem;padding:.6rem 2.5rem}"
)


def invoice_page(invoice: SimInvoice, *, page_url: str, qr_url: str, message: str = "") -> str:
    """A phone-sized page: the QR code, the amount and a button that pays the invoice.

    The image and the form name paths on the page's own origin, whatever host the browser
    used to reach it (PUBLIC_BASE_URL may say 127.0.0.1 where the browser said localhost)."""
    state = {
        PayStatus.AWAITING: "awaiting payment",
        PayStatus.PAID: "paid",
        PayStatus.CANCELLED: "cancelled",
    }
    button = (
        f'<form method="post" action="{html.escape(_path(page_url))}/pay?format=html">'
        '<button type="submit">Pay</button></form>'
        if invoice.status is not PayStatus.CANCELLED
        else ""
    )
    note = f"<p><b>{html.escape(message)}</b></p>" if message else ""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width'>"
        f"<title>O!Dengi simulator: invoice {html.escape(invoice.invoice_id)}</title>"
        f"<style>{INVOICE_PAGE_STYLE}</style></head><body>"
        "<h1>O!Dengi (simulated)</h1>"
        f"<p>{html.escape(invoice.description)}</p>"
        f"<h2>{format_som(invoice.amount_tyiyn)} {html.escape(invoice.currency)}</h2>"
        f"<img src='{html.escape(_path(qr_url))}' alt='invoice QR code' width='256' height='256'>"
        f"<p>Invoice {html.escape(invoice.invoice_id)}: {state[invoice.status]}"
        f"{' (trans ' + html.escape(invoice.trans_id) + ')' if invoice.trans_id else ''}</p>"
        f"{note}{button}</body></html>"
    )


def _path(url: str) -> str:
    return urlsplit(url).path
