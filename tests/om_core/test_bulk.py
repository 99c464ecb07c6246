"""Batched placement and fulfilment follow the same rules as one order at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from om_core.errors import InsufficientStock, UnknownProduct, ValidationError
from om_core.models import Order, Payment, Shipment
from om_core.services import bulk, inventory, orders, payments
from tests.om_core.helpers import available, row_counts
from tests.om_core.store import web_order

NOW = datetime(2030, 3, 4, 12, 0, tzinfo=UTC)


def place(db, requests, **kw):
    with db.transaction() as s:
        return bulk.place_orders(s, [bulk.BulkOrder(r, NOW, kw.get("key")) for r in requests])


def test_each_request_gets_the_same_draft_as_a_single_placement(store):
    requests = [web_order(("TEE-S", 2), ("MUG", 1)), web_order(("KETTLE", 1), ("BEANS", 3), shipping_method="expedited")]
    with store.transaction() as s:
        quotes = [orders.quote(s, r).to_dict() for r in requests]
    results = place(store, requests)
    with store.read() as s:
        for result, q in zip(results, quotes, strict=True):
            order = orders.get_order(s, result.number)
            assert (str(order.total), str(order.tax_total), str(order.shipping_total)) == (q["total"], q["tax_total"], q["shipping_total"])
            assert order.placed_at == NOW
            assert payments.balance(s.scalar(select(Payment).where(Payment.order_id == order.id))).authorized == Decimal(q["total"])


def test_a_bad_or_short_request_fails_alone(store):
    # TEE-L has 3 units: the first two orders take them, the third is short
    requests = [web_order(("TEE-L", 2)), web_order(("TEE-L", 1)), web_order(("TEE-L", 1)), web_order(("NOPE", 1)),
                web_order(("MUG", 0)), web_order(("MUG", 1))]
    results = place(store, requests)
    assert [r.number is not None for r in results] == [True, True, False, False, False, True]
    assert isinstance(results[2].error, InsufficientStock) and results[2].error.shortages[0]["available"] == 0
    assert isinstance(results[3].error, UnknownProduct)
    assert isinstance(results[4].error, ValidationError)
    assert available(store, "TEE-L", "WH-WEST") == 0
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 3
        assert inventory.verify_ledger(s) == []


def test_ship_and_deliver_in_bulk(store):
    results = place(store, [web_order(("TEE-M", 8)), web_order(("MUG", 2), delivery="pickup", pickup_location="ST-NYC", shipping_method=None),
                            {"channel": "pos-nyc", "delivery": "carry_out", "location": "ST-NYC", "lines": [{"sku": "BEANS", "quantity": 2}],
                             "payment_token": "tok_till"}])
    split, pickup, till = (r.number for r in results)
    with store.transaction() as s:
        shipped = bulk.ship_orders(s, [split, pickup, till], at=NOW + timedelta(days=1))
    assert len(shipped[split]) == 2 and len(shipped[pickup]) == 1 and till not in shipped  # the till sale left the shop at once
    with store.read() as s:
        assert orders.get_order(s, split).status == "fulfilled"
        assert orders.get_order(s, pickup).status == "placed"
        assert orders.get_order(s, till).status == "delivered"
    with store.transaction() as s:
        bulk.deliver_shipments(s, {n: NOW + timedelta(days=3) for ns in shipped.values() for n in ns})
    with store.read() as s:
        for number in (split, pickup):
            order = orders.get_order(s, number)
            assert order.status == "delivered"
            pay = payments.balance(s.scalar(select(Payment).where(Payment.order_id == order.id)))
            assert pay.captured == pay.authorized and pay.open_authorization == 0
        assert {x.status for x in s.scalars(select(Shipment))} == {"delivered", "collected"}
        assert inventory.verify_ledger(s) == []
        # the split order's 8 units left WH-EAST (5) and WH-WEST (3)
        assert inventory.available_to_promise(s, "TEE-M", location="WH-EAST")["locations"][0]["on_hand"] == 0


def test_idempotency_keys_in_a_batch(store):
    first = place(store, [web_order(("MUG", 1))], key="k-1")
    before = row_counts(store)
    again = place(store, [web_order(("MUG", 1))], key="k-1")
    assert again[0].number == first[0].number
    assert row_counts(store) == before


def test_promotion_limits_count_within_the_batch(store):
    from om_core.errors import PromotionLimitReached
    from om_core.services import promotions

    with store.transaction() as s:
        promotions.create_promotion(s, {"name": "Two only", "kind": "fixed", "scope": "order", "value": "5", "coupon_code": "TWO",
                                        "usage_limit_total": 2})
    results = place(store, [web_order(("MUG", 1), coupon_codes=["TWO"]) for _ in range(3)])
    assert [r.number is not None for r in results] == [True, True, False]
    assert isinstance(results[2].error, PromotionLimitReached)


def test_batched_orders_can_confirm_by_email(store):
    from om_core.models import OutboxMessage

    with store.transaction() as s:
        results = bulk.place_orders(s, [bulk.BulkOrder(web_order(("MUG", 1)), NOW) for _ in range(3)], notify=True)
    with store.read() as s:
        kinds = [m.kind for m in s.scalars(select(OutboxMessage))]
    assert all(r.number for r in results) and kinds == ["order_confirmed"] * 3
