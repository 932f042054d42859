"""Pure posting rules: every movement is two postings that sum to zero."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidAmount
from domain.ledger import AccountKind, Operation, postings_for


@given(
    operation=st.sampled_from(list(Operation)),
    amount=st.integers(min_value=1, max_value=10**15),
)
def test_postings_sum_to_zero(operation: Operation, amount: int) -> None:
    postings = postings_for(operation, client_id="c1", amount_tyiyn=amount, provider="ODENGI")
    assert sum(p.amount_tyiyn for p in postings) == 0
    assert postings[0].amount_tyiyn == -amount


def test_each_operation_moves_between_the_designed_accounts() -> None:
    def kinds(operation: Operation) -> tuple[AccountKind, AccountKind]:
        source, target = postings_for(operation, client_id="c", amount_tyiyn=1, provider="P")
        return source.account.kind, target.account.kind

    assert kinds(Operation.CREDIT_TOPUP) == (AccountKind.PROVIDER_CLEARING, AccountKind.AVAILABLE)
    assert kinds(Operation.RESERVE) == (AccountKind.AVAILABLE, AccountKind.HELD)
    assert kinds(Operation.CAPTURE) == (AccountKind.HELD, AccountKind.REVENUE)
    assert kinds(Operation.RELEASE) == (AccountKind.HELD, AccountKind.AVAILABLE)
    assert kinds(Operation.REFUND) == (AccountKind.REVENUE, AccountKind.AVAILABLE)
    assert kinds(Operation.ADJUST_CREDIT) == (AccountKind.ADJUSTMENTS, AccountKind.AVAILABLE)
    assert kinds(Operation.ADJUST_DEBIT) == (AccountKind.AVAILABLE, AccountKind.ADJUSTMENTS)


@pytest.mark.parametrize("amount", [0, -1, 1.0, True])
def test_non_positive_or_non_integer_amounts_are_refused(amount: object) -> None:
    with pytest.raises(InvalidAmount):
        postings_for(Operation.RESERVE, client_id="c", amount_tyiyn=amount)  # type: ignore[arg-type]


def test_credit_needs_a_provider() -> None:
    with pytest.raises(InvalidAmount):
        postings_for(Operation.CREDIT_TOPUP, client_id="c", amount_tyiyn=1)
