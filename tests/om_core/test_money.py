"""Money helpers: half-up rounding to the cent, no floats, and pro-rata splits that add up exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from om_core.money import CENT, ZERO, allocate_pro_rata, to_money

D = Decimal


# --- to_money ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2.675", D("2.68")),  # half-up: 2.675 -> 2.68 (banker's rounding would also give 2.68)
        ("2.665", D("2.67")),  # half-up: 2.665 -> 2.67 (banker's rounding would give 2.66)
        ("0.005", D("0.01")),  # exactly half a cent rounds up
        ("0.0049", D("0.00")),  # just under half a cent rounds down
        ("-2.675", D("-2.68")),  # half-up is "away from zero" for negatives
        ("1.5", D("1.50")),
        (7, D("7.00")),
        (D("19.999"), D("20.00")),
        ("1e3", D("1000.00")),
        (" 12.345 ", D("12.35")),
    ],
)
def test_to_money_rounds_half_up_to_the_cent(value: object, expected: Decimal) -> None:
    result = to_money(value)  # type: ignore[arg-type]
    assert result == expected
    assert result.as_tuple().exponent == -2  # always exactly two decimal places


@pytest.mark.parametrize("value", [0.1, 2.675, 1.0, float("nan")])
def test_to_money_rejects_floats(value: float) -> None:
    with pytest.raises(TypeError, match="float"):
        to_money(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["abc", "", "12,50", "Infinity", "-Infinity", "NaN", "sNaN", D("NaN")])
def test_to_money_rejects_things_that_are_not_amounts(value: object) -> None:
    with pytest.raises(ValueError, match="not an amount"):
        to_money(value)  # type: ignore[arg-type]


# --- allocate_pro_rata ---------------------------------------------------------------------


def test_allocate_pro_rata_known_answer_with_largest_remainder() -> None:
    # 10.00 over nets 20.00, 20.00, 12.50 (total 52.50), in cents:
    # 1000 x 20/52.5 = 380.95 -> 380; 380.95 -> 380; 1000 x 12.5/52.5 = 238.10 -> 238; sum 998.
    # The 2 cents left go to the largest remainders (.95, .95): 381, 381, 238.
    assert allocate_pro_rata(D("10.00"), [D("20.00"), D("20.00"), D("12.50")]) == [D("3.81"), D("3.81"), D("2.38")]


def test_allocate_pro_rata_exact_split_and_ties_go_to_the_first() -> None:
    # 5.25 over 20 / 20 / 12.50: 525 x 20/52.5 = 200, 200, 125 exactly.
    assert allocate_pro_rata(D("5.25"), [D("20"), D("20"), D("12.50")]) == [D("2.00"), D("2.00"), D("1.25")]
    # 1.00 over three equal weights: 33.33 each -> 33, 33, 33; 1 cent left, all remainders tie -> the first.
    assert allocate_pro_rata(D("1.00"), [D(1), D(1), D(1)]) == [D("0.34"), D("0.33"), D("0.33")]


def test_allocate_pro_rata_rounds_the_amount_first_and_handles_edge_cases() -> None:
    # 0.995 rounds half-up to 1.00 before it is split: 50 / 50 cents.
    assert allocate_pro_rata(D("0.995"), [D(1), D(1)]) == [D("0.50"), D("0.50")]
    assert allocate_pro_rata(D("3.00"), []) == []
    # All weights zero: everything goes to the first part, so nothing is lost.
    assert allocate_pro_rata(D("3.00"), [ZERO, ZERO]) == [D("3.00"), D("0.00")]
    # A zero weight gets nothing while others share.
    assert allocate_pro_rata(D("3.00"), [D(1), ZERO, D(2)]) == [D("1.00"), D("0.00"), D("2.00")]


def test_allocate_pro_rata_negative_amount_still_adds_up() -> None:
    # -1.00 over three equal weights: -33.33 cents each -> floors -34, -34, -34 = -102; 2 cents back to
    # the two largest remainders (ties: the first two): -33, -33, -34.
    parts = allocate_pro_rata(D("-1.00"), [D(1), D(1), D(1)])
    assert parts == [D("-0.33"), D("-0.33"), D("-0.34")]
    assert sum(parts) == D("-1.00")


amounts = st.decimals(min_value=D("-100000"), max_value=D("100000"), places=2, allow_nan=False, allow_infinity=False)
weights = st.lists(
    st.decimals(min_value=D("0"), max_value=D("100000"), places=2, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(amount=amounts, weights=weights)
def test_allocate_pro_rata_parts_sum_exactly_and_stay_within_a_cent(amount: Decimal, weights: list[Decimal]) -> None:
    parts = allocate_pro_rata(amount, weights)
    assert len(parts) == len(weights)
    assert sum(parts, ZERO) == to_money(amount)
    assert all(p == to_money(p) for p in parts)  # whole cents
    total = sum(weights, ZERO)
    if total > 0:
        for part, weight in zip(parts, weights):
            exact = to_money(amount) * weight / total
            assert abs(part - exact) < CENT  # largest remainder never moves a share by a whole cent
            if amount >= 0:
                assert part >= 0
            if weight == 0:
                assert part == ZERO
