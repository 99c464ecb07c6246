"""Purchase orders: draft -> sent -> partially received -> received, or cancelled; receipts go through the ledger.

From `build_store`: supplier ACME has a 5-day lead time, DROP 3 days; TEE-S costs 8.00 (10 on hand at
WH-EAST), MUG costs 4.00 (100 at WH-EAST), KETTLE has 6 at ST-SF.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from om_core.clock import frozen_at
from om_core.db import Database
from om_core.errors import (
    InvalidTransition,
    UnknownLocation,
    UnknownProduct,
    UnknownPurchaseOrder,
    UnknownSupplier,
    ValidationError,
)
from om_core.models import Location, Product, Stock, StockMovement
from om_core.services import catalog, purchasing
from tests.om_core.helpers import fields, refused, table_row_counts

T0 = datetime(2031, 3, 14, 9, 30, tzinfo=UTC)


# --- helpers -------------------------------------------------------------------------------


def create_po(db: Database, lines: list[dict[str, Any]], *, location: str = "WH-EAST", send: bool = False, **extra: Any) -> str:
    with db.transaction() as s:
        po = purchasing.create_purchase_order(s, {"supplier": "ACME", "location": location, "lines": lines, **extra}, actor="buyer")
        if send:
            purchasing.send_purchase_order(s, po.number)
        return po.number


def tee_and_mug(db: Database, **kw: Any) -> str:
    """A PO for 10 TEE-S and 20 MUG, delivered to WH-EAST."""
    return create_po(db, [{"sku": "TEE-S", "quantity": 10}, {"sku": "MUG", "quantity": 20}], **kw)


def on_hand(db: Database, sku: str, location: str) -> int | None:
    with db.read() as s:
        return s.scalar(
            select(Stock.on_hand)
            .join(Product, Product.id == Stock.product_id)
            .join(Location, Location.id == Stock.location_id)
            .where(Product.sku == sku, Location.code == location)
        )


def po_state(db: Database, number: str) -> tuple[str, dict[str, int], datetime | None]:
    """(status, {sku: received}, closed_at) read in a fresh session."""
    with db.read() as s:
        po = purchasing.get_purchase_order(s, number)
        return po.status, {l.product.sku: l.quantity_received for l in po.lines}, po.closed_at


def po_receipts(db: Database, number: str) -> list[tuple[str, str, int, str | None]]:
    """(sku, location, quantity, actor) of the receipt movements referencing this PO, oldest first."""
    with db.read() as s:
        rows = s.execute(
            select(Product.sku, Location.code, StockMovement.quantity, StockMovement.actor)
            .join(Stock, Stock.id == StockMovement.stock_id)
            .join(Product, Product.id == Stock.product_id)
            .join(Location, Location.id == Stock.location_id)
            .where(StockMovement.kind == "receipt", StockMovement.reference == f"po:{number}")
            .order_by(StockMovement.id)
        )
        return [tuple(r) for r in rows]


# --- creating and sending ------------------------------------------------------------------


def test_create_makes_a_draft_with_catalog_costs_and_a_lead_time_eta(store: Database) -> None:
    movements_before = table_row_counts(store)["stock_movements"]
    with frozen_at(T0):
        number = create_po(store, [{"sku": "TEE-S", "quantity": 10}, {"sku": "MUG", "quantity": 20, "unit_cost": "3.75"}], note="spring")

    assert number.startswith("PO-310314-")
    with store.read() as s:
        po = purchasing.get_purchase_order(s, number)
        assert po.status == "draft"
        assert po.expected_at == T0 + timedelta(days=5)  # ACME's lead time
        assert (po.created_at, po.sent_at, po.closed_at) == (T0, None, None)
        assert (po.created_by, po.note) == ("buyer", "spring")
        assert s.get(Location, po.location_id).code == "WH-EAST"  # type: ignore[union-attr]
        assert [(l.product.sku, l.quantity_ordered, l.quantity_received, Decimal(l.unit_cost)) for l in po.lines] == [
            ("TEE-S", 10, 0, Decimal("8.00")),
            ("MUG", 20, 0, Decimal("3.75")),
        ]
        assert purchasing.po_value(po) == Decimal("155.00")  # 10 x 8.00 + 20 x 3.75
        assert purchasing.open_quantity(po) == {"TEE-S": 10, "MUG": 20}
    # ordering stock is not receiving it
    assert table_row_counts(store)["stock_movements"] == movements_before
    assert on_hand(store, "TEE-S", "WH-EAST") == 10


def test_eta_uses_the_longest_lead_time_on_the_order(store: Database) -> None:
    with store.transaction() as s:
        catalog.create_product(s, {"sku": "SLOW", "name": "Slow boat item", "category": "kitchen", "price": "5.00", "cost": "2.00",
                                   "supplier": "ACME", "lead_time_days": "12"})
    with frozen_at(T0):
        slow = create_po(store, [{"sku": "TEE-S", "quantity": 1}, {"sku": "SLOW", "quantity": 1}])
        fast = create_po(store, [{"sku": "SOFA", "quantity": 1}])  # DROP's 3 days
    with store.read() as s:
        assert purchasing.get_purchase_order(s, slow).expected_at == T0 + timedelta(days=12)
        assert purchasing.get_purchase_order(s, fast).expected_at == T0 + timedelta(days=3)


def test_an_explicit_eta_is_kept(store: Database) -> None:
    eta = datetime(2031, 4, 1, 12, 0, tzinfo=UTC)
    number = tee_and_mug(store, expected_at=eta.isoformat())
    with store.read() as s:
        assert purchasing.get_purchase_order(s, number).expected_at == eta


def test_a_naive_eta_is_a_validation_error(store: Database) -> None:
    err = refused(store, ValidationError, lambda s: purchasing.create_purchase_order(
        s, {"supplier": "ACME", "location": "WH-EAST", "lines": [{"sku": "MUG", "quantity": 1}], "expected_at": "2031-04-01T12:00:00"}
    ))
    assert fields(err) == ["expected_at"]


def test_send_marks_the_order_sent(store: Database) -> None:
    number = tee_and_mug(store)
    with frozen_at(T0), store.transaction() as s:
        assert purchasing.send_purchase_order(s, number).status == "sent"
    with store.read() as s:
        po = purchasing.get_purchase_order(s, number)
        assert (po.status, po.sent_at, po.closed_at) == ("sent", T0, None)


def test_a_sent_order_cannot_be_sent_again(store: Database) -> None:
    number = tee_and_mug(store, send=True)
    err = refused(store, InvalidTransition, lambda s: purchasing.send_purchase_order(s, number))
    assert err.details == {"status": "sent", "to": "sent"}


def test_duplicate_skus_on_a_new_order_are_refused(store: Database) -> None:
    err = refused(store, ValidationError, lambda s: purchasing.create_purchase_order(
        s, {"supplier": "ACME", "location": "WH-EAST", "lines": [{"sku": "MUG", "quantity": 1}, {"sku": "MUG", "quantity": 2}]}
    ))
    assert fields(err) == ["lines"]


@pytest.mark.parametrize(
    ("change", "expected_fields"),
    [
        ({"lines": []}, ["lines"]),
        ({"lines": [{"sku": "MUG", "quantity": 0}]}, ["lines.0.quantity"]),
        ({"lines": [{"sku": "MUG", "quantity": 1, "unit_cost": "-1.00"}]}, ["lines.0.unit_cost"]),
        ({"lines": [{"sku": "MUG", "quantity": 1}], "discount": "5%"}, ["discount"]),
        ({"supplier": ""}, ["supplier"]),
    ],
)
def test_create_validation(store: Database, change: dict[str, Any], expected_fields: list[str]) -> None:
    payload = {"supplier": "ACME", "location": "WH-EAST", "lines": [{"sku": "MUG", "quantity": 1}], **change}
    err = refused(store, ValidationError, lambda s: purchasing.create_purchase_order(s, payload))
    assert fields(err) == expected_fields


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"supplier": "NOBODY"}, UnknownSupplier),
        ({"location": "WH-NOWHERE"}, UnknownLocation),
        ({"lines": [{"sku": "MUG", "quantity": 1}, {"sku": "NOPE", "quantity": 1}]}, UnknownProduct),
    ],
)
def test_create_refuses_unknown_names(store: Database, change: dict[str, Any], error: type[Exception]) -> None:
    payload = {"supplier": "ACME", "location": "WH-EAST", "lines": [{"sku": "MUG", "quantity": 1}], **change}
    refused(store, error, lambda s: purchasing.create_purchase_order(s, payload))


@pytest.mark.parametrize(
    "action",
    [
        purchasing.send_purchase_order,
        purchasing.cancel_purchase_order,
        purchasing.receive_purchase_order,
    ],
)
def test_unknown_purchase_order_number(store: Database, action: Callable[[Session, str], object]) -> None:
    tee_and_mug(store, send=True)
    refused(store, UnknownPurchaseOrder, lambda s: action(s, "PO-000000-NOPE"))


# --- receiving -----------------------------------------------------------------------------


def test_partial_receipt_books_stock_against_the_po(store: Database) -> None:
    number = tee_and_mug(store, send=True)
    with store.transaction() as s:
        assert purchasing.receive_purchase_order(s, number, [{"sku": "TEE-S", "quantity": 4}], actor="dock").status == "partially_received"

    assert po_state(store, number) == ("partially_received", {"TEE-S": 4, "MUG": 0}, None)
    assert on_hand(store, "TEE-S", "WH-EAST") == 14
    assert on_hand(store, "MUG", "WH-EAST") == 100
    assert po_receipts(store, number) == [("TEE-S", "WH-EAST", 4, "dock")]
    with store.read() as s:
        assert purchasing.open_quantity(purchasing.get_purchase_order(s, number)) == {"TEE-S": 6, "MUG": 20}


def test_receiving_the_rest_closes_the_po(store: Database) -> None:
    number = tee_and_mug(store, send=True)
    with store.transaction() as s:
        purchasing.receive_purchase_order(s, number, [{"sku": "TEE-S", "quantity": 4}])
    with store.transaction() as s:
        purchasing.receive_purchase_order(s, number, [{"sku": "MUG", "quantity": 5}])
    with frozen_at(T0), store.transaction() as s:
        purchasing.receive_purchase_order(s, number, [{"sku": "TEE-S", "quantity": 6}, {"sku": "MUG", "quantity": 15}])

    assert po_state(store, number) == ("received", {"TEE-S": 10, "MUG": 20}, T0)
    assert on_hand(store, "TEE-S", "WH-EAST") == 20
    assert on_hand(store, "MUG", "WH-EAST") == 120
    assert [(sku, q) for sku, _, q, _ in po_receipts(store, number)] == [("TEE-S", 4), ("MUG", 5), ("TEE-S", 6), ("MUG", 15)]


def test_receive_without_lines_takes_everything_outstanding(store: Database) -> None:
    number = tee_and_mug(store, send=True)
    with store.transaction() as s:
        purchasing.receive_purchase_order(s, number, [{"sku": "TEE-S", "quantity": 4}])
    with frozen_at(T0), store.transaction() as s:
        purchasing.receive_purchase_order(s, number)

    assert po_state(store, number) == ("received", {"TEE-S": 10, "MUG": 20}, T0)
    assert on_hand(store, "TEE-S", "WH-EAST") == 20
    assert on_hand(store, "MUG", "WH-EAST") == 120
    assert sorted((sku, q) for sku, _, q, _ in po_receipts(store, number)) == [("MUG", 20), ("TEE-S", 4), ("TEE-S", 6)]


def test_receipts_land_at_the_po_location(store: Database) -> None:
    number = create_po(store, [{"sku": "KETTLE", "quantity": 5}], location="ST-SF", send=True)
    with store.transaction() as s:
        purchasing.receive_purchase_order(s, number)
    assert on_hand(store, "KETTLE", "ST-SF") == 11
    assert on_hand(store, "KETTLE", "WH-WEST") == 2
    assert po_receipts(store, number) == [("KETTLE", "ST-SF", 5, None)]


def test_receipt_creates_stock_where_there_was_none(store: Database) -> None:
    number = create_po(store, [{"sku": "PREORDER", "quantity": 8}], location="WH-WEST", send=True)
    assert on_hand(store, "PREORDER", "WH-WEST") is None
    with store.transaction() as s:
        purchasing.receive_purchase_order(s, number)
    assert on_hand(store, "PREORDER", "WH-WEST") == 8


@pytest.mark.parametrize("already", [0, 4])
def test_over_receipt_is_refused_and_writes_nothing(store: Database, already: int) -> None:
    number = tee_and_mug(store, send=True)
    if already:
        with store.transaction() as s:
            purchasing.receive_purchase_order(s, number, [{"sku": "TEE-S", "quantity": already}])
    err = refused(store, ValidationError, lambda s: purchasing.receive_purchase_order(
        s, number, [{"sku": "MUG", "quantity": 20}, {"sku": "TEE-S", "quantity": 10 - already + 1}]
    ))
    assert fields(err) == ["lines.TEE-S"]
    assert po_state(store, number)[1] == {"TEE-S": already, "MUG": 0}  # the valid MUG line was not booked either


def test_the_same_sku_twice_in_one_receipt_is_refused(store: Database) -> None:
    # 6 + 6 of 10 ordered: each line alone fits, together they over-receive
    number = tee_and_mug(store, send=True)
    err = refused(store, ValidationError, lambda s: purchasing.receive_purchase_order(
        s, number, [{"sku": "TEE-S", "quantity": 6}, {"sku": "TEE-S", "quantity": 6}]
    ))
    assert fields(err) == ["lines.TEE-S"]
    assert on_hand(store, "TEE-S", "WH-EAST") == 10


def test_an_empty_receipt_is_refused_and_the_po_can_still_be_cancelled(store: Database) -> None:
    number = tee_and_mug(store, send=True)
    err = refused(store, ValidationError, lambda s: purchasing.receive_purchase_order(s, number, []))
    assert fields(err) == ["lines"]
    assert po_state(store, number)[0] == "sent"
    with store.transaction() as s:
        assert purchasing.cancel_purchase_order(s, number).status == "cancelled"


@pytest.mark.parametrize("sku", ["KETTLE", "NOPE"])
def test_receiving_a_sku_not_on_the_po_is_refused(store: Database, sku: str) -> None:
    number = tee_and_mug(store, send=True)
    err = refused(store, ValidationError, lambda s: purchasing.receive_purchase_order(
        s, number, [{"sku": "TEE-S", "quantity": 1}, {"sku": sku, "quantity": 1}]
    ))
    assert fields(err) == [f"lines.{sku}"]


@pytest.mark.parametrize(("line", "expected_fields"), [
    ({"sku": "TEE-S", "quantity": 0}, ["quantity"]),
    ({"sku": "TEE-S", "quantity": -2}, ["quantity"]),
    ({"sku": "TEE-S"}, ["quantity"]),
    ({"sku": "TEE-S", "quantity": 1, "lot": "A1"}, ["lot"]),
])
def test_receipt_line_validation(store: Database, line: dict[str, Any], expected_fields: list[str]) -> None:
    number = tee_and_mug(store, send=True)
    err = refused(store, ValidationError, lambda s: purchasing.receive_purchase_order(s, number, [line]))
    assert fields(err) == expected_fields


def test_a_draft_cannot_be_received(store: Database) -> None:
    number = tee_and_mug(store)
    err = refused(store, InvalidTransition, lambda s: purchasing.receive_purchase_order(s, number))
    assert err.details == {"status": "draft"}


def test_a_received_po_cannot_be_received_again(store: Database) -> None:
    number = tee_and_mug(store, send=True)
    with store.transaction() as s:
        purchasing.receive_purchase_order(s, number)
    err = refused(store, InvalidTransition, lambda s: purchasing.receive_purchase_order(s, number, [{"sku": "MUG", "quantity": 1}]))
    assert err.details == {"status": "received"}


# --- cancelling ----------------------------------------------------------------------------


@pytest.mark.parametrize("send", [False, True])
def test_cancel_a_draft_or_sent_po(store: Database, send: bool) -> None:
    number = tee_and_mug(store, send=send)
    with frozen_at(T0), store.transaction() as s:
        assert purchasing.cancel_purchase_order(s, number).status == "cancelled"
    assert po_state(store, number) == ("cancelled", {"TEE-S": 0, "MUG": 0}, T0)

    refused(store, InvalidTransition, lambda s: purchasing.receive_purchase_order(s, number))
    refused(store, InvalidTransition, lambda s: purchasing.send_purchase_order(s, number))
    refused(store, InvalidTransition, lambda s: purchasing.cancel_purchase_order(s, number))


@pytest.mark.parametrize(("receipt", "status"), [([{"sku": "MUG", "quantity": 1}], "partially_received"), (None, "received")])
def test_cancel_after_a_receipt_is_refused(store: Database, receipt: list[dict[str, Any]] | None, status: str) -> None:
    number = tee_and_mug(store, send=True)
    with store.transaction() as s:
        purchasing.receive_purchase_order(s, number, receipt)
    err = refused(store, InvalidTransition, lambda s: purchasing.cancel_purchase_order(s, number))
    assert err.details == {"status": status}
    assert po_state(store, number)[0] == status
