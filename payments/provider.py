"""The payment provider contract a top-up needs, with the provider's data and failure kinds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Protocol, runtime_checkable

from payments.cards import CardDetails


class ProviderName(StrEnum):
    ODENGI = "ODENGI"
    SIMULATED = "SIMULATED"


class PayStatus(IntEnum):
    """O!Dengi's `status_pay`."""

    AWAITING = 1
    CANCELLED = 2
    PAID = 3


@dataclass(frozen=True)
class InvoiceRequest:
    order_id: str  # our top-up id: the provider's key for "the same invoice"
    description: str
    amount_tyiyn: int
    currency: str
    expires_at: datetime


@dataclass(frozen=True)
class Invoice:
    invoice_id: str
    order_id: str
    qr_image_url: str | None  # the provider's `qr`: a picture of the QR code
    qr_url: str | None  # the payment link the QR code encodes
    app_link: str | None  # the provider's `link_app`: opens the O!Dengi app
    site_pay: str | None  # hosted card payment page


@dataclass(frozen=True)
class PaymentStatus:
    invoice_id: str
    status: PayStatus
    trans_id: str | None = None
    amount_tyiyn: int | None = None
    currency: str | None = None
    # Why the answer could not be read (an unknown status, a paid payment without trans_id or
    # with an amount that is not whole tyiyn). `status` is then meaningless: such an answer
    # sends the top-up to review, never to `expired`.
    unreadable: str | None = None


@dataclass(frozen=True)
class PaymentNotice:
    """A payment the provider reported to the webhook, its signature already verified."""

    trans_id: str
    status: PayStatus
    order_id: str
    invoice_id: str | None
    amount_tyiyn: int
    currency: str
    site_id: str = ""
    test: bool = False
    # Why this payment must not be credited automatically (a test payment reaching production,
    # another merchant's site): it goes to review. Set by the webhook's screening.
    untrusted: str | None = None


@dataclass(frozen=True)
class UnreadNotice:
    """A notice whose hash verifies but whose fields we cannot interpret (an unknown
    `status_pay`, an amount that is not whole tyiyn, a field missing). It is kept with its raw
    body in `provider_transactions` (status `unread`) and re-checked with statusPayment."""

    trans_id: str  # the provider's, or `unread-...` derived from the body when it has none
    order_id: str
    invoice_id: str | None
    reason: str


@dataclass(frozen=True)
class CardPaymentResult:
    accepted: bool
    message: str
    reference: str | None = None  # the provider's id of the card operation


class ProviderError(Exception):
    """The provider could not be reached or answered garbage: worth retrying."""


class ProviderRejected(ProviderError):
    """The provider answered with an error for this request: retrying will not help."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class H2HNotConfigured(Exception):
    """Host-to-host card payments need a URL the provider gives separately (ODENGI_H2H_URL)."""


@runtime_checkable
class PaymentProvider(Protocol):
    """What the top-up workflow's activities and the API ask of a provider."""

    @property
    def name(self) -> ProviderName: ...

    @property
    def supports_h2h(self) -> bool: ...

    async def create_invoice(self, request: InvoiceRequest) -> Invoice: ...

    async def payment_status(self, invoice_id: str, order_id: str) -> PaymentStatus: ...

    async def cancel_invoice(self, invoice_id: str) -> None: ...

    async def pay_card(self, invoice_id: str, card: CardDetails) -> CardPaymentResult: ...

    async def aclose(self) -> None: ...
