"""Orders: quote, placement, allocation, status, modification, cancellation, idempotency, atomicity."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from om_core.errors import (
    IdempotencyConflict,
    InsufficientStock,
    InvalidTransition,
    ModificationNotAllowed,
    PaymentDeclined,
    PriceMismatch,
    UnknownChannel,
    UnknownCustomer,
    UnknownOrder,
    UnknownProduct,
    ValidationError,
)
from om_core.models import Order, OrderEvent, Reservation, StockMovement
from om_core.services import inventory, orders, payments
from tests.om_core.helpers import available, row_counts
from tests.om_core.store import BOB, NY_ADDRESS, web_order


def place(db, request, **kw):
    with db.transaction() as s:
        order = orders.place_order(s, request, **kw)
        return order.number


def view(db, number):
    with db.read() as s:
        return orders.order_view(s, orders.get_order(s, number))


# --- quote ----------------------------------------------------------------------------------


def test_quote_prices_taxes_and_allocates_without_writing(store):
    before = row_counts(store)
    with store.transaction() as s:
        q = orders.quote(s, web_order(("TEE-S", 2), ("MUG", 1))).to_dict()
    # 2 x 20.00 + 12.50 = 52.50 >= 50.00 free-shipping threshold; NY rate 8.875%:
    # 40.00 x 0.08875 = 3.55, 12.50 x 0.08875 = 1.109 -> 1.11
    assert q["subtotal"] == "52.50"
    assert q["shipping_total"] == "0.00"
    assert q["tax_total"] == "4.66"
    assert q["total"] == "57.16"
    assert [l["allocation"] for l in q["lines"]] == [[{"location": "WH-EAST", "quantity": 2}], [{"location": "WH-EAST", "quantity": 1}]]
    assert row_counts(store) == before


def test_quote_below_free_shipping_threshold_charges_standard_rate(store):
    with store.transaction() as s:
        q = orders.quote(s, web_order(("MUG", 1))).to_dict()
    # 12.50 + 4.95 shipping; tax 12.50 x 0.08875 = 1.11 + shipping 4.95 x 0.08875 = 0.44
    assert q["shipping_total"] == "4.95"
    assert q["tax_total"] == "1.55"
    assert Decimal(q["total"]) == Decimal("12.50") + Decimal("4.95") + Decimal("1.55")


# --- allocation -----------------------------------------------------------------------------


def test_order_split_across_warehouses_when_needed(store):
    # TEE-M: 5 at WH-EAST and 5 at WH-WEST
    number = place(store, web_order(("TEE-M", 8)))
    res = view(store, number)["lines"][0]["reservations"]
    assert sorted((r["location"], r["quantity"]) for r in res) == [("WH-EAST", 5), ("WH-WEST", 3)]
    assert available(store, "TEE-M", "WH-EAST") == 0 and available(store, "TEE-M", "WH-WEST") == 2


def test_channel_sees_only_its_locations(store):
    # the app channel sells only WH-WEST, which has no MUG
    with pytest.raises(InsufficientStock) as err, store.transaction() as s:
        orders.quote(s, {**web_order(("MUG", 1)), "channel": "app"})
    shortage = err.value.shortages[0]
    assert shortage["available"] == 0
    assert {"location": "WH-EAST", "available": 100, "pickup": False} in shortage["alternatives"]["other_locations"]


def test_ship_from_store_can_be_refused_by_the_customer(store):
    # 104 MUGs: 100 at WH-EAST + 4 at ST-NYC (ship from store)
    with store.transaction() as s:
        q = orders.quote(s, web_order(("MUG", 104))).to_dict()
    assert {a["location"] for a in q["lines"][0]["allocation"]} == {"WH-EAST", "ST-NYC"}
    with pytest.raises(InsufficientStock), store.transaction() as s:
        orders.quote(s, web_order(("MUG", 104), ship_from_store=False))


def test_dropship_lines_come_from_the_supplier(store):
    number = place(store, web_order(("SOFA", 1), shipping_method="expedited"))
    order = view(store, number)
    assert order["lines"][0]["reservations"] == [{"location": "DS-DROP", "quantity": 1, "status": "active"}]
    # expedited: 9.95 + 1.00/kg x 60 kg = 69.95
    assert order["shipping_total"] == "69.95"


# --- placement ------------------------------------------------------------------------------


def test_place_order_records_everything(store):
    number = place(store, web_order(("TEE-S", 2), ("BEANS", 3)), actor="web-checkout")
    order = view(store, number)
    assert order["status"] == "placed"
    assert [(l["sku"], l["quantity"]) for l in order["lines"]] == [("TEE-S", 2), ("BEANS", 3)]
    # BEANS is the reduced (0%) tax class: 2 x 20.00 x 0.08875 = 3.55 only
    assert order["tax_total"] == "3.55"
    assert order["payment"]["authorized"] == order["total"]
    assert [e["kind"] for e in order["events"]] == ["order_placed", "payment_authorized"]
    assert order["events"][0]["actor"] == "web-checkout" and order["events"][0]["channel"] == "web"
    assert available(store, "TEE-S", "WH-EAST") == 8
    with store.read() as s:
        movements = s.scalars(select(StockMovement).where(StockMovement.kind == "reservation")).all()
        assert sorted(m.reserved_change for m in movements) == [2, 3]
        assert all(m.reference == f"order:{number}" and m.quantity == 0 for m in movements)
        assert inventory.verify_ledger(s) == []


def test_timestamps_are_timezone_aware_utc(store):
    number = place(store, web_order(("MUG", 1)))
    with store.read() as s:
        order = orders.get_order(s, number)
        assert order.placed_at.utcoffset().total_seconds() == 0
        assert all(e.at.tzinfo is not None for e in s.scalars(select(OrderEvent)))


def test_insufficient_stock_lists_every_short_sku_with_alternatives(store):
    before = row_counts(store)
    with pytest.raises(InsufficientStock) as err, store.transaction() as s:
        orders.place_order(s, web_order(("TEE-L", 5), ("KETTLE", 3), ("MUG", 1)))
    by_sku = {s["sku"]: s for s in err.value.shortages}
    assert set(by_sku) == {"TEE-L", "KETTLE"}
    assert by_sku["TEE-L"]["available"] == 3 and by_sku["TEE-L"]["requested"] == 5
    # KETTLE: 2 at WH-WEST for the web channel; 6 more at ST-SF, which the web channel does not sell
    assert by_sku["KETTLE"]["available"] == 2
    assert by_sku["KETTLE"]["alternatives"]["other_locations"] == [{"location": "ST-SF", "available": 6, "pickup": False}]
    # similar in-stock SKUs in the same category, closest price first (both 2.00 away: by SKU)
    assert [a["sku"] for a in by_sku["TEE-L"]["alternatives"]["similar_skus"]] == ["TEE-M", "TEE-S"]
    assert by_sku["TEE-L"]["alternatives"]["backorder"] is False
    assert "TEE-L" in str(err.value) and "KETTLE" in str(err.value)
    assert row_counts(store) == before


def test_backorder_only_when_the_sku_allows_and_the_customer_accepts(store):
    with pytest.raises(InsufficientStock) as err, store.transaction() as s:
        orders.place_order(s, web_order(("PREORDER", 2)))
    assert err.value.shortages[0]["alternatives"]["backorder"] is True
    number = place(store, web_order(("PREORDER", 2), ("MUG", 1), allow_backorder=True))
    order = view(store, number)
    assert order["status"] == "backordered"
    assert order["lines"][0]["backordered"] == 2 and order["lines"][0]["reservations"] == []
    # a SKU that does not allow backorders is still refused, even when the customer accepts
    with pytest.raises(InsufficientStock), store.transaction() as s:
        orders.place_order(s, web_order(("TEE-L", 9), allow_backorder=True))


def test_pickup_reserves_at_the_chosen_store_and_is_free(store):
    number = place(store, web_order(("MUG", 2), delivery="pickup", pickup_location="ST-NYC", shipping_method=None))
    order = view(store, number)
    assert order["shipping_total"] == "0.00"
    assert order["lines"][0]["reservations"] == [{"location": "ST-NYC", "quantity": 2, "status": "active"}]


def test_pickup_at_a_store_without_pickup_is_refused(store):
    before = row_counts(store)
    with pytest.raises(ValidationError) as err, store.transaction() as s:
        orders.place_order(s, web_order(("KETTLE", 1), delivery="pickup", pickup_location="ST-SF", shipping_method=None))
    assert err.value.errors[0]["field"] == "pickup_location"
    assert row_counts(store) == before


def test_pos_carry_out_sells_captures_and_extracts_inclusive_tax(store):
    number = place(store, {"channel": "pos-nyc", "delivery": "carry_out", "location": "ST-NYC",
                           "lines": [{"sku": "MUG", "quantity": 2}], "payment_token": "tok_till"})
    order = view(store, number)
    # prices include tax: 25.00 contains 25.00 x 0.08875 / 1.08875 = 2.04 of tax; total stays 25.00
    assert order["total"] == "25.00" and order["tax_total"] == "2.04"
    assert order["status"] == "delivered"
    assert order["payment"]["captured"] == "25.00"
    with store.read() as s:
        assert inventory.available_to_promise(s, "MUG", location="ST-NYC")["locations"][0]["on_hand"] == 2
        assert inventory.verify_ledger(s) == []


# --- bad input: a typed error and nothing written ----------------------------------------------


BAD_REQUESTS = [
    ("unknown sku", web_order(("NOPE", 1)), UnknownProduct, None),
    ("zero quantity", web_order(("MUG", 0)), ValidationError, "lines.0.quantity"),
    ("negative quantity", web_order(("MUG", -3)), ValidationError, "lines.0.quantity"),
    ("absurd quantity", web_order(("MUG", 10_000_000)), ValidationError, "lines.0.quantity"),
    ("no lines", web_order(), ValidationError, "lines"),
    ("duplicate sku lines", web_order(("MUG", 1), ("MUG", 2)), ValidationError, "(body)"),
    ("unknown channel", {**web_order(("MUG", 1)), "channel": "fax"}, UnknownChannel, None),
    ("unknown customer", {**web_order(("MUG", 1)), "customer_id": 999}, UnknownCustomer, None),
    ("bad email", {**web_order(("MUG", 1)), "email": "not-an-email"}, ValidationError, "email"),
    ("unknown field", {**web_order(("MUG", 1)), "discount": "100%"}, ValidationError, "discount"),
    ("price mismatch", {**web_order(), "lines": [{"sku": "MUG", "quantity": 1, "unit_price": "9.99"}]}, PriceMismatch, None),
    ("wrong expected total", {**web_order(("MUG", 1)), "expected_total": "1.00"}, PriceMismatch, None),
    ("unknown pickup store", web_order(("MUG", 1), delivery="pickup", pickup_location="ST-NOWHERE", shipping_method=None), Exception, None),
    ("ship without method", {**web_order(("MUG", 1)), "shipping_method": None}, ValidationError, "(body)"),
    ("ship without address", {"channel": "web", "email": "guest@example.com", "lines": [{"sku": "MUG", "quantity": 1}],
                              "shipping_method": "standard", "payment_token": "tok_visa"}, ValidationError, "shipping_address"),
    ("bad postal code", web_order(("MUG", 1), shipping_address={**NY_ADDRESS, "postal_code": "ABC"}), ValidationError, "shipping_address"),
    ("card number as token", web_order(("MUG", 1), payment_token="4111 1111 1111 1111"), ValidationError, "payment_token"),
    ("no payment token", {**web_order(("MUG", 1)), "payment_token": None}, ValidationError, "payment_token"),
    ("declined card", web_order(("MUG", 1), payment_token="tok_decline_insufficient_funds"), PaymentDeclined, None),
    ("overnight abroad", web_order(("MUG", 1), shipping_method="overnight",
                                   shipping_address={"line1": "1 High St", "city": "London", "postal_code": "SW1A 1AA", "country": "GB"}),
     ValidationError, "shipping_method"),
]


@pytest.mark.parametrize(("case", "request_body", "error", "field"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_order_is_refused_and_writes_nothing(store, case, request_body, error, field):
    before = row_counts(store)
    with pytest.raises(error) as err, store.transaction() as s:
        orders.place_order(s, request_body, idempotency_key=f"bad-{case}")
    if field is not None:
        assert field in [e["field"].split(".")[0] if field.count(".") == 0 else e["field"] for e in err.value.errors], err.value.errors
    assert err.value.message if hasattr(err.value, "message") else str(err.value)
    assert row_counts(store) == before


def test_declined_payment_voids_nothing_and_leaves_nothing(store):
    gateway = payments.TestGateway()
    gateway.name = "strict"
    payments.register_gateway(gateway)
    before = row_counts(store)
    with pytest.raises(PaymentDeclined), store.transaction() as s:
        orders.place_order(s, web_order(("MUG", 1), payment_token="tok_decline", gateway="strict"))
    assert [op for op, *_ in gateway.calls] == ["authorize"]
    assert row_counts(store) == before


def test_crash_after_authorization_rolls_back_and_voids_the_hold(store, monkeypatch):
    gateway = payments.TestGateway()
    gateway.name = "crashy"
    payments.register_gateway(gateway)
    before = row_counts(store)

    def crash(*args, **kwargs):
        raise RuntimeError("power cut between steps")

    monkeypatch.setattr(orders.idempotency, "remember", crash)
    with pytest.raises(RuntimeError), store.transaction() as s:
        orders.place_order(s, web_order(("MUG", 1), gateway="crashy"), idempotency_key="crash-1")
    assert [op for op, *_ in gateway.calls] == ["authorize", "void"]
    assert row_counts(store) == before


# --- idempotency -------------------------------------------------------------------------------


def test_same_idempotency_key_returns_the_original_order_and_writes_nothing(store):
    first = place(store, web_order(("MUG", 1)), idempotency_key="checkout-42")
    before = row_counts(store)
    again = place(store, web_order(("MUG", 1)), idempotency_key="checkout-42")
    assert again == first
    assert row_counts(store) == before


def test_same_idempotency_key_with_a_different_body_is_refused(store):
    place(store, web_order(("MUG", 1)), idempotency_key="checkout-43")
    before = row_counts(store)
    with pytest.raises(IdempotencyConflict), store.transaction() as s:
        orders.place_order(s, web_order(("MUG", 2)), idempotency_key="checkout-43")
    assert row_counts(store) == before


def test_idempotency_key_must_be_reasonable(store):
    with pytest.raises(ValidationError), store.transaction() as s:
        orders.place_order(s, web_order(("MUG", 1)), idempotency_key="x" * 300)


# --- status and manual states --------------------------------------------------------------------


def test_status_follows_line_quantities(store):
    number = place(store, web_order(("TEE-S", 2), ("MUG", 1)))
    with store.transaction() as s:
        order = orders.get_order(s, number)
        orders.fulfil_lines(s, order, {1: 2})
        assert order.status == "partially_fulfilled"
    with store.transaction() as s:
        order = orders.get_order(s, number)
        orders.fulfil_lines(s, order, {2: 1})
        assert order.status == "fulfilled"
    with store.read() as s:
        assert inventory.verify_ledger(s) == []
        # fulfilled units left the shelf: 10 - 2
        assert inventory.available_to_promise(s, "TEE-S", location="WH-EAST")["locations"][0]["on_hand"] == 8


def test_cannot_fulfil_more_than_is_reserved(store):
    number = place(store, web_order(("TEE-S", 2)))
    before = row_counts(store)
    with pytest.raises(ValidationError), store.transaction() as s:
        orders.fulfil_lines(s, orders.get_order(s, number), {1: 3})
    assert row_counts(store) == before


def test_hold_and_release(store):
    number = place(store, web_order(("MUG", 1)))
    with store.transaction() as s:
        assert orders.hold_order(s, number, reason="fraud check", actor="risk").status == "on_hold"
    with pytest.raises(InvalidTransition), store.transaction() as s:
        orders.hold_order(s, number, reason="again")
    with store.transaction() as s:
        assert orders.release_order(s, number, actor="risk").status == "placed"
    with pytest.raises(InvalidTransition), store.transaction() as s:
        orders.release_order(s, number)
    kinds = [e["kind"] for e in view(store, number)["events"]]
    assert kinds[-2:] == ["order_on_hold", "order_released"]


# --- cancellation ---------------------------------------------------------------------------------


def test_cancel_releases_stock_and_voids_the_authorization(store):
    number = place(store, web_order(("TEE-S", 4), ("MUG", 1)))
    assert available(store, "TEE-S", "WH-EAST") == 6
    with store.transaction() as s:
        order = orders.cancel_order(s, number, reason="customer asked", actor="support")
        assert order.status == "cancelled"
    assert available(store, "TEE-S", "WH-EAST") == 10
    order = view(store, number)
    assert order["payment"]["voided"] == order["payment"]["authorized"]
    assert order["payment"]["open_authorization"] == "0.00"
    assert all(r["status"] == "released" for l in order["lines"] for r in l["reservations"])
    with store.read() as s:
        assert inventory.verify_ledger(s) == []
    with pytest.raises(InvalidTransition), store.transaction() as s:
        orders.cancel_order(s, number, reason="twice")


def test_cannot_cancel_once_fulfilment_started(store):
    number = place(store, web_order(("TEE-S", 2), ("MUG", 1)))
    with store.transaction() as s:
        orders.fulfil_lines(s, orders.get_order(s, number), {1: 1})
    before = row_counts(store)
    with pytest.raises(ModificationNotAllowed), store.transaction() as s:
        orders.cancel_order(s, number, reason="too late")
    assert row_counts(store) == before


def test_unknown_order(store):
    with pytest.raises(UnknownOrder), store.transaction() as s:
        orders.cancel_order(s, "SO-NOPE", reason="x")


# --- modification ---------------------------------------------------------------------------------


def test_modify_quantities_lines_and_payment(store):
    number = place(store, web_order(("TEE-S", 2), ("MUG", 1)))
    first_total = Decimal(view(store, number)["total"])
    with store.transaction() as s:
        orders.modify_order(s, number, {"set_quantities": {1: 5}, "add_lines": [{"sku": "BEANS", "quantity": 2}], "remove_lines": [2]}, actor="support")
    order = view(store, number)
    active = {l["sku"]: l["quantity"] - l["cancelled"] for l in order["lines"]}
    assert active == {"TEE-S": 5, "MUG": 0, "BEANS": 2}
    # 5 x 20.00 + 2 x 9.99 = 119.98; tax 100.00 x 0.08875 = 8.88 (BEANS 0%); free shipping
    assert order["total"] == "128.86"
    pay = order["payment"]
    assert Decimal(pay["authorized"]) == first_total + (Decimal("128.86") - first_total)
    assert pay["open_authorization"] == "128.86"
    assert available(store, "TEE-S", "WH-EAST") == 5
    assert available(store, "MUG", "WH-EAST") == 100
    assert available(store, "BEANS", "WH-EAST") == 48
    assert order["events"][-1]["kind"] == "order_modified"
    assert order["events"][-1]["data"]["before"]["lines"] == {"TEE-S": 2, "MUG": 1}
    with store.read() as s:
        assert inventory.verify_ledger(s) == []


def test_modify_down_partially_voids_the_authorization(store):
    number = place(store, web_order(("TEE-S", 4)))
    with store.transaction() as s:
        orders.modify_order(s, number, {"set_quantities": {1: 1}})
    order = view(store, number)
    # 20.00 + 4.95 shipping; tax is rounded per line: 20.00 x 0.08875 = 1.775 -> 1.78, 4.95 x 0.08875 = 0.44
    assert order["total"] == "27.17"
    assert order["payment"]["open_authorization"] == "27.17"
    assert available(store, "TEE-S", "WH-EAST") == 9


def test_modify_keeps_the_original_price_for_existing_lines(store):
    from om_core.services import catalog

    number = place(store, web_order(("TEE-S", 1)))
    with store.transaction() as s:
        catalog.update_product(s, "TEE-S", {"price": "25.00"})
    with store.transaction() as s:
        orders.modify_order(s, number, {"set_quantities": {1: 2}})
    assert view(store, number)["lines"][0]["unit_price"] == "20.00"


def test_modify_that_needs_more_stock_than_exists_changes_nothing(store):
    number = place(store, web_order(("TEE-L", 2)))
    before = row_counts(store)
    snapshot = view(store, number)
    with pytest.raises(InsufficientStock), store.transaction() as s:
        orders.modify_order(s, number, {"set_quantities": {1: 4}})
    assert row_counts(store) == before
    assert view(store, number) == snapshot


def test_modify_uses_the_orders_own_reservation(store):
    # all 3 TEE-L are reserved by this order; raising nothing else but the address must still fit
    number = place(store, web_order(("TEE-L", 3)))
    with store.transaction() as s:
        orders.modify_order(s, number, {"shipping_address": {**NY_ADDRESS, "line1": "2 Broadway"}})
    assert available(store, "TEE-L", "WH-WEST") == 0
    with store.read() as s:
        assert orders.get_order(s, number).ship_line1 == "2 Broadway"


def test_modify_to_pickup_moves_the_reservation(store):
    number = place(store, web_order(("MUG", 2)))
    with store.transaction() as s:
        orders.modify_order(s, number, {"delivery": "pickup", "pickup_location": "ST-NYC"})
    order = view(store, number)
    active = [r for r in order["lines"][0]["reservations"] if r["status"] == "active"]
    assert active == [{"location": "ST-NYC", "quantity": 2, "status": "active"}]
    assert available(store, "MUG", "WH-EAST") == 100


BAD_MODIFICATIONS = [
    ("nothing asked", {}, ValidationError),
    ("unknown line", {"set_quantities": {9: 1}}, ValidationError),
    ("negative quantity", {"set_quantities": {1: -1}}, ValidationError),
    ("empties the order", {"remove_lines": [1]}, ValidationError),
    ("sku already on order", {"add_lines": [{"sku": "MUG", "quantity": 1}]}, ValidationError),
    ("unknown sku", {"add_lines": [{"sku": "NOPE", "quantity": 1}]}, UnknownProduct),
    ("unknown field", {"set_quantity": {1: 2}}, ValidationError),
]


@pytest.mark.parametrize(("case", "changes", "error"), BAD_MODIFICATIONS, ids=[c[0] for c in BAD_MODIFICATIONS])
def test_bad_modification_is_refused_and_writes_nothing(store, case, changes, error):
    number = place(store, web_order(("MUG", 1)))
    before = row_counts(store)
    with pytest.raises(error), store.transaction() as s:
        orders.modify_order(s, number, changes)
    assert row_counts(store) == before


def test_cannot_modify_after_fulfilment_started_or_cancellation(store):
    shipped = place(store, web_order(("MUG", 2)))
    with store.transaction() as s:
        orders.fulfil_lines(s, orders.get_order(s, shipped), {1: 1})
    cancelled = place(store, web_order(("MUG", 1)))
    with store.transaction() as s:
        orders.cancel_order(s, cancelled, reason="x")
    before = row_counts(store)
    for number in (shipped, cancelled):
        with pytest.raises(ModificationNotAllowed), store.transaction() as s:
            orders.modify_order(s, number, {"set_quantities": {1: 3}})
    assert row_counts(store) == before


def test_modification_idempotency(store):
    number = place(store, web_order(("MUG", 1)))
    with store.transaction() as s:
        orders.modify_order(s, number, {"set_quantities": {1: 2}}, idempotency_key="m-1")
    before = row_counts(store)
    with store.transaction() as s:
        orders.modify_order(s, number, {"set_quantities": {1: 2}}, idempotency_key="m-1")
    assert row_counts(store) == before
    with pytest.raises(IdempotencyConflict), store.transaction() as s:
        orders.modify_order(s, number, {"set_quantities": {1: 3}}, idempotency_key="m-1")


def test_guest_order_with_address_and_email(store):
    number = place(store, {"channel": "web", "email": "Guest@Example.com", "lines": [{"sku": "MUG", "quantity": 1}],
                           "shipping_method": "standard", "shipping_address": NY_ADDRESS, "payment_token": "tok_visa"})
    with store.read() as s:
        order = orders.get_order(s, number)
        assert order.customer_id is None and order.email == "guest@example.com" and order.ship_city == "New York"


def test_bobs_default_address_sets_california_tax(store):
    with store.transaction() as s:
        q = orders.quote(s, {**web_order(("KETTLE", 1)), "customer_id": BOB}).to_dict()
    # 49.99 x 5% = 2.4995 -> 2.50 (country rate, no CA rate configured)
    assert q["lines"][0]["tax_amount"] == "2.50" and q["lines"][0]["tax_rate"] == "0.05000"


def test_reservations_are_rows_tied_to_order_lines(store):
    number = place(store, web_order(("TEE-M", 8)))
    with store.read() as s:
        order = orders.get_order(s, number)
        rows = s.scalars(select(Reservation).where(Reservation.order_line_id == order.lines[0].id)).all()
        assert sum(r.quantity for r in rows) == 8 and {r.status for r in rows} == {"active"}
        assert s.scalar(select(Order.status).where(Order.number == number)) == "placed"


# --- backorders ---------------------------------------------------------------------------------


def test_purchase_order_receipt_fills_backorders_oldest_first(store):
    from om_core.services import purchasing

    first = place(store, web_order(("PREORDER", 2), allow_backorder=True))
    second = place(store, web_order(("PREORDER", 3), allow_backorder=True))
    with store.transaction() as s:
        po = purchasing.create_purchase_order(s, {"supplier": "ACME", "location": "WH-EAST", "lines": [{"sku": "PREORDER", "quantity": 4}]})
        purchasing.send_purchase_order(s, po.number)
        purchasing.receive_purchase_order(s, po.number)
    one, two = view(store, first), view(store, second)
    # 4 arrive: the older order gets its 2, the newer one 2 of its 3
    assert one["status"] == "placed" and one["lines"][0]["backordered"] == 0
    assert two["status"] == "backordered" and two["lines"][0]["backordered"] == 1
    assert sum(r["quantity"] for r in two["lines"][0]["reservations"] if r["status"] == "active") == 2
    assert available(store, "PREORDER", "WH-EAST") == 0
    assert "backorder_allocated" in [e["kind"] for e in one["events"]]
    with store.read() as s:
        assert inventory.verify_ledger(s) == []


def test_fill_backorders_skips_orders_on_hold(store):
    number = place(store, web_order(("PREORDER", 1), allow_backorder=True))
    with store.transaction() as s:
        orders.hold_order(s, number, reason="check")
        inventory.receive_stock(s, {"sku": "PREORDER", "location": "WH-EAST", "quantity": 5})
    with store.transaction() as s:
        assert orders.fill_backorders(s, sku="PREORDER") == {}
    with store.transaction() as s:
        orders.release_order(s, number)
    with store.transaction() as s:
        assert orders.fill_backorders(s, sku="PREORDER") == {number: 1}
    assert view(store, number)["status"] == "placed"


# --- routing --------------------------------------------------------------------------------------


def test_placement_routes_to_the_nearest_location_and_records_why(store):
    # Bob lives in San Francisco (94105): TEE-M is at WH-EAST (NJ) and WH-WEST (CA); the nearest wins
    number = place(store, {**web_order(("TEE-M", 2)), "customer_id": BOB})
    order = view(store, number)
    assert order["lines"][0]["reservations"] == [{"location": "WH-WEST", "quantity": 2, "status": "active"}]
    with store.read() as s:
        reason = orders.get_order(s, number).routing_reason
    assert "WH-WEST" in reason and "km" in reason


def test_route_order_moves_reservations_when_a_location_comes_up_short(store):
    number = place(store, {**web_order(("TEE-M", 2)), "customer_id": BOB})
    # a count at WH-WEST finds only 1 of the 5: the order's 2 no longer fit there
    with store.transaction() as s:
        inventory.adjust_stock(s, {"sku": "TEE-M", "location": "WH-WEST", "counted": 1, "reason": "count"})
    with store.transaction() as s:
        order = orders.route_order(s, number, actor="ops")
        assert "WH-EAST" in order.routing_reason
    order = view(store, number)
    active = [r for r in order["lines"][0]["reservations"] if r["status"] == "active"]
    assert active == [{"location": "WH-EAST", "quantity": 2, "status": "active"}]
    assert order["events"][-1]["kind"] == "order_routed"
    with store.read() as s:
        assert inventory.verify_ledger(s) == []


def test_route_order_that_cannot_be_filled_changes_nothing(store):
    number = place(store, web_order(("TEE-L", 3)))
    with store.transaction() as s:
        inventory.adjust_stock(s, {"sku": "TEE-L", "location": "WH-WEST", "counted": 1, "reason": "count"})
    before = row_counts(store)
    with pytest.raises(InsufficientStock), store.transaction() as s:
        orders.route_order(s, number)
    assert row_counts(store) == before


def test_route_with_an_explicit_strategy_and_an_unknown_one(store):
    number = place(store, web_order(("MUG", 1)))
    with store.transaction() as s:
        assert orders.route_order(s, number, strategy="fewest_shipments").routing_reason.startswith("fewest shipments")
    before = row_counts(store)
    with pytest.raises(ValidationError), store.transaction() as s:
        orders.route_order(s, number, strategy="cheapest_guess")
    assert row_counts(store) == before


def test_a_location_at_its_daily_capacity_is_skipped_until_tomorrow(store):
    from datetime import UTC, datetime, timedelta

    from om_core.clock import frozen_at
    from om_core.models import Location

    with store.transaction() as s:
        s.scalar(select(Location).where(Location.code == "WH-EAST")).daily_capacity = 2
    day = datetime(2030, 5, 6, 9, 0, tzinfo=UTC)
    with frozen_at(day):
        first = [place(store, web_order(("MUG", 1))) for _ in range(3)]
    locations = [view(store, n)["lines"][0]["reservations"][0]["location"] for n in first]
    # WH-EAST (nearest, 100 MUGs) takes two orders; the third goes to ST-NYC (ship from store)
    assert locations == ["WH-EAST", "WH-EAST", "ST-NYC"]
    with frozen_at(day + timedelta(days=1)):
        tomorrow = place(store, web_order(("MUG", 1)))
    assert view(store, tomorrow)["lines"][0]["reservations"][0]["location"] == "WH-EAST"
