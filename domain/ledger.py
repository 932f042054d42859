"""Double-entry ledger rules: the postings of each money movement, always summing to zero."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.errors import InvalidAmount


class AccountKind(StrEnum):
    AVAILABLE = "available"
    HELD = "held"
    REVENUE = "revenue"
    PROVIDER_CLEARING = "provider_clearing"
    # Operators' manual balance adjustments (goodwill credits, corrections): their own
    # system account, so neither revenue nor a provider's clearing absorbs them.
    ADJUSTMENTS = "adjustments"


CLIENT_ACCOUNT_KINDS = frozenset({AccountKind.AVAILABLE, AccountKind.HELD})


class Operation(StrEnum):
    CREDIT_TOPUP = "credit_topup"
    RESERVE = "reserve"
    CAPTURE = "capture"
    RELEASE = "release"
    REFUND = "refund"  # a reviewed session's capture given back: revenue -> available
    ADJUST_CREDIT = "adjust_credit"  # adjustments -> available
    ADJUST_DEBIT = "adjust_debit"  # available -> adjustments


@dataclass(frozen=True, slots=True, order=True)
class AccountRef:
    """Names an account: client accounts by client id, system accounts by `scope`."""

    kind: AccountKind
    client_id: str | None = None
    scope: str = ""

    @property
    def code(self) -> str:
        if self.kind in CLIENT_ACCOUNT_KINDS:
            return f"client:{self.client_id}:{self.kind}"
        return f"{self.kind}:{self.scope}" if self.scope else str(self.kind)

    @property
    def is_client(self) -> bool:
        """Client accounts never go negative and keep a running, locked balance. System
        accounts (clearing is the provider's debt to us and goes negative by design; revenue
        only grows) are summed from their postings instead."""
        return self.kind in CLIENT_ACCOUNT_KINDS


@dataclass(frozen=True, slots=True)
class Posting:
    account: AccountRef
    amount_tyiyn: int  # positive increases the account's balance


def postings_for(
    operation: Operation, *, client_id: str, amount_tyiyn: int, provider: str | None = None
) -> tuple[Posting, ...]:
    """The two postings of one movement. Debit side first; the pair sums to zero."""
    if isinstance(amount_tyiyn, bool) or not isinstance(amount_tyiyn, int) or amount_tyiyn <= 0:
        raise InvalidAmount("amount_tyiyn must be a positive integer")
    available = AccountRef(AccountKind.AVAILABLE, client_id)
    held = AccountRef(AccountKind.HELD, client_id)
    source: AccountRef
    target: AccountRef
    if operation is Operation.CREDIT_TOPUP:
        if not provider:
            raise InvalidAmount("credit_topup needs the provider")
        source = AccountRef(AccountKind.PROVIDER_CLEARING, scope=provider)
        target = available
    elif operation is Operation.RESERVE:
        source, target = available, held
    elif operation is Operation.CAPTURE:
        source, target = held, AccountRef(AccountKind.REVENUE)
    elif operation is Operation.RELEASE:
        source, target = held, available
    elif operation is Operation.REFUND:
        source, target = AccountRef(AccountKind.REVENUE), available
    elif operation is Operation.ADJUST_CREDIT:
        source, target = AccountRef(AccountKind.ADJUSTMENTS), available
    else:
        source, target = available, AccountRef(AccountKind.ADJUSTMENTS)
    return (Posting(source, -amount_tyiyn), Posting(target, amount_tyiyn))
