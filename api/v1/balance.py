"""`/balance`: top-ups by QR or hosted card page (TopUp workflows), the balance and its history."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, StrictInt
from sqlalchemy import select
from temporalio.client import (
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from api.auth import CurrentClient
from api.client_db import ClientDb
from api.deps import ApiContext, Context
from api.errors import ApiError, temporal_calls
from api.idempotency import IdempotencyKey
from api.openapi import AUTHENTICATED, IDEMPOTENT, errors
from api.v1.topup_client import request_invoice
from api.workflow_start import start_or_join
from db.models import LedgerAccount, LedgerEntry
from domain.contracts.search_attributes import CLIENT_ID
from domain.contracts.topups import InvoiceInfo, TopUpInput, TopUpView, topup_workflow_id
from domain.identifiers import BIGINT_MAX, new_id, topup_id_for_key
from domain.ledger import AccountKind, Operation, postings_for
from domain.money import CURRENCY, check_amount, format_som
from workflows.topup import TopUpWorkflow

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/balance", tags=["balance"])

# How long a start endpoint waits for the provider's invoice before answering 504; the
# workflow keeps trying, and a retry with the same Idempotency-Key picks the invoice up.
INVOICE_WAIT_S = 25.0


class TopUpRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_tyiyn: StrictInt


class TopUpAnswer(BaseModel):
    """What every top-up endpoint answers first (each adds its own fields)."""

    topup_id: str
    invoice_id: str
    amount_tyiyn: int
    amount: str
    currency: str

    @staticmethod
    def common(topup_id: str, invoice_id: str, amount_tyiyn: int) -> dict[str, Any]:
        return {
            "topup_id": topup_id,
            "invoice_id": invoice_id,
            "amount_tyiyn": amount_tyiyn,
            "amount": format_som(amount_tyiyn),
            "currency": CURRENCY,
        }


class QrTopUp(TopUpAnswer):
    qr_url: str | None
    qr_image_url: str | None
    app_link: str | None
    expires_at: datetime


class CardTopUp(TopUpAnswer):
    payment_url: str | None  # the provider's hosted card page: card data never reaches us
    expires_at: datetime


class Balance(BaseModel):
    available_tyiyn: int
    held_tyiyn: int
    currency: str
    available: str


class HistoryItem(BaseModel):
    id: int
    operation: str
    amount_tyiyn: int
    amount: str
    available_change_tyiyn: int  # what the entry did to the spendable balance
    reference: str | None
    created_at: datetime


class HistoryPage(BaseModel):
    items: list[HistoryItem]
    next_before_id: int | None  # pass as `before_id` for the next (older) page


# What a client of the top-up endpoints is told while Temporal is unreachable.
TOPUP_UNAVAILABLE = "top-ups are unavailable for a moment; retry with the same Idempotency-Key"


@dataclass(frozen=True)
class StartedTopUp:
    view: TopUpView
    amount_tyiyn: int


def topup_id_for(client_id: str, key: str | None) -> str:
    """A retried request with the same Idempotency-Key names the same top-up (and workflow)."""
    return topup_id_for_key(client_id, key) if key else new_id()


def check_topup_amount(context: ApiContext, amount_tyiyn: int) -> None:
    check_amount(
        amount_tyiyn, context.config.amounts.topup_min_tyiyn, context.config.amounts.topup_max_tyiyn
    )


def topup_input(
    context: ApiContext, topup_id: str, client_id: str, amount_tyiyn: int, method: str
) -> TopUpInput:
    return TopUpInput(
        topup_id=topup_id,
        client_id=client_id,
        amount_tyiyn=amount_tyiyn,
        method=method,
        provider=context.config.provider.provider.value,
        description=f"EvPower: {format_som(amount_tyiyn)} {CURRENCY}",
    )


def topup_start_options(context: ApiContext, request: TopUpInput) -> dict[str, Any]:
    """How every top-up endpoint starts (or joins) the top-up's workflow."""
    return {
        "id": topup_workflow_id(request.topup_id),
        "task_queue": context.config.task_queue,
        # A finished top-up is never started again under the same id (same order_id).
        "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE,
        "search_attributes": TypedSearchAttributes(
            [SearchAttributePair(CLIENT_ID, request.client_id)]
        ),
        "static_summary": (
            f"{request.method} top-up of {format_som(request.amount_tyiyn)} {CURRENCY}"
        ),
    }


async def start_topup(
    context: ApiContext, client_id: str, amount_tyiyn: int, method: str, key: str | None
) -> StartedTopUp:
    """Start (or find) the TopUp workflow and wait until its invoice exists."""
    check_topup_amount(context, amount_tyiyn)
    topup_id = topup_id_for(client_id, key)
    request = topup_input(context, topup_id, client_id, amount_tyiyn, method)
    workflow_id = topup_workflow_id(topup_id)
    with temporal_calls(TOPUP_UNAVAILABLE):
        handle = await start_or_join(
            context.temporal, TopUpWorkflow.run, request, **topup_start_options(context, request)
        )
        view = await _wait_for_invoice(handle)
    if view.client_id and view.client_id != client_id:  # cannot happen: ids derive from client
        raise ApiError(409, "conflict", "this top-up belongs to another client")
    log.info("top-up started", topup_id=topup_id, workflow_id=workflow_id, method=method)
    return StartedTopUp(view, view.amount_tyiyn or amount_tyiyn)


async def _wait_for_invoice(handle: WorkflowHandle[TopUpWorkflow, TopUpView]) -> TopUpView:
    try:
        async with asyncio.timeout(INVOICE_WAIT_S):
            await request_invoice(handle)  # the query below reads it with the rest
    except WorkflowUpdateFailedError as exc:
        raise ApiError(
            502, "provider_error", f"the payment provider did not create the invoice: {exc.cause}"
        ) from None
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        # asyncio.timeout cancels the update's long poll, which the SDK reports as its own error.
        raise ApiError(
            504,
            "provider_timeout",
            "the payment provider is slow; retry with the same Idempotency-Key",
        ) from None
    except RPCError as exc:
        if exc.status is not RPCStatusCode.NOT_FOUND:
            raise
        # The workflow already finished (a retry long after the first request): report it.
    view = await handle.query(TopUpWorkflow.state)
    if view.invoice is None:
        raise ApiError(502, "provider_error", view.reason or "the invoice was not created")
    return view


async def _open_invoice(
    context: ApiContext, client_id: str, body: TopUpRequest, method: str, key: str | None
) -> tuple[InvoiceInfo, dict[str, Any]]:
    """Both top-up endpoints: the invoice, and the answer fields they share."""
    started = await start_topup(context, client_id, body.amount_tyiyn, method, key)
    invoice = started.view.invoice
    assert invoice is not None
    return invoice, {
        **TopUpAnswer.common(invoice.topup_id, invoice.invoice_id, started.amount_tyiyn),
        "expires_at": invoice.expires_at,
    }


@router.post("/topup-qr", status_code=201, responses={**IDEMPOTENT, **errors(502, 504)})
async def topup_qr(
    body: TopUpRequest, client: CurrentClient, context: Context, key: IdempotencyKey
) -> QrTopUp:
    """An O!Dengi QR invoice; the balance grows when the provider confirms the payment."""
    invoice, common = await _open_invoice(context, client.client_id, body, "qr", key)
    return QrTopUp(
        **common,
        qr_url=invoice.qr_url,
        qr_image_url=invoice.qr_image_url,
        app_link=invoice.app_link,
    )


@router.post("/topup-card", status_code=201, responses={**IDEMPOTENT, **errors(502, 504)})
async def topup_card(
    body: TopUpRequest, client: CurrentClient, context: Context, key: IdempotencyKey
) -> CardTopUp:
    """The same top-up paid on the provider's own card page (`payment_url`)."""
    invoice, common = await _open_invoice(context, client.client_id, body, "card", key)
    return CardTopUp(**common, payment_url=invoice.site_pay)


@router.get("/current", responses=AUTHENTICATED)
async def current(client: CurrentClient, db: ClientDb) -> Balance:
    rows = await db.execute(
        select(LedgerAccount.kind, LedgerAccount.balance_tyiyn).where(
            LedgerAccount.client_id == client.client_id
        )
    )
    by_kind = {kind: balance for kind, balance in rows.all()}
    available = by_kind.get(AccountKind.AVAILABLE.value, 0)
    return Balance(
        available_tyiyn=available,
        held_tyiyn=by_kind.get(AccountKind.HELD.value, 0),
        currency=CURRENCY,
        available=format_som(available),
    )


def available_change(operation: str, amount_tyiyn: int, client_id: str) -> int:
    postings = postings_for(
        Operation(operation), client_id=client_id, amount_tyiyn=amount_tyiyn, provider="any"
    )
    return sum(p.amount_tyiyn for p in postings if p.account.kind is AccountKind.AVAILABLE)


@router.get("/history", responses=AUTHENTICATED)
async def history(
    client: CurrentClient,
    db: ClientDb,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before_id: Annotated[int | None, Query(ge=1, le=BIGINT_MAX)] = None,
) -> HistoryPage:
    """The client's ledger entries, newest first, `limit` per page."""
    query = select(LedgerEntry).where(LedgerEntry.client_id == client.client_id)
    if before_id is not None:
        query = query.where(LedgerEntry.id < before_id)
    entries = list(await db.scalars(query.order_by(LedgerEntry.id.desc()).limit(limit + 1)))
    page = entries[:limit]
    return HistoryPage(
        items=[
            HistoryItem(
                id=entry.id,
                operation=entry.operation,
                amount_tyiyn=entry.amount_tyiyn,
                amount=format_som(entry.amount_tyiyn),
                available_change_tyiyn=available_change(
                    entry.operation, entry.amount_tyiyn, client.client_id
                ),
                reference=entry.reference,
                created_at=entry.created_at,
            )
            for entry in page
        ],
        next_before_id=page[-1].id if len(entries) > limit else None,
    )
