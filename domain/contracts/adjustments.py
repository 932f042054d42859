"""The BalanceAdjustment workflow's contract with the operations API: its id (from the request's
Idempotency-Key), the admin's request and what it reports."""

from __future__ import annotations

from dataclasses import dataclass

WORKFLOW_NAME = "BalanceAdjustment"


def adjustment_op_key(idempotency_key: str) -> str:
    """The ledger op_key of an adjustment: a retried request can never move money twice."""
    return f"adjust:{idempotency_key}"


def adjustment_workflow_id(idempotency_key: str) -> str:
    return f"adjustment:{idempotency_key}"


@dataclass(frozen=True)
class AdjustmentRequest:
    client_id: str
    amount_tyiyn: int  # positive: a credit to the client's available balance; negative: a debit
    reason: str
    operator: str  # the admin's token subject
    op_key: str


@dataclass(frozen=True)
class AdjustmentResult:
    client_id: str
    amount_tyiyn: int
    op_key: str
    outcome: str  # applied | refused
    entry_id: int | None = None
    replayed: bool = False  # the op_key had been applied before: nothing moved this time
    # refused: `insufficient_funds` (a debit larger than the available balance) or
    # `op_key_conflict` (the key was used for another adjustment)
    code: str | None = None
    message: str = ""
