"""StartTransaction with an RFID card's tag: the gateway starts the card's ChargingSession.

The session id comes from the charger transaction's natural key (`card_session_id`), so a
retried StartTransaction reaches the same workflow. The workflow is started with
update-with-start (`card_transaction`); it claims the connector and the card, reserves up to
`card_reserve_tyiyn` (capped by the balance) and only then answers. The charger is told
`Accepted` once the reservation holds, and the transaction row is linked to the session with
the energy the reservation buys (the limit the gateway enforces, as for app sessions);
otherwise `Invalid` (`Blocked` for a blocked card) and the row is closed at once.

Temporal unreachable (or too slow to answer): `Invalid`, the row closed, and a `stopped` relay
event with the refused figures (no energy) for the session, so a workflow that did start and
reserve before the answer was lost settles with nothing billed once the relay delivers it
(docs/gateway.md, *Cards while Temporal is down*).
"""

from __future__ import annotations

from dataclasses import replace

import structlog
from ocpp.v16.enums import AuthorizationStatus

from db.outage import database_unavailable
from domain.contracts.card_sessions import CardStart
from domain.contracts.charging import ChargingRequest
from domain.contracts.session_signals import REFUSED_STOP_REASON, START_ACCEPTED
from domain.identifiers import card_session_id
from domain.money import CURRENCY, format_som
from gateway import metrics
from gateway.cards import TagStanding
from gateway.context import GatewayContext
from gateway.events import started_of, stopped_event
from gateway.store import TransactionRow
from gateway.transactions import RunningTx, TransactionCache
from gateway.workflow_signals import SignalFailed

log = structlog.get_logger("gateway")

CARD_TRANSACTION = "card_transaction"  # the metrics label of these starts


def session_for(row: TransactionRow) -> str:
    return card_session_id(
        row.station_id, row.connector_id, row.id_tag, row.meter_start_wh, row.started_at
    )


async def start_transaction(
    ctx: GatewayContext, cache: TransactionCache, row: TransactionRow, card: TagStanding
) -> AuthorizationStatus:
    """The answer to a StartTransaction whose tag is a card (the row is stored already)."""
    assert card.client_id is not None and card.card_tag is not None
    session_id = session_for(row)
    # A row linked already was accepted: its retry goes to its session whatever happened to
    # the card since (blocked mid-session, the session charges on: docs/charging.md).
    if row.session_id is None and (card.blocked or row.stop_reason == REFUSED_STOP_REASON):
        # A blocked card starts nothing; a start refused once (its row closed) stays refused.
        status = AuthorizationStatus.blocked if card.blocked else AuthorizationStatus.invalid
        await _refuse(ctx, cache, row, session_id, status.value)
        return status
    config = ctx.config
    request = ChargingRequest(
        session_id=session_id,
        client_id=card.client_id,
        station_id=row.station_id,
        connector_id=row.connector_id,
        amount_tyiyn=config.card_reserve_tyiyn,
        card=CardStart(card.card_tag, started_of(row), config.card_min_balance_tyiyn),
    )
    summary = (
        f"card {card.card_tag} at {row.station_id}/{row.connector_id}, "
        f"up to {format_som(config.card_reserve_tyiyn)} {CURRENCY} reserved"
    )
    try:
        answer = await ctx.signals.start_card_session(request, config.task_queue, summary)
    except SignalFailed as exc:
        await _refuse_unanswered(ctx, cache, row, session_id, str(exc))
        return AuthorizationStatus.invalid
    if answer.status != START_ACCEPTED:
        metrics.SIGNALS.labels(CARD_TRANSACTION, "refused").inc()
        await _refuse(ctx, cache, row, session_id, answer.refusal or answer.status)
        return AuthorizationStatus.invalid
    metrics.SIGNALS.labels(CARD_TRANSACTION, "accepted").inc()
    # Linked before the charger hears Accepted: its stop and samples then name the session.
    # A database failure here is a CallError; the charger's retry joins the same session.
    await ctx.store.link_card_session(row.id, session_id, answer.energy_limit_wh)
    tx = RunningTx.of(replace(row, session_id=session_id, energy_limit_wh=answer.energy_limit_wh))
    cache.remember(row.id, tx)
    log.info(
        "card session started",
        station_id=row.station_id,
        transaction_id=row.id,
        session_id=session_id,
        workflow_id=f"charging-{session_id}",
        reserved_tyiyn=answer.reserved_tyiyn,
        energy_limit_wh=answer.energy_limit_wh,
    )
    return AuthorizationStatus.accepted


async def _refuse(
    ctx: GatewayContext, cache: TransactionCache, row: TransactionRow, session_id: str, why: str
) -> None:
    log.info(
        "card transaction refused",
        code="card_refused",
        station_id=row.station_id,
        transaction_id=row.id,
        session_id=session_id,
        reason=why,
    )
    try:
        await ctx.store.close_refused(row.id)
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        log.warning("refused transaction left open", transaction_id=row.id)
    cache.remember(row.id, RunningTx.of(row))


async def _refuse_unanswered(
    ctx: GatewayContext, cache: TransactionCache, row: TransactionRow, session_id: str, error: str
) -> None:
    """Temporal did not answer: the workflow may or may not have started and reserved. The
    charger is told Invalid, the row closed, and the session (if any) gets the refused stop
    through the relay, so whatever it reserved is released. Both writes must hold before the
    answer: without the database the charger gets a CallError and retries."""
    metrics.SIGNALS.labels(CARD_TRANSACTION, "failed").inc()
    await ctx.store.close_refused(row.id)
    refused = replace(
        row,
        session_id=session_id,
        meter_stop_wh=row.meter_start_wh,
        stopped_at=row.started_at,
        stop_reason=REFUSED_STOP_REASON,
    )
    await ctx.events.add(stopped_event(refused))
    ctx.relay.wake()
    cache.remember(row.id, RunningTx.of(row))
    log.warning(
        "card transaction refused: Temporal did not answer",
        station_id=row.station_id,
        transaction_id=row.id,
        session_id=session_id,
        error=error,
    )
