"""The Review workflow's contract with the operations API: its name, the admin's request and
what it reports (resolved, or refused with a code from domain/review.py)."""

from __future__ import annotations

from dataclasses import dataclass

WORKFLOW_NAME = "Review"


@dataclass(frozen=True)
class ReviewRequest:
    kind: str  # a ReviewKind
    item_id: str
    decision: str  # a Decision
    amount_tyiyn: int | None  # None: the default (the provider's confirmed amount; the capture)
    reason: str
    operator: str  # the admin's token subject


@dataclass(frozen=True)
class ReviewResult:
    kind: str
    item_id: str
    decision: str
    outcome: str  # resolved | refused
    amount_tyiyn: int = 0  # moved by the decision (0 for close)
    entry_id: int | None = None  # the ledger entry, when money moved
    op_key: str | None = None
    operator: str = ""
    reason: str = ""
    replayed: bool = False  # the item had already been resolved so: nothing new happened
    code: str | None = None  # refused: why, a code of domain/review.py
    message: str = ""
