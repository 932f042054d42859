"""Tariff and money rules: exact integer arithmetic, ceilings and caps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidAmount
from domain.money import check_amount, ensure_tyiyn, format_som, parse_som
from domain.tariff import Tariff, energy_cost_tyiyn


def test_cost_rounds_up_to_the_next_tyiyn() -> None:
    assert energy_cost_tyiyn(1, 1500) == 2  # 1.5 tyiyn -> 2
    assert energy_cost_tyiyn(5000, 1500) == 7500
    assert energy_cost_tyiyn(0, 1500) == 0


def test_cost_is_capped_at_the_reservation() -> None:
    assert Tariff(1500).cost_tyiyn(100_000, reserved_tyiyn=10_000) == 10_000


@given(
    energy_wh=st.integers(min_value=0, max_value=10**9),
    price=st.integers(min_value=1, max_value=10**6),
)
def test_cost_is_the_exact_ceiling(energy_wh: int, price: int) -> None:
    cost = energy_cost_tyiyn(energy_wh, price)
    assert cost * 1000 >= energy_wh * price > (cost - 1) * 1000 or energy_wh == 0


@given(
    reserved=st.integers(min_value=0, max_value=10**9),
    price=st.integers(min_value=1, max_value=10**6),
)
def test_energy_limit_never_costs_more_than_reserved(reserved: int, price: int) -> None:
    tariff = Tariff(price)
    limit = tariff.energy_limit_wh(reserved)
    assert energy_cost_tyiyn(limit, price) <= reserved
    assert energy_cost_tyiyn(limit + 1, price) > reserved or limit * price == reserved * 1000


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "100", None])
def test_prices_must_be_positive_integers(bad: object) -> None:
    with pytest.raises(InvalidAmount):
        Tariff(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -1, 10.0, False, "10"])
def test_amounts_must_be_positive_integers(bad: object) -> None:
    with pytest.raises(InvalidAmount):
        ensure_tyiyn(bad)


@given(st.integers(min_value=0, max_value=10**12))
def test_som_display_round_trips(amount: int) -> None:
    assert parse_som(format_som(amount)) == amount


def test_som_display_form() -> None:
    assert format_som(50_000) == "500.00"
    assert format_som(123_405) == "1234.05"
    assert parse_som("12.5") == 1250
    with pytest.raises(InvalidAmount):
        parse_som("1.234")


def test_amounts_outside_the_configured_bounds_are_refused_with_both_bounds_named():
    check_amount(1_000, 1_000, 5_000)
    check_amount(5_000, 1_000, 5_000)
    with pytest.raises(InvalidAmount, match=r"between 1000 and 5000 \(10\.00-50\.00 KGS\)"):
        check_amount(999, 1_000, 5_000)
    with pytest.raises(InvalidAmount):
        check_amount(5_001, 1_000, 5_000)
