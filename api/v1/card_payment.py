"""`POST /payment/h2h-create`: a card typed in the app, charged inside the TopUp workflow.

The API validates the card, seals it for the worker (payments/card_vault.py) and starts the
top-up's workflow with the `pay_card` update in one call (update-with-start, keyed by the
Idempotency-Key like every top-up). The charge is the workflow's activity, keyed by the
top-up id: however many identical requests arrive, the card is forwarded at most once, and
the balance grows when the provider confirms the payment, as for every top-up.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated

import structlog
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from sqlalchemy import delete
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.auth import CurrentClient
from api.deps import ApiContext, Context
from api.errors import TEMPORAL_TROUBLE, ApiError, temporal_calls
from api.idempotency import IdempotencyKey
from api.openapi import IDEMPOTENT, errors
from api.v1.balance import (
    INVOICE_WAIT_S,
    TOPUP_UNAVAILABLE,
    TopUpAnswer,
    check_topup_amount,
    topup_id_for,
    topup_input,
    topup_start_options,
)
from api.workflow_start import collect_start_error
from db.models import CardCharge as SealedCard
from domain.contracts.topups import (
    CARD_UPDATE,
    CardCharge,
    CardOutcome,
    TopUpView,
    topup_workflow_id,
)
from payments.card_vault import seal
from payments.cards import CardDetails, InvalidCard, validate_card
from workflows.topup import TopUpWorkflow

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/payment", tags=["payment"])

# Concurrent update-with-start calls for one workflow id may be asked to retry.
# Identical requests racing to start one workflow: Temporal dedups the start and admits at
# most 10 updates in flight per workflow (RESOURCE_EXHAUSTED beyond): back off 0.1 s,
# doubling, ~3 s in all, before it counts as Temporal trouble (503, retry with the key).
START_ATTEMPTS = 6
# A sealed card whose request never reached its workflow is dropped after this.
SEALED_CARD_LIFE = timedelta(minutes=15)


class H2HRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    amount_tyiyn: StrictInt  # the limits are configuration: checked by the endpoint
    # Shapes only (ASCII digits, spaces or dashes); payments/cards.py checks the rest.
    card_number: Annotated[StrictStr, Field(max_length=32, pattern=r"^[0-9 -]*$")]
    exp_month: Annotated[StrictInt, Field(ge=0, le=99)]
    exp_year: Annotated[StrictInt, Field(ge=0, le=9999)]
    cvc: Annotated[StrictStr, Field(max_length=4, pattern=r"^[0-9]*$")]
    card_holder: Annotated[StrictStr, Field(max_length=100)] = ""


class H2HResult(TopUpAnswer):
    card: str  # masked
    status: str  # accepted | already_submitted
    message: str


@router.post(
    "/h2h-create",
    status_code=201,
    responses={**IDEMPOTENT, **errors(402, 501, 502, 504)},
)
async def h2h_create(
    body: H2HRequest, client: CurrentClient, context: Context, key: IdempotencyKey
) -> H2HResult:
    """Card typed in the app, charged by the provider from the top-up's workflow: validated
    here, forwarded at most once per top-up, never stored in the clear or logged (the audit
    keeps the masked number). 402 when declined; 502 when the outcome is unknown (the top-up
    then completes by itself if the charge went through: GET /api/v1/payment/status)."""
    return await pay_by_card(context, client.client_id, body, key)


async def pay_by_card(
    context: ApiContext, client_id: str, body: H2HRequest, key: str | None
) -> H2HResult:
    settings = context.config.provider
    if settings.effective_h2h_url is None:
        raise ApiError(
            501,
            "h2h_not_configured",
            "host-to-host card payments need ODENGI_H2H_URL; use POST "
            "/api/v1/balance/topup-card (the provider's card page) instead",
        )
    try:
        card = validate_card(
            body.card_number,
            body.exp_month,
            body.exp_year,
            body.cvc,
            body.card_holder,
            today=datetime.now(UTC).date(),
        )
    except InvalidCard as exc:
        raise ApiError(422, exc.code, exc.message) from None
    check_topup_amount(context, body.amount_tyiyn)
    topup_id = topup_id_for(client_id, key)
    charge = await _seal(context, card, topup_id)
    request = topup_input(context, topup_id, client_id, body.amount_tyiyn, "h2h")

    def operation() -> WithStartWorkflowOperation[TopUpWorkflow, TopUpView]:
        return WithStartWorkflowOperation(
            TopUpWorkflow.run,
            request,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,  # with-start needs it
            **topup_start_options(context, request),
        )

    handle: WorkflowHandle[TopUpWorkflow, TopUpView]
    try:
        with temporal_calls(TOPUP_UNAVAILABLE):
            async with asyncio.timeout(INVOICE_WAIT_S):
                outcome, handle = await _update_with_start(context, operation, charge)
    except WorkflowAlreadyStartedError:
        # The top-up's workflow has finished (a retry long after the first request).
        await _discard(context, topup_id)
        handle = context.temporal.get_workflow_handle_for(
            TopUpWorkflow.run, topup_workflow_id(topup_id)
        )
        outcome = CardOutcome("already_submitted", "this top-up was already paid or closed")
    except WorkflowUpdateFailedError as exc:
        await _discard(context, topup_id)
        raise ApiError(
            502, "provider_error", f"the payment provider did not create the invoice: {exc.cause}"
        ) from None
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        # The workflow goes on with the sealed card; a retry with the same key gets its answer.
        raise ApiError(
            504, "provider_timeout", "the payment provider is slow; retry with the same key"
        ) from None
    with temporal_calls(TOPUP_UNAVAILABLE):
        view = await handle.query(TopUpWorkflow.state)
    log.info("card top-up", topup_id=topup_id, outcome=outcome.status)
    return _answer(view, card, outcome)


async def _update_with_start(
    context: ApiContext,
    operation: Callable[[], WithStartWorkflowOperation[TopUpWorkflow, TopUpView]],
    charge: CardCharge,
) -> tuple[CardOutcome, WorkflowHandle[TopUpWorkflow, TopUpView]]:
    """The `pay_card` update, starting the workflow if needed. Identical requests racing to
    start the same workflow can be told to try again (Temporal dedups the start): they do,
    a few times, before it counts as Temporal trouble."""
    for attempt in range(1, START_ATTEMPTS + 1):
        start = operation()
        try:
            outcome: CardOutcome = await context.temporal.execute_update_with_start_workflow(
                CARD_UPDATE, charge, start_workflow_operation=start, result_type=CardOutcome
            )
            return outcome, await start.workflow_handle()
        except (RPCError, WorkflowAlreadyStartedError) as exc:
            if isinstance(exc, WorkflowAlreadyStartedError) or attempt == START_ATTEMPTS:
                raise
            if exc.status not in TEMPORAL_TROUBLE:
                raise
            log.info("card top-up start retried", attempt=attempt, detail=exc.message[:120])
            await asyncio.sleep(0.1 * 2 ** (attempt - 1))
        finally:
            collect_start_error(start)
    raise AssertionError("unreachable")


async def _seal(context: ApiContext, card: CardDetails, topup_id: str) -> CardCharge:
    sealed, secret = seal(card, topup_id)
    ref = secrets.token_hex(8)
    async with context.db_sessions() as session, session.begin():
        session.add(SealedCard(topup_id=topup_id, ref=ref, sealed=sealed))
        await session.execute(
            delete(SealedCard).where(SealedCard.created_at < datetime.now(UTC) - SEALED_CARD_LIFE)
        )
    return CardCharge(ref=ref, key=secret)


async def _discard(context: ApiContext, topup_id: str) -> None:
    async with context.db_sessions() as session, session.begin():
        await session.execute(delete(SealedCard).where(SealedCard.topup_id == topup_id))


def _answer(view: TopUpView, card: CardDetails, outcome: CardOutcome) -> H2HResult:
    if outcome.status == "declined":
        raise ApiError(402, "card_declined", f"the card was declined: {outcome.message}")
    if outcome.status == "unknown":
        raise ApiError(
            502,
            "provider_error",
            "the card payment's outcome is unknown; the top-up completes by itself if the "
            "charge went through (see GET /api/v1/payment/status)",
        )
    if view.invoice is None:
        raise ApiError(502, "provider_error", view.reason or "the invoice was not created")
    return H2HResult(
        **TopUpAnswer.common(view.topup_id, view.invoice.invoice_id, view.amount_tyiyn),
        card=card.masked,
        status=outcome.status,
        message=outcome.message,
    )
