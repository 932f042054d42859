"""O!Dengi merchant API v1005 over httpx: createInvoice, statusPayment, invoiceCancel, H2H cards.

Every request is `{cmd, version, sid, mktime, lang, data, hash}` POSTed as JSON; the hash is
HMAC-MD5 of the request text without it (see `payments.signing`). The simulated provider serves
the same contract, so this one client talks to both.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import structlog

from payments.cards import CardDetails
from payments.contract import DEFAULT_CONTRACT, OdengiContract
from payments.provider import (
    CardPaymentResult,
    H2HNotConfigured,
    Invoice,
    InvoiceRequest,
    PaymentStatus,
    PayStatus,
    ProviderError,
    ProviderName,
    ProviderRejected,
)
from payments.signing import signed_request_body

log = structlog.get_logger(__name__)

API_VERSION = 1005

# The H2H answer's words (the status table in payments.contract is for invoices and notices).
_CANCELLED_WORDS = frozenset({"canceled", "cancelled", "cancel", "rejected", "expired", "2"})
# A declined card leaves the invoice open (another attempt may pay it); only the charge failed.
_DECLINED_WORDS = _CANCELLED_WORDS | {"declined", "failed", "error"}


def _clean(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def as_tyiyn(value: object) -> int | None:
    """Whole tyiyn, or None: "100.50" might be som, and guessing a unit is how money goes wrong."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    # ASCII digits only: str.isdigit() also takes '²' and Arabic-Indic digits.
    return int(text) if re.fullmatch(r"[0-9]{1,18}", text) else None


def _paid_payment(
    invoice_id: str, data: Mapping[str, Any], contract: OdengiContract
) -> PaymentStatus | None:
    """The first payment attempt in the answer that reads as paid, if any."""
    payments = contract.field(data, "payments")
    if not isinstance(payments, list):
        return None
    for payment in payments:
        if not isinstance(payment, Mapping):
            continue
        if contract.status_of(contract.field(payment, "payment_status")) is PayStatus.PAID:
            return _paid(
                invoice_id,
                trans_id=contract.field(payment, "payment_trans_id"),
                amount=contract.field(payment, "payment_amount"),
                currency=contract.field(payment, "payment_currency")
                or contract.field(data, "currency"),
            )
    return None


def _paid(invoice_id: str, *, trans_id: object, amount: object, currency: object) -> PaymentStatus:
    tyiyn = as_tyiyn(amount)
    unreadable = None
    if _clean(trans_id) is None:
        unreadable = "a paid payment without trans_id"
    elif amount is not None and tyiyn is None:
        unreadable = f"a paid payment with amount {str(amount)[:32]!r}, not whole tyiyn"
    return PaymentStatus(
        invoice_id=invoice_id,
        status=PayStatus.PAID,
        trans_id=_clean(trans_id),
        amount_tyiyn=tyiyn,
        currency=_clean(currency),
        unreadable=unreadable,
    )


def parse_status(
    invoice_id: str, data: Mapping[str, Any], contract: OdengiContract = DEFAULT_CONTRACT
) -> PaymentStatus:
    """statusPayment's `data`: a paid invoice lists an approved payment with its trans_id.
    An answer we cannot read says so (`unreadable`) instead of passing for "awaiting"."""
    paid = _paid_payment(invoice_id, data, contract)
    if paid is not None:
        return paid
    raw = contract.field(data, "status")
    status = contract.status_of(raw)
    if status is None:
        shown = "missing" if raw is None else repr(str(raw)[:32])
        return PaymentStatus(
            invoice_id=invoice_id,
            status=PayStatus.AWAITING,
            unreadable=f"statusPayment status {shown} is not in ODENGI_STATUS_CODES",
        )
    if status is PayStatus.PAID:
        return _paid(
            invoice_id,
            trans_id=contract.field(data, "trans_id"),
            amount=contract.field(data, "amount"),
            currency=contract.field(data, "currency"),
        )
    return PaymentStatus(
        invoice_id=invoice_id,
        status=status,
        trans_id=_clean(contract.field(data, "trans_id")),
        amount_tyiyn=as_tyiyn(contract.field(data, "amount")),
        currency=_clean(contract.field(data, "currency")),
    )


class OdengiClient:
    """One merchant's view of the O!Dengi API. Raises ProviderError (retry) or ProviderRejected."""

    def __init__(
        self,
        *,
        name: ProviderName,
        merchant_id: str,
        password: str,
        api_url: str,
        result_url: str,
        h2h_url: str | None = None,
        test: bool = True,
        lang: str = "ru",
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        contract: OdengiContract = DEFAULT_CONTRACT,
    ) -> None:
        self._name = name
        self._contract = contract
        self._merchant_id = merchant_id
        self._password = password
        self._api_url = api_url
        self._h2h_url = h2h_url
        self._result_url = result_url
        self._test = test
        self._lang = lang
        self._clock = clock
        self._http = httpx.AsyncClient(timeout=timeout_s, transport=transport)

    @property
    def name(self) -> ProviderName:
        return self._name

    @property
    def supports_h2h(self) -> bool:
        return self._h2h_url is not None

    async def aclose(self) -> None:
        await self._http.aclose()

    def envelope(self, cmd: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """The request before signing; key order is part of the signature."""
        return {
            "cmd": cmd,
            "version": API_VERSION,
            "sid": self._merchant_id,
            "mktime": str(int(self._clock() * 1000)),
            "lang": self._lang,
            "data": dict(data),
        }

    async def _call(
        self, cmd: str, data: Mapping[str, Any], *, url: str | None = None
    ) -> dict[str, Any]:
        body = signed_request_body(self.envelope(cmd, data), self._password)
        try:
            response = await self._http.post(
                url or self._api_url,
                content=body.encode(),
                headers={"Content-Type": "application/json; charset=utf-8"},
            )
        except httpx.TimeoutException as exc:
            raise ProviderError(f"{cmd}: provider timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise ProviderError(f"{cmd}: provider unreachable ({type(exc).__name__})") from exc
        if response.status_code >= 500:
            raise ProviderError(f"{cmd}: provider answered HTTP {response.status_code}")
        try:
            payload = response.json()
        except ValueError as exc:
            raise ProviderError(
                f"{cmd}: provider answered non-JSON (HTTP {response.status_code})"
            ) from exc
        result = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(result, dict):
            raise ProviderError(f"{cmd}: provider answer has no data object")
        if result.get("error") not in (None, "", 0, "0"):
            raise ProviderRejected(str(result["error"]), str(result.get("desc") or "rejected"))
        if response.status_code >= 400:
            raise ProviderRejected(str(response.status_code), "provider refused the request")
        log.info("odengi call", cmd=cmd, provider=self._name.value)
        return result

    def invoice_data(self, request: InvoiceRequest) -> dict[str, Any]:
        """createInvoice's `data` (also what `evpower payments check` sends)."""
        return {
            "order_id": request.order_id,
            "desc": request.description,
            "amount": request.amount_tyiyn,
            "currency": request.currency,
            "test": 1 if self._test else 0,
            "date_life": self._contract.date_life(request.expires_at),
            "result_url": self._result_url,
        }

    @staticmethod
    def status_data(invoice_id: str, order_id: str) -> dict[str, Any]:
        return {"invoice_id": invoice_id, "order_id": order_id, "mark": None}

    @staticmethod
    def cancel_data(invoice_id: str) -> dict[str, Any]:
        return {"invoice_id": invoice_id}

    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        result = await self._call("createInvoice", self.invoice_data(request))
        invoice_id = _clean(result.get("invoice_id"))
        if invoice_id is None:
            raise ProviderError("createInvoice: answer has no invoice_id")
        return Invoice(
            invoice_id=invoice_id,
            order_id=request.order_id,
            qr_image_url=_clean(result.get("qr")),
            qr_url=_clean(result.get("qr_url")) or _clean(result.get("emv_qr")),
            app_link=_clean(result.get("link_app")),
            site_pay=_clean(result.get("site_pay")),
        )

    async def payment_status(self, invoice_id: str, order_id: str) -> PaymentStatus:
        result = await self._call("statusPayment", self.status_data(invoice_id, order_id))
        return parse_status(invoice_id, result, self._contract)

    async def cancel_invoice(self, invoice_id: str) -> None:
        await self._call("invoiceCancel", self.cancel_data(invoice_id))

    async def pay_card(self, invoice_id: str, card: CardDetails) -> CardPaymentResult:
        """Forward the card once; the caller must not retry a charge whose outcome is unknown."""
        if self._h2h_url is None:
            raise H2HNotConfigured("host-to-host card payments need ODENGI_H2H_URL")
        data = {
            "invoice_id": invoice_id,
            "card_number": card.number,
            "exp_month": f"{card.exp_month:02d}",
            "exp_year": str(card.exp_year),
            "cvc": card.cvc,
            "card_holder": card.holder,
        }
        try:
            result = await self._call("h2hPayment", data, url=self._h2h_url)
        except ProviderRejected as exc:
            return CardPaymentResult(accepted=False, message=exc.message)
        return CardPaymentResult(
            accepted=str(result.get("status", "")).strip().lower() not in _DECLINED_WORDS,
            message=str(result.get("desc") or "accepted"),
            reference=_clean(result.get("trans_id")),
        )
