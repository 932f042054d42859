"""The relay: delivers transaction events (gateway/event_store.py) to their session workflows
until Temporal accepts each one.

Every gateway runs one. It is woken when this gateway writes an event and when Temporal is
back after an outage (its own probe, with backoff); it also looks every `relay_poll_s` for
rows that another gateway wrote or left behind when it died. Deliveries are idempotent in
effect: the workflow ignores a start, stop or sample it already has.

Failures are classified (gateway/relay_failures.py): Temporal or the database unreachable is
waited out for as long as it takes; a failure for good is tried `relay_dead_letter_after`
times and then dead-lettered, so it neither loops for ever nor holds back the transaction's
later events. An orphan stop (a StopTransaction for a transaction not recorded yet) waits up
to `relay_orphan_wait_s` for its transaction's row, then is dead-lettered too.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.contracts.session_signals import (
    METER_SAMPLE,
    START_ACCEPTED,
    TRANSACTION_STARTED,
    TRANSACTION_STOPPED,
    MeterSample,
    TransactionStarted,
    TransactionStopped,
)
from gateway import metrics
from gateway.config import GatewayConfig
from gateway.event_store import EventStore, adopt_orphan
from gateway.events import METER, ORPHAN_STOP, STARTED, STOPPED, PendingEvent, decode, orphan_of
from gateway.relay_failures import Failure, StopNotMatched, classify, describe
from gateway.store import GatewayStore, TransactionRow
from gateway.workflow_signals import WorkflowSignals

log = structlog.get_logger("gateway.relay")

# Called when a workflow refuses a StartTransaction the charger was told was Accepted.
StartRefused = Callable[[PendingEvent], Awaitable[None]]


class _Outcome(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"  # this event failed; others may pass
    TEMPORAL_DOWN = "temporal_down"


class TransactionRelay:
    def __init__(
        self,
        events: EventStore,
        store: GatewayStore,
        signals: WorkflowSignals,
        config: GatewayConfig,
        on_start_refused: StartRefused | None = None,
    ) -> None:
        self._events = events
        self._store = store
        self._signals = signals
        self._config = config
        self._on_start_refused = on_start_refused
        self._wakeup = asyncio.Event()
        self._counted_at: float | None = None

    def wake(self) -> None:
        """An event was written (or Temporal answered again): look now."""
        self._wakeup.set()

    async def run(self) -> None:
        pause = self._config.relay_retry_first_s
        while True:
            try:
                outcome = await self.deliver_due()
                await self._count_if_due()
            except Exception as exc:
                # The database is down (or failed): events wait in it, so wait for it.
                log.warning("relay pass failed", error=repr(exc))
                await self._sleep(pause)
                pause = min(pause * 2, self._config.relay_retry_max_s)
                continue
            pause = self._config.relay_retry_first_s
            # Also when only a handler's call found Temporal down: its calls fail fast until
            # the probe says Temporal is back.
            if outcome is _Outcome.TEMPORAL_DOWN or self._signals.down:
                await self._await_temporal()
            elif outcome is not _Outcome.DELIVERED:  # nothing more due now
                await self._sleep(self._config.relay_poll_s)

    async def deliver_due(self) -> _Outcome | None:
        """One batch. DELIVERED: something went, so look again at once (the transaction's
        next event is due now); TEMPORAL_DOWN: wait for Temporal; None or RETRY: nothing
        more is due now."""
        lease = timedelta(seconds=self._config.relay_lease_s)
        batch = await self._events.claim(self._config.relay_batch, lease)
        if not batch:
            return None
        outcomes = await asyncio.gather(*(self._attempt(event) for event in batch))
        down = [
            event.id
            for event, outcome in zip(batch, outcomes, strict=True)
            if outcome is _Outcome.TEMPORAL_DOWN
        ]
        if down:
            # Due again at once: the probe says when Temporal is back, no per-row backoff.
            await self._events.retry_later(down, timedelta(0), "Temporal unreachable")
            return _Outcome.TEMPORAL_DOWN
        if _Outcome.DELIVERED in outcomes:
            return _Outcome.DELIVERED
        return _Outcome.RETRY

    async def _attempt(self, event: PendingEvent) -> _Outcome:
        try:
            await self._deliver(event)
        except Exception as exc:
            failure = classify(exc)
            if failure is Failure.TEMPORAL_DOWN:
                return _Outcome.TEMPORAL_DOWN
            error = describe(exc)
            if failure is Failure.UNMATCHED:
                await self._wait_for_transaction(event, error)
            elif failure is Failure.TRANSIENT:
                log.warning("relay delivery failed; retried", event_id=event.id, error=error)
                await self._later(event, error)
            elif event.failures + 1 >= self._config.relay_dead_letter_after:
                await self._dead_letter(event, error)
            else:
                log.warning(
                    "relay delivery refused; tried again before it is given up",
                    event_id=event.id,
                    kind=event.kind,
                    failures=event.failures + 1,
                    error=error,
                )
                await self._events.failed(event, self._backoff(event), error)
            return _Outcome.RETRY
        await self._events.delivered(event)
        return _Outcome.DELIVERED

    async def _wait_for_transaction(self, event: PendingEvent, error: str) -> None:
        waited = 0.0
        if event.created_at is not None:
            waited = (datetime.now(UTC) - event.created_at).total_seconds()
        if waited >= self._config.relay_orphan_wait_s:
            await self._dead_letter(event, f"{error} after {waited:.0f} s")
        else:
            await self._later(event, error)

    async def _dead_letter(self, event: PendingEvent, error: str) -> None:
        await self._events.dead_letter(event, error)
        metrics.RELAY_DEAD_LETTERED.labels(event.kind).inc()
        # One line an operator acts on (docs/operations.md, *Dead-lettered charger events*).
        log.error(
            "transaction event dead-lettered",
            event_id=event.id,
            station_id=event.station_id,
            transaction_id=event.transaction_id,
            session_id=event.session_id,
            kind=event.kind,
            attempts=event.attempts,
            error=error,
        )

    async def _deliver(self, event: PendingEvent) -> None:
        if event.kind == ORPHAN_STOP:
            await self._match_orphan(event)
            return
        argument = decode(event)
        if event.kind == STARTED:
            assert isinstance(argument, TransactionStarted)
            accepted = await self._signals.start_transaction(event.session_id, argument)
            metrics.SIGNALS.labels(TRANSACTION_STARTED, "relayed" if accepted else "refused").inc()
            if accepted:
                await self._store.link_session(event.transaction_id, event.session_id)
            elif event.answered == START_ACCEPTED:
                log.warning(
                    "relayed start refused by its session; the charger was told Accepted",
                    station_id=event.station_id,
                    transaction_id=event.transaction_id,
                    session_id=event.session_id,
                )
                if self._on_start_refused is not None:
                    await self._on_start_refused(event)
        elif event.kind in (STOPPED, METER):
            assert isinstance(argument, TransactionStopped | MeterSample)
            name = TRANSACTION_STOPPED if event.kind == STOPPED else METER_SAMPLE
            found = await self._signals.send(event.session_id, name, argument)
            metrics.SIGNALS.labels(name, "relayed" if found else "no_workflow").inc()
        else:
            raise ValueError(f"unknown event kind {event.kind!r}")
        log.info(
            "transaction event relayed",
            kind=event.kind,
            station_id=event.station_id,
            transaction_id=event.transaction_id,
            session_id=event.session_id,
            attempts=event.attempts,
        )

    async def _match_orphan(self, event: PendingEvent) -> None:
        """Close the orphan stop's transaction once its row is there; the stop then goes to
        the session as a `stopped` event (first stop wins, as for any StopTransaction)."""
        stop = orphan_of(event)

        async def adopt(connection: AsyncConnection, row: TransactionRow) -> None:
            await adopt_orphan(connection, event.id, row)

        row, closed = await self._store.stop_transaction(
            event.station_id,
            event.transaction_id,
            meter_stop_wh=stop.meter_stop_wh,
            stopped_at=stop.stopped_at,
            reason=stop.reason,
            then=adopt,
        )
        if row is None:
            raise StopNotMatched(
                f"no transaction {event.transaction_id} of {event.station_id} recorded"
            )
        self.wake()  # its `stopped` event is due now
        log.info(
            "orphan stop matched to its transaction",
            station_id=event.station_id,
            transaction_id=event.transaction_id,
            session_id=row.id_tag,
            first_stop=closed,
            attempts=event.attempts,
        )

    async def _later(self, event: PendingEvent, error: str) -> None:
        await self._events.retry_later([event.id], self._backoff(event), error)

    def _backoff(self, event: PendingEvent) -> timedelta:
        first, most = self._config.relay_retry_first_s, self._config.relay_retry_max_s
        return timedelta(seconds=min(most, first * 2 ** min(event.attempts, 20)))

    async def _count_if_due(self) -> None:
        """Refresh the pending / dead-lettered gauges, at most once per poll interval."""
        now = time.monotonic()
        if self._counted_at is not None and now - self._counted_at < self._config.relay_poll_s:
            return
        self._counted_at = now
        counts = await self._events.counts()
        metrics.RELAY_EVENTS.labels("pending").set(counts.pending)
        metrics.RELAY_EVENTS.labels("dead_lettered").set(counts.dead_lettered)
        oldest = counts.oldest_pending_at
        age = 0.0 if oldest is None else (datetime.now(UTC) - oldest).total_seconds()
        metrics.RELAY_OLDEST_PENDING.set(max(0.0, age))

    async def _await_temporal(self) -> None:
        pause = self._config.relay_retry_first_s
        log.warning("Temporal unreachable; relay waits for it")
        while not await self._signals.probe():
            # The gauges matter most now: the pending count and the oldest's age grow.
            with contextlib.suppress(Exception):
                await self._count_if_due()
            await self._sleep(pause)
            pause = min(pause * 2, self._config.relay_retry_max_s)
        log.info("Temporal reachable again; relaying")

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=seconds)
        self._wakeup.clear()
