"""Prometheus counters of money and outcomes, counted where the database change happens once
(a retried activity that changes nothing counts nothing)."""

from __future__ import annotations

from prometheus_client import Counter

LEDGER_OPERATIONS = Counter(
    "evpower_ledger_operations_total",
    "Ledger operations by kind (credit_topup, reserve, capture, release, ...) and outcome "
    "(applied: a new entry; replayed: the op_key existed; insufficient_funds).",
    ["operation", "outcome"],
)
SESSIONS_FINISHED = Counter(
    "evpower_charging_sessions_finished_total",
    "Charging sessions that reached a final state, by state.",
    ["state"],
)
TOPUPS_FINISHED = Counter(
    "evpower_topups_finished_total",
    "Top-ups that reached a final state, by state (paid, expired, failed, needs_review, ...).",
    ["state"],
)
