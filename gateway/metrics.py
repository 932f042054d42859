"""Prometheus metrics of the OCPP gateway (registered once per process, default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

OCPP_MESSAGES = Counter(
    "evpower_ocpp_messages_total",
    "OCPP calls handled, by direction, action and outcome (result / error code).",
    ["direction", "action", "outcome"],
)
CONNECTED_CHARGERS = Gauge(
    "evpower_ocpp_connected_chargers", "Chargers holding a websocket to this process."
)
REJECTED_UPGRADES = Counter(
    "evpower_ocpp_rejected_upgrades_total",
    "Websocket upgrades refused, by HTTP status (401 auth, 400 subprotocol, 404 path).",
    ["status"],
)
SIGNALS = Counter(
    "evpower_ocpp_workflow_signals_total",
    "Signals sent to session workflows, by signal and outcome (accepted / no_workflow / failed).",
    ["signal", "outcome"],
)
RELAY_DEAD_LETTERED = Counter(
    "evpower_ocpp_relay_dead_lettered_total",
    "Transaction events this gateway's relay gave up on (failed for good), by event kind.",
    ["kind"],
)
RELAY_EVENTS = Gauge(
    "evpower_ocpp_relay_events",
    "Rows of ocpp_transaction_events by state (pending: not delivered yet; dead_lettered: "
    "given up, waiting for an operator), as this gateway last counted the shared table.",
    ["state"],
)
RELAY_OLDEST_PENDING = Gauge(
    "evpower_ocpp_relay_oldest_pending_seconds",
    "Age of the oldest transaction event still pending delivery (0 when none): grows while "
    "the relay is stuck.",
)

_children: dict[tuple[str, str, str], Counter] = {}


def count_message(direction: str, action: str, outcome: str) -> None:
    """Count one message; label children are cached because this runs for every frame."""
    key = (direction, action, outcome)
    child = _children.get(key)
    if child is None:
        child = _children[key] = OCPP_MESSAGES.labels(direction, action, outcome)
    child.inc()
