"""Inventory: receipts, adjustments, transfers, reservations, available-to-promise and the ledger check.

Numbers come from `build_store`: e.g. MUG has 100 at WH-EAST and 4 at ST-NYC, KETTLE 2 at WH-WEST and
6 at ST-SF (a store no channel but none sells from), TEE-M 5 at WH-EAST and 5 at WH-WEST.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from om_core.db import Database
from om_core.errors import StockError, UnknownChannel, UnknownLocation, UnknownProduct, ValidationError
from om_core.models import Location, Order, OrderLine, Product, Reservation, Stock, StockMovement, Transfer
from om_core.services import inventory, orders
from om_core.services.locations import get_channel
from tests.om_core.helpers import fields, refused
from tests.om_core.store import web_order

# --- helpers -------------------------------------------------------------------------------


def _stock(s: Session, sku: str, location: str) -> Stock | None:
    return s.scalar(
        select(Stock)
        .join(Product, Product.id == Stock.product_id)
        .join(Location, Location.id == Stock.location_id)
        .where(Product.sku == sku, Location.code == location)
    )


def on_hand(db: Database, sku: str, location: str) -> int | None:
    """On hand read in a fresh session; None when no stock row exists."""
    with db.read() as s:
        stock = _stock(s, sku, location)
        return None if stock is None else stock.on_hand


def ledger(db: Database, sku: str, location: str) -> list[tuple[Any, ...]]:
    """(kind, quantity, reserved_change, reason, reference, actor) of one stock row, oldest first."""
    with db.read() as s:
        stock = _stock(s, sku, location)
        assert stock is not None
        return [
            (m.kind, m.quantity, m.reserved_change, m.reason, m.reference, m.actor)
            for m in s.scalars(select(StockMovement).where(StockMovement.stock_id == stock.id).order_by(StockMovement.id))
        ]


def active_reserved(db: Database, sku: str, location: str) -> int:
    with db.read() as s:
        stock = _stock(s, sku, location)
        assert stock is not None
        return int(
            s.scalar(
                select(func.coalesce(func.sum(Reservation.quantity), 0)).where(
                    Reservation.stock_id == stock.id, Reservation.status == "active"
                )
            )
        )


def place(db: Database, *lines: tuple[str, int]) -> str:
    with db.transaction() as s:
        return orders.place_order(s, web_order(*lines)).number


def order_line(s: Session, number: str, sku: str) -> OrderLine:
    return s.scalars(select(OrderLine).join(Order).where(Order.number == number, OrderLine.sku == sku)).one()


def reservations_of(db: Database, number: str, sku: str) -> list[tuple[str, int, str]]:
    """(location, quantity, status) of a line's reservation rows, oldest first."""
    with db.read() as s:
        line = order_line(s, number, sku)
        rows = s.execute(
            select(Location.code, Reservation.quantity, Reservation.status)
            .join(Stock, Stock.id == Reservation.stock_id)
            .join(Location, Location.id == Stock.location_id)
            .where(Reservation.order_line_id == line.id)
            .order_by(Reservation.id)
        )
        return [tuple(r) for r in rows]


# --- receipts ------------------------------------------------------------------------------


def test_receive_raises_on_hand_and_appends_a_receipt_movement(store: Database) -> None:
    with store.transaction() as s:
        stock = inventory.receive_stock(s, {"sku": "MUG", "location": "WH-EAST", "quantity": 25, "reference": "DEL-1"}, actor="clerk")
        assert stock.on_hand == 125

    assert on_hand(store, "MUG", "WH-EAST") == 125
    assert ledger(store, "MUG", "WH-EAST") == [
        ("receipt", 100, 0, None, "opening", "test"),
        ("receipt", 25, 0, None, "DEL-1", "clerk"),
    ]
    assert on_hand(store, "MUG", "ST-NYC") == 4  # other locations untouched


def test_receive_at_a_new_location_creates_the_stock_row(store: Database) -> None:
    assert on_hand(store, "PREORDER", "ST-SF") is None
    with store.transaction() as s:
        inventory.receive_stock(s, {"sku": "PREORDER", "location": "ST-SF", "quantity": 7})
    assert on_hand(store, "PREORDER", "ST-SF") == 7
    assert ledger(store, "PREORDER", "ST-SF") == [("receipt", 7, 0, None, None, None)]


def test_receive_accepts_the_maximum_movement(store: Database) -> None:
    with store.transaction() as s:
        inventory.receive_stock(s, {"sku": "TEE-S", "location": "WH-EAST", "quantity": inventory.MAX_MOVEMENT})
    assert on_hand(store, "TEE-S", "WH-EAST") == 10 + 1_000_000


@pytest.mark.parametrize("quantity", [0, -3, 1_000_001, 2.5])
def test_receive_refuses_bad_quantities(store: Database, quantity: object) -> None:
    err = refused(store, ValidationError, lambda s: inventory.receive_stock(s, {"sku": "MUG", "location": "WH-EAST", "quantity": quantity}))
    assert fields(err) == ["quantity"]
    assert on_hand(store, "MUG", "WH-EAST") == 100


def test_receive_refuses_unknown_fields(store: Database) -> None:
    err = refused(store, ValidationError, lambda s: inventory.receive_stock(s, {"sku": "MUG", "location": "WH-EAST", "quantity": 1, "qty": 1}))
    assert fields(err) == ["qty"]


@pytest.mark.parametrize(
    ("sku", "location", "error"),
    [("NOPE", "WH-EAST", UnknownProduct), ("MUG", "WH-NOWHERE", UnknownLocation)],
)
def test_receive_refuses_unknown_sku_or_location(store: Database, sku: str, location: str, error: type[Exception]) -> None:
    refused(store, error, lambda s: inventory.receive_stock(s, {"sku": sku, "location": location, "quantity": 5}))


# --- adjustments ---------------------------------------------------------------------------


def test_adjust_by_delta_moves_on_hand_and_stores_the_reason(store: Database) -> None:
    with store.transaction() as s:
        movement = inventory.adjust_stock(
            s, {"sku": "MUG", "location": "WH-EAST", "reason": "damage", "delta": -3, "note": "dropped pallet"}, actor="ops"
        )
        assert (movement.kind, movement.quantity) == ("adjustment", -3)

    assert on_hand(store, "MUG", "WH-EAST") == 97
    assert ledger(store, "MUG", "WH-EAST")[-1] == ("adjustment", -3, 0, "damage: dropped pallet", None, "ops")


@pytest.mark.parametrize(("location", "before", "counted"), [("WH-EAST", 100, 93), ("ST-NYC", 4, 9)])
def test_adjust_by_count_sets_on_hand(store: Database, location: str, before: int, counted: int) -> None:
    with store.transaction() as s:
        movement = inventory.adjust_stock(s, {"sku": "MUG", "location": location, "reason": "count", "counted": counted})
        assert movement.quantity == counted - before

    assert on_hand(store, "MUG", location) == counted
    assert ledger(store, "MUG", location)[-1] == ("adjustment", counted - before, 0, "count", None, None)


def test_count_matching_on_hand_is_recorded_without_changing_stock(store: Database) -> None:
    with store.transaction() as s:
        inventory.adjust_stock(s, {"sku": "BEANS", "location": "ST-NYC", "reason": "count", "counted": 20})
    assert on_hand(store, "BEANS", "ST-NYC") == 20
    assert ledger(store, "BEANS", "ST-NYC")[-1] == ("adjustment", 0, 0, "count", None, None)


def test_count_at_a_location_without_stock_creates_the_row(store: Database) -> None:
    with store.transaction() as s:
        inventory.adjust_stock(s, {"sku": "TEE-S", "location": "ST-SF", "reason": "found", "counted": 2})
    assert on_hand(store, "TEE-S", "ST-SF") == 2
    assert ledger(store, "TEE-S", "ST-SF") == [("adjustment", 2, 0, "found", None, None)]


def test_adjustment_below_zero_is_refused_and_writes_nothing(store: Database) -> None:
    err = refused(store, StockError, lambda s: inventory.adjust_stock(s, {"sku": "MUG", "location": "ST-NYC", "reason": "theft", "delta": -5}))
    assert err.details == {"on_hand": 4, "change": -5}
    assert on_hand(store, "MUG", "ST-NYC") == 4
    assert len(ledger(store, "MUG", "ST-NYC")) == 1


def test_negative_adjustment_where_there_is_no_stock_creates_no_row(store: Database) -> None:
    refused(store, StockError, lambda s: inventory.adjust_stock(s, {"sku": "KETTLE", "location": "WH-EAST", "reason": "damage", "delta": -1}))
    assert on_hand(store, "KETTLE", "WH-EAST") is None


@pytest.mark.parametrize(
    ("change", "expected_fields"),
    [
        ({"delta": 0}, ["delta"]),
        ({"delta": 2, "counted": 5}, ["delta"]),
        ({}, ["delta"]),
        ({"delta": -1_000_001}, ["delta"]),
        ({"delta": 1_000_001}, ["delta"]),
        ({"counted": -1}, ["counted"]),
        ({"counted": 1_000_001}, ["counted"]),
        ({"delta": 1, "reason": "lost"}, ["reason"]),
        ({"delta": 1, "note": "x" * 151}, ["note"]),
    ],
)
def test_adjustment_validation(store: Database, change: dict[str, Any], expected_fields: list[str]) -> None:
    payload = {"sku": "MUG", "location": "WH-EAST", "reason": "correction", **change}
    err = refused(store, ValidationError, lambda s: inventory.adjust_stock(s, payload))
    assert fields(err) == expected_fields
    assert on_hand(store, "MUG", "WH-EAST") == 100


def test_adjustment_needs_a_reason(store: Database) -> None:
    err = refused(store, ValidationError, lambda s: inventory.adjust_stock(s, {"sku": "MUG", "location": "WH-EAST", "delta": 1}))
    assert fields(err) == ["reason"]


@pytest.mark.parametrize(
    ("sku", "location", "error"),
    [("NOPE", "WH-EAST", UnknownProduct), ("MUG", "WH-NOWHERE", UnknownLocation)],
)
def test_adjustment_refuses_unknown_sku_or_location(store: Database, sku: str, location: str, error: type[Exception]) -> None:
    refused(store, error, lambda s: inventory.adjust_stock(s, {"sku": sku, "location": location, "reason": "count", "counted": 3}))


# --- transfers -----------------------------------------------------------------------------


def test_transfer_moves_stock_with_paired_movements_and_a_transfer_row(store: Database) -> None:
    with store.transaction() as s:
        transfer = inventory.transfer_stock(
            s, {"sku": "MUG", "from_location": "WH-EAST", "to_location": "ST-NYC", "quantity": 30, "reason": "replenish"}, actor="planner"
        )
        transfer_id = transfer.id

    assert on_hand(store, "MUG", "WH-EAST") == 70
    assert on_hand(store, "MUG", "ST-NYC") == 34
    ref = f"transfer:{transfer_id}"
    assert ledger(store, "MUG", "WH-EAST")[-1] == ("transfer_out", -30, 0, "replenish", ref, "planner")
    assert ledger(store, "MUG", "ST-NYC")[-1] == ("transfer_in", 30, 0, "replenish", ref, "planner")
    with store.read() as s:
        row = s.get(Transfer, transfer_id)
        assert row is not None
        mug = s.scalar(select(Product).where(Product.sku == "MUG"))
        codes = {l.id: l.code for l in s.scalars(select(Location))}
        assert (row.product_id, codes[row.from_location_id], codes[row.to_location_id], row.quantity, row.reason, row.actor) == (
            mug.id, "WH-EAST", "ST-NYC", 30, "replenish", "planner",
        )
        assert inventory.verify_ledger(s) == []


def test_transfer_to_a_location_without_stock_creates_the_row(store: Database) -> None:
    with store.transaction() as s:
        inventory.transfer_stock(s, {"sku": "KETTLE", "from_location": "ST-SF", "to_location": "WH-EAST", "quantity": 6})
    assert on_hand(store, "KETTLE", "ST-SF") == 0
    assert on_hand(store, "KETTLE", "WH-EAST") == 6


def test_transfer_more_than_on_hand_is_refused(store: Database) -> None:
    err = refused(
        store, StockError,
        lambda s: inventory.transfer_stock(s, {"sku": "KETTLE", "from_location": "WH-WEST", "to_location": "ST-SF", "quantity": 3}),
    )
    assert err.details == {"available": 2, "requested": 3}


def test_transfer_from_a_location_without_stock_is_refused(store: Database) -> None:
    err = refused(
        store, StockError,
        lambda s: inventory.transfer_stock(s, {"sku": "SOFA", "from_location": "WH-EAST", "to_location": "WH-WEST", "quantity": 1}),
    )
    assert err.details == {"available": 0, "requested": 1}
    assert on_hand(store, "SOFA", "WH-WEST") is None


def test_transfer_leaves_reserved_units_where_they_are_promised(store: Database) -> None:
    number = place(store, ("TEE-S", 4))  # reserves 4 of the 10 at WH-EAST
    assert reservations_of(store, number, "TEE-S") == [("WH-EAST", 4, "active")]

    err = refused(
        store, StockError,
        lambda s: inventory.transfer_stock(s, {"sku": "TEE-S", "from_location": "WH-EAST", "to_location": "WH-WEST", "quantity": 7}),
    )
    assert err.details == {"available": 6, "requested": 7}

    with store.transaction() as s:
        inventory.transfer_stock(s, {"sku": "TEE-S", "from_location": "WH-EAST", "to_location": "WH-WEST", "quantity": 6})
    assert (on_hand(store, "TEE-S", "WH-EAST"), on_hand(store, "TEE-S", "WH-WEST")) == (4, 6)
    assert active_reserved(store, "TEE-S", "WH-EAST") == 4


def test_transfer_to_the_same_location_is_refused(store: Database) -> None:
    err = refused(
        store, ValidationError,
        lambda s: inventory.transfer_stock(s, {"sku": "MUG", "from_location": "WH-EAST", "to_location": "WH-EAST", "quantity": 1}),
    )
    assert fields(err) == ["to_location"]


@pytest.mark.parametrize("quantity", [0, -1, 1_000_001])
def test_transfer_refuses_bad_quantities(store: Database, quantity: int) -> None:
    err = refused(
        store, ValidationError,
        lambda s: inventory.transfer_stock(s, {"sku": "MUG", "from_location": "WH-EAST", "to_location": "ST-NYC", "quantity": quantity}),
    )
    assert fields(err) == ["quantity"]


@pytest.mark.parametrize(
    ("sku", "source", "target", "error"),
    [
        ("NOPE", "WH-EAST", "ST-NYC", UnknownProduct),
        ("MUG", "WH-NOWHERE", "ST-NYC", UnknownLocation),
        ("MUG", "WH-EAST", "ST-NOWHERE", UnknownLocation),
    ],
)
def test_transfer_refuses_unknown_sku_or_location(store: Database, sku: str, source: str, target: str, error: type[Exception]) -> None:
    refused(store, error, lambda s: inventory.transfer_stock(s, {"sku": sku, "from_location": source, "to_location": target, "quantity": 1}))


# --- available to promise ------------------------------------------------------------------


def test_available_to_promise_in_total_lists_every_active_location(store: Database) -> None:
    with store.read() as s:
        atp = inventory.available_to_promise(s, "MUG")
    assert atp["sku"] == "MUG"
    assert atp["channel"] is None
    assert atp["available"] == 104
    assert atp["locations"] == [
        {"location": "WH-EAST", "on_hand": 100, "reserved": 0, "available": 100},
        {"location": "WH-WEST", "on_hand": 0, "reserved": 0, "available": 0},
        {"location": "ST-NYC", "on_hand": 4, "reserved": 0, "available": 4},
        {"location": "ST-SF", "on_hand": 0, "reserved": 0, "available": 0},
        {"location": "DS-DROP", "on_hand": 0, "reserved": 0, "available": 0},
    ]


@pytest.mark.parametrize(
    ("channel", "locations", "available"),
    [
        ("web", ["WH-EAST", "WH-WEST", "ST-NYC", "DS-DROP"], 2),  # ST-SF's 6 kettles are not sold online
        ("app", ["WH-WEST"], 2),
        ("pos-nyc", ["ST-NYC"], 0),
    ],
)
def test_available_to_promise_per_channel_counts_only_its_locations(
    store: Database, channel: str, locations: list[str], available: int
) -> None:
    with store.read() as s:
        atp = inventory.available_to_promise(s, "KETTLE", channel=channel)
    assert atp["channel"] == channel
    assert [row["location"] for row in atp["locations"]] == locations
    assert atp["available"] == available
    with store.read() as s:
        assert inventory.available_to_promise(s, "KETTLE")["available"] == 8


def test_available_to_promise_per_location(store: Database) -> None:
    with store.read() as s:
        atp = inventory.available_to_promise(s, "KETTLE", location="ST-SF")
    assert atp["available"] == 6
    assert atp["locations"] == [{"location": "ST-SF", "on_hand": 6, "reserved": 0, "available": 6}]


def test_reservations_reduce_availability(store: Database) -> None:
    number = place(store, ("TEE-M", 7))  # no single location has 7: 5 from WH-EAST, then 2 from WH-WEST
    assert reservations_of(store, number, "TEE-M") == [("WH-EAST", 5, "active"), ("WH-WEST", 2, "active")]

    with store.read() as s:
        web = inventory.available_to_promise(s, "TEE-M", channel="web")
        app = inventory.available_to_promise(s, "TEE-M", channel="app")
        east = inventory.available_to_promise(s, "TEE-M", location="WH-EAST")
        product_id = s.scalar(select(Product.id).where(Product.sku == "TEE-M"))
        by_channel = inventory.channel_availability(s, [product_id], get_channel(s, "web").id)
    assert web["available"] == 3
    assert web["locations"][:2] == [
        {"location": "WH-EAST", "on_hand": 5, "reserved": 5, "available": 0},
        {"location": "WH-WEST", "on_hand": 5, "reserved": 2, "available": 3},
    ]
    assert app["available"] == 3
    assert east["available"] == 0
    assert by_channel == {product_id: 3}
    # reserving does not move on hand
    assert (on_hand(store, "TEE-M", "WH-EAST"), on_hand(store, "TEE-M", "WH-WEST")) == (5, 5)


@pytest.mark.parametrize("lock", [True, False])
def test_stock_with_availability_in_one_read_agrees_with_rows_then_levels(store: Database, lock: bool) -> None:
    """Placement reads stock rows and their reservations at once (SQLite, or without a lock); it must
    give what reading the rows and then the levels gives: active reservations count, released ones not."""
    place(store, ("TEE-M", 7))  # WH-EAST 5 of 5 reserved, WH-WEST 2 of 5
    cancelled = place(store, ("MUG", 3))
    with store.transaction() as s:
        inventory.release_reservations(s, order_line(s, cancelled, "MUG"), reason="customer cancelled")
    place(store, ("MUG", 4))
    with store.transaction() as s:
        products = set(s.scalars(select(Product.id).where(Product.sku.in_(["TEE-M", "MUG", "KETTLE"]))))
        locations = set(s.scalars(select(Location.id)))
        rows, available = inventory.stock_available(s, products, locations, lock=lock)
        expected_rows = inventory.stock_rows(s, products, locations, lock=lock)
        levels = inventory.stock_levels(s, expected_rows)
        assert [(r.id, r.product_id, r.location_id, r.on_hand) for r in rows] == [tuple(r) for r in expected_rows]
        assert available == {key: level.available for key, level in levels.items()}
        codes = dict(s.execute(select(Location.id, Location.code)).all())
        skus = dict(s.execute(select(Product.id, Product.sku)).all())
        named = {(skus[p], codes[l]): n for (p, l), n in available.items()}
    assert named[("TEE-M", "WH-EAST")] == 0 and named[("TEE-M", "WH-WEST")] == 3
    assert named[("MUG", "WH-EAST")] + named[("MUG", "ST-NYC")] == 100 and named[("KETTLE", "WH-WEST")] == 2


@pytest.mark.parametrize(
    ("sku", "kwargs", "error"),
    [
        ("NOPE", {}, UnknownProduct),
        ("MUG", {"channel": "carrier-pigeon"}, UnknownChannel),
        ("MUG", {"location": "WH-NOWHERE"}, UnknownLocation),
    ],
)
def test_available_to_promise_refuses_unknown_names(store: Database, sku: str, kwargs: dict[str, str], error: type[Exception]) -> None:
    with store.read() as s, pytest.raises(error) as info:
        inventory.available_to_promise(s, sku, **kwargs)
    assert type(info.value) is error


# --- reservations: release and fulfil -----------------------------------------------------


def test_placing_an_order_reserves_through_the_ledger(store: Database) -> None:
    number = place(store, ("MUG", 3))
    assert ledger(store, "MUG", "WH-EAST")[-1] == ("reservation", 0, 3, None, f"order:{number}", None)
    assert on_hand(store, "MUG", "WH-EAST") == 100
    assert active_reserved(store, "MUG", "WH-EAST") == 3


def test_release_all_gives_the_units_back(store: Database) -> None:
    number = place(store, ("MUG", 3))
    with store.transaction() as s:
        line = order_line(s, number, "MUG")
        line_id = line.id
        assert inventory.release_reservations(s, line, actor="agent", reason="customer cancelled") == 3

    assert reservations_of(store, number, "MUG") == [("WH-EAST", 3, "released")]
    with store.read() as s:
        assert s.scalar(select(Reservation.closed_at).where(Reservation.order_line_id == line_id)) is not None
        assert inventory.available_to_promise(s, "MUG", location="WH-EAST")["available"] == 100
        assert inventory.verify_ledger(s) == []
    assert ledger(store, "MUG", "WH-EAST")[-1] == ("reservation_release", 0, -3, "customer cancelled", f"order:{number}", "agent")
    assert on_hand(store, "MUG", "WH-EAST") == 100


def test_partial_release_keeps_the_rest_as_a_new_active_reservation(store: Database) -> None:
    number = place(store, ("MUG", 5))
    with store.transaction() as s:
        assert inventory.release_reservations(s, order_line(s, number, "MUG"), 2) == 2

    assert reservations_of(store, number, "MUG") == [("WH-EAST", 5, "released"), ("WH-EAST", 3, "active")]
    assert active_reserved(store, "MUG", "WH-EAST") == 3
    assert ledger(store, "MUG", "WH-EAST")[-1][:3] == ("reservation_release", 0, -2)
    with store.read() as s:
        assert inventory.available_to_promise(s, "MUG", location="WH-EAST")["available"] == 97
        assert inventory.verify_ledger(s) == []


def test_release_takes_the_newest_reservation_first(store: Database) -> None:
    number = place(store, ("TEE-M", 7))  # WH-EAST 5 (older), WH-WEST 2 (newer)
    with store.transaction() as s:
        assert inventory.release_reservations(s, order_line(s, number, "TEE-M"), 3) == 3

    assert reservations_of(store, number, "TEE-M") == [
        ("WH-EAST", 5, "released"), ("WH-WEST", 2, "released"), ("WH-EAST", 4, "active"),
    ]
    assert (active_reserved(store, "TEE-M", "WH-EAST"), active_reserved(store, "TEE-M", "WH-WEST")) == (4, 0)


def test_release_of_more_than_reserved_releases_what_there_is(store: Database) -> None:
    number = place(store, ("MUG", 3))
    with store.transaction() as s:
        assert inventory.release_reservations(s, order_line(s, number, "MUG"), 10) == 3
    assert active_reserved(store, "MUG", "WH-EAST") == 0


def test_fulfil_turns_reserved_units_into_a_sale(store: Database) -> None:
    number = place(store, ("MUG", 3))
    with store.transaction() as s:
        assert inventory.fulfil_reservations(s, order_line(s, number, "MUG"), 2, actor="packer") == 2

    assert on_hand(store, "MUG", "WH-EAST") == 98
    assert ledger(store, "MUG", "WH-EAST")[-1] == ("sale", -2, -2, None, f"order:{number}", "packer")
    assert reservations_of(store, number, "MUG") == [("WH-EAST", 3, "fulfilled"), ("WH-EAST", 1, "active")]
    with store.read() as s:
        assert inventory.available_to_promise(s, "MUG", location="WH-EAST")["locations"] == [
            {"location": "WH-EAST", "on_hand": 98, "reserved": 1, "available": 97}
        ]

    with store.transaction() as s:
        assert inventory.fulfil_reservations(s, order_line(s, number, "MUG"), 1) == 1
    assert on_hand(store, "MUG", "WH-EAST") == 97
    assert active_reserved(store, "MUG", "WH-EAST") == 0
    with store.read() as s:
        assert inventory.verify_ledger(s) == []


# --- the ledger check ---------------------------------------------------------------------


def test_verify_ledger_is_clean_after_a_mix_of_operations(store: Database) -> None:
    with store.transaction() as s:
        inventory.receive_stock(s, {"sku": "TEE-L", "location": "WH-WEST", "quantity": 12})
        inventory.adjust_stock(s, {"sku": "BEANS", "location": "WH-EAST", "reason": "expired", "delta": -8})
        inventory.adjust_stock(s, {"sku": "MUG", "location": "ST-NYC", "reason": "count", "counted": 6})
        inventory.transfer_stock(s, {"sku": "TEE-M", "from_location": "WH-WEST", "to_location": "ST-NYC", "quantity": 2})
    first = place(store, ("TEE-M", 6), ("MUG", 10))
    second = place(store, ("TEE-L", 4))
    with store.transaction() as s:
        inventory.fulfil_reservations(s, order_line(s, first, "MUG"), 4)
        inventory.release_reservations(s, order_line(s, first, "TEE-M"), 1)
        inventory.release_reservations(s, order_line(s, second, "TEE-L"))

    with store.read() as s:
        assert inventory.verify_ledger(s) == []
        # and independently: on hand equals the sum of the ledger for every row
        sums = dict(s.execute(select(StockMovement.stock_id, func.sum(StockMovement.quantity)).group_by(StockMovement.stock_id)).all())
        assert {st.id: st.on_hand for st in s.scalars(select(Stock))} == {k: int(v) for k, v in sums.items()}
    assert on_hand(store, "TEE-L", "WH-WEST") == 15
    assert on_hand(store, "BEANS", "WH-EAST") == 42
    assert on_hand(store, "MUG", "ST-NYC") == 6
    assert on_hand(store, "MUG", "WH-EAST") == 96


def test_verify_ledger_reports_a_tampered_on_hand(store: Database) -> None:
    with store.read() as s:
        stock_id = _stock(s, "MUG", "WH-EAST").id  # type: ignore[union-attr]
    with store.transaction() as s:
        s.execute(text("UPDATE stock SET on_hand = on_hand + 1 WHERE id = :id"), {"id": stock_id})

    with store.read() as s:
        assert inventory.verify_ledger(s) == [
            {"stock_id": stock_id, "on_hand": 101, "ledger_on_hand": 100, "reserved": 0, "ledger_reserved": 0}
        ]


def test_verify_ledger_reports_a_tampered_reservation(store: Database) -> None:
    number = place(store, ("BEANS", 5))
    with store.read() as s:
        stock_id = _stock(s, "BEANS", "WH-EAST").id  # type: ignore[union-attr]
        line_id = order_line(s, number, "BEANS").id
    with store.transaction() as s:
        s.execute(text("UPDATE reservations SET quantity = quantity + 2 WHERE order_line_id = :id"), {"id": line_id})

    with store.read() as s:
        assert inventory.verify_ledger(s) == [
            {"stock_id": stock_id, "on_hand": 50, "ledger_on_hand": 50, "reserved": 7, "ledger_reserved": 5}
        ]
