"""What every charger connection shares: configuration, database, meter writer, signals."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import GatewayConfig
from gateway.meter_writer import MeterWriter
from gateway.store import GatewayStore
from gateway.workflow_signals import WorkflowSignals


@dataclass(frozen=True, slots=True)
class GatewayContext:
    config: GatewayConfig
    store: GatewayStore
    meters: MeterWriter
    signals: WorkflowSignals
