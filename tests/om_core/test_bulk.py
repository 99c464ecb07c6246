"""Batched placement and fulfilment follow the same rules as one order at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from om_core.clock import frozen_at
from om_core.errors import (
    AlreadyExists,
    InsufficientStock,
    InvalidTransition,
    ModificationNotAllowed,
    PaymentDeclined,
    StockError,
    StoreOMError,
    UnknownLocation,
    UnknownOrder,
    UnknownProduct,
    ValidationError,
)
from om_core.models import Order, OrderEvent, OrderLine, Payment, Product, Shipment, StockMovement
from om_core.services import bulk, customers, inventory, orders, payments
from om_core.services.returns import UnknownReturn
from tests.om_core.helpers import available, fields, refused, row_counts
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


def test_a_refused_customer_answers_at_once(store):
    # TEE-L has 3 units: the second request is short, its customer takes the one left instead; the
    # third customer answers with a SKU they did not ask for (refused), the fourth gives up
    requests = [web_order(("TEE-L", 2)), web_order(("TEE-L", 2), ("MUG", 1)), web_order(("TEE-L", 1)), web_order(("TEE-L", 1))]
    answers = {1: web_order(("TEE-L", 1), ("MUG", 1)), 2: web_order(("KETTLE", 1)), 3: None}
    asked = []

    def answer(i, error):
        asked.append((i, type(error)))
        return answers[i]

    with store.transaction() as s:
        results = bulk.place_orders(s, [bulk.BulkOrder(r, NOW) for r in requests], on_refused=answer)
    assert asked == [(1, InsufficientStock), (2, InsufficientStock), (3, InsufficientStock)]
    assert [r.number is not None for r in results] == [True, True, False, False]
    assert isinstance(results[2].error, ValidationError) and fields(results[2].error) == ["lines"]
    assert isinstance(results[3].error, InsufficientStock)
    assert available(store, "TEE-L", "WH-WEST") == 0
    with store.read() as s:
        second = orders.get_order(s, results[1].number)
        assert sorted((l.sku, l.quantity) for l in second.lines) == [("MUG", 1), ("TEE-L", 1)]
        assert s.scalar(select(func.count()).select_from(Order)) == 2
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


def test_only_promotions_running_during_the_batch_apply(store):
    from om_core.services import promotions

    with store.transaction() as s:
        for name, value, start, end in (("Now", "10", NOW - timedelta(hours=1), NOW + timedelta(hours=1)),
                                        ("Later", "50", NOW + timedelta(days=1), NOW + timedelta(days=2)),
                                        ("Over", "50", NOW - timedelta(days=2), NOW - timedelta(days=1))):
            promotions.create_promotion(s, {"name": name, "kind": "percentage", "scope": "order", "value": value,
                                            "starts_at": start, "ends_at": end, "stackable": True})
    [result] = place(store, [web_order(("KETTLE", 1))])
    with store.read() as s:
        order = orders.get_order(s, result.number)
        assert order.discount_total == (order.subtotal * Decimal("0.10")).quantize(Decimal("0.01"))


def test_batched_orders_can_confirm_by_email(store):
    from om_core.models import OutboxMessage

    with store.transaction() as s:
        results = bulk.place_orders(s, [bulk.BulkOrder(web_order(("MUG", 1)), NOW) for _ in range(3)], notify=True)
    with store.read() as s:
        kinds = [m.kind for m in s.scalars(select(OutboxMessage))]
    assert all(r.number for r in results) and kinds == ["order_confirmed"] * 3


# --- a declined card, till sales at their own time, a failed placement in a savepoint -------------------


class _Undo(Exception):
    """Rolls a transaction back on purpose."""


def _outcome(s, numbers_or_errors):
    """What each request got, without the random order numbers: the error code, or the order's total,
    status, allocation and authorized amount."""
    out = []
    for number, error in numbers_or_errors:
        if number is None:
            out.append(("refused", error.code))
            continue
        order = orders.get_order(s, number)
        pay = s.scalar(select(Payment).where(Payment.order_id == order.id))
        allocation = sorted((l.sku, r.quantity, r.status) for l in order.lines for r in l.reservations)
        out.append(("placed", str(order.total), order.status, allocation, str(payments.balance(pay).authorized)))
    return out


def test_a_declined_card_fails_alone_as_if_placed_one_by_one(store):
    # TEE-L has 3 units: the declined order's unit stays free for the order after it
    requests = [web_order(("TEE-L", 2)), web_order(("TEE-L", 1), payment_token="tok_decline_1"), web_order(("TEE-L", 1)),
                web_order(("TEE-L", 1)), web_order(("MUG", 1), payment_token="tok_decline_2")]
    before = row_counts(store)
    with pytest.raises(_Undo), store.transaction() as s:  # one by one, each in a savepoint, then rolled back
        single = []
        for r in requests:
            try:
                with s.begin_nested():
                    single.append((orders.place_order(s, r).number, None))
            except StoreOMError as exc:
                single.append((None, exc))
        expected = _outcome(s, single)
        raise _Undo
    assert row_counts(store) == before
    with store.transaction() as s:
        results = bulk.place_orders(s, [bulk.BulkOrder(r, NOW) for r in requests])
        got = _outcome(s, [(r.number, r.error) for r in results])
    assert got == expected
    assert [g[0] for g in got] == ["placed", "refused", "placed", "refused", "refused"]
    assert isinstance(results[1].error, PaymentDeclined) and results[3].error.code == "insufficient_stock"
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 2
        assert s.scalar(select(func.count()).select_from(Payment)) == 2
        assert inventory.verify_ledger(s) == []


def test_a_declined_batch_writes_nothing(store):
    before = row_counts(store)
    with store.transaction() as s:
        results = bulk.place_orders(s, [bulk.BulkOrder(web_order(("MUG", 1), payment_token=f"tok_decline_{i}"), NOW) for i in range(3)])
    assert all(isinstance(r.error, PaymentDeclined) and r.number is None for r in results)
    assert row_counts(store) == before


def test_till_sales_are_handed_over_when_they_were_rung_up(store):
    till = {"channel": "pos-nyc", "delivery": "carry_out", "location": "ST-NYC", "lines": [{"sku": "BEANS", "quantity": 1}],
            "payment_token": "tok_till"}
    times = [NOW - timedelta(hours=5), NOW - timedelta(hours=2)]
    with store.transaction() as s, frozen_at(NOW):  # the batch runs later than the sales happened
        results = bulk.place_orders(s, [bulk.BulkOrder(dict(till), at) for at in times])
    with store.read() as s:
        for result, at in zip(results, times, strict=True):
            order = orders.get_order(s, result.number)
            assert order.status == "delivered" and order.fulfilment_started_at == at and order.updated_at == at
            sale = s.scalar(select(StockMovement).where(StockMovement.reference == f"order:{order.number}", StockMovement.kind == "sale"))
            assert sale.at == at
            assert {r.closed_at for l in order.lines for r in l.reservations} == {at}
            pay = s.scalar(select(Payment).where(Payment.order_id == order.id))
            assert pay.created_at == at
            assert [(t.kind, t.at) for t in pay.transactions] == [("authorize", at), ("capture", at)]
            assert payments.balance(pay).captured == order.total
            kinds = {e.kind: e.at for e in s.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id))}
            assert kinds["payment_authorized"] == kinds["payment_captured"] == at


def test_a_failed_placement_in_a_savepoint_leaves_nothing_in_the_session(store):
    with store.transaction() as s:
        with pytest.raises(PaymentDeclined) as declined, s.begin_nested():
            orders.place_order(s, web_order(("MUG", 1), payment_token="tok_decline_card"))
        # the caller keeps the error (and with it the failed call's frames) while it carries on
        assert not [o for o in s.identity_map.values() if isinstance(o, (Order, OrderLine, Payment))]
        order = orders.place_order(s, web_order(("MUG", 2)))  # may get the same ids again
        number = order.number
        assert declined.value.code == "payment_declined"
    with store.read() as s:
        placed = orders.get_order(s, number)
        assert [(l.sku, l.quantity) for l in placed.lines] == [("MUG", 2)]
        assert s.scalar(select(func.count()).select_from(Order)) == 1


# --- customers, receipts and transfers in batches -------------------------------------------------------


def _customer(i, **extra):
    return {"email": f"c{i}@example.com", "first_name": f"C{i}", "phone": "+1 212 555 0199", "segment": "regular",
            "marketing_consent": i % 2 == 0,
            "address": {"line1": f"{i} Main St", "city": "Boston", "region": "ma", "postal_code": "02110", "country": "us"}, **extra}


def test_create_customers_in_a_batch_like_one_by_one(store):
    with store.transaction() as s, frozen_at(NOW):
        ids = bulk.create_customers(s, [_customer(1), _customer(2), {"external_ref": "LOYAL-7"}])
        single = customers.create_customer(s, _customer(3))
    assert ids == sorted(ids) and len(set(ids)) == 3
    with store.read() as s:
        made = [customers.customer_with_address(s, cid) for cid in [*ids, single.id]]
    (c1, a1), (c2, _), (ref, no_address), (c3, a3) = made
    assert (c1.email, c1.phone, c1.segment, c1.marketing_consent, c1.marketing_consent_at, c1.created_at) == (
        "c1@example.com", "+12125550199", "regular", False, None, NOW)
    assert c2.marketing_consent and c2.marketing_consent_at == NOW
    assert a1.model_dump() == a3.model_dump() | {"line1": "1 Main St"} and a1.region == "MA" and a1.country == "US"
    assert ref.external_ref == "LOYAL-7" and no_address is None


def test_create_customers_at_their_own_sign_up_moments(store):
    moments = [NOW - timedelta(days=400), NOW - timedelta(days=3)]
    with store.transaction() as s, frozen_at(NOW):
        ids = bulk.create_customers(s, [_customer(1), _customer(2)], created_at=moments)
    with store.read() as s:
        made = [customers.customer_with_address(s, cid)[0] for cid in ids]
    assert [(c.created_at, c.marketing_consent_at) for c in made] == [(moments[0], None), (moments[1], moments[1])]


def test_create_customers_needs_one_moment_each(store):
    err = refused(store, ValidationError, lambda s: bulk.create_customers(s, [_customer(1), _customer(2)], created_at=[NOW]))
    assert fields(err) == ["created_at"]


@pytest.mark.parametrize("items, error, field", [
    ([_customer(1), _customer(2, email="not an email")], ValidationError, "1.email"),
    ([_customer(1), _customer(2, address={"line1": "x", "city": "y", "postal_code": "ABC", "country": "US"})], ValidationError, "1.address"),
    ([_customer(1), _customer(1)], AlreadyExists, None),
    ([_customer(5), {"email": "ADA@example.com"}], AlreadyExists, None),
    ([{"external_ref": "R1"}, {"external_ref": "R1"}], AlreadyExists, None),
])
def test_a_bad_customer_refuses_the_batch(store, items, error, field):
    err = refused(store, error, lambda s: bulk.create_customers(s, items))
    if field is not None:
        assert any(f.startswith(field) for f in fields(err))


def _product(sku, **extra):
    return {"sku": sku, "name": f"Thing {sku}", "category": "home", "price": "12.50", "cost": "5", "supplier": "ACME", "pack_size": 6,
            "attributes": {"style": 3}, **extra}


def test_create_products_in_a_batch_like_one_by_one(store):
    from om_core.services import catalog

    with store.transaction() as s, frozen_at(NOW):
        ids = bulk.create_products(s, [_product("NEW-1"), _product("NEW-2", supplier=None, backorder_policy="allow")])
        single = catalog.create_product(s, _product("NEW-3")).id
    assert ids == sorted(ids) and single > ids[-1]
    with store.read() as s:
        made = {p.sku: p for p in s.scalars(select(Product).where(Product.id.in_([*ids, single])))}
        columns = [c.key for c in Product.__table__.columns if c.key not in ("id", "sku", "name")]
        assert {c: getattr(made["NEW-1"], c) for c in columns} == {c: getattr(made["NEW-3"], c) for c in columns}
        assert made["NEW-2"].supplier_id is None and made["NEW-2"].backorder_policy == "allow" and made["NEW-1"].created_at == NOW


@pytest.mark.parametrize("items, error", [
    ([_product("NEW-1"), _product("NEW-2", price="-1")], ValidationError),
    ([_product("NEW-1"), _product("NEW-1")], AlreadyExists),
    ([_product("NEW-1"), _product("MUG")], AlreadyExists),
    ([_product("NEW-1"), _product("NEW-2", supplier="NOPE")], "UnknownSupplier"),
])
def test_a_bad_product_refuses_the_batch(store, items, error):
    import om_core.errors as errors

    refused(store, getattr(errors, error) if isinstance(error, str) else error, lambda s: bulk.create_products(s, items))


def test_receive_stock_in_a_batch(store):
    with store.transaction() as s, frozen_at(NOW):
        ids = bulk.receive_stock(s, [{"sku": "MUG", "location": "WH-EAST", "quantity": 5, "reference": "PO 1"},
                                     {"sku": "MUG", "location": "WH-EAST", "quantity": 2},
                                     {"sku": "TEE-S", "location": "ST-SF", "quantity": 7}], actor="clerk")
    assert ids[0] == ids[1] != ids[2]
    assert available(store, "MUG", "WH-EAST") == 107 and available(store, "TEE-S", "ST-SF") == 7
    with store.read() as s:
        moves = s.scalars(select(StockMovement).where(StockMovement.stock_id.in_(ids)).order_by(StockMovement.id.desc()).limit(3)).all()
        assert [(m.kind, m.quantity, m.reference, m.actor, m.at) for m in reversed(moves)] == [
            ("receipt", 5, "PO 1", "clerk", NOW), ("receipt", 2, None, "clerk", NOW), ("receipt", 7, None, "clerk", NOW)]
        assert inventory.verify_ledger(s) == []


@pytest.mark.parametrize("item, error", [
    ({"sku": "NOPE", "location": "WH-EAST", "quantity": 1}, UnknownProduct),
    ({"sku": "MUG", "location": "NOWHERE", "quantity": 1}, UnknownLocation),
    ({"sku": "MUG", "location": "WH-EAST", "quantity": 0}, ValidationError),
])
def test_a_bad_receipt_refuses_the_batch(store, item, error):
    refused(store, error, lambda s: bulk.receive_stock(s, [{"sku": "MUG", "location": "WH-EAST", "quantity": 1}, item]))


def test_transfer_stock_in_a_batch_counts_what_earlier_items_moved(store):
    orders_placed = place(store, [web_order(("TEE-M", 4))])  # reserves TEE-M at WH-EAST
    assert orders_placed[0].number
    items = [{"sku": "MUG", "from_location": "WH-EAST", "to_location": "ST-SF", "quantity": 10, "reason": "truck"},
             {"sku": "MUG", "from_location": "ST-SF", "to_location": "ST-NYC", "quantity": 4},  # only there thanks to the first
             {"sku": "TEE-M", "from_location": "WH-EAST", "to_location": "ST-NYC", "quantity": 1}]
    with store.transaction() as s, frozen_at(NOW):
        ids = bulk.transfer_stock(s, items, actor="planner")
    assert len(set(ids)) == 3
    assert (available(store, "MUG", "WH-EAST"), available(store, "MUG", "ST-SF"), available(store, "MUG", "ST-NYC")) == (90, 6, 8)
    assert available(store, "TEE-M", "WH-EAST") == 0 and available(store, "TEE-M", "ST-NYC") == 1
    with store.read() as s:
        refs = s.execute(select(StockMovement.kind, StockMovement.quantity, StockMovement.reference, StockMovement.at)
                         .where(StockMovement.reference.in_([f"transfer:{i}" for i in ids])).order_by(StockMovement.id)).all()
        assert [(k, q) for k, q, _, _ in refs] == [("transfer_out", -10), ("transfer_in", 10), ("transfer_out", -4), ("transfer_in", 4),
                                                   ("transfer_out", -1), ("transfer_in", 1)]
        assert {r for _, _, r, _ in refs} == {f"transfer:{i}" for i in ids} and {a for *_, a in refs} == {NOW}
        assert inventory.verify_ledger(s) == []


@pytest.mark.parametrize("item, error", [
    ({"sku": "TEE-M", "from_location": "WH-EAST", "to_location": "ST-NYC", "quantity": 2}, StockError),  # 1 left after the reservation
    ({"sku": "MUG", "from_location": "ST-SF", "to_location": "ST-NYC", "quantity": 1}, StockError),  # nothing there
    ({"sku": "MUG", "from_location": "WH-EAST", "to_location": "WH-EAST", "quantity": 1}, ValidationError),
    ({"sku": "MUG", "from_location": "WH-EAST", "to_location": "NOWHERE", "quantity": 1}, UnknownLocation),
])
def test_a_transfer_that_cannot_be_done_refuses_the_batch(store, item, error):
    place(store, [web_order(("TEE-M", 4))])
    first = {"sku": "MUG", "from_location": "WH-EAST", "to_location": "ST-NYC", "quantity": 1}
    refused(store, error, lambda s: bulk.transfer_stock(s, [first, item]))


# --- returns received and refunded in batches -----------------------------------------------------------


def _returned_state(s):
    """Everything receiving and refunding returns writes, without ids and random numbers."""
    from om_core.models import OutboxMessage, PaymentTransaction, ReturnLine, ReturnRequest, Stock

    q = lambda stmt: sorted(tuple(map(str, r)) for r in s.execute(stmt))  # noqa: E731
    return {
        "returns": q(select(ReturnRequest.number, ReturnRequest.status, ReturnRequest.refund_amount, ReturnRequest.received_at,
                            ReturnRequest.received_location_id, ReturnRequest.refunded_at)),
        "return_lines": q(select(ReturnLine.order_line_id, ReturnLine.condition, ReturnLine.refund_amount)),
        "lines": q(select(OrderLine.id, OrderLine.quantity_returned)),
        "orders": q(select(Order.number, Order.status, Order.updated_at)),
        "stock": q(select(Stock.product_id, Stock.location_id, Stock.on_hand)),  # ids: a rolled-back sequence moves on (PostgreSQL)
        "movements": q(select(Stock.product_id, Stock.location_id, StockMovement.kind, StockMovement.quantity, StockMovement.reason,
                              StockMovement.reference, StockMovement.at).join(Stock, Stock.id == StockMovement.stock_id)
                       .where(StockMovement.kind.in_(("return", "write_off")))),
        "transactions": q(select(PaymentTransaction.payment_id, PaymentTransaction.kind, PaymentTransaction.amount, PaymentTransaction.status,
                                 PaymentTransaction.gateway_reference, PaymentTransaction.parent_reference, PaymentTransaction.at)),
        "events": q(select(OrderEvent.order_id, OrderEvent.kind, OrderEvent.data, OrderEvent.at).where(
            OrderEvent.kind.in_(("return_received", "refund_issued", "payment_refunded")))),
        "outbox": q(select(OutboxMessage.kind, OutboxMessage.dedupe_key, OutboxMessage.recipient, OutboxMessage.subject,
                           OutboxMessage.body_text, OutboxMessage.created_at)),
    }


def _delivered_with_returns(store):
    """Two delivered orders and three open returns: two on the first order (its units refunded in two
    parts), one on the second."""
    from om_core.services import returns

    first, second = (r.number for r in place(store, [web_order(("TEE-S", 3), ("MUG", 1)), web_order(("TEE-M", 2), ("MUG", 1))]))
    with store.transaction() as s:
        shipped = bulk.ship_orders(s, [first, second], at=NOW + timedelta(hours=2))
        bulk.deliver_shipments(s, {n: NOW + timedelta(days=2) for ns in shipped.values() for n in ns})
    with store.transaction() as s, frozen_at(NOW + timedelta(days=3)):
        rmas = [returns.open_return(s, first, {"reason_code": "size_fit", "lines": [{"line_no": 1, "quantity": 1}]}).number,
                returns.open_return(s, first, {"reason_code": "damaged", "lines": [{"line_no": 1, "quantity": 2}, {"line_no": 2, "quantity": 1}]}).number,
                returns.open_return(s, second, {"reason_code": "no_longer_needed", "lines": [{"line_no": 1, "quantity": 2}]}).number]
    return rmas


def _opened_state(s):
    from om_core.models import ReturnLine, ReturnRequest

    q = lambda stmt: sorted(tuple(map(str, r)) for r in s.execute(stmt))  # noqa: E731
    return {
        "returns": q(select(ReturnRequest.order_id, ReturnRequest.status, ReturnRequest.reason_code, ReturnRequest.opened_by, ReturnRequest.opened_at)),
        "lines": q(select(ReturnLine.order_line_id, ReturnLine.quantity, ReturnLine.reason_code)),
        "events": q(select(OrderEvent.order_id, OrderEvent.kind, OrderEvent.at).where(OrderEvent.kind == "return_opened")),
    }


def test_open_returns_in_a_batch_like_one_by_one(store):
    from om_core.services import returns

    first, second = (r.number for r in place(store, [web_order(("TEE-S", 3), ("MUG", 1)), web_order(("TEE-M", 2), ("BEANS", 1))]))
    till = place(store, [{"channel": "pos-nyc", "delivery": "carry_out", "location": "ST-NYC", "lines": [{"sku": "MUG", "quantity": 2}],
                          "payment_token": "tok_till"}])[0].number
    with store.transaction() as s:
        shipped = bulk.ship_orders(s, [first, second], at=NOW + timedelta(hours=2))
        bulk.deliver_shipments(s, {n: NOW + timedelta(days=2) for ns in shipped.values() for n in ns})
    at = NOW + timedelta(days=3)
    openings = [
        bulk.ReturnOpening(first, {"reason_code": "size_fit", "lines": [{"line_no": 1, "quantity": 2}]}, at),
        bulk.ReturnOpening(first, {"reason_code": "damaged", "lines": [{"line_no": 1, "quantity": 2}]}, at),  # only 1 left to return
        bulk.ReturnOpening(first, {"reason_code": "damaged", "lines": [{"line_no": 1, "quantity": 1}, {"line_no": 2, "quantity": 1,
                                                                                                  "reason_code": "defective"}]}, at),
        bulk.ReturnOpening(second, {"reason_code": "other", "lines": [{"line_no": 2, "quantity": 1}]}, at),  # BEANS: not returnable
        bulk.ReturnOpening(second, {"reason_code": "other", "lines": [{"line_no": 9, "quantity": 1}]}, at),
        bulk.ReturnOpening("SO-NOPE", {"reason_code": "other", "lines": [{"line_no": 1, "quantity": 1}]}, at),
        bulk.ReturnOpening(second, {"reason_code": "nope", "lines": [{"line_no": 1, "quantity": 1}]}, at),
        bulk.ReturnOpening(till, {"reason_code": "no_longer_needed", "lines": [{"line_no": 1, "quantity": 1}]}, at),
        bulk.ReturnOpening(till, {"reason_code": "no_longer_needed", "lines": [{"line_no": 1, "quantity": 1}]}, NOW + timedelta(days=40)),
    ]
    with pytest.raises(_Undo), store.transaction() as s:
        single = []
        for o in openings:
            try:
                with frozen_at(o.at), s.begin_nested():
                    single.append((returns.open_return(s, o.order_number, o.request).number, None))
            except StoreOMError as exc:
                single.append((None, exc))
        expected = _opened_state(s), [(n is None, e.code if e else None) for n, e in single]
        raise _Undo
    with store.transaction() as s:
        results = bulk.open_returns(s, openings)
    with store.read() as s:
        got = _opened_state(s), [(r.number is None, r.error.code if r.error else None) for r in results]
    assert got == expected
    assert [code for _, code in got[1]] == [None, "validation_error", None, "not_returnable", "validation_error", "unknown_order",
                                            "validation_error", None, "not_returnable"]


def test_receive_and_refund_returns_in_a_batch_like_one_by_one(store):
    from om_core.services import returns

    rmas = _delivered_with_returns(store)
    receipts = [bulk.ReturnReceipt(rmas[0], "WH-EAST", None, NOW + timedelta(days=5)),
                bulk.ReturnReceipt(rmas[1], "WH-EAST", [{"line_no": 2, "condition": "damaged"}], NOW + timedelta(days=5, hours=1)),
                bulk.ReturnReceipt(rmas[2], "ST-NYC", [{"line_no": 1, "condition": "resellable"}], NOW + timedelta(days=6))]
    with pytest.raises(_Undo), store.transaction() as s:
        for r in receipts:
            with frozen_at(r.at):
                returns.receive_return(s, r.number, r.location, r.inspections)
        for r in receipts:
            with frozen_at(r.at):
                returns.refund_return(s, r.number)
        s.flush()
        expected = _returned_state(s)
        raise _Undo
    with store.transaction() as s:
        assert bulk.receive_returns(s, receipts) == rmas
        amounts = bulk.refund_returns(s, {r.number: r.at for r in receipts})
    with store.read() as s:
        got = _returned_state(s)
        assert inventory.verify_ledger(s) == []
    assert got == expected
    assert amounts[rmas[0]] > 0 and all(v > 0 for v in amounts.values())
    assert {row[1] for row in got["returns"]} == {"closed"}


@pytest.mark.parametrize("bad, error", [
    (bulk.ReturnReceipt("RMA-NOPE", "WH-EAST"), UnknownReturn),
    (bulk.ReturnReceipt("{0}", "NOWHERE"), UnknownLocation),
    (bulk.ReturnReceipt("{0}", "WH-EAST", [{"line_no": 9, "condition": "damaged"}]), ValidationError),
    (bulk.ReturnReceipt("{0}", "WH-EAST", [{"line_no": 1, "condition": "broken"}]), ValidationError),
    (bulk.ReturnReceipt("{1}", "WH-EAST"), InvalidTransition),  # listed twice
])
def test_a_return_that_cannot_be_received_refuses_the_batch(store, bad, error):
    rmas = _delivered_with_returns(store)
    bad = bulk.ReturnReceipt(bad.number.format(*rmas), bad.location, bad.inspections)
    refused(store, error, lambda s: bulk.receive_returns(s, [bulk.ReturnReceipt(rmas[1], "WH-EAST"), bad]))


def test_a_return_that_cannot_be_refunded_refuses_the_batch(store):
    rmas = _delivered_with_returns(store)
    with store.transaction() as s:
        bulk.refund_returns(s, {rmas[2]: NOW + timedelta(days=4)})
    refused(store, InvalidTransition, lambda s: bulk.refund_returns(s, {rmas[0]: NOW, rmas[2]: NOW}))  # refunded already
    refused(store, UnknownReturn, lambda s: bulk.refund_returns(s, {rmas[0]: NOW, "RMA-NOPE": NOW}))


# --- purchase orders received in a batch ----------------------------------------------------------------


def _sent_po(db, lines, location="WH-EAST"):
    from om_core.services import purchasing

    with db.transaction() as s, frozen_at(NOW - timedelta(days=5)):
        po = purchasing.create_purchase_order(s, {"supplier": "ACME", "location": location, "lines": lines}, actor="buyer")
        purchasing.send_purchase_order(s, po.number)
        return po.number


def _received_state(s):
    from om_core.models import OutboxMessage, PurchaseOrder, PurchaseOrderLine, Reservation, Stock

    q = lambda stmt: sorted(tuple(map(str, r)) for r in s.execute(stmt))  # noqa: E731
    return {
        "pos": q(select(PurchaseOrder.number, PurchaseOrder.status, PurchaseOrder.closed_at)),
        "po_lines": q(select(PurchaseOrderLine.id, PurchaseOrderLine.quantity_received)),
        "stock": q(select(Stock.product_id, Stock.location_id, Stock.on_hand)),
        "movements": q(select(Stock.product_id, Stock.location_id, StockMovement.kind, StockMovement.quantity, StockMovement.reference,
                              StockMovement.at).join(Stock, Stock.id == StockMovement.stock_id)),
        "reserved": q(select(Reservation.order_line_id, Reservation.quantity, Reservation.status)),
        "lines": q(select(OrderLine.id, OrderLine.quantity_backordered)),
        "orders": q(select(Order.number, Order.status)),
        "webhooks": q(select(OutboxMessage.kind, OutboxMessage.subject)),
    }


def test_receive_purchase_orders_in_a_batch_like_one_by_one(store):
    from om_core.services import purchasing

    waiting = place(store, [web_order(("PREORDER", 2), allow_backorder=True)])[0]  # waits for the goods
    first = _sent_po(store, [{"sku": "TEE-S", "quantity": 10}, {"sku": "KETTLE", "quantity": 4}], "WH-EAST")
    second = _sent_po(store, [{"sku": "PREORDER", "quantity": 6}], "WH-WEST")
    receipts = [(first, [{"sku": "TEE-S", "quantity": 4}]), (second, None), (first, [{"sku": "TEE-S", "quantity": 6}, {"sku": "KETTLE", "quantity": 4}])]
    with pytest.raises(_Undo), store.transaction() as s, frozen_at(NOW):
        for number, lines in receipts:
            purchasing.receive_purchase_order(s, number, lines, actor="clerk")
        s.flush()
        expected = _received_state(s)
        raise _Undo
    with store.transaction() as s, frozen_at(NOW):
        statuses = bulk.receive_purchase_orders(s, receipts, actor="clerk")
    assert statuses == {first: "received", second: "received"}
    with store.read() as s:
        assert _received_state(s) == expected
        assert orders.get_order(s, waiting.number).status == "placed"  # the backorder got its units
        assert inventory.verify_ledger(s) == []


@pytest.mark.parametrize("receipt, error", [
    (("PO-NOPE", None), "UnknownPurchaseOrder"),
    (("{0}", [{"sku": "MUG", "quantity": 1}]), "ValidationError"),  # not on the PO
    (("{0}", [{"sku": "TEE-S", "quantity": 10}]), "ValidationError"),  # 9 outstanding after the first receipt
    (("{0}", [{"sku": "TEE-S", "quantity": 1}, {"sku": "TEE-S", "quantity": 1}]), "ValidationError"),
    (("{0}", [{"sku": "TEE-S", "quantity": 0}]), "ValidationError"),
    (("{0}", []), "ValidationError"),
    (("{1}", None), "InvalidTransition"),  # never sent
])
def test_a_receipt_that_cannot_be_booked_refuses_the_batch(store, receipt, error):
    import om_core.errors as errors
    from om_core.services import purchasing

    number = _sent_po(store, [{"sku": "TEE-S", "quantity": 10}])
    with store.transaction() as s:
        draft = purchasing.create_purchase_order(s, {"supplier": "ACME", "location": "WH-EAST", "lines": [{"sku": "MUG", "quantity": 5}]}).number
    bad = (receipt[0].format(number, draft), receipt[1])
    refused(store, getattr(errors, error), lambda s: bulk.receive_purchase_orders(s, [(number, [{"sku": "TEE-S", "quantity": 1}]), bad]))


def _delay_state(s):
    from om_core.models import OutboxMessage, TrackingEvent

    q = lambda stmt: sorted(tuple(map(str, r)) for r in s.execute(stmt))  # noqa: E731
    return {
        "shipments": q(select(Shipment.number, Shipment.status, Shipment.delayed, Shipment.estimated_at)),
        "scans": q(select(TrackingEvent.shipment_id, TrackingEvent.kind, TrackingEvent.at, TrackingEvent.carrier_event_id,
                          TrackingEvent.description, TrackingEvent.received_at)),
        "events": q(select(OrderEvent.order_id, OrderEvent.kind, OrderEvent.data, OrderEvent.at)),
        "outbox": q(select(OutboxMessage.kind, OutboxMessage.dedupe_key, OutboxMessage.recipient, OutboxMessage.subject,
                           OutboxMessage.body_text, OutboxMessage.created_at)),
    }


def _shipped(store, *lines):
    numbers = [r.number for r in place(store, [web_order(line) for line in lines])]
    with store.transaction() as s:
        shipped = bulk.ship_orders(s, numbers, at=NOW + timedelta(days=1))
    with store.read() as s:
        return [s.scalar(select(Shipment.tracking_number).where(Shipment.number == n)) for ns in shipped.values() for n in ns]


def test_record_exceptions_in_a_batch_like_one_by_one(store):
    from om_core.services import fulfilment

    first, second = _shipped(store, ("MUG", 1), ("KETTLE", 1))
    late = NOW + timedelta(days=2)
    scans = [({"tracking_number": first, "kind": "exception", "at": late, "carrier_event_id": "c1", "description": "Weather delay"}, late),
             ({"tracking_number": second, "kind": "exception", "at": late, "carrier_event_id": "c2"}, late + timedelta(hours=1)),
             ({"tracking_number": first, "kind": "exception", "at": late, "carrier_event_id": "c1", "description": "Weather delay"}, late),
             ({"tracking_number": first, "kind": "exception", "at": late + timedelta(hours=5), "carrier_event_id": "c3",
               "estimated_delivery": late + timedelta(days=4)}, late + timedelta(hours=5))]
    with pytest.raises(_Undo), store.transaction() as s:
        for scan, at in scans:
            with frozen_at(at):
                fulfilment.record_tracking_event(s, scan)
        s.flush()
        expected = _delay_state(s)
        raise _Undo
    with store.transaction() as s, frozen_at(late + timedelta(hours=5)):
        assert bulk.record_exceptions(s, [scan for scan, _ in scans], received_at=[at for _, at in scans]) == 3
    with store.read() as s:
        assert _delay_state(s) == expected
        assert {x.status for x in s.scalars(select(Shipment))} == {"exception"}


@pytest.mark.parametrize("bad, error", [
    ({"tracking_number": "NOPE0000", "kind": "exception", "at": NOW, "carrier_event_id": "x"}, "UnknownShipment"),
    ({"tracking_number": "{0}", "kind": "delivered", "at": NOW, "carrier_event_id": "x"}, "ValidationError"),
    ({"tracking_number": "{0}", "kind": "exception", "carrier_event_id": "x"}, "ValidationError"),
])
def test_a_scan_that_cannot_be_recorded_refuses_the_batch(store, bad, error):
    from om_core.services import fulfilment

    (tracking,) = _shipped(store, ("MUG", 1))
    good = {"tracking_number": tracking, "kind": "exception", "at": NOW, "carrier_event_id": "ok"}
    bad = {k: v.format(tracking) if isinstance(v, str) else v for k, v in bad.items()}
    errors = {"UnknownShipment": fulfilment.UnknownShipment, "ValidationError": ValidationError}
    refused(store, errors[error], lambda s: bulk.record_exceptions(s, [good, bad]))
    refused(store, ValidationError, lambda s: bulk.record_exceptions(s, [good], received_at=[NOW, NOW]))


def _cancel_state(s):
    from om_core.models import OutboxMessage, PaymentTransaction, PromotionRedemption, Reservation

    q = lambda stmt: sorted(tuple(map(str, r)) for r in s.execute(stmt))  # noqa: E731
    return {
        "orders": q(select(Order.number, Order.status, Order.hold, Order.updated_at)),
        "lines": q(select(OrderLine.id, OrderLine.quantity_cancelled, OrderLine.quantity_backordered)),
        "reservations": q(select(Reservation.id, Reservation.status, Reservation.closed_at)),
        "movements": q(select(StockMovement.stock_id, StockMovement.kind, StockMovement.quantity, StockMovement.reserved_change,
                              StockMovement.reason, StockMovement.reference, StockMovement.actor, StockMovement.at)),
        "redemptions": q(select(PromotionRedemption.order_id, PromotionRedemption.voided)),
        "payments": q(select(PaymentTransaction.payment_id, PaymentTransaction.kind, PaymentTransaction.amount, PaymentTransaction.status,
                             PaymentTransaction.parent_reference, PaymentTransaction.at)),
        "events": q(select(OrderEvent.order_id, OrderEvent.kind, OrderEvent.actor, OrderEvent.data, OrderEvent.at)),
        "outbox": q(select(OutboxMessage.kind, OutboxMessage.dedupe_key, OutboxMessage.recipient, OutboxMessage.subject,
                           OutboxMessage.body_text, OutboxMessage.created_at)),
    }


def test_cancel_orders_in_a_batch_like_one_by_one(store):
    from om_core.services import promotions

    with store.transaction() as s:
        promotions.create_promotion(s, {"name": "Five off", "kind": "fixed", "scope": "order", "value": "5", "coupon_code": "FIVE"})
    placed = place(store, [web_order(("MUG", 1), ("TEE-S", 2), coupon_codes=["FIVE"]), web_order(("KETTLE", 1)), web_order(("BEANS", 2)),
                           {"channel": "pos-nyc", "delivery": "carry_out", "location": "ST-NYC", "lines": [{"sku": "BEANS", "quantity": 1}],
                            "payment_token": "tok_till"}])
    coupon, plain, shipped, till = (r.number for r in placed)
    with store.transaction() as s:
        bulk.ship_orders(s, [shipped], at=NOW + timedelta(hours=1))
    later = NOW + timedelta(hours=3)
    wanted = [bulk.Cancellation(coupon, "changed my mind", later), bulk.Cancellation("SO-NOPE", "?", later),
              bulk.Cancellation(shipped, "too slow", later), bulk.Cancellation(plain, "found it cheaper", later + timedelta(minutes=5)),
              bulk.Cancellation(plain, "twice", later + timedelta(minutes=6)), bulk.Cancellation(till, "regret", later)]
    with pytest.raises(_Undo), store.transaction() as s:
        outcomes = []
        for c in wanted:
            try:
                with frozen_at(c.at), s.begin_nested():
                    orders.cancel_order(s, c.number, reason=c.reason, actor="agent")
                outcomes.append(None)
            except StoreOMError as exc:
                outcomes.append(type(exc))
        s.flush()
        expected = _cancel_state(s)
        raise _Undo
    with store.transaction() as s, frozen_at(later + timedelta(minutes=6)):
        results = bulk.cancel_orders(s, wanted, actor="agent")
    assert [type(r.error) if r.error else None for r in results] == outcomes == [
        None, UnknownOrder, ModificationNotAllowed, None, InvalidTransition, ModificationNotAllowed]
    assert [r.number for r in results] == [coupon, None, None, plain, None, None]
    with store.read() as s:
        assert _cancel_state(s) == expected
        assert inventory.verify_ledger(s) == []
    assert any(row[1] == "void" for row in expected["payments"]) and any(row[1] == "True" for row in expected["redemptions"])
    assert sum(row[1] == "reservation_release" for row in expected["movements"]) == 3


def _purchase_orders(s):
    from om_core.models import PurchaseOrder, PurchaseOrderLine, Supplier

    return sorted(
        tuple(map(str, r)) for r in s.execute(
            select(Supplier.code, PurchaseOrder.location_id, PurchaseOrder.status, PurchaseOrder.expected_at, PurchaseOrder.created_by,
                   PurchaseOrder.created_at, PurchaseOrder.sent_at, PurchaseOrderLine.product_id, PurchaseOrderLine.quantity_ordered,
                   PurchaseOrderLine.quantity_received, PurchaseOrderLine.unit_cost)
            .join(Supplier, Supplier.id == PurchaseOrder.supplier_id).join(PurchaseOrderLine, PurchaseOrderLine.purchase_order_id == PurchaseOrder.id)))


def test_create_purchase_orders_in_a_batch_like_one_by_one(store):
    from om_core.services import purchasing

    wanted = [{"supplier": "ACME", "location": "WH-EAST", "lines": [{"sku": "TEE-S", "quantity": 10}, {"sku": "KETTLE", "quantity": 4, "unit_cost": "9.50"}]},
              {"supplier": "ACME", "location": "WH-WEST", "lines": [{"sku": "MUG", "quantity": 6}], "expected_at": NOW + timedelta(days=2)}]
    with pytest.raises(_Undo), store.transaction() as s, frozen_at(NOW):
        for request in wanted:
            purchasing.send_purchase_order(s, purchasing.create_purchase_order(s, request, actor="buyer").number)
        s.flush()
        expected = _purchase_orders(s)
        raise _Undo
    with store.transaction() as s, frozen_at(NOW):
        numbers = bulk.create_purchase_orders(s, wanted, actor="buyer", send=True)
        drafts = bulk.create_purchase_orders(s, wanted[:1], actor="buyer")
    with store.read() as s:
        assert [purchasing.get_purchase_order(s, n).status for n in [*numbers, *drafts]] == ["sent", "sent", "draft"]
        assert [r for r in _purchase_orders(s) if r[2] == "sent"] == expected


@pytest.mark.parametrize("bad, error", [
    ({"supplier": "NOPE", "location": "WH-EAST", "lines": [{"sku": "MUG", "quantity": 1}]}, "UnknownSupplier"),
    ({"supplier": "ACME", "location": "NOWHERE", "lines": [{"sku": "MUG", "quantity": 1}]}, "UnknownLocation"),
    ({"supplier": "ACME", "location": "WH-EAST", "lines": [{"sku": "NOPE", "quantity": 1}]}, "UnknownProduct"),
    ({"supplier": "ACME", "location": "WH-EAST", "lines": [{"sku": "MUG", "quantity": 1}, {"sku": "MUG", "quantity": 2}]}, "ValidationError"),
    ({"supplier": "ACME", "location": "WH-EAST", "lines": [{"sku": "MUG", "quantity": 0}]}, "ValidationError"),
    ({"supplier": "ACME", "location": "WH-EAST", "lines": []}, "ValidationError"),
])
def test_a_purchase_order_that_cannot_be_raised_refuses_the_batch(store, bad, error):
    import om_core.errors as errors

    good = {"supplier": "ACME", "location": "WH-EAST", "lines": [{"sku": "TEE-S", "quantity": 10}]}
    refused(store, getattr(errors, error), lambda s: bulk.create_purchase_orders(s, [good, bad], send=True))


# --- feedback in a batch --------------------------------------------------------------------------------


def test_record_feedbacks_in_a_batch_like_one_by_one(store):
    from om_core.models import Feedback
    from om_core.services import feedback

    delivered, waiting = (r.number for r in place(store, [web_order(("MUG", 1)), web_order(("TEE-S", 1))]))
    with store.transaction() as s:
        shipped = bulk.ship_orders(s, [delivered], at=NOW)
        bulk.deliver_shipments(s, {n: NOW + timedelta(days=2) for ns in shipped.values() for n in ns})
    at = NOW + timedelta(days=3)
    entries = [bulk.FeedbackEntry(delivered, {"rating": 5, "would_recommend": 9, "comment": "Lovely", "tags": ["price", "price", "accuracy"]}, at),
               bulk.FeedbackEntry(delivered, {"rating": 1}, at),  # one per order
               bulk.FeedbackEntry(waiting, {"rating": 4}, at),  # not delivered yet
               bulk.FeedbackEntry("SO-NOPE", {"rating": 4}, at),
               bulk.FeedbackEntry(delivered, {"rating": 6}, at)]
    state = lambda s: (sorted(tuple(map(str, r)) for r in s.execute(select(Feedback.order_id, Feedback.customer_id, Feedback.rating,  # noqa: E731
                                                                                Feedback.would_recommend, Feedback.comment, Feedback.tags,
                                                                                Feedback.created_at))),
                       sorted(tuple(map(str, r)) for r in s.execute(select(OrderEvent.order_id, OrderEvent.data, OrderEvent.at)
                                                                     .where(OrderEvent.kind == "feedback_received"))))
    with pytest.raises(_Undo), store.transaction() as s:
        codes = []
        for e in entries:
            try:
                with frozen_at(e.at), s.begin_nested():
                    feedback.record_feedback(s, e.order_number, e.feedback)
                codes.append(None)
            except StoreOMError as exc:
                codes.append(exc.code)
        expected = state(s), codes
        raise _Undo
    with store.transaction() as s:
        results = bulk.record_feedbacks(s, entries)
    with store.read() as s:
        assert (state(s), [r.error.code if r.error else None for r in results]) == expected
    assert expected[1] == [None, "already_exists", "invalid_transition", "unknown_order", "validation_error"]


def test_a_shipping_run_writes_the_same_with_shared_updates_as_row_by_row(store, monkeypatch):
    """Rows handed over at one moment are updated with `IN (...)` lists once there are many; the
    result must be exactly what the row-by-row updates write."""
    from om_core.models import Reservation

    numbers = [r.number for r in place(store, [web_order(("TEE-M", 2)), web_order(("MUG", 1), ("KETTLE", 1)), web_order(("MUG", 1))])]

    def state(s):
        return {
            "orders": sorted(s.execute(select(Order.number, Order.status, Order.fulfilment_started_at, Order.updated_at)).all()),
            "reservations": sorted(s.execute(select(Reservation.id, Reservation.status, Reservation.closed_at)).all()),
            "lines": sorted(s.execute(select(OrderLine.id, OrderLine.quantity_fulfilled)).all()),
        }

    monkeypatch.setattr(bulk, "_SHARED_MOMENT", 10_000)
    with pytest.raises(_Undo), store.transaction() as s:
        bulk.ship_orders(s, numbers, at=NOW + timedelta(days=1))
        row_by_row = state(s)
        raise _Undo
    monkeypatch.setattr(bulk, "_SHARED_MOMENT", 1)
    with store.transaction() as s:
        bulk.ship_orders(s, numbers, at=NOW + timedelta(days=1))
    with store.read() as s:
        assert state(s) == row_by_row
        assert {status for _, status, _, _ in row_by_row["orders"]} == {"fulfilled"}
        assert {status for _, status, _ in row_by_row["reservations"]} == {"fulfilled"}
        assert inventory.verify_ledger(s) == []
