"""Sales tax (by destination and tax class, exclusive and inclusive pricing) and shipping charges,
checked with hand-computed known answers on the test store."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from om_core.db import Database
from om_core.errors import AlreadyExists, UnknownShippingMethod, ValidationError
from om_core.models import Location, Order, Payment, ShippingMethod, TaxRate
from om_core.services import orders, payments, promotions, shipping, taxes
from om_core.services.taxes import TaxTable, tax_on
from tests.om_core.helpers import table_row_counts
from tests.om_core.store import BOB, NY_ADDRESS, web_order

D = Decimal
ZERO = D("0.00")
CA_ADDRESS = {"line1": "1 Market St", "city": "San Francisco", "region": "CA", "postal_code": "94105", "country": "US"}
GB_ADDRESS = {"line1": "10 Downing St", "city": "London", "postal_code": "SW1A 2AA", "country": "GB"}


def pos_sale(*lines: tuple[str, int], **extra: Any) -> dict[str, Any]:
    """A carry-out sale at the NYC tills (prices include tax)."""
    return {"channel": "pos-nyc", "delivery": "carry_out", "location": "ST-NYC",
            "lines": [{"sku": s, "quantity": q} for s, q in lines], "payment_token": "tok_visa", **extra}


def assert_totals_add_up(draft_or_order: Any, inclusive: bool) -> None:
    """total = subtotal - discounts + shipping (+ tax when prices exclude it), and each total is the sum of its lines."""
    o = draft_or_order
    shipping_total = o.shipping.amount if isinstance(o, orders.Draft) else o.shipping_total
    expected = o.subtotal - o.discount_total + shipping_total + (ZERO if inclusive else o.tax_total)
    assert o.total == expected


# --- tax rates --------------------------------------------------------------------------------


def test_tax_on_exclusive_and_inclusive() -> None:
    assert tax_on(D("20.00"), D("0.08875"), inclusive=False) == D("1.78")  # 20.00 x 8.875% = 1.775 -> 1.78 (half-up)
    assert tax_on(D("100.00"), D("0.05"), inclusive=True) == D("4.76")  # 100 x 0.05 / 1.05 = 4.7619 -> 4.76
    assert tax_on(D("25.00"), D("0.08875"), inclusive=True) == D("2.04")  # 25 x 0.08875 / 1.08875 = 2.0379 -> 2.04
    assert tax_on(D("99.99"), D("0"), inclusive=False) == ZERO
    assert tax_on(D("99.99"), D("0"), inclusive=True) == ZERO


def test_tax_table_region_overrides_country_and_unknown_means_zero(store: Database) -> None:
    with store.read() as s:
        ny = TaxTable(s, "US", "NY")
        assert (ny.rate("standard"), ny.rate("reduced")) == (D("0.08875"), D("0"))
        assert ny.shipping_rate() == D("0.08875")  # no 'shipping' class: shipping is taxed at the standard rate
        ca = TaxTable(s, "US", "CA")
        assert ca.rate("standard") == D("0.05")  # no CA rate: the US country rate applies
        assert TaxTable(s, "US", None).rate("standard") == D("0.05")
        assert ny.rate("luxury") == D("0")  # no rate configured for the class: no tax
        assert TaxTable(s, "GB", None).rate("standard") == D("0")


def test_set_tax_rate_updates_in_place(store: Database) -> None:
    with store.transaction() as s:
        taxes.set_tax_rate(s, {"country": "US", "region": "NY", "rate": "0.09"})
        taxes.set_tax_rate(s, {"country": "US", "region": "NY", "tax_class": "shipping", "rate": "0"})
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(TaxRate).where(TaxRate.region == "NY")) == 2
        table = TaxTable(s, "US", "NY")
        assert (table.rate("standard"), table.shipping_rate()) == (D("0.09"), D("0"))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"country": "US", "rate": "1"}, "rate"),  # 100% or more is a typo
        ({"country": "US", "rate": "-0.01"}, "rate"),
        ({"country": "US", "rate": "0.123456"}, "rate"),  # more than 5 decimals
        ({"country": "usa", "rate": "0.05"}, "country"),
        ({"country": "US", "rate": "0.05", "tax_class": ""}, "tax_class"),
        ({"rate": "0.05"}, "country"),
    ],
)
def test_bad_tax_rate_is_refused_and_nothing_written(store: Database, data: dict[str, Any], field: str) -> None:
    before = table_row_counts(store)
    with pytest.raises(ValidationError) as caught, store.transaction() as s:
        taxes.set_tax_rate(s, data)
    assert [e["field"] for e in caught.value.errors] == [field]
    assert table_row_counts(store) == before


def test_ny_destination_uses_the_region_rate(store: Database) -> None:
    with store.read() as s:
        draft = orders.quote(s, web_order(("TEE-S", 1)))  # Ada, shipped to NY
        assert draft.lines[0].tax_rate == D("0.08875")
        assert draft.lines[0].tax_amount == D("1.78")  # 20.00 x 8.875% = 1.775 -> 1.78
        assert draft.shipping.amount == D("4.95")  # 20.00 < 50.00
        assert draft.shipping_tax == D("0.44")  # 4.95 x 8.875% = 0.4393 -> 0.44
        assert draft.tax_total == D("2.22")  # 1.78 + 0.44
        assert draft.total == D("27.17")  # 20.00 + 4.95 + 2.22


@pytest.mark.parametrize("request_extra", [{"customer_id": BOB}, {"shipping_address": CA_ADDRESS}], ids=["bob-ca", "ada-ships-to-ca"])
def test_other_us_destination_uses_the_country_rate(store: Database, request_extra: dict[str, Any]) -> None:
    with store.read() as s:
        draft = orders.quote(s, web_order(("TEE-S", 1), **request_extra))
        assert draft.lines[0].tax_rate == D("0.05")
        assert draft.lines[0].tax_amount == D("1.00")  # 20.00 x 5%
        assert draft.shipping_tax == D("0.25")  # 4.95 x 5% = 0.2475 -> 0.25
        assert draft.total == D("26.20")  # 20.00 + 4.95 + 1.00 + 0.25


def test_reduced_class_is_zero_rated(store: Database) -> None:
    with store.read() as s:
        draft = orders.quote(s, web_order(("BEANS", 2), ("MUG", 1)))
        beans, mug = draft.lines
        assert (beans.tax_rate, beans.tax_amount) == (D("0"), ZERO)
        assert beans.line_total == D("19.98")  # 2 x 9.99, no tax
        assert mug.tax_amount == D("1.11")  # 12.50 x 8.875% = 1.109 -> 1.11
        assert draft.subtotal == D("32.48")  # 19.98 + 12.50
        assert draft.shipping_tax == D("0.44")  # 4.95 x 8.875%: shipping follows the standard rate
        assert draft.tax_total == D("1.55")  # 0.00 + 1.11 + 0.44
        assert draft.total == D("38.98")  # 32.48 + 4.95 + 1.55


def test_exclusive_pricing_line_totals_and_order_total(store: Database) -> None:
    with store.read() as s:
        draft = orders.quote(s, web_order(("TEE-S", 2), ("MUG", 1)))
        tee, mug = draft.lines
        assert (tee.tax_amount, tee.line_total) == (D("3.55"), D("43.55"))  # 40.00 x 8.875% = 3.55
        assert (mug.tax_amount, mug.line_total) == (D("1.11"), D("13.61"))  # 12.50 + 1.11
        assert draft.shipping.amount == ZERO  # 52.50 >= 50.00
        assert draft.tax_total == D("4.66")
        assert draft.total == D("57.16")  # 52.50 + 0.00 + 4.66
        assert_totals_add_up(draft, inclusive=False)


def test_inclusive_pricing_extracts_tax_from_the_price(store: Database) -> None:
    with store.read() as s:
        draft = orders.quote(s, pos_sale(("MUG", 2)))
        assert draft.channel.prices_include_tax is True
        [mug] = draft.lines
        assert mug.tax_rate == D("0.08875")  # the store's own region (NY)
        assert mug.tax_amount == D("2.04")  # 25.00 x 0.08875 / 1.08875 = 2.0379 -> 2.04
        assert mug.line_total == D("25.00")  # tax is inside the price
        assert (draft.shipping.amount, draft.shipping.method, draft.shipping.promised_days) == (ZERO, "carry_out", 0)
        assert draft.total == D("25.00")  # = subtotal - discounts: tax is not added
        assert_totals_add_up(draft, inclusive=True)


def test_inclusive_pricing_with_a_discount_and_a_zero_rated_line_placed_and_paid(store: Database) -> None:
    with store.transaction() as s:
        promotions.create_promotion(s, {"name": "Mug deal", "kind": "percentage", "scope": "sku", "target": "MUG", "value": "10"})
    with store.read() as s:
        draft = orders.quote(s, pos_sale(("MUG", 2), ("BEANS", 1)))
        mug, beans = draft.lines
        assert mug.discount_total == D("2.50")  # 25.00 x 10%
        assert mug.tax_amount == D("1.83")  # 22.50 x 0.08875 / 1.08875 = 1.8341 -> 1.83
        assert (beans.tax_amount, beans.line_total) == (ZERO, D("9.99"))
        assert draft.tax_total == D("1.83")
        assert draft.total == D("32.49")  # subtotal 34.99 - 2.50 discount; tax already inside
    with store.transaction() as s:
        number = orders.place_order(s, pos_sale(("MUG", 2), ("BEANS", 1))).number
    with store.read() as s:
        order = s.scalar(select(Order).where(Order.number == number))
        assert (order.prices_include_tax, order.delivery_method, order.status) == (True, "carry_out", "delivered")
        assert (order.subtotal, order.discount_total, order.shipping_total) == (D("34.99"), D("2.50"), ZERO)
        assert (order.tax_total, order.total) == (D("1.83"), D("32.49"))
        assert_totals_add_up(order, inclusive=True)
        assert [l.line_total for l in order.lines] == [D("22.50"), D("9.99")]
        payment = s.scalar(select(Payment).where(Payment.order_id == order.id))
        bal = payments.balance(payment)
        assert (bal.authorized, bal.captured, bal.open_authorization) == (D("32.49"), D("32.49"), ZERO)  # taken at the till


def test_carry_out_from_a_store_the_channel_does_not_sell_from(store: Database) -> None:
    before = table_row_counts(store)
    with pytest.raises(ValidationError) as caught, store.transaction() as s:
        orders.place_order(s, pos_sale(("KETTLE", 1), location="ST-SF"))
    assert caught.value.errors == [{"field": "location", "reason": "not assigned to the channel"}]
    assert table_row_counts(store) == before


# --- shipping ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "charge"),
    [
        ([("MUG", 4)], ZERO),  # 4 x 12.50 = 50.00: at the threshold ships free
        ([("KETTLE", 1)], D("4.95")),  # 49.99 < 50.00
        ([("TEE-S", 2), ("MUG", 1)], ZERO),  # 40.00 + 12.50 = 52.50
        ([("BEANS", 5)], D("4.95")),  # 5 x 9.99 = 49.95 < 50.00
    ],
)
def test_standard_shipping_is_free_from_fifty(store: Database, lines: list[tuple[str, int]], charge: Decimal) -> None:
    with store.read() as s:
        draft = orders.quote(s, web_order(*lines))
        assert (draft.shipping.method, draft.shipping.amount, draft.shipping.promised_days) == ("standard", charge, 5)


def test_free_shipping_threshold_counts_after_discounts(store: Database) -> None:
    with store.transaction() as s:
        promotions.create_promotion(s, {"name": "ten", "kind": "percentage", "scope": "order", "value": "10", "coupon_code": "TEN"})
    with store.read() as s:
        assert orders.quote(s, web_order(("TEE-S", 2), ("MUG", 1))).shipping.amount == ZERO  # 52.50
        draft = orders.quote(s, web_order(("TEE-S", 2), ("MUG", 1), coupon_codes=["TEN"]))
        assert draft.discount_total == D("5.25")  # 52.50 x 10%
        assert draft.shipping.amount == D("4.95")  # 47.25 after the discount is under 50.00


@pytest.mark.parametrize(
    ("lines", "charge"),
    [
        ([("MUG", 2)], D("10.75")),  # 9.95 + 1.00/kg x (2 x 0.4 kg) = 10.75
        ([("TEE-S", 3)], D("11.45")),  # T-shirts have the default 0.5 kg: 9.95 + 1.50
        ([("MUG", 2), ("TEE-S", 1)], D("11.25")),  # 0.8 + 0.5 = 1.3 kg: 9.95 + 1.30
        ([("MUG", 5)], D("11.95")),  # 62.50 of goods but expedited is never free: 9.95 + 2.00
        ([("KETTLE", 1)], D("11.55")),  # 9.95 + 1.60
    ],
)
def test_expedited_is_base_plus_weight(store: Database, lines: list[tuple[str, int]], charge: Decimal) -> None:
    with store.read() as s:
        draft = orders.quote(s, web_order(*lines, shipping_method="expedited"))
        assert (draft.shipping.service_level, draft.shipping.amount, draft.shipping.promised_days) == ("expedited", charge, 2)


def test_expedited_full_quote(store: Database) -> None:
    with store.read() as s:
        draft = orders.quote(s, web_order(("MUG", 2), shipping_method="expedited"))
        assert draft.tax_total == D("3.17")  # goods 25.00 x 8.875% = 2.21875 -> 2.22; shipping 10.75 x 8.875% = 0.954 -> 0.95
        assert draft.total == D("38.92")  # 25.00 + 10.75 + 3.17


def test_overnight_within_the_us(store: Database) -> None:
    with store.read() as s:
        draft = orders.quote(s, web_order(("MUG", 1), shipping_method="overnight"))
        assert (draft.shipping.amount, draft.shipping.promised_days) == (D("24.95"), 1)


def test_overnight_is_refused_outside_the_us_and_nothing_written(store: Database) -> None:
    request = web_order(("MUG", 1), shipping_method="overnight", shipping_address=GB_ADDRESS)
    with store.read() as s, pytest.raises(ValidationError) as quoted:
        orders.quote(s, request)
    assert quoted.value.errors == [{"field": "shipping_method", "reason": "not available for GB"}]
    before = table_row_counts(store)
    with pytest.raises(ValidationError) as placed, store.transaction() as s:
        orders.place_order(s, request)
    assert placed.value.errors == [{"field": "shipping_method", "reason": "not available for GB"}]
    assert table_row_counts(store) == before


def test_standard_shipping_to_gb_has_no_us_tax(store: Database) -> None:
    with store.read() as s:
        draft = orders.quote(s, web_order(("MUG", 1), shipping_address=GB_ADDRESS))
        assert draft.shipping.amount == D("4.95")
        assert draft.tax_total == ZERO  # no GB rates configured
        assert draft.total == D("17.45")  # 12.50 + 4.95


def test_pickup_is_free_and_taxed_at_the_store(store: Database) -> None:
    request = web_order(("MUG", 2), delivery="pickup", pickup_location="ST-NYC", shipping_method=None, customer_id=BOB)
    with store.read() as s:
        draft = orders.quote(s, request)
        assert (draft.shipping.method, draft.shipping.amount, draft.shipping.promised_days) == ("pickup", ZERO, 0)
        assert [(loc.code, q) for loc, q in draft.lines[0].allocations] == [("ST-NYC", 2)]
        assert draft.lines[0].tax_rate == D("0.08875")  # the NYC store, though Bob lives in CA
        assert draft.tax_total == D("2.22")  # 25.00 x 8.875% = 2.21875 -> 2.22
        assert draft.total == D("27.22")
    with store.transaction() as s:
        number = orders.place_order(s, request).number
    with store.read() as s:
        order = s.scalar(select(Order).where(Order.number == number))
        nyc = s.scalar(select(Location.id).where(Location.code == "ST-NYC"))
        assert (order.delivery_method, order.pickup_location_id, order.shipping_method_id) == ("pickup", nyc, None)
        assert (order.shipping_total, order.total, order.promised_delivery_days) == (ZERO, D("27.22"), 0)


def test_pickup_where_the_store_offers_none(store: Database) -> None:
    before = table_row_counts(store)
    with pytest.raises(ValidationError) as caught, store.transaction() as s:
        orders.place_order(s, web_order(("KETTLE", 1), delivery="pickup", pickup_location="ST-SF", shipping_method=None))
    assert caught.value.errors == [{"field": "pickup_location", "reason": "no in-store pickup"}]
    assert table_row_counts(store) == before


@pytest.mark.parametrize("method", ["teleport", "pickup"])
def test_unknown_shipping_method_and_nothing_written(store: Database, method: str) -> None:
    with store.read() as s, pytest.raises(UnknownShippingMethod):
        orders.quote(s, web_order(("MUG", 1), shipping_method=method))
    before = table_row_counts(store)
    with pytest.raises(UnknownShippingMethod) as caught, store.transaction() as s:
        orders.place_order(s, web_order(("MUG", 1), shipping_method=method))
    assert caught.value.details == {"method": method}
    assert caught.value.code == "unknown_shipping_method"
    assert table_row_counts(store) == before


def test_inactive_shipping_method_is_unknown(store: Database) -> None:
    with store.transaction() as s:
        s.scalar(select(ShippingMethod).where(ShippingMethod.code == "overnight")).active = False
    with store.read() as s:
        with pytest.raises(UnknownShippingMethod):
            orders.quote(s, web_order(("MUG", 1), shipping_method="overnight"))
        assert [m.code for m in shipping.list_shipping_methods(s)] == ["expedited", "standard"]  # by promised days


def test_shipping_method_admin_errors(store: Database) -> None:
    before = table_row_counts(store)
    with pytest.raises(AlreadyExists), store.transaction() as s:
        shipping.create_shipping_method(s, {"code": "standard", "name": "Again", "service_level": "standard",
                                            "base_price": "1.00", "promised_days": 3})
    with pytest.raises(ValidationError) as caught, store.transaction() as s:
        shipping.create_shipping_method(s, {"code": "drone", "name": "Drone", "service_level": "teleport",
                                            "base_price": "-1", "promised_days": 99})
    assert sorted(e["field"] for e in caught.value.errors) == ["base_price", "promised_days", "service_level"]
    assert table_row_counts(store) == before


# --- the total always adds up ------------------------------------------------------------------


SCENARIOS: dict[str, dict[str, Any]] = {
    "standard, under threshold": web_order(("TEE-S", 1), ("BEANS", 1)),
    "standard, free": web_order(("TEE-S", 2), ("MUG", 3)),
    "standard, free lost to coupon": web_order(("TEE-S", 2), ("MUG", 1), coupon_codes=["TEN"]),
    "expedited, CA": web_order(("KETTLE", 2), ("TEE-L", 1), shipping_method="expedited", customer_id=BOB),
    "overnight, bogo": web_order(("TEE-M", 3), ("MUG", 1), shipping_method="overnight"),
    "pickup": web_order(("MUG", 3), ("BEANS", 2), delivery="pickup", pickup_location="ST-NYC", shipping_method=None),
    "pos inclusive": pos_sale(("MUG", 3), ("BEANS", 2), coupon_codes=["TEN"]),
    "gb, no tax": web_order(("TEE-S", 1), shipping_address=GB_ADDRESS, coupon_codes=["TEN"]),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_order_total_always_adds_up(store: Database, scenario: str) -> None:
    with store.transaction() as s:
        promotions.create_promotion(s, {"name": "ten", "kind": "percentage", "scope": "order", "value": "10", "coupon_code": "TEN"})
        promotions.create_promotion(s, {"name": "3 for 2", "kind": "buy_x_get_y", "scope": "sku", "target": "TEE-M", "value": "100",
                                        "buy_quantity": 2, "get_quantity": 1})
        promotions.create_promotion(s, {"name": "mug", "kind": "fixed", "scope": "sku", "target": "MUG", "value": "0.99"})
    request = SCENARIOS[scenario]
    with store.read() as s:
        draft = orders.quote(s, request)
        inclusive = draft.channel.prices_include_tax
        assert_totals_add_up(draft, inclusive)
        assert draft.subtotal == sum(d.line.gross for d in draft.lines)
        assert draft.discount_total == sum(d.discount_total for d in draft.lines)
        assert draft.tax_total == sum(d.tax_amount for d in draft.lines) + draft.shipping_tax
        for d in draft.lines:
            assert d.line_total == (d.line.net if inclusive else d.line.net + d.tax_amount)
            assert d.tax_amount == tax_on(d.line.net, d.tax_rate, inclusive=inclusive)
        quoted = draft.to_dict()
    with store.transaction() as s:
        number = orders.place_order(s, request).number
    with store.read() as s:
        order = s.scalar(select(Order).where(Order.number == number))
        assert_totals_add_up(order, order.prices_include_tax)
        assert (str(order.subtotal), str(order.discount_total), str(order.shipping_total), str(order.tax_total), str(order.total)) == (
            quoted["subtotal"], quoted["discount_total"], quoted["shipping_total"], quoted["tax_total"], quoted["total"])
        # The lines plus shipping (plus the tax on shipping when prices exclude tax) make the total.
        shipping_tax = order.tax_total - sum(l.tax_amount for l in order.lines)
        lines_and_shipping = sum(l.line_total for l in order.lines) + order.shipping_total
        assert order.total == lines_and_shipping + (ZERO if order.prices_include_tax else shipping_tax)


def test_shipping_charge_unit() -> None:
    method = ShippingMethod(code="m", name="M", service_level="standard", base_price=D("4.95"), price_per_kg=D("0.50"),
                            free_over=D("50.00"), promised_days=5, countries=["US", "CA"])
    assert shipping.shipping_charge(method, merchandise=D("49.99"), weight_kg=D("2"), country="US").amount == D("5.95")  # 4.95 + 2 x 0.50
    assert shipping.shipping_charge(method, merchandise=D("50.00"), weight_kg=D("2"), country="CA").amount == ZERO
    assert shipping.shipping_charge(method, merchandise=D("1"), weight_kg=D("0.333"), country="US").amount == D("5.12")  # 4.95 + 0.1665 = 5.1165 -> 5.12
    with pytest.raises(ValidationError):
        shipping.shipping_charge(method, merchandise=D("10"), weight_kg=D("1"), country="MX")


def test_region_is_matched_case_insensitively(store: Database) -> None:
    with store.read() as s:
        draft = orders.quote(s, web_order(("TEE-S", 1), shipping_address={**NY_ADDRESS, "region": "ny"}))
        assert draft.lines[0].tax_rate == D("0.08875")
