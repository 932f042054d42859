"""O!Dengi merchant API v1005 over httpx: createInvoice, statusPayment, invoiceCancel, H2H cards.

Every request is `{cmd, version, sid, mktime, lang, data, hash}` POSTed as JSON; the hash is
HMAC-MD5 of the request text without it (see `payments.signing`). The simulated provider serves
the same contract, so this one client talks to both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import timedelta, timezone
from typing import Any

import httpx
import structlog

from payments.cards import CardDetails
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
# date_life is a wall-clock time in Kyrgyzstan (UTC+6 all year, no DST).
BISHKEK = timezone(timedelta(hours=6))

_PAID_WORDS = frozenset({"approved", "paid", "success", "succeeded", "3"})
_CANCELLED_WORDS = frozenset({"canceled", "cancelled", "cancel", "rejected", "expired", "2"})
# A declined card leaves the invoice open (another attempt may pay it); only the charge failed.
_DECLINED_WORDS = _CANCELLED_WORDS | {"declined", "failed", "error"}


def _clean(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def _status_from(value: object) -> PayStatus:
    word = str(value).strip().lower() if value is not None else ""
    if word in _PAID_WORDS:
        return PayStatus.PAID
    if word in _CANCELLED_WORDS:
        return PayStatus.CANCELLED
    return PayStatus.AWAITING


def _as_tyiyn(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.isdigit() else None


def parse_status(invoice_id: str, data: Mapping[str, Any]) -> PaymentStatus:
    """statusPayment's `data`: a paid invoice lists an approved payment with its trans_id."""
    payments = data.get("payments")
    if isinstance(payments, list):
        for payment in payments:
            if (
                isinstance(payment, Mapping)
                and _status_from(payment.get("status")) is PayStatus.PAID
            ):
                return PaymentStatus(
                    invoice_id=invoice_id,
                    status=PayStatus.PAID,
                    trans_id=_clean(payment.get("trans_id")),
                    amount_tyiyn=_as_tyiyn(payment.get("amount")),
                    currency=_clean(payment.get("currency")) or _clean(data.get("currency")),
                )
    status = _status_from(data.get("status_pay", data.get("status")))
    return PaymentStatus(
        invoice_id=invoice_id,
        status=status,
        trans_id=_clean(data.get("trans_id")),
        amount_tyiyn=_as_tyiyn(data.get("amount")),
        currency=_clean(data.get("currency")),
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
    ) -> None:
        self._name = name
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

    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        data = {
            "order_id": request.order_id,
            "desc": request.description,
            "amount": request.amount_tyiyn,
            "currency": request.currency,
            "test": 1 if self._test else 0,
            "date_life": request.expires_at.astimezone(BISHKEK).strftime("%Y-%m-%d %H:%M:%S"),
            "result_url": self._result_url,
        }
        result = await self._call("createInvoice", data)
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
        result = await self._call(
            "statusPayment", {"invoice_id": invoice_id, "order_id": order_id, "mark": None}
        )
        return parse_status(invoice_id, result)

    async def cancel_invoice(self, invoice_id: str) -> None:
        await self._call("invoiceCancel", {"invoice_id": invoice_id})

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
