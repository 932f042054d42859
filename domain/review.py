"""The review queue's rules: what an admin may decide for each kind of item, and the keys that
make a decision happen once (its workflow id, its ledger op_key)."""

from __future__ import annotations

from enum import StrEnum

from domain.errors import Conflict, InvalidInput, NotFound


class ReviewKind(StrEnum):
    SESSION = "session"
    TOPUP = "topup"


class Decision(StrEnum):
    CREDIT = "credit"  # a top-up: credit the client (default: what the provider confirmed)
    REFUND = "refund"  # a session: give back its capture, in full or in part
    RELEASE = "release"  # a session whose settlement failed: free what it still holds
    CLOSE = "close"  # either: resolved, no money moves


ALLOWED: dict[ReviewKind, frozenset[Decision]] = {
    ReviewKind.SESSION: frozenset({Decision.REFUND, Decision.RELEASE, Decision.CLOSE}),
    ReviewKind.TOPUP: frozenset({Decision.CREDIT, Decision.CLOSE}),
}

IN_REVIEW = "needs_review"
# The state a reviewed session or top-up row takes; the decision is in review_resolutions.
RESOLVED = "reviewed"


def review_item(kind: str, item_id: str) -> str:
    return f"{kind}:{item_id}"


def review_workflow_id(kind: str, item_id: str) -> str:
    """One Review workflow per item: a double click joins the running one."""
    return f"review:{review_item(kind, item_id)}"


def review_op_key(kind: str, item_id: str, decision: str) -> str:
    """The ledger op_key of a decision's money movement: it can be applied once only."""
    return f"review:{review_item(kind, item_id)}:{decision}"


class ReviewItemNotFound(NotFound):
    code = "review_item_not_found"


class DecisionNotAllowed(InvalidInput):
    code = "decision_not_allowed"


class AmountRequired(InvalidInput):
    code = "amount_required"


class AmountNotAllowed(InvalidInput):
    code = "amount_not_allowed"


class RefundExceedsCapture(InvalidInput):
    code = "refund_exceeds_capture"


class NothingToRefund(Conflict):
    code = "nothing_to_refund"


class NothingToRelease(Conflict):
    code = "nothing_to_release"


class ReleaseExceedsHeld(InvalidInput):
    code = "release_exceeds_held"


class LedgerRefused(Conflict):
    """The ledger refused the movement (the client's accounts no longer allow it)."""

    code = "ledger_refused"


class NotInReview(Conflict):
    code = "not_in_review"


class AlreadyResolved(Conflict):
    code = "already_resolved"


# Refusals travel from the workflow to the API by code.
REFUSALS = {
    cls.code: cls
    for cls in (
        ReviewItemNotFound,
        DecisionNotAllowed,
        AmountRequired,
        AmountNotAllowed,
        RefundExceedsCapture,
        NothingToRefund,
        NothingToRelease,
        ReleaseExceedsHeld,
        LedgerRefused,
        NotInReview,
        AlreadyResolved,
    )
}


def check_decision(kind: ReviewKind, decision: Decision, amount_tyiyn: int | None) -> None:
    """What can be refused before anything is read (the rest needs the item's money)."""
    if decision not in ALLOWED[kind]:
        allowed = ", ".join(sorted(ALLOWED[kind]))
        raise DecisionNotAllowed(f"a {kind} in review can be resolved with {allowed}")
    if decision is Decision.CLOSE and amount_tyiyn is not None:
        raise AmountNotAllowed("close moves no money: send no amount_tyiyn")
