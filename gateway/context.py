"""What every charger connection shares: configuration, database, meter writer, signals,
and the durable path for transaction messages (events, relay, backlog)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.backlog import DatabaseBacklog
from gateway.bookkeeping import Bookkeeping
from gateway.config import GatewayConfig
from gateway.event_store import EventStore
from gateway.meter_writer import MeterWriter
from gateway.offline_ids import OfflineTransactionIds
from gateway.relay import TransactionRelay
from gateway.store import GatewayStore
from gateway.workflow_signals import WorkflowSignals


@dataclass(frozen=True, slots=True)
class GatewayContext:
    config: GatewayConfig
    store: GatewayStore
    meters: MeterWriter
    signals: WorkflowSignals
    events: EventStore
    relay: TransactionRelay
    backlog: DatabaseBacklog
    offline_ids: OfflineTransactionIds
    # Connect, boot and status records, batched on admission's own pool (gateway/bookkeeping.py).
    bookkeeping: Bookkeeping
