"""Document, order and tracking numbers: random, and drawn again when a number is already given (the
birthday bound makes 8 random hex digits clash after ~77,000 returns)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from om_core.db import Database
from om_core.errors import AlreadyExists
from om_core.models import Order, PurchaseOrder, Shipment
from om_core.services import bulk, fulfilment, numbering, orders, purchasing
from tests.om_core.helpers import refused
from tests.om_core.store import web_order

LINES = [{"sku": "TEE-S", "quantity": 10}]


def _draws(*numbers: str, fresh: str = "PO-FRESH-") -> Iterator[str]:
    """A number generator that gives `numbers` first, then fresh ones."""
    yield from numbers
    n = 0
    while True:
        n += 1
        yield f"{fresh}{n}"


def test_new_numbers_skips_given_numbers_and_twins_in_the_batch(store: Database) -> None:
    with store.transaction() as s:
        given = purchasing.create_purchase_order(s, {"supplier": "ACME", "location": "WH-EAST", "lines": LINES}).number
    draws = _draws(given, "PO-X", "PO-X", given, "PO-Y")
    with store.read() as s:
        numbers = numbering.new_numbers(s, PurchaseOrder.number, lambda: next(draws), 4)
    # drawn: given (taken), PO-X, PO-X (twin), given (taken); drawn again in that order: PO-Y, then fresh ones
    assert numbers == ["PO-Y", "PO-X", "PO-FRESH-1", "PO-FRESH-2"]


def test_a_clashing_number_is_drawn_again_on_every_path(store: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The single and the batched purchase order both get a fresh number when the first one drawn is taken."""
    with store.transaction() as s:
        given = purchasing.create_purchase_order(s, {"supplier": "ACME", "location": "WH-EAST", "lines": LINES}).number
    draws = _draws(given, given, given)
    monkeypatch.setattr(numbering, "purchase_order_number", lambda now: next(draws))
    with store.transaction() as s:
        single = purchasing.create_purchase_order(s, {"supplier": "ACME", "location": "WH-EAST", "lines": LINES}).number
        batch = bulk.create_purchase_orders(s, [{"supplier": "ACME", "location": "WH-EAST", "lines": LINES}] * 2)
    assert single == "PO-FRESH-1" and batch == ["PO-FRESH-2", "PO-FRESH-3"]
    with store.read() as s:
        assert sorted(s.scalars(select(PurchaseOrder.number))) == sorted([given, single, *batch])


def test_a_clashing_order_number_is_drawn_again_on_every_path(store: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """place_order, and place_orders where a declined card's retry needs a second number."""
    with store.transaction() as s:
        given = orders.place_order(s, web_order(("MUG", 1))).number
    # single: given (taken), SO-A; batch: given (taken), SO-B, SO-A (taken now), then fresh ones
    draws = _draws(given, "SO-A", given, "SO-B", "SO-A", fresh="SO-FRESH-")
    monkeypatch.setattr(orders, "_new_number", lambda: next(draws))
    monkeypatch.setattr(bulk, "_new_number", lambda: next(draws))
    declined = web_order(("MUG", 1), payment_token="tok_decline_1")
    at = datetime(2026, 11, 27, 9, tzinfo=UTC)
    with store.transaction() as s:
        single = orders.place_order(s, web_order(("MUG", 1))).number
        batch = bulk.place_orders(s, [bulk.BulkOrder(web_order(("MUG", 1)), at), bulk.BulkOrder(declined, at)],
                                  on_refused=lambda i, error: web_order(("MUG", 1)))
    # the declined card was tried as SO-B; its retry gets a number of its own
    assert single == "SO-A" and [r.number for r in batch] == ["SO-FRESH-1", "SO-FRESH-2"]
    with store.read() as s:
        assert sorted(s.scalars(select(Order.number))) == sorted([given, "SO-A", "SO-FRESH-1", "SO-FRESH-2"])


def test_a_clashing_tracking_number_is_drawn_again_and_a_given_one_is_checked(
    store: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STOREOM_HOME", str(tmp_path))

    def shipment_of(number: str) -> str:
        with store.transaction() as s:
            return fulfilment.create_shipments(s, number)[0].number

    with store.transaction() as s:
        numbers = [orders.place_order(s, web_order(("MUG", 1))).number for _ in range(4)]
    first = shipment_of(numbers[0])
    with store.transaction() as s:
        given = fulfilment.dispatch_shipment(s, first).tracking_number
    draws = _draws(given, given, fresh="TRACK-")
    monkeypatch.setattr(numbering, "tracking_number", lambda carrier: next(draws))
    second = shipment_of(numbers[1])
    with store.transaction() as s:
        assert fulfilment.dispatch_shipment(s, second).tracking_number == "TRACK-1"
        [third] = bulk.ship_orders(s, [numbers[2]], at=datetime(2026, 11, 27, 9, tzinfo=UTC))[numbers[2]]
    with store.read() as s:
        assert s.scalar(select(Shipment.tracking_number).where(Shipment.number == third)) == "TRACK-2"

    fourth = shipment_of(numbers[3])
    err = refused(store, AlreadyExists, lambda s: fulfilment.dispatch_shipment(s, fourth, tracking_number=given))
    assert err.details == {"tracking_number": given, "shipment": first} and given in str(err)


def test_numbers_keep_their_shapes() -> None:
    assert numbering.tracking_number("ups").startswith("UP") and len(numbering.tracking_number("ups")) == 18
    assert len(numbering.rma_number()) == len("RMA-") + 8
    assert len(numbering.shipment_number()) == len("SH-") + 10
    assert numbering.purchase_order_number(datetime(2026, 11, 27, tzinfo=UTC)).startswith("PO-261127-")
