"""Fulfilment: shipments per location, pick lists, packing, dispatch (label, sale, capture, message),
carrier tracking, delay detection and in-store pickup (ready, collected, expired).

Time is frozen at T0 for every test (see `clock`): promises, pickup holds and delays are exact.
Labels are written under a per-test STOREOM_HOME (see `home`), never into the repository.
The refusal of a pickup at a store without pickup is covered at placement in
test_orders.py::test_pickup_at_a_store_without_pickup_is_refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from om_core.clock import frozen_at
from om_core.errors import InvalidTransition, UnknownLocation, ValidationError
from om_core.models import (
    Location,
    OutboxMessage,
    Payment,
    PaymentTransaction,
    Product,
    Stock,
    StockMovement,
    TrackingEvent,
)
from om_core.services import fulfilment, inventory, orders, payments
from om_core.services.fulfilment import UnknownShipment
from tests.om_core.helpers import available, fields, refused, table_snapshot
from tests.om_core.store import web_order

T0 = datetime(2030, 3, 4, 15, 0, tzinfo=UTC)  # placement time of every order here
DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STOREOM_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture(autouse=True)
def clock():
    with frozen_at(T0):
        yield


# --- helpers -----------------------------------------------------------------------------------


def place(db, *lines, **extra) -> str:
    with db.transaction() as s:
        return orders.place_order(s, web_order(*lines, **extra)).number


def create(db, number) -> list[dict]:
    with db.transaction() as s:
        return [fulfilment.shipment_view(s, sh) for sh in fulfilment.create_shipments(s, number, actor="test")]


def dispatch(db, shipment, **kw) -> dict:
    with db.transaction() as s:
        return fulfilment.shipment_view(s, fulfilment.dispatch_shipment(s, shipment, actor="test", **kw))


def track(db, tracking, kind, event_id, at, **extra) -> None:
    with db.transaction() as s:
        fulfilment.record_tracking_event(s, {"tracking_number": tracking, "kind": kind, "carrier_event_id": event_id, "at": at, **extra})


def shipment(db, number) -> dict:
    with db.read() as s:
        return fulfilment.shipment_view(s, fulfilment.get_shipment(s, number))


def view(db, number) -> dict:
    with db.read() as s:
        return orders.order_view(s, orders.get_order(s, number))


def messages(db, number, kind=None) -> list:
    """The order's outbox rows (kind, dedupe_key, subject, body_text), oldest first."""
    with db.read() as s:
        order = orders.get_order(s, number)
        stmt = (select(OutboxMessage.kind, OutboxMessage.dedupe_key, OutboxMessage.subject, OutboxMessage.body_text)
                .where(OutboxMessage.order_id == order.id).order_by(OutboxMessage.id))
        if kind is not None:
            stmt = stmt.where(OutboxMessage.kind == kind)
        return list(s.execute(stmt).all())


def balance(db, number) -> payments.Balance:
    with db.read() as s:
        order = orders.get_order(s, number)
        return payments.balance(s.scalar(select(Payment).where(Payment.order_id == order.id)))


def on_hand(db, sku, location) -> int:
    with db.read() as s:
        rows = inventory.available_to_promise(s, sku, location=location)["locations"]
    return rows[0]["on_hand"]


def movements(db, sku, location, kind=None) -> list[tuple]:
    """(kind, quantity, reserved_change, reference) of the ledger rows of one stock row, oldest first."""
    with db.read() as s:
        stmt = (select(StockMovement.kind, StockMovement.quantity, StockMovement.reserved_change, StockMovement.reference)
                .join(Stock, Stock.id == StockMovement.stock_id).join(Product, Product.id == Stock.product_id)
                .join(Location, Location.id == Stock.location_id)
                .where(Product.sku == sku, Location.code == location).order_by(StockMovement.id))
        if kind is not None:
            stmt = stmt.where(StockMovement.kind == kind)
        return [tuple(r) for r in s.execute(stmt)]


def assert_ledger_consistent(db) -> None:
    with db.read() as s:
        assert inventory.verify_ledger(s) == []


def shipped_to_the_door(db, *lines, **extra) -> tuple[str, list[dict]]:
    """Place an order, create its shipments and dispatch them all."""
    number = place(db, *lines, **extra)
    return number, [dispatch(db, sh["number"]) for sh in create(db, number)]


# --- shipments ---------------------------------------------------------------------------------


def test_create_shipments_makes_one_shipment_per_location(store):
    # TEE-M: 5 at WH-EAST and 5 at WH-WEST, so 8 split 5 + 3; SOFA ships from the supplier (dropship).
    number = place(store, ("TEE-M", 8), ("SOFA", 1))
    created = create(store, number)
    assert [(sh["location"], sh["kind"], sh["status"], sh["lines"]) for sh in created] == [
        ("WH-EAST", "ship", "pending", [{"sku": "TEE-M", "quantity": 5}]),
        ("WH-WEST", "ship", "pending", [{"sku": "TEE-M", "quantity": 3}]),
        ("DS-DROP", "dropship", "pending", [{"sku": "SOFA", "quantity": 1}]),
    ]
    assert {(sh["carrier"], sh["service_level"]) for sh in created} == {("usps", "standard")}
    assert {sh["promised_at"] for sh in created} == {(T0 + 5 * DAY).isoformat()}, "standard promises 5 days"
    assert all(sh["number"].startswith("SH-") and sh["tracking_number"] is None for sh in created)
    assert len({sh["number"] for sh in created}) == 3
    events = [e for e in view(store, number)["events"] if e["kind"] == "shipment_created"]
    assert [(e["data"]["location"], e["data"]["shipment"]) for e in events] == [(sh["location"], sh["number"]) for sh in created]

    # Everything reserved is already in a shipment: a second create has nothing to do.
    err = refused(store, InvalidTransition, lambda s: fulfilment.create_shipments(s, number))
    assert number in err.message
    assert_ledger_consistent(store)


def test_a_dropship_parcel_is_sold_from_the_supplier_location(store, home):
    number = place(store, ("SOFA", 1))
    [sh] = create(store, number)
    assert (sh["location"], sh["kind"]) == ("DS-DROP", "dropship")
    sent = dispatch(store, sh["number"])
    assert Path(sent["label_path"]).read_bytes().startswith(b"%PDF")
    assert movements(store, "SOFA", "DS-DROP", "sale") == [("sale", -1, -1, f"order:{number}")]
    assert on_hand(store, "SOFA", "DS-DROP") == 2
    assert balance(store, number).open_authorization == Decimal("0.00")
    assert_ledger_consistent(store)


def test_create_shipments_again_after_dispatch_has_nothing_left(store):
    number, _ = shipped_to_the_door(store, ("MUG", 2))
    refused(store, InvalidTransition, lambda s: fulfilment.create_shipments(s, number))


def test_create_shipments_refused_for_cancelled_or_held_orders(store):
    cancelled = place(store, ("MUG", 1))
    held = place(store, ("MUG", 1))
    with store.transaction() as s:
        orders.cancel_order(s, cancelled, reason="test")
        orders.hold_order(s, held, reason="fraud check")
    refused(store, InvalidTransition, lambda s: fulfilment.create_shipments(s, cancelled))
    refused(store, InvalidTransition, lambda s: fulfilment.create_shipments(s, held))


def test_pick_list_totals_per_sku_and_lists_each_shipment(store):
    first = place(store, ("TEE-S", 2), ("MUG", 1))
    second = place(store, ("MUG", 3))
    [a] = create(store, first)
    [b] = create(store, second)
    assert (a["location"], b["location"]) == ("WH-EAST", "WH-EAST")
    with store.read() as s:
        picks = fulfilment.pick_list(s, "WH-EAST")
    assert picks["location"] == "WH-EAST"
    assert picks["generated_at"] == T0.isoformat()
    assert picks["skus"] == [
        {"sku": "MUG", "name": "Coffee mug", "quantity": 4},
        {"sku": "TEE-S", "name": "T-shirt S", "quantity": 2},
    ]
    assert picks["shipments"] == [
        {"shipment": a["number"], "order": first, "lines": [{"sku": "TEE-S", "quantity": 2}, {"sku": "MUG", "quantity": 1}]},
        {"shipment": b["number"], "order": second, "lines": [{"sku": "MUG", "quantity": 3}]},
    ]
    with store.read() as s:
        assert fulfilment.pick_list(s, "WH-WEST")["skus"] == []

    # A packed parcel has been picked: it leaves the list.
    with store.transaction() as s:
        fulfilment.pack_shipment(s, a["number"])
    with store.read() as s:
        picks = fulfilment.pick_list(s, "WH-EAST")
    assert picks["skus"] == [{"sku": "MUG", "name": "Coffee mug", "quantity": 3}]
    assert [p["shipment"] for p in picks["shipments"]] == [b["number"]]
    with store.read() as s, pytest.raises(UnknownLocation):
        fulfilment.pick_list(s, "WH-NOWHERE")


def test_pack_with_explicit_packages_sums_their_weight(store):
    [sh] = create(store, place(store, ("TEE-S", 2), ("MUG", 1)))
    with store.transaction() as s:
        packed = fulfilment.pack_shipment(s, sh["number"], [
            {"weight_kg": "1.2", "length_cm": "30", "width_cm": "20", "height_cm": "10"},
            {"weight_kg": "0.8"},
        ])
        assert [(p.weight_kg, p.length_cm, p.width_cm, p.height_cm) for p in packed.packages] == [
            (Decimal("1.2"), Decimal("30"), Decimal("20"), Decimal("10")),
            (Decimal("0.8"), Decimal("30"), Decimal("20"), Decimal("10")),  # default box
        ]
        assert packed.packed_at == T0
    shown = shipment(store, sh["number"])
    assert (shown["status"], Decimal(shown["weight_kg"])) == ("packed", Decimal("2.0"))
    # Packed once: packing again is refused.
    refused(store, InvalidTransition, lambda s: fulfilment.pack_shipment(s, sh["number"]))


def test_pack_by_default_is_one_box_of_the_goods_weight(store):
    [sh] = create(store, place(store, ("TEE-S", 2), ("MUG", 1)))
    with store.transaction() as s:
        packed = fulfilment.pack_shipment(s, sh["number"])
        # TEE-S weighs 0.5 kg (the default), MUG 0.4 kg: 2 x 0.5 + 0.4
        assert [p.weight_kg for p in packed.packages] == [Decimal("1.4")]
    assert Decimal(shipment(store, sh["number"])["weight_kg"]) == Decimal("1.4")


@pytest.mark.parametrize("package, field", [({"weight_kg": "0"}, "weight_kg"), ({"weight_kg": "1", "height_cm": "-3"}, "height_cm"),
                                            ({"weight_kg": "1", "colour": "red"}, "colour")])
def test_bad_packages_are_refused(store, package, field):
    [sh] = create(store, place(store, ("MUG", 1)))
    err = refused(store, ValidationError, lambda s: fulfilment.pack_shipment(s, sh["number"], [package]))
    assert fields(err) == [field]


def test_dispatch_prints_the_label_sells_the_units_captures_and_tells_the_customer(store, home):
    # TEE-M 8 by expedited: 160.00 goods, shipping 9.95 + 1.00/kg x (8 x 0.5 kg) = 13.95 (no free threshold).
    # NY tax 8.875%: goods 14.20, shipping 13.95 x 0.08875 = 1.238 -> 1.24. Line total 174.20; order total 189.39.
    number = place(store, ("TEE-M", 8), shipping_method="expedited")
    assert view(store, number)["total"] == "189.39"
    east, west = create(store, number)
    assert (east["location"], west["location"], east["carrier"]) == ("WH-EAST", "WH-WEST", "ups")

    sent = dispatch(store, east["number"])
    assert sent["status"] == "dispatched"
    assert sent["tracking_number"].startswith("UP") and len(sent["tracking_number"]) == 18
    label = Path(sent["label_path"])
    assert label == home / "labels" / f"{east['number']}.pdf"
    assert label.read_bytes().startswith(b"%PDF")
    assert [e["kind"] for e in sent["events"]] == ["label_created"]
    assert sent["tracking_url"] == f"https://www.ups.com/track?tracknum={sent['tracking_number']}"
    assert Decimal(sent["weight_kg"]) == Decimal("2.5"), "packed on the way out: 5 x 0.5 kg"

    # The units reserved at WH-EAST were sold there; WH-WEST still holds its 3.
    line = view(store, number)["lines"][0]
    assert sorted((r["location"], r["quantity"], r["status"]) for r in line["reservations"]) == [
        ("WH-EAST", 5, "fulfilled"), ("WH-WEST", 3, "active")]
    assert line["fulfilled"] == 5
    assert movements(store, "TEE-M", "WH-EAST", "sale") == [("sale", -5, -5, f"order:{number}")]
    assert movements(store, "TEE-M", "WH-WEST", "sale") == []
    assert (on_hand(store, "TEE-M", "WH-EAST"), available(store, "TEE-M", "WH-EAST")) == (0, 0)
    assert (on_hand(store, "TEE-M", "WH-WEST"), available(store, "TEE-M", "WH-WEST")) == (5, 2)
    assert view(store, number)["status"] == "partially_fulfilled"

    # The first parcel carries the shipping: 174.20 x 5/8 = 108.875, + 13.95 + 1.24 = 124.065 -> 124.07.
    bal = balance(store, number)
    assert (bal.authorized, bal.captured, bal.open_authorization) == (Decimal("189.39"), Decimal("124.07"), Decimal("65.32"))

    [msg] = messages(store, number, "shipped")
    assert msg.dedupe_key == f"shipped:{number}:{east['number']}"
    assert sent["tracking_url"] in msg.body_text
    assert sent["tracking_number"] in msg.subject + msg.body_text

    # The last parcel captures whatever is still open: nothing is left authorized.
    last = dispatch(store, west["number"])
    bal = balance(store, number)
    assert (bal.captured, bal.open_authorization) == (Decimal("189.39"), Decimal("0.00"))
    assert bal.captured == bal.authorized
    assert view(store, number)["status"] == "fulfilled"
    assert view(store, number)["lines"][0]["fulfilled"] == 8
    assert [m.dedupe_key for m in messages(store, number, "shipped")] == [f"shipped:{number}:{east['number']}", f"shipped:{number}:{last['number']}"]
    with store.read() as s:
        captures = s.scalars(select(PaymentTransaction.amount).where(PaymentTransaction.kind == "capture").order_by(PaymentTransaction.id)).all()
    assert captures == [Decimal("124.07"), Decimal("65.32")]
    assert_ledger_consistent(store)


def test_dispatch_with_a_given_carrier_and_tracking_number(store):
    [sh] = create(store, place(store, ("MUG", 1)))
    sent = dispatch(store, sh["number"], carrier="fedex", tracking_number="FX-000123")
    assert (sent["carrier"], sent["tracking_number"]) == ("fedex", "FX-000123")
    assert sent["tracking_url"] == "https://www.fedex.com/fedextrack/?trknbr=FX-000123"


def test_a_single_shipment_captures_everything_including_shipping(store):
    # MUG 1: 12.50 + 4.95 shipping + tax 1.11 + 0.44 = 19.00, all captured by the one parcel.
    number, _ = shipped_to_the_door(store, ("MUG", 1))
    bal = balance(store, number)
    assert (bal.authorized, bal.captured, bal.open_authorization) == (Decimal("19.00"), Decimal("19.00"), Decimal("0.00"))


def test_dispatching_twice_is_refused_and_writes_nothing(store):
    [sh] = create(store, place(store, ("MUG", 1)))
    dispatch(store, sh["number"])
    err = refused(store, InvalidTransition, lambda s: fulfilment.dispatch_shipment(s, sh["number"]))
    assert err.details["status"] == "dispatched"
    refused(store, UnknownShipment, lambda s: fulfilment.dispatch_shipment(s, "SH-NOPE"))


def test_nothing_leaves_while_the_order_is_on_hold(store):
    # Regression: a parcel created before the hold used to be dispatched (and the payment captured) anyway.
    number = place(store, ("MUG", 1))
    [sh] = create(store, number)
    with store.transaction() as s:
        orders.hold_order(s, number, reason="fraud check")
    err = refused(store, InvalidTransition, lambda s: fulfilment.dispatch_shipment(s, sh["number"]))
    assert err.details["status"] == "on_hold"
    assert balance(store, number).captured == Decimal("0.00")
    with store.transaction() as s:
        orders.release_order(s, number)
    assert dispatch(store, sh["number"])["status"] == "dispatched"

    pickup, counter = pickup_order(store)
    with store.transaction() as s:
        fulfilment.mark_ready_for_pickup(s, counter["number"])
        orders.hold_order(s, pickup, reason="fraud check")
    refused(store, InvalidTransition, lambda s: fulfilment.collect_pickup(s, counter["number"]))
    assert_ledger_consistent(store)


# --- tracking ----------------------------------------------------------------------------------


def test_tracking_moves_the_parcel_on_and_delivers_the_order(store):
    # TEE-S ships from WH-EAST, KETTLE from WH-WEST: two parcels.
    number, (east, west) = shipped_to_the_door(store, ("TEE-S", 1), ("KETTLE", 1))
    assert (east["location"], west["location"]) == ("WH-EAST", "WH-WEST")

    track(store, east["tracking_number"], "in_transit", "e1", T0 + DAY, location="Newark NJ")
    assert shipment(store, east["number"])["status"] == "in_transit"
    track(store, east["tracking_number"], "out_for_delivery", "e2", T0 + 2 * DAY)
    assert shipment(store, east["number"])["status"] == "out_for_delivery"
    [out] = messages(store, number, "out_for_delivery")
    assert east["tracking_number"] in out.body_text
    track(store, east["tracking_number"], "delivered", "e3", T0 + 2 * DAY + timedelta(hours=3))

    shown = shipment(store, east["number"])
    assert (shown["status"], shown["delivered_at"]) == ("delivered", (T0 + 2 * DAY + timedelta(hours=3)).isoformat())
    assert [e["kind"] for e in shown["events"]] == ["label_created", "in_transit", "out_for_delivery", "delivered"]
    assert shown["events"][1]["location"] == "Newark NJ"
    with store.read() as s:
        lines = {l.sku: l for l in orders.get_order(s, number).lines}
        assert (lines["TEE-S"].quantity_delivered, lines["KETTLE"].quantity_delivered) == (1, 0)
    assert view(store, number)["status"] == "fulfilled", "one parcel is still on its way"
    assert len(messages(store, number, "delivered")) == 1
    assert messages(store, number, "feedback_request") == []

    track(store, west["tracking_number"], "delivered", "w1", T0 + 3 * DAY)
    assert view(store, number)["status"] == "delivered"
    assert [m.dedupe_key for m in messages(store, number, "delivered")] == [
        f"delivered:{number}:{east['number']}", f"delivered:{number}:{west['number']}"]
    [ask] = messages(store, number, "feedback_request")
    assert f"/feedback/{number}" in ask.body_text
    assert [e["kind"] for e in view(store, number)["events"]].count("tracking_delivered") == 2
    assert_ledger_consistent(store)


def test_the_same_carrier_event_twice_is_recorded_once(store):
    _, [sh] = shipped_to_the_door(store, ("MUG", 1))
    track(store, sh["tracking_number"], "in_transit", "scan-1", T0 + DAY)
    before = table_snapshot(store)
    with store.transaction() as s:
        again = fulfilment.record_tracking_event(s, {"tracking_number": sh["tracking_number"], "kind": "in_transit",
                                                    "carrier_event_id": "scan-1", "at": T0 + DAY})
        assert again.kind == "in_transit"
    assert table_snapshot(store) == before
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(TrackingEvent).where(TrackingEvent.carrier_event_id == "scan-1")) == 1


def test_unknown_tracking_number_is_refused_and_writes_nothing(store):
    shipped_to_the_door(store, ("MUG", 1))
    err = refused(store, UnknownShipment, lambda s: fulfilment.record_tracking_event(
        s, {"tracking_number": "ZZ00000000", "kind": "delivered", "carrier_event_id": "x", "at": T0}))
    assert err.details == {"tracking_number": "ZZ00000000"}


@pytest.mark.parametrize("change, field", [
    ({"kind": "teleported"}, "kind"),
    ({"at": datetime(2030, 3, 5, 12, 0)}, "at"),  # naive: no time zone
    ({"estimated_delivery": "2030-03-09T12:00:00"}, "estimated_delivery"),
    ({"carrier_event_id": ""}, "carrier_event_id"),
    ({"signed_by": "Ada"}, "signed_by"),
])
def test_malformed_tracking_events_are_validation_errors(store, change, field):
    _, [sh] = shipped_to_the_door(store, ("MUG", 1))
    event = {"tracking_number": sh["tracking_number"], "kind": "in_transit", "carrier_event_id": "e1", "at": T0 + DAY} | change
    err = refused(store, ValidationError, lambda s: fulfilment.record_tracking_event(s, event))
    assert fields(err) == [field]


def test_a_status_never_goes_backwards(store):
    number, [sh] = shipped_to_the_door(store, ("MUG", 1))
    track(store, sh["tracking_number"], "out_for_delivery", "e1", T0 + DAY)
    track(store, sh["tracking_number"], "in_transit", "e0", T0 + DAY - timedelta(hours=5))  # a late-arriving earlier scan
    assert shipment(store, sh["number"])["status"] == "out_for_delivery"
    track(store, sh["tracking_number"], "delivered", "e2", T0 + DAY + timedelta(hours=2))
    track(store, sh["tracking_number"], "in_transit", "e3", T0 + DAY + timedelta(hours=4))
    track(store, sh["tracking_number"], "exception", "e4", T0 + DAY + timedelta(hours=5))
    shown = shipment(store, sh["number"])
    assert (shown["status"], shown["delayed"]) == ("delivered", False)
    assert [e["kind"] for e in shown["events"]] == ["label_created", "in_transit", "out_for_delivery", "delivered", "in_transit", "exception"]
    assert view(store, number)["status"] == "delivered"
    assert len(messages(store, number, "delivered")) == 1
    assert messages(store, number, "delayed") == []


def test_mark_delivered_without_a_scan(store):
    number, [sh] = shipped_to_the_door(store, ("MUG", 1))
    with store.transaction() as s:
        fulfilment.mark_delivered(s, sh["number"], actor="driver")
    assert shipment(store, sh["number"])["status"] == "delivered"
    assert view(store, number)["status"] == "delivered"
    refused(store, InvalidTransition, lambda s: fulfilment.mark_delivered(s, sh["number"]))


# --- delays ------------------------------------------------------------------------------------


def detect(db) -> list[str]:
    with db.transaction() as s:
        return fulfilment.detect_delays(s)


def test_parcels_past_their_promise_are_flagged_once(store):
    late, [late_sh] = shipped_to_the_door(store, ("MUG", 1))
    on_time, [on_time_sh] = shipped_to_the_door(store, ("TEE-S", 1))
    track(store, on_time_sh["tracking_number"], "delivered", "d1", T0 + 2 * DAY)
    assert late_sh["promised_at"] == (T0 + 5 * DAY).isoformat()

    with frozen_at(T0 + 5 * DAY):  # promised "by" then: not late yet
        assert detect(store) == []
    with frozen_at(T0 + 6 * DAY):
        assert detect(store) == [late_sh["number"]]
        assert detect(store) == []
    assert shipment(store, late_sh["number"])["delayed"] is True
    assert shipment(store, on_time_sh["number"])["delayed"] is False
    [msg] = messages(store, late, "delayed")
    assert msg.dedupe_key == f"delayed:{late}:{late_sh['number']}"
    assert "past the promised delivery date" in msg.body_text
    assert messages(store, on_time, "delayed") == []
    assert [e["kind"] for e in view(store, late)["events"]].count("shipment_delayed") == 1


def test_an_exception_scan_flags_a_delay(store):
    number, [sh] = shipped_to_the_door(store, ("MUG", 1))
    track(store, sh["tracking_number"], "exception", "x1", T0 + DAY, description="address not found")
    shown = shipment(store, sh["number"])
    assert (shown["status"], shown["delayed"]) == ("exception", True)
    [msg] = messages(store, number, "delayed")
    assert "address not found" in msg.body_text
    # Already flagged: the sweep and a second exception do not tell the customer again.
    assert detect(store) == []
    track(store, sh["tracking_number"], "exception", "x2", T0 + DAY + timedelta(hours=1))
    assert len(messages(store, number, "delayed")) == 1
    # Found after all: delivered.
    track(store, sh["tracking_number"], "delivered", "x3", T0 + 2 * DAY)
    assert (shipment(store, sh["number"])["status"], view(store, number)["status"]) == ("delivered", "delivered")


def test_an_estimate_later_than_the_promise_flags_a_delay(store):
    late, [late_sh] = shipped_to_the_door(store, ("MUG", 1))
    fine, [fine_sh] = shipped_to_the_door(store, ("TEE-S", 1))
    promised = T0 + 5 * DAY
    track(store, fine_sh["tracking_number"], "in_transit", "f1", T0 + DAY, estimated_delivery=promised)
    track(store, late_sh["tracking_number"], "in_transit", "l1", T0 + DAY, estimated_delivery=promised + 2 * DAY)
    assert shipment(store, fine_sh["number"])["delayed"] is False
    shown = shipment(store, late_sh["number"])
    assert (shown["status"], shown["delayed"], shown["estimated_at"]) == ("in_transit", True, (promised + 2 * DAY).isoformat())
    [msg] = messages(store, late, "delayed")
    assert "Monday, March 11, 2030" in msg.body_text, "the new estimate, as a date"
    assert messages(store, fine, "delayed") == []


# --- in-store pickup ---------------------------------------------------------------------------


def pickup_order(db) -> tuple[str, dict]:
    # MUG 2 at ST-NYC (4 on hand): 25.00 + NY tax 25.00 x 0.08875 = 2.21875 -> 2.22; no shipping. Total 27.22.
    number = place(db, ("MUG", 2), delivery="pickup", pickup_location="ST-NYC", shipping_method=None)
    [sh] = create(db, number)
    return number, sh


def test_pickup_is_made_ready_then_collected(store):
    number, sh = pickup_order(store)
    assert (sh["location"], sh["kind"], sh["carrier"], sh["service_level"]) == ("ST-NYC", "pickup", None, "pickup")
    assert available(store, "MUG", "ST-NYC") == 2

    refused(store, InvalidTransition, lambda s: fulfilment.pack_shipment(s, sh["number"]))
    refused(store, InvalidTransition, lambda s: fulfilment.dispatch_shipment(s, sh["number"]))
    refused(store, InvalidTransition, lambda s: fulfilment.collect_pickup(s, sh["number"]))  # not ready yet

    with store.transaction() as s:
        ready = fulfilment.mark_ready_for_pickup(s, sh["number"], actor="clerk")
        assert (ready.status, ready.ready_at, ready.expires_at) == ("ready_for_pickup", T0, T0 + 7 * DAY)
    [msg] = messages(store, number, "ready_for_pickup")
    assert "NYC store" in msg.body_text
    assert "Monday, March 11, 2030" in msg.body_text, "collect by the end of the hold"
    refused(store, InvalidTransition, lambda s: fulfilment.mark_ready_for_pickup(s, sh["number"]))

    with frozen_at(T0 + 2 * DAY), store.transaction() as s:
        fulfilment.collect_pickup(s, sh["number"], actor="clerk")
    shown = shipment(store, sh["number"])
    assert (shown["status"], shown["delivered_at"]) == ("collected", (T0 + 2 * DAY).isoformat())
    order = view(store, number)
    assert order["status"] == "delivered"
    assert order["lines"][0]["fulfilled"] == 2
    assert order["lines"][0]["reservations"] == [{"location": "ST-NYC", "quantity": 2, "status": "fulfilled"}]
    bal = balance(store, number)
    assert (bal.authorized, bal.captured, bal.open_authorization) == (Decimal("27.22"), Decimal("27.22"), Decimal("0.00"))
    assert (on_hand(store, "MUG", "ST-NYC"), available(store, "MUG", "ST-NYC")) == (2, 2)
    assert len(messages(store, number, "delivered")) == 1
    assert len(messages(store, number, "feedback_request")) == 1
    refused(store, InvalidTransition, lambda s: fulfilment.collect_pickup(s, sh["number"]))
    assert_ledger_consistent(store)


def test_uncollected_pickup_expires_after_the_hold(store):
    number, sh = pickup_order(store)
    with store.transaction() as s:
        fulfilment.mark_ready_for_pickup(s, sh["number"])

    with frozen_at(T0 + 7 * DAY), store.transaction() as s:  # the last moment of the hold
        assert fulfilment.expire_pickups(s) == []
    with frozen_at(T0 + 8 * DAY), store.transaction() as s:
        assert fulfilment.expire_pickups(s) == [sh["number"]]

    assert shipment(store, sh["number"])["status"] == "expired"
    assert available(store, "MUG", "ST-NYC") == 4, "the two mugs are back on the shelf"
    assert on_hand(store, "MUG", "ST-NYC") == 4
    order = view(store, number)
    assert order["status"] == "cancelled"
    assert (order["lines"][0]["cancelled"], order["lines"][0]["fulfilled"]) == (2, 0)
    assert order["lines"][0]["reservations"] == [{"location": "ST-NYC", "quantity": 2, "status": "released"}]
    bal = balance(store, number)
    assert (bal.authorized, bal.captured, bal.voided, bal.open_authorization) == (
        Decimal("27.22"), Decimal("0.00"), Decimal("27.22"), Decimal("0.00"))
    [msg] = messages(store, number, "order_cancelled")
    assert msg.dedupe_key == f"order_cancelled:{number}:expired:{sh['number']}"
    assert "not collected in time" in msg.body_text

    before = table_snapshot(store)
    with frozen_at(T0 + 9 * DAY), store.transaction() as s:
        assert fulfilment.expire_pickups(s) == []
    assert table_snapshot(store) == before
    assert_ledger_consistent(store)


def test_expiry_only_touches_pickups_past_their_own_hold(store):
    # Two pickups at ST-NYC, made ready a day apart: 7 days and 1 hour after the first, only it expires.
    kept, kept_sh = pickup_order(store)
    number = place(store, ("BEANS", 3), delivery="pickup", pickup_location="ST-NYC", shipping_method=None)
    [beans_sh] = create(store, number)
    with store.transaction() as s:
        fulfilment.mark_ready_for_pickup(s, kept_sh["number"])
    with frozen_at(T0 + DAY), store.transaction() as s:
        fulfilment.mark_ready_for_pickup(s, beans_sh["number"])
    with frozen_at(T0 + 7 * DAY + timedelta(hours=1)), store.transaction() as s:
        assert fulfilment.expire_pickups(s) == [kept_sh["number"]]
    assert shipment(store, beans_sh["number"])["status"] == "ready_for_pickup"
    assert available(store, "BEANS", "ST-NYC") == 17
    assert balance(store, number).open_authorization == balance(store, number).authorized
    assert_ledger_consistent(store)


def test_events_record_the_whole_journey(store):
    number, _ = shipped_to_the_door(store, ("MUG", 1))
    kinds = [e["kind"] for e in view(store, number)["events"]]
    assert [k for k in kinds if k.startswith("shipment_")] == ["shipment_created", "shipment_packed", "shipment_dispatched"]
    assert "payment_captured" in kinds
