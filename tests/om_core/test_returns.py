"""Returns: opening (what may come back, and when), receipt and inspection through the stock ledger,
refunds by policy through the payment ledger, and exchanges.

Known answers use the store in store.py with Ada in New York (8.875% on goods and shipping):

    ORDER_A = TEE-S 1 + MUG 1: 32.50 goods < 50.00, so standard shipping 4.95.
        TEE-S 20.00 + tax 1.775 -> 1.78 = 21.78;  MUG 12.50 + tax 1.109 -> 1.11 = 13.61
        shipping 4.95 + tax 0.439 -> 0.44 = 5.39;  total 21.78 + 13.61 + 5.39 = 40.78
    ORDER_B = TEE-S 2 + MUG 1: 52.50 goods >= 50.00, free shipping.
        TEE-S 40.00 + tax 3.55 = 43.55;  MUG 13.61;  total 57.16
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from om_core.clock import frozen_at
from om_core.errors import InvalidTransition, PaymentError, UnknownLocation, ValidationError
from om_core.models import Location, OutboxMessage, Payment, PaymentTransaction, Product, Stock, StockMovement
from om_core.services import fulfilment, inventory, orders, payments, returns
from om_core.services.returns import NotReturnable, UnknownReturn
from tests.om_core.helpers import available, fields, refused
from tests.om_core.store import web_order

T0 = datetime(2030, 3, 4, 15, 0, tzinfo=UTC)  # placement
DAY = timedelta(days=1)
DELIVERED = T0 + 2 * DAY  # every parcel here is delivered then
ORDER_A = (("TEE-S", 1), ("MUG", 1))
ORDER_B = (("TEE-S", 2), ("MUG", 1))


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STOREOM_HOME", str(tmp_path))
    monkeypatch.delenv("STOREOM_RETURN_WINDOW_DAYS", raising=False)
    return tmp_path


@pytest.fixture(autouse=True)
def clock():
    """Placed and shipped at T0, delivered two days later; the return business happens a day after that."""
    with frozen_at(T0 + 3 * DAY):
        yield


# --- helpers -----------------------------------------------------------------------------------


def delivered_order(db, *lines, deliver=True, **extra) -> str:
    """Place at T0, ship every parcel, and (unless told otherwise) deliver them all at DELIVERED."""
    with frozen_at(T0):
        with db.transaction() as s:
            number = orders.place_order(s, web_order(*lines, **extra)).number
            shipments = [sh.number for sh in fulfilment.create_shipments(s, number)]
        tracking = []
        for sh in shipments:
            with db.transaction() as s:
                tracking.append(fulfilment.dispatch_shipment(s, sh).tracking_number)
    if deliver:
        for i, t in enumerate(tracking):
            with frozen_at(DELIVERED), db.transaction() as s:
                fulfilment.record_tracking_event(s, {"tracking_number": t, "kind": "delivered", "carrier_event_id": f"d{i}", "at": DELIVERED})
    return number


def open_return(db, number, reason, *lines, **extra) -> str:
    with db.transaction() as s:
        return returns.open_return(s, number, {"reason_code": reason, "lines": [{"line_no": n, "quantity": q} for n, q in lines], **extra},
                                   actor="agent").number


def receive(db, rma, location="WH-EAST", inspections=None) -> dict:
    with db.transaction() as s:
        return returns.return_view(s, returns.receive_return(s, rma, location, inspections, actor="dock"))


def refund(db, rma, **kw) -> dict:
    with db.transaction() as s:
        return returns.return_view(s, returns.refund_return(s, rma, **kw))


def rma_view(db, rma) -> dict:
    with db.read() as s:
        return returns.return_view(s, returns.get_return(s, rma))


def view(db, number) -> dict:
    with db.read() as s:
        return orders.order_view(s, orders.get_order(s, number))


def balance(db, number) -> payments.Balance:
    with db.read() as s:
        order = orders.get_order(s, number)
        return payments.balance(s.scalar(select(Payment).where(Payment.order_id == order.id)))


def messages(db, number, kind) -> list:
    with db.read() as s:
        order = orders.get_order(s, number)
        return list(s.execute(select(OutboxMessage.dedupe_key, OutboxMessage.body_text)
                              .where(OutboxMessage.order_id == order.id, OutboxMessage.kind == kind).order_by(OutboxMessage.id)).all())


def movements(db, sku, location) -> list[tuple]:
    """(kind, quantity, reference, reason) of one stock row's ledger, oldest first."""
    with db.read() as s:
        return [tuple(r) for r in s.execute(
            select(StockMovement.kind, StockMovement.quantity, StockMovement.reference, StockMovement.reason)
            .join(Stock, Stock.id == StockMovement.stock_id).join(Product, Product.id == Stock.product_id)
            .join(Location, Location.id == Stock.location_id)
            .where(Product.sku == sku, Location.code == location).order_by(StockMovement.id))]


def on_hand(db, sku, location) -> int:
    with db.read() as s:
        return inventory.available_to_promise(s, sku, location=location)["locations"][0]["on_hand"]


def line(db, number, line_no):
    with db.read() as s:
        l = next(l for l in orders.get_order(s, number).lines if l.line_no == line_no)
        return {"delivered": l.quantity_delivered, "returned": l.quantity_returned, "fulfilled": l.quantity_fulfilled}


def assert_ledger_consistent(db) -> None:
    with db.read() as s:
        assert inventory.verify_ledger(s) == []


def open_request(number, reason, *lines):
    return lambda s: returns.open_return(s, number, {"reason_code": reason, "lines": [{"line_no": n, "quantity": q} for n, q in lines]})


# --- opening a return ----------------------------------------------------------------------------


def test_open_a_return_for_delivered_lines(store):
    number = delivered_order(store, *ORDER_B)
    assert view(store, number)["status"] == "delivered"
    with store.transaction() as s:
        rma = returns.open_return(s, number, {
            "reason_code": "size_fit", "note": "too small",
            "lines": [{"line_no": 1, "quantity": 2}, {"line_no": 2, "quantity": 1, "reason_code": "damaged"}],
        }, actor="agent")
        assert (rma.note, rma.opened_by, rma.opened_at) == ("too small", "agent", T0 + 3 * DAY)
        shown = returns.return_view(s, rma)
    assert shown["number"].startswith("RMA-")
    assert (shown["order"], shown["status"], shown["reason_code"], shown["received_at"], shown["refund_amount"], shown["exchange_order"]) == (
        number, "open", "size_fit", None, None, None)
    # Each line keeps its own reason; a line without one takes the return's.
    assert [(l["line_no"], l["sku"], l["quantity"], l["reason_code"], l["condition"], l["refund_amount"]) for l in shown["lines"]] == [
        (1, "TEE-S", 2, "size_fit", None, None), (2, "MUG", 1, "damaged", None, None)]
    event = view(store, number)["events"][-1]
    assert (event["kind"], event["data"]["return_number"], event["data"]["lines"]) == ("return_opened", shown["number"], {"1": 2, "2": 1})
    assert view(store, number)["status"] == "delivered", "opening a return moves no goods"
    assert line(store, number, 1)["returned"] == 0


def test_return_of_an_undelivered_line_is_refused(store):
    # TEE-S ships from WH-EAST, KETTLE from WH-WEST; only the TEE-S parcel has arrived.
    number = delivered_order(store, ("TEE-S", 1), ("KETTLE", 1), deliver=False)
    with store.read() as s:
        east_id = s.scalar(select(Location.id).where(Location.code == "WH-EAST"))
        east_tracking = next(sh.tracking_number for sh in fulfilment.shipments_for(s, orders.get_order(s, number)) if sh.location_id == east_id)
    with store.transaction() as s:
        fulfilment.record_tracking_event(s, {"tracking_number": east_tracking, "kind": "delivered", "carrier_event_id": "d", "at": DELIVERED})

    err = refused(store, ValidationError, open_request(number, "size_fit", (2, 1)))
    assert fields(err) == ["lines.2"]
    assert "lines.2" in err.message and "0 delivered" in err.message
    open_return(store, number, "size_fit", (1, 1))  # the delivered line can come back

    placed_only = delivered_order(store, ("MUG", 1), deliver=False)
    assert fields(refused(store, ValidationError, open_request(placed_only, "other", (1, 1)))) == ["lines.1"]


def test_return_of_more_than_was_delivered_is_refused(store):
    number = delivered_order(store, *ORDER_B)
    err = refused(store, ValidationError, open_request(number, "size_fit", (1, 3)))
    assert err.errors == [{"field": "lines.1", "reason": "3 requested, 2 delivered and not already being returned"}]


def test_units_on_an_open_return_cannot_be_returned_again(store):
    number = delivered_order(store, *ORDER_B)
    open_return(store, number, "size_fit", (1, 1))
    err = refused(store, ValidationError, open_request(number, "size_fit", (1, 2)))
    assert err.errors == [{"field": "lines.1", "reason": "2 requested, 1 delivered and not already being returned"}]
    second = open_return(store, number, "size_fit", (1, 1))  # the other shirt
    refused(store, ValidationError, open_request(number, "size_fit", (1, 1)))
    receive(store, second)  # received units stay returned
    refused(store, ValidationError, open_request(number, "size_fit", (1, 1)))


def test_unknown_or_repeated_lines_are_refused(store):
    number = delivered_order(store, *ORDER_B)
    err = refused(store, ValidationError, open_request(number, "other", (1, 1), (9, 1)))
    assert err.errors == [{"field": "lines.9", "reason": "no such line on the order"}]
    err = refused(store, ValidationError, open_request(number, "other", (1, 1), (1, 1)))
    assert err.errors == [{"field": "lines.1", "reason": "listed twice"}]


@pytest.mark.parametrize("request_, field", [
    ({"reason_code": "changed_my_mind", "lines": [{"line_no": 1, "quantity": 1}]}, "reason_code"),
    ({"reason_code": "other", "lines": [{"line_no": 1, "quantity": 0}]}, "lines.0.quantity"),
    ({"reason_code": "other", "lines": [{"line_no": 0, "quantity": 1}]}, "lines.0.line_no"),
    ({"reason_code": "other", "lines": []}, "lines"),
    ({"reason_code": "other", "lines": [{"line_no": 1, "quantity": 1, "reason_code": "bored"}]}, "lines.0.reason_code"),
])
def test_malformed_return_requests_are_refused(store, request_, field):
    number = delivered_order(store, *ORDER_B)
    assert fields(refused(store, ValidationError, lambda s: returns.open_return(s, number, request_))) == [field]


def test_non_returnable_sku_is_refused(store):
    number = delivered_order(store, ("BEANS", 2), ("MUG", 1))
    err = refused(store, NotReturnable, open_request(number, "no_longer_needed", (1, 1)))
    assert err.details == {"sku": "BEANS"}
    assert "cannot be returned" in err.message
    refused(store, NotReturnable, open_request(number, "no_longer_needed", (2, 1), (1, 1)))
    open_return(store, number, "no_longer_needed", (2, 1))  # the mug can


def test_return_window_closes_30_days_after_delivery(store):
    number = delivered_order(store, *ORDER_B)
    with frozen_at(DELIVERED + 31 * DAY):
        err = refused(store, NotReturnable, open_request(number, "size_fit", (1, 1)))
    assert err.details == {"sku": "TEE-S", "reason": "window_closed"}
    assert "closed on 2030-04-05" in err.message
    with frozen_at(DELIVERED + 30 * DAY):  # the last moment of the window
        open_return(store, number, "size_fit", (1, 1))


def test_return_window_follows_the_setting(store, monkeypatch):
    number = delivered_order(store, *ORDER_B)
    monkeypatch.setenv("STOREOM_RETURN_WINDOW_DAYS", "14")
    with frozen_at(DELIVERED + 15 * DAY):
        refused(store, NotReturnable, open_request(number, "size_fit", (1, 1)))


# --- receiving -----------------------------------------------------------------------------------


def test_resellable_units_go_back_on_the_shelf_where_they_are_received(store):
    number = delivered_order(store, *ORDER_B)
    rma = open_return(store, number, "size_fit", (1, 1))
    assert available(store, "TEE-S", "WH-WEST") == 0

    shown = receive(store, rma, "WH-WEST")
    assert (shown["status"], shown["received_at"]) == ("received", (T0 + 3 * DAY).isoformat())
    assert [(l["sku"], l["condition"]) for l in shown["lines"]] == [("TEE-S", "resellable")]
    assert available(store, "TEE-S", "WH-WEST") == 1
    assert movements(store, "TEE-S", "WH-WEST") == [("return", 1, f"return:{rma}", "size_fit")]
    assert on_hand(store, "TEE-S", "WH-EAST") == 8, "the shelf it was sold from is unchanged"
    assert line(store, number, 1) == {"delivered": 2, "returned": 1, "fulfilled": 2}
    assert view(store, number)["status"] == "partially_returned"
    [(key, body)] = messages(store, number, "return_received")
    assert key == f"return_received:{number}:{rma}" and rma in body

    err = refused(store, InvalidTransition, lambda s: returns.receive_return(s, rma, "WH-EAST"))
    assert err.details == {"return_number": rma}
    assert_ledger_consistent(store)


def test_damaged_units_are_received_then_written_off(store):
    number = delivered_order(store, *ORDER_B)
    rma = open_return(store, number, "damaged", (1, 2), (2, 1))
    assert (on_hand(store, "TEE-S", "WH-EAST"), on_hand(store, "MUG", "WH-EAST")) == (8, 99)

    shown = receive(store, rma, "WH-EAST", [{"line_no": 2, "condition": "damaged"}])
    assert [(l["sku"], l["condition"]) for l in shown["lines"]] == [("TEE-S", "resellable"), ("MUG", "damaged")]
    assert movements(store, "MUG", "WH-EAST")[-2:] == [("return", 1, f"return:{rma}", "damaged"), ("write_off", -1, f"return:{rma}", "damaged")]
    assert on_hand(store, "MUG", "WH-EAST") == 99, "in and written off: on hand unchanged"
    assert on_hand(store, "TEE-S", "WH-EAST") == 10
    assert (line(store, number, 1)["returned"], line(store, number, 2)["returned"]) == (2, 1)
    assert view(store, number)["status"] == "returned"
    assert_ledger_consistent(store)


def test_wrong_items_are_written_off_too(store):
    number = delivered_order(store, *ORDER_A)
    rma = open_return(store, number, "wrong_item", (2, 1))
    receive(store, rma, "ST-NYC", [{"line_no": 2, "condition": "wrong_item"}])
    assert movements(store, "MUG", "ST-NYC")[-2:] == [("return", 1, f"return:{rma}", "wrong_item"), ("write_off", -1, f"return:{rma}", "wrong_item")]
    assert on_hand(store, "MUG", "ST-NYC") == 4
    assert_ledger_consistent(store)


def test_bad_receipts_are_refused(store):
    number = delivered_order(store, *ORDER_B)
    rma = open_return(store, number, "size_fit", (1, 1))
    err = refused(store, ValidationError, lambda s: returns.receive_return(s, rma, "WH-EAST", [{"line_no": 2, "condition": "damaged"}]))
    assert fields(err) == ["inspections.2"]
    err = refused(store, ValidationError, lambda s: returns.receive_return(s, rma, "WH-EAST", [{"line_no": 1, "condition": "lost"}]))
    assert fields(err) == ["condition"]
    refused(store, UnknownLocation, lambda s: returns.receive_return(s, rma, "WH-NOWHERE"))
    refused(store, UnknownReturn, lambda s: returns.receive_return(s, "RMA-NOPE", "WH-EAST"))


# --- refunds -------------------------------------------------------------------------------------


def test_customer_fault_refunds_the_goods_only(store):
    number = delivered_order(store, *ORDER_A)
    assert (view(store, number)["total"], balance(store, number).captured) == ("40.78", Decimal("40.78"))
    rma = open_return(store, number, "size_fit", (1, 1))
    receive(store, rma)
    shown = refund(store, rma)
    # TEE-S 1 of 1: its line total 21.78; no shipping back when the customer chose to return.
    assert (shown["status"], shown["refund_amount"]) == ("closed", "21.78")
    assert [l["refund_amount"] for l in shown["lines"]] == ["21.78"]
    bal = balance(store, number)
    assert (bal.captured, bal.refunded, bal.refundable) == (Decimal("40.78"), Decimal("21.78"), Decimal("19.00"))
    with store.read() as s:
        refunds = s.execute(select(PaymentTransaction.amount, PaymentTransaction.status, PaymentTransaction.idempotency_key)
                            .where(PaymentTransaction.kind == "refund")).all()
    assert [tuple(r) for r in refunds] == [(Decimal("21.78"), "succeeded", f"refund:{rma}")]
    [(key, body)] = messages(store, number, "refund_issued")
    assert key == f"refund_issued:{number}:{rma}"
    assert "$21.78" in body
    assert view(store, number)["events"][-1]["kind"] == "refund_issued"


def test_a_unit_refunds_its_share_of_the_line(store):
    number = delivered_order(store, *ORDER_B)
    rma = open_return(store, number, "no_longer_needed", (1, 1))
    # One of two shirts: 43.55 / 2 = 21.775 -> 21.78
    assert refund(store, rma)["refund_amount"] == "21.78"


def test_units_refunded_one_by_one_add_up_to_the_line_total(store):
    # Regression: each shirt used to refund 21.78 (43.55 / 2 rounded), 43.56 for a 43.55 line, and the
    # last return of the order was then refused for the missing cent (13.61 asked, 13.60 left).
    number = delivered_order(store, *ORDER_B)
    amounts = []
    for line_no in (1, 1, 2):
        rma = open_return(store, number, "no_longer_needed", (line_no, 1))
        amounts.append(refund(store, rma)["refund_amount"])
    assert amounts == ["21.78", "21.77", "13.61"]
    bal = balance(store, number)
    assert bal.refunded == bal.captured == Decimal("57.16")


def test_restocking_fee_keeps_a_share_of_the_goods(store):
    number = delivered_order(store, *ORDER_A)
    rma = open_return(store, number, "size_fit", (1, 1))
    # 21.78 less 10%: 2.178 -> 2.18 kept, 19.60 refunded
    shown = refund(store, rma, restocking_fee_rate=Decimal("0.10"))
    assert shown["refund_amount"] == "19.60"
    assert balance(store, number).refunded == Decimal("19.60")


def test_retailer_fault_adds_the_goods_share_of_shipping(store):
    number = delivered_order(store, *ORDER_A)
    rma = open_return(store, number, "damaged", (1, 1))
    # Goods 21.78 of 35.39 merchandise (21.78 + 13.61); shipping with its tax 5.39:
    # 21.78 + 5.39 x 21.78 / 35.39 = 21.78 + 3.3172 = 25.0972 -> 25.10. No restocking fee on our fault.
    shown = refund(store, rma, restocking_fee_rate=Decimal("0.10"))
    assert shown["refund_amount"] == "25.10"
    assert [l["refund_amount"] for l in shown["lines"]] == ["21.78"], "per line: the goods"
    assert (shown["status"], balance(store, number).refunded) == ("refunded", Decimal("25.10"))


def test_everything_back_on_retailer_fault_refunds_the_whole_order(store):
    number = delivered_order(store, *ORDER_A)
    rma = open_return(store, number, "defective", (1, 1), (2, 1))
    assert refund(store, rma)["refund_amount"] == "40.78"
    bal = balance(store, number)
    assert bal.refunded == bal.captured == Decimal("40.78")


def test_refunding_twice_is_refused(store):
    number = delivered_order(store, *ORDER_A)
    rma = open_return(store, number, "size_fit", (1, 1))
    refund(store, rma)
    err = refused(store, InvalidTransition, lambda s: returns.refund_return(s, rma))
    assert err.details == {"return_number": rma}
    assert balance(store, number).refunded == Decimal("21.78")


def test_refund_before_receipt_then_receipt_closes_the_return(store):
    number = delivered_order(store, *ORDER_A)
    rma = open_return(store, number, "size_fit", (1, 1))
    shown = refund(store, rma)
    assert (shown["status"], shown["received_at"]) == ("refunded", None)
    shown = receive(store, rma)
    assert shown["status"] == "closed"
    assert available(store, "TEE-S", "WH-EAST") == 10
    refused(store, InvalidTransition, lambda s: returns.receive_return(s, rma, "WH-EAST"))
    refused(store, InvalidTransition, lambda s: returns.refund_return(s, rma))
    assert_ledger_consistent(store)


def test_refund_above_what_is_left_captured_is_refused(store):
    number = delivered_order(store, *ORDER_A)
    with store.transaction() as s:  # a goodwill refund by hand first: 40.78 - 30.00 = 10.78 left
        payments.refund(s, number, Decimal("30.00"))
    rma = open_return(store, number, "size_fit", (1, 1))
    err = refused(store, PaymentError, lambda s: returns.refund_return(s, rma))
    assert (err.details["amount"], err.details["limit"]) == ("21.78", "10.78")
    assert rma_view(store, rma)["status"] == "open"


@pytest.mark.parametrize("rate", ["1.5", "1", "-0.10"])
def test_restocking_fee_rate_must_be_a_fraction(store, rate):
    number = delivered_order(store, *ORDER_A)
    rma = open_return(store, number, "size_fit", (1, 1))
    err = refused(store, ValidationError, lambda s: returns.refund_return(s, rma, restocking_fee_rate=Decimal(rate)))
    assert fields(err) == ["restocking_fee_rate"]


# --- exchanges -----------------------------------------------------------------------------------


def test_exchange_places_a_no_charge_replacement_order(store):
    number = delivered_order(store, *ORDER_A)
    rma = open_return(store, number, "size_fit", (1, 1))
    assert available(store, "TEE-M", "WH-EAST") == 5
    with store.transaction() as s:
        replacement = returns.create_exchange(s, rma, [{"sku": "TEE-M", "quantity": 1}], actor="agent")
        shown = orders.order_view(s, replacement)
    assert shown["number"] != number
    assert (shown["status"], shown["subtotal"], shown["shipping_total"], shown["tax_total"], shown["total"]) == (
        "placed", "0.00", "0.00", "0.00", "0.00")
    assert [(l["sku"], l["quantity"], l["unit_price"], l["line_total"]) for l in shown["lines"]] == [("TEE-M", 1, "0.00", "0.00")]
    assert shown["lines"][0]["reservations"] == [{"location": "WH-EAST", "quantity": 1, "status": "active"}]
    assert shown["payment"] is None
    assert shown["events"][0]["kind"] == "replacement_order_placed"
    assert shown["events"][0]["data"]["replaces"] == number
    assert available(store, "TEE-M", "WH-EAST") == 4
    assert rma_view(store, rma)["exchange_order"] == shown["number"]
    assert view(store, number)["events"][-1]["data"]["replacement"] == shown["number"]

    # The replacement ships like any order, with nothing to capture.
    with store.transaction() as s:
        [sh] = fulfilment.create_shipments(s, shown["number"])
        fulfilment.dispatch_shipment(s, sh.number)
    assert view(store, shown["number"])["status"] == "fulfilled"
    assert_ledger_consistent(store)


def test_exchange_limits(store):
    number = delivered_order(store, *ORDER_B)
    rma = open_return(store, number, "size_fit", (1, 2))
    err = refused(store, ValidationError, lambda s: returns.create_exchange(s, rma, [{"sku": "TEE-M", "quantity": 2}, {"sku": "TEE-L", "quantity": 1}]))
    assert fields(err) == ["lines"]
    assert "at most the 2 unit(s)" in err.message
    refused(store, ValidationError, lambda s: returns.create_exchange(s, rma, []))
    refused(store, UnknownReturn, lambda s: returns.create_exchange(s, "RMA-NOPE", [{"sku": "TEE-M", "quantity": 1}]))

    with store.transaction() as s:
        returns.create_exchange(s, rma, [{"sku": "TEE-M", "quantity": 1}, {"sku": "TEE-L", "quantity": 1}])
    err = refused(store, InvalidTransition, lambda s: returns.create_exchange(s, rma, [{"sku": "TEE-M", "quantity": 1}]))
    assert err.details == {"return_number": rma}


def test_a_till_sale_can_be_returned_to_the_store(store):
    from om_core.services import orders as order_service
    from om_core.services import returns as return_service

    with store.transaction() as s:
        number = order_service.place_order(s, {"channel": "pos-nyc", "delivery": "carry_out", "location": "ST-NYC",
                                               "lines": [{"sku": "MUG", "quantity": 2}], "payment_token": "tok_till"}).number
    with store.transaction() as s:
        rma = return_service.open_return(s, number, {"reason_code": "no_longer_needed", "lines": [{"line_no": 1, "quantity": 1}]})
        return_service.receive_return(s, rma.number, "ST-NYC")
        refunded = return_service.refund_return(s, rma.number)
        # prices include tax at the till: one mug of 12.50 comes back in full
        assert str(refunded.refund_amount) == "12.50"
