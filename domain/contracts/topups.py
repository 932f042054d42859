"""The TopUp workflow's contract with the API: workflow ids, signal/update/query names, its input,
its public state and the provider outcomes the API shows.

The `payment_notified` / `payment_unreadable` signals carry `payments.provider.PaymentNotice` /
`UnreadNotice` (the provider's own vocabulary, shared by api and worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

PAYMENT_NOTIFIED = "payment_notified"
PAYMENT_UNREADABLE = "payment_unreadable"
INVOICE_UPDATE = "invoice"
CARD_UPDATE = "pay_card"
STATE_QUERY = "state"

INVOICE_LIFE_S = 300
# The webhook is the main path; the poll is the fallback for a lost webhook, and each one
# costs two Temporal actions (timer + activity).
POLL_INTERVAL_S = 60


def topup_workflow_id(topup_id: str) -> str:
    return f"topup-{topup_id}"


def reconciliation_workflow_id(trans_id: str) -> str:
    """A paid notice whose top-up workflow had closed: one reconciliation per transaction."""
    return f"reconcile-{trans_id}"


def recheck_workflow_id(trans_id: str) -> str:
    """An unread notice whose top-up has no running workflow: one recheck per transaction."""
    return f"recheck-{trans_id}"


class TopUpState(StrEnum):
    CREATING = "creating"
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    EXPIRED = "expired"
    NEEDS_REVIEW = "needs_review"
    FAILED = "failed"  # the provider never created the invoice
    UNRESOLVED = "unresolved"  # the provider could not say; the hourly reconciliation will
    REVIEWED = "reviewed"  # was needs_review; an admin decided (review_resolutions)


FINAL_STATES = frozenset(
    {
        TopUpState.PAID,
        TopUpState.EXPIRED,
        TopUpState.NEEDS_REVIEW,
        TopUpState.FAILED,
        TopUpState.REVIEWED,
    }
)


@dataclass(frozen=True)
class TopUpInput:
    topup_id: str
    client_id: str
    amount_tyiyn: int
    method: str  # qr | card | h2h
    provider: str
    currency: str = "KGS"
    description: str = "EvPower balance top-up"
    life_s: int = INVOICE_LIFE_S
    poll_interval_s: int = POLL_INTERVAL_S


@dataclass(frozen=True)
class CardCharge:
    """The `pay_card` update: which sealed card to charge and the key that opens it."""

    ref: str
    key: str


@dataclass(frozen=True)
class TopUpView:
    """Query `state` and the workflow's result."""

    topup_id: str
    client_id: str
    state: str
    amount_tyiyn: int
    currency: str
    method: str
    invoice: InvoiceInfo | None
    trans_id: str | None
    reason: str | None


@dataclass(frozen=True)
class InvoiceInfo:
    topup_id: str
    invoice_id: str
    qr_image_url: str | None
    qr_url: str | None
    app_link: str | None
    site_pay: str | None
    expires_at: datetime


@dataclass(frozen=True)
class CardOutcome:
    status: str  # accepted | declined | unknown | already_submitted
    message: str
