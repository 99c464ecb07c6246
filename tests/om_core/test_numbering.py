"""Document numbers: random, and drawn again when a number is already given (the birthday bound makes
8 random hex digits clash after ~77,000 returns)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from om_core.db import Database
from om_core.models import PurchaseOrder
from om_core.services import bulk, numbering, purchasing

LINES = [{"sku": "TEE-S", "quantity": 10}]


def _draws(*numbers: str) -> Iterator[str]:
    """A number generator that gives `numbers` first, then fresh ones."""
    yield from numbers
    n = 0
    while True:
        n += 1
        yield f"PO-FRESH-{n}"


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


def test_numbers_keep_their_shapes() -> None:
    from datetime import UTC, datetime

    assert len(numbering.rma_number()) == len("RMA-") + 8
    assert len(numbering.shipment_number()) == len("SH-") + 10
    assert numbering.purchase_order_number(datetime(2026, 11, 27, tzinfo=UTC)).startswith("PO-261127-")
