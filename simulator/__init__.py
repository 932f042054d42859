"""OCPP 1.6J charge point simulator: a library for tests and load, and `evpower simulate`."""

from simulator.config import FaultPlan, StationConfig
from simulator.state import Connector, Transaction
from simulator.station import SimulatedStation, StationConnectError

__all__ = [
    "Connector",
    "FaultPlan",
    "SimulatedStation",
    "StationConfig",
    "StationConnectError",
    "Transaction",
]
