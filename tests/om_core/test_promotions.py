"""Promotions: the engine on its own (PricedLine + unsaved Promotion objects) and through quotes and
placed orders on the test store (coupons, validity windows, usage limits, recorded discounts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from om_core.clock import frozen_at, utcnow
from om_core.db import Database
from om_core.errors import AlreadyExists, CouponError, PromotionLimitReached, ValidationError
from om_core.models import Base, LineDiscount, Order, OrderLine, Promotion, PromotionRedemption
from om_core.services import orders, promotions
from om_core.services.promotions import PricedLine, apply_promotions
from tests.om_core.store import ADA, BOB, NY_ADDRESS, web_order

D = Decimal
ZERO = D("0.00")


def row_counts(db: Database) -> dict[str, int]:
    """Rows per table, read in a fresh session: the 'nothing was written' check."""
    with db.read() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables}


# --- the engine on its own -------------------------------------------------------------------


def promo(pid: int, kind: str, scope: str, value: str, target: str | None = None, **extra: Any) -> Promotion:
    """An unsaved promotion: column defaults do not apply before INSERT, so every field is set here."""
    fields: dict[str, Any] = dict(
        name=f"promo {pid}", coupon_code=None, buy_quantity=None, get_quantity=None, min_subtotal=None,
        starts_at=None, ends_at=None, usage_limit_total=None, usage_limit_per_customer=None,
        priority=100, stackable=True, active=True,
    )
    fields.update(extra)
    return Promotion(id=pid, kind=kind, scope=scope, target=target, value=D(value), **fields)


def priced(key: int, sku: str, quantity: int, price: str, category: str | None = None) -> PricedLine:
    category = category or {"TEE": "apparel", "MUG": "kitchen", "KETTLE": "kitchen", "BEANS": "grocery"}[sku.split("-")[0]]
    return PricedLine(key=key, sku=sku, category=category, quantity=quantity, unit_price=D(price))


def discounts(line: PricedLine) -> list[tuple[int, Decimal]]:
    return [(p.id, amount) for p, amount, _ in line.discounts]


def basket() -> list[PricedLine]:
    """TEE-S x1 20.00, TEE-M x1 20.00, MUG x1 12.50: gross 52.50."""
    return [priced(1, "TEE-S", 1, "20.00"), priced(2, "TEE-M", 1, "20.00"), priced(3, "MUG", 1, "12.50")]


def test_percentage_on_a_sku_touches_only_that_sku() -> None:
    lines = [priced(1, "TEE-S", 2, "20.00"), priced(2, "TEE-M", 1, "20.00")]
    p = promo(1, "percentage", "sku", "10", "TEE-S")
    assert apply_promotions(lines, [p]) == [p]
    assert discounts(lines[0]) == [(1, D("4.00"))]  # 2 x 20.00 = 40.00; 10% off = 4.00
    assert lines[0].net == D("36.00")
    assert discounts(lines[1]) == []
    assert lines[0].discounts[0][2] == "promo 1: 10% off"


def test_percentage_rounds_half_up_per_line() -> None:
    lines = [priced(1, "MUG", 1, "12.50")]
    apply_promotions(lines, [promo(1, "percentage", "sku", "15", "MUG")])
    assert discounts(lines[0]) == [(1, D("1.88"))]  # 12.50 x 15% = 1.875 -> 1.88 (half-up)


def test_fixed_per_unit_on_a_category() -> None:
    lines = [priced(1, "TEE-S", 2, "20.00"), priced(2, "TEE-L", 1, "22.00"), priced(3, "MUG", 3, "12.50")]
    apply_promotions(lines, [promo(1, "fixed", "category", "1.50", "apparel")])
    assert discounts(lines[0]) == [(1, D("3.00"))]  # 2 units x 1.50 = 3.00
    assert discounts(lines[1]) == [(1, D("1.50"))]  # 1 unit x 1.50
    assert discounts(lines[2]) == []  # kitchen is not apparel
    assert lines[0].discounts[0][2] == "promo 1: 1.50 off each"


def test_fixed_per_unit_never_takes_a_line_below_zero() -> None:
    lines = [priced(1, "TEE-S", 2, "20.00")]
    apply_promotions(lines, [promo(1, "fixed", "sku", "25.00", "TEE-S")])
    assert discounts(lines[0]) == [(1, D("40.00"))]  # 2 x 25.00 = 50.00, capped at the line's 40.00
    assert lines[0].net == ZERO


def test_order_percentage_is_spread_pro_rata_to_the_cent() -> None:
    lines = basket()
    p = promo(1, "percentage", "order", "15")
    assert apply_promotions(lines, [p]) == [p]
    # 52.50 x 15% = 7.875 -> 7.88 = 788 cents over 20 / 20 / 12.50:
    # 788 x 20/52.5 = 300.19 -> 300, 300.19 -> 300, 788 x 12.5/52.5 = 187.62 -> 187; 1 cent left -> MUG (.62)
    assert [discounts(l) for l in lines] == [[(1, D("3.00"))], [(1, D("3.00"))], [(1, D("1.88"))]]
    assert sum(l.gross - l.net for l in lines) == D("7.88")


def test_order_fixed_amount_is_spread_pro_rata_to_the_cent() -> None:
    lines = basket()
    apply_promotions(lines, [promo(1, "fixed", "order", "10.00")])
    # 1000 cents over 20 / 20 / 12.50: 380.95 -> 380, 380.95 -> 380, 238.10 -> 238; 2 cents left -> the two .95s
    assert [discounts(l) for l in lines] == [[(1, D("3.81"))], [(1, D("3.81"))], [(1, D("2.38"))]]
    assert sum(l.gross - l.net for l in lines) == D("10.00")
    assert lines[0].discounts[0][2] == "promo 1: 10.00 off"


def test_order_fixed_amount_is_capped_at_the_order() -> None:
    lines = [priced(1, "MUG", 1, "12.50")]
    apply_promotions(lines, [promo(1, "fixed", "order", "20.00")])
    assert discounts(lines[0]) == [(1, D("12.50"))]  # 20.00 off a 12.50 order takes it to 0.00, not below


@pytest.mark.parametrize(("quantity", "free_units"), [(1, 0), (2, 0), (3, 1), (5, 1), (6, 2), (7, 2)])
def test_buy_two_get_one_free(quantity: int, free_units: int) -> None:
    lines = [priced(1, "TEE-S", quantity, "20.00")]
    apply_promotions(lines, [promo(1, "buy_x_get_y", "sku", "100", "TEE-S", buy_quantity=2, get_quantity=1)])
    # bundles of 2 + 1: free units = quantity // 3; each free unit is 20.00 off
    expected = [(1, D("20.00") * free_units)] if free_units else []
    assert discounts(lines[0]) == expected


def test_buy_one_get_one_half_price() -> None:
    lines = [priced(1, "MUG", 4, "12.50")]
    apply_promotions(lines, [promo(1, "buy_x_get_y", "category", "50", "kitchen", buy_quantity=1, get_quantity=1)])
    assert discounts(lines[0]) == [(1, D("12.50"))]  # 4 // 2 = 2 discounted units x 12.50 x 50% = 12.50
    assert lines[0].discounts[0][2] == "promo 1: buy 1 get 1"


def test_min_subtotal_gates_an_order_promotion_on_what_is_left_after_line_discounts() -> None:
    ten_off_over_50 = promo(1, "percentage", "order", "10", min_subtotal=D("50.00"))
    lines = basket()  # 52.50
    apply_promotions(lines, [ten_off_over_50])
    assert sum(l.gross - l.net for l in lines) == D("5.25")  # 52.50 >= 50.00; 10% = 5.25

    lines = [priced(1, "TEE-S", 2, "20.00")]  # 40.00 < 50.00
    assert apply_promotions(lines, [ten_off_over_50]) == []
    assert discounts(lines[0]) == []

    # 52.50 - 5.00 line discount = 47.50 < 50.00: the order promotion no longer applies.
    lines = basket()
    applied = apply_promotions(lines, [promo(2, "fixed", "sku", "5.00", "TEE-S"), ten_off_over_50])
    assert [p.id for p in applied] == [2]


def test_priority_order_matters_for_percentage_after_fixed() -> None:
    ten_pct = promo(1, "percentage", "sku", "10", "TEE-S", priority=10)
    five_off = promo(2, "fixed", "sku", "5.00", "TEE-S", priority=20)

    lines = [priced(1, "TEE-S", 1, "20.00")]
    apply_promotions(lines, [ten_pct, five_off])
    assert discounts(lines[0]) == [(1, D("2.00")), (2, D("5.00"))]  # 10% of 20.00 = 2.00; then 5.00

    lines = [priced(1, "TEE-S", 1, "20.00")]
    apply_promotions(lines, [five_off, ten_pct])
    assert discounts(lines[0]) == [(2, D("5.00")), (1, D("1.50"))]  # 5.00; then 10% of the 15.00 left = 1.50


def test_line_promotions_apply_before_order_promotions_whatever_their_priority() -> None:
    lines = [priced(1, "TEE-S", 1, "20.00")]
    order_pct = promo(1, "percentage", "order", "10", priority=1)
    line_fixed = promo(2, "fixed", "sku", "5.00", "TEE-S", priority=99)
    apply_promotions(lines, [order_pct, line_fixed])
    assert discounts(lines[0]) == [(2, D("5.00")), (1, D("1.50"))]  # 5.00 first; then 10% of 15.00


def test_non_stackable_excludes_other_promotions_on_its_lines() -> None:
    lines = [priced(1, "TEE-S", 2, "20.00"), priced(2, "TEE-M", 1, "20.00")]
    exclusive = promo(1, "percentage", "sku", "10", "TEE-S", priority=10, stackable=False)
    apparel = promo(2, "fixed", "category", "1.00", "apparel", priority=20)
    order_5 = promo(3, "fixed", "order", "5.00")
    applied = apply_promotions(lines, [exclusive, apparel, order_5])
    assert [p.id for p in applied] == [1, 2, 3]
    assert discounts(lines[0]) == [(1, D("4.00"))]  # only the exclusive 10%: 40.00 x 10% = 4.00
    # TEE-M gets the category 1.00 and the whole order discount (the only open line): 20 - 1 = 19 left, 5.00 off.
    assert discounts(lines[1]) == [(2, D("1.00")), (3, D("5.00"))]


def test_non_stackable_skips_lines_that_already_have_a_discount() -> None:
    lines = [priced(1, "TEE-S", 1, "20.00"), priced(2, "TEE-M", 1, "20.00")]
    first = promo(1, "fixed", "sku", "2.00", "TEE-S", priority=10)
    exclusive = promo(2, "percentage", "category", "50", "apparel", priority=20, stackable=False)
    apply_promotions(lines, [first, exclusive])
    assert discounts(lines[0]) == [(1, D("2.00"))]  # already discounted: the non-stackable one stays off
    assert discounts(lines[1]) == [(2, D("10.00"))]  # 20.00 x 50% = 10.00


def test_non_stackable_order_promotion_needs_an_undiscounted_order() -> None:
    exclusive_order = promo(2, "percentage", "order", "20", stackable=False)
    lines = basket()
    assert apply_promotions(lines, [promo(1, "fixed", "sku", "1.00", "MUG"), exclusive_order])[-1].id == 1
    assert all(p.id != 2 for l in lines for p, _, _ in l.discounts)

    lines = basket()
    later = promo(3, "fixed", "order", "1.00")
    assert [p.id for p in apply_promotions(lines, [exclusive_order, later])] == [2]  # it then excludes the rest
    assert sum(l.gross - l.net for l in lines) == D("10.50")  # 52.50 x 20% = 10.50


def test_promotion_that_gives_nothing_is_not_applied() -> None:
    lines = [priced(1, "TEE-S", 1, "20.00")]
    assert apply_promotions(lines, [promo(1, "percentage", "sku", "10", "KETTLE"), promo(2, "percentage", "order", "0")]) == []
    assert discounts(lines[0]) == []


# --- through quotes and orders on the test store ----------------------------------------------


def create(db: Database, **data: Any) -> int:
    data.setdefault("name", "promo")
    with db.transaction() as s:
        return promotions.create_promotion(s, data).id


def place(db: Database, *lines: tuple[str, int], **extra: Any) -> str:
    with db.transaction() as s:
        return orders.place_order(s, web_order(*lines, **extra)).number


def line_discounts(draft: orders.Draft) -> list[Decimal]:
    return [d.discount_total for d in draft.lines]


def test_quote_percentage_on_sku_with_totals(store: Database) -> None:
    create(store, name="Tee week", kind="percentage", scope="sku", target="TEE-S", value="10")
    with store.read() as s:
        draft = orders.quote(s, web_order(("TEE-S", 2), ("MUG", 1)))
        assert line_discounts(draft) == [D("4.00"), ZERO]  # 2 x 20.00 = 40.00; 10% off = 4.00
        assert draft.subtotal == D("52.50")  # 40.00 + 12.50
        assert draft.discount_total == D("4.00")
        # 48.50 after discounts is under the 50.00 free-shipping threshold: 4.95
        assert draft.shipping.amount == D("4.95")
        # NY 8.875%: 36.00 -> 3.195 -> 3.20; 12.50 -> 1.109 -> 1.11; shipping 4.95 -> 0.439 -> 0.44
        assert draft.tax_total == D("4.75")
        assert draft.total == D("58.20")  # 52.50 - 4.00 + 4.95 + 4.75


def test_quote_fixed_per_unit_on_category(store: Database) -> None:
    create(store, kind="fixed", scope="category", target="apparel", value="1.50")
    with store.read() as s:
        draft = orders.quote(s, web_order(("TEE-S", 2), ("TEE-L", 1), ("MUG", 1)))
        assert line_discounts(draft) == [D("3.00"), D("1.50"), ZERO]  # 2 x 1.50; 1 x 1.50; mug is kitchen
        assert draft.discount_total == D("4.50")


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        # 52.50 x 15% = 7.875 -> 7.88 split 300.19 / 300.19 / 187.62 cents -> 3.00 / 3.00 / 1.88
        ("percentage", "15", [D("3.00"), D("3.00"), D("1.88")]),
        # 10.00 split 380.95 / 380.95 / 238.10 cents -> 3.81 / 3.81 / 2.38
        ("fixed", "10.00", [D("3.81"), D("3.81"), D("2.38")]),
    ],
)
def test_quote_order_discount_is_recorded_per_line_and_adds_up(store: Database, kind: str, value: str, expected: list[Decimal]) -> None:
    create(store, kind=kind, scope="order", value=value)
    with store.read() as s:
        draft = orders.quote(s, web_order(("TEE-S", 1), ("TEE-M", 1), ("MUG", 1)))
        assert line_discounts(draft) == expected
        assert draft.discount_total == sum(expected)
        assert sum(line_discounts(draft)) == draft.discount_total


@pytest.mark.parametrize(("quantity", "discount"), [(3, D("20.00")), (5, D("20.00")), (6, D("40.00"))])
def test_quote_buy_two_get_one(store: Database, quantity: int, discount: Decimal) -> None:
    create(store, name="3 for 2 tees", kind="buy_x_get_y", scope="sku", target="TEE-S", value="100", buy_quantity=2, get_quantity=1)
    with store.read() as s:
        draft = orders.quote(s, web_order(("TEE-S", quantity)))
        assert line_discounts(draft) == [discount]  # quantity // 3 free units x 20.00
        assert draft.lines[0].line.discounts[0][2] == "3 for 2 tees: buy 2 get 1"


def test_quote_min_subtotal(store: Database) -> None:
    create(store, kind="percentage", scope="order", value="10", min_subtotal="50.00")
    with store.read() as s:
        assert orders.quote(s, web_order(("TEE-S", 2), ("MUG", 1))).discount_total == D("5.25")  # 52.50 >= 50; 10%
        assert orders.quote(s, web_order(("TEE-S", 2))).discount_total == ZERO  # 40.00 < 50.00


def test_quote_applies_by_priority_not_by_creation_order(store: Database) -> None:
    fixed_id = create(store, name="5 off", kind="fixed", scope="sku", target="TEE-S", value="5.00", priority=20)
    pct_id = create(store, name="10 pct", kind="percentage", scope="sku", target="TEE-S", value="10", priority=10)
    with store.read() as s:
        draft = orders.quote(s, web_order(("TEE-S", 1)))
        # priority 10 first: 10% of 20.00 = 2.00, then 5.00 (creation order would give 5.00 + 1.50)
        assert [(p.id, a) for p, a, _ in draft.lines[0].line.discounts] == [(pct_id, D("2.00")), (fixed_id, D("5.00"))]


def test_quote_non_stackable(store: Database) -> None:
    create(store, name="exclusive", kind="percentage", scope="sku", target="TEE-S", value="10", priority=10, stackable=False)
    create(store, name="apparel", kind="fixed", scope="category", target="apparel", value="1.00", priority=20)
    with store.read() as s:
        draft = orders.quote(s, web_order(("TEE-S", 2), ("TEE-M", 1)))
        assert [[desc for _, _, desc in d.line.discounts] for d in draft.lines] == [["exclusive: 10% off"], ["apparel: 1.00 off each"]]
        assert line_discounts(draft) == [D("4.00"), D("1.00")]  # 40.00 x 10%; 1 x 1.00


def test_coupon_code_is_case_insensitive_and_not_automatic(store: Database) -> None:
    create(store, name="Save ten", kind="percentage", scope="order", value="10", coupon_code="Save10")
    with store.read() as s:
        assert s.scalar(select(Promotion.coupon_code)) == "SAVE10"
        assert orders.quote(s, web_order(("TEE-S", 2))).discount_total == ZERO  # coupons only apply when given
        for code in ("save10", " SAVE10 ", "sAvE10"):
            draft = orders.quote(s, web_order(("TEE-S", 2), coupon_codes=[code]))
            assert draft.discount_total == D("4.00")  # 40.00 x 10%
            assert draft.coupon_codes == ["SAVE10"]
            assert draft.lines[0].line.discounts[0][2] == "SAVE10: 10% off"


def test_duplicate_coupon_code_is_refused_case_insensitively(store: Database) -> None:
    create(store, kind="percentage", scope="order", value="10", coupon_code="SAVE10")
    before = row_counts(store)
    with pytest.raises(AlreadyExists) as caught, store.transaction() as s:
        promotions.create_promotion(s, {"name": "again", "kind": "fixed", "scope": "order", "value": "1", "coupon_code": "save10"})
    assert caught.value.details == {"coupon": "SAVE10"}
    assert row_counts(store) == before


def coupon_refused(store: Database, code: str) -> CouponError:
    """Quote and place with a bad coupon: both refuse with CouponError and placing writes nothing."""
    with store.read() as s, pytest.raises(CouponError) as quoted:
        orders.quote(s, web_order(("TEE-S", 1), coupon_codes=[code]))
    before = row_counts(store)
    with pytest.raises(CouponError) as placed, store.transaction() as s:
        orders.place_order(s, web_order(("TEE-S", 1), coupon_codes=[code]))
    assert row_counts(store) == before
    assert placed.value.details == quoted.value.details
    assert placed.value.code == "coupon_invalid"
    return placed.value


def test_unknown_coupon(store: Database) -> None:
    error = coupon_refused(store, "nope")
    assert error.details == {"coupon": "NOPE", "reason": "unknown"}


def test_inactive_coupon_is_unknown(store: Database) -> None:
    pid = create(store, kind="percentage", scope="order", value="10", coupon_code="OLD")
    with store.transaction() as s:
        s.get_one(Promotion, pid).active = False
    assert coupon_refused(store, "OLD").details["reason"] == "unknown"


def test_expired_coupon(store: Database) -> None:
    now = utcnow()
    create(store, kind="percentage", scope="order", value="10", coupon_code="SUMMER",
           starts_at=now - timedelta(days=30), ends_at=now - timedelta(days=1))
    error = coupon_refused(store, "summer")
    assert error.details == {"coupon": "SUMMER", "reason": "expired"}


def test_not_yet_valid_coupon(store: Database) -> None:
    now = utcnow()
    create(store, kind="percentage", scope="order", value="10", coupon_code="XMAS", starts_at=now + timedelta(days=1))
    assert coupon_refused(store, "XMAS").details == {"coupon": "XMAS", "reason": "not_yet_valid"}


def test_validity_window_compares_instants_across_timezones(store: Database) -> None:
    berlin_winter = timezone(timedelta(hours=1))
    # Valid from 2030-01-01 00:00 +01:00 (= 2029-12-31 23:00 UTC) until 2030-01-31 00:00 -05:00 (= 05:00 UTC).
    create(store, kind="percentage", scope="order", value="10", coupon_code="NEWYEAR",
           starts_at=datetime(2030, 1, 1, tzinfo=berlin_winter), ends_at=datetime(2030, 1, 31, tzinfo=timezone(timedelta(hours=-5))))
    request = web_order(("TEE-S", 1), coupon_codes=["NEWYEAR"])
    with store.read() as s:
        with frozen_at(datetime(2029, 12, 31, 22, 59, 59, tzinfo=UTC)), pytest.raises(CouponError) as early:
            orders.quote(s, request)
        assert early.value.details["reason"] == "not_yet_valid"
        with frozen_at(datetime(2029, 12, 31, 23, 0, tzinfo=UTC)):
            assert orders.quote(s, request).discount_total == D("2.00")  # starts_at is inclusive; 10% of 20.00
        with frozen_at(datetime(2030, 1, 31, 4, 59, 59, tzinfo=UTC)):
            assert orders.quote(s, request).discount_total == D("2.00")
        with frozen_at(datetime(2030, 1, 31, 5, 0, tzinfo=UTC)), pytest.raises(CouponError) as late:
            orders.quote(s, request)  # ends_at is exclusive
        assert late.value.details["reason"] == "expired"


def test_automatic_promotion_outside_its_window_is_silently_ignored(store: Database) -> None:
    now = utcnow()
    create(store, kind="percentage", scope="order", value="10", starts_at=now - timedelta(days=9), ends_at=now - timedelta(days=2))
    create(store, kind="percentage", scope="order", value="20", starts_at=now + timedelta(days=2))
    with store.read() as s:
        assert orders.quote(s, web_order(("TEE-S", 1))).discount_total == ZERO


def redemption_count(db: Database, promotion_id: int, *, voided: bool | None = None) -> int:
    with db.read() as s:
        stmt = select(func.count()).select_from(PromotionRedemption).where(PromotionRedemption.promotion_id == promotion_id)
        if voided is not None:
            stmt = stmt.where(PromotionRedemption.voided.is_(voided))
        return s.scalar(stmt) or 0


def test_usage_limit_total_and_cancel_frees_a_use(store: Database) -> None:
    pid = create(store, kind="fixed", scope="order", value="5.00", coupon_code="TWICE", usage_limit_total=2)
    first = place(store, ("MUG", 1), coupon_codes=["twice"])
    place(store, ("MUG", 1), coupon_codes=["TWICE"], customer_id=BOB)
    assert redemption_count(store, pid) == 2

    before = row_counts(store)
    with pytest.raises(PromotionLimitReached) as caught, store.transaction() as s:
        orders.place_order(s, web_order(("MUG", 1), coupon_codes=["TWICE"]))
    assert caught.value.details == {"coupon": "TWICE"}
    assert "in total" in caught.value.message
    assert row_counts(store) == before
    with store.read() as s, pytest.raises(PromotionLimitReached):
        orders.quote(s, web_order(("MUG", 1), coupon_codes=["TWICE"]))

    with store.transaction() as s:
        orders.cancel_order(s, first, reason="changed mind")
    assert redemption_count(store, pid, voided=True) == 1
    third = place(store, ("MUG", 1), coupon_codes=["TWICE"])
    with store.read() as s:
        assert s.scalar(select(Order.discount_total).where(Order.number == third)) == D("5.00")
    assert redemption_count(store, pid, voided=False) == 2


def test_usage_limit_per_customer(store: Database) -> None:
    pid = create(store, kind="percentage", scope="order", value="10", coupon_code="WELCOME", usage_limit_per_customer=1)
    place(store, ("MUG", 1), coupon_codes=["WELCOME"])  # Ada's one use

    before = row_counts(store)
    with pytest.raises(PromotionLimitReached) as caught, store.transaction() as s:
        orders.place_order(s, web_order(("MUG", 1), coupon_codes=["WELCOME"]))
    assert "for this customer" in caught.value.message
    assert row_counts(store) == before

    place(store, ("MUG", 1), coupon_codes=["WELCOME"], customer_id=BOB)  # Bob still has his
    with store.read() as s:
        rows = s.execute(select(PromotionRedemption.customer_id).where(PromotionRedemption.promotion_id == pid)
                         .order_by(PromotionRedemption.id)).scalars().all()
        assert rows == [ADA, BOB]


def test_per_customer_coupon_needs_a_known_customer(store: Database) -> None:
    create(store, kind="percentage", scope="order", value="10", coupon_code="WELCOME", usage_limit_per_customer=1)
    guest = web_order(("MUG", 1), coupon_codes=["WELCOME"], customer_id=None, shipping_address=NY_ADDRESS, email="guest@example.com")
    before = row_counts(store)
    with pytest.raises(CouponError) as caught, store.transaction() as s:
        orders.place_order(s, guest)
    assert caught.value.details == {"coupon": "WELCOME", "reason": "customer_required"}
    assert row_counts(store) == before


def test_automatic_promotion_at_its_limit_is_skipped_not_an_error(store: Database) -> None:
    pid = create(store, name="first order", kind="fixed", scope="order", value="3.00", usage_limit_per_customer=1)
    first = place(store, ("MUG", 1))
    second = place(store, ("MUG", 1))
    with store.read() as s:
        totals = dict(s.execute(select(Order.number, Order.discount_total)).all())
    assert totals == {first: D("3.00"), second: ZERO}
    assert redemption_count(store, pid) == 1


def test_placed_order_records_each_discount_per_line_and_a_redemption_per_promotion(store: Database) -> None:
    tee = create(store, name="Tee deal", kind="percentage", scope="sku", target="TEE-S", value="10")
    coupon = create(store, name="Order coupon", kind="fixed", scope="order", value="10.00", coupon_code="TENOFF")
    create(store, name="Kettle deal", kind="percentage", scope="sku", target="KETTLE", value="50")  # not in the basket
    number = place(store, ("TEE-S", 1), ("TEE-M", 1), ("MUG", 1), coupon_codes=["tenoff"])

    with store.read() as s:
        order = s.scalar(select(Order).where(Order.number == number))
        assert order.coupon_codes == ["TENOFF"]
        by_sku = {l.sku: l for l in order.lines}
        # TEE-S: 10% of 20.00 = 2.00, leaving 18.00. Order 10.00 over 18.00 / 20.00 / 12.50 (50.50):
        # 1000 x 18/50.5 = 356.44 -> 356; 1000 x 20/50.5 = 396.04 -> 396; 1000 x 12.5/50.5 = 247.52 -> 247;
        # 999, 1 cent left -> largest remainder .52 (MUG) -> 248.
        expected = {
            "TEE-S": [(tee, D("2.00"), "Tee deal: 10% off"), (coupon, D("3.56"), "TENOFF: 10.00 off")],
            "TEE-M": [(coupon, D("3.96"), "TENOFF: 10.00 off")],
            "MUG": [(coupon, D("2.48"), "TENOFF: 10.00 off")],
        }
        for sku, rows in expected.items():
            assert [(d.promotion_id, d.amount, d.description) for d in by_sku[sku].discounts] == rows
            assert by_sku[sku].discount_total == sum(a for _, a, _ in rows)
        assert order.discount_total == D("12.00")  # 2.00 + 10.00
        assert sum(l.discount_total for l in order.lines) == order.discount_total
        assert s.scalar(select(func.sum(LineDiscount.amount)).join(OrderLine).where(OrderLine.order_id == order.id)) == D("12.00")

        redemptions = s.scalars(select(PromotionRedemption).where(PromotionRedemption.order_id == order.id)
                                .order_by(PromotionRedemption.promotion_id)).all()
        assert [(r.promotion_id, r.amount, r.customer_id, r.voided) for r in redemptions] == [
            (tee, D("2.00"), ADA, False), (coupon, D("10.00"), ADA, False),  # the unused kettle deal has none
        ]


BAD_PROMOTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("percentage over 100", {"kind": "percentage", "scope": "order", "value": "101"}, "cannot exceed 100"),
    ("sku scope without target", {"kind": "percentage", "scope": "sku", "value": "10"}, "needs a target"),
    ("category scope without target", {"kind": "fixed", "scope": "category", "value": "1"}, "needs a target"),
    ("naive starts_at", {"kind": "percentage", "scope": "order", "value": "10", "starts_at": datetime(2030, 1, 1)}, "timezone-aware"),
    ("naive ends_at", {"kind": "percentage", "scope": "order", "value": "10", "ends_at": datetime(2030, 1, 1)}, "timezone-aware"),
    ("ends before starts", {"kind": "percentage", "scope": "order", "value": "10",
                            "starts_at": datetime(2030, 2, 1, tzinfo=UTC), "ends_at": datetime(2030, 1, 1, tzinfo=UTC)}, "after starts_at"),
    ("ends when it starts", {"kind": "percentage", "scope": "order", "value": "10",
                             "starts_at": datetime(2030, 2, 1, tzinfo=UTC), "ends_at": datetime(2030, 2, 1, tzinfo=UTC)}, "after starts_at"),
    ("buy-x-get-y on the order", {"kind": "buy_x_get_y", "scope": "order", "value": "100", "buy_quantity": 2, "get_quantity": 1},
     "applies to a sku or a category"),
    ("buy-x-get-y without quantities", {"kind": "buy_x_get_y", "scope": "sku", "target": "TEE-S", "value": "100"}, "needs buy_quantity"),
]


@pytest.mark.parametrize(("data", "reason"), [c[1:] for c in BAD_PROMOTIONS], ids=[c[0] for c in BAD_PROMOTIONS])
def test_bad_promotion_is_refused_and_nothing_written(store: Database, data: dict[str, Any], reason: str) -> None:
    before = row_counts(store)
    with pytest.raises(ValidationError) as caught, store.transaction() as s:
        promotions.create_promotion(s, {"name": "bad", **data})
    assert [e["field"] for e in caught.value.errors] == ["(body)"]  # cross-field rules name no single field
    assert reason in caught.value.errors[0]["reason"]
    assert row_counts(store) == before


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "percentage", "scope": "order", "value": "-1"}, "value"),
        ({"kind": "bogus", "scope": "order", "value": "1"}, "kind"),
        ({"kind": "fixed", "scope": "basket", "value": "1"}, "scope"),
        ({"kind": "fixed", "scope": "order", "value": "1", "coupon_code": "HAS SPACE"}, "coupon_code"),
        ({"kind": "fixed", "scope": "order", "value": "1", "usage_limit_total": 0}, "usage_limit_total"),
        ({"kind": "fixed", "scope": "order", "value": "1", "starts_at": "yesterday"}, "starts_at"),
        ({"kind": "fixed", "scope": "order", "value": "1", "name": ""}, "name"),
        ({"kind": "fixed", "scope": "order", "value": "1", "stack": False}, "stack"),
    ],
)
def test_bad_promotion_field_is_named(store: Database, data: dict[str, Any], field: str) -> None:
    before = row_counts(store)
    with pytest.raises(ValidationError) as caught, store.transaction() as s:
        promotions.create_promotion(s, {"name": "bad", **data})
    assert [e["field"] for e in caught.value.errors] == [field]
    assert row_counts(store) == before


def test_min_subtotal_on_a_line_promotion_is_honoured(store: Database) -> None:
    create(store, kind="percentage", scope="sku", target="MUG", value="10", min_subtotal="100.00")
    with store.read() as s:
        assert orders.quote(s, web_order(("MUG", 1))).discount_total == ZERO  # 12.50 is far below 100.00
