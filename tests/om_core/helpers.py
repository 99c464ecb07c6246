"""Assertions shared by core tests: checking that a refused request wrote nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from om_core.db import Database
from om_core.errors import ValidationError
from om_core.models import (
    Base,
    IdempotencyKey,
    LineDiscount,
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    PaymentTransaction,
    PromotionRedemption,
    Reservation,
    Stock,
    StockMovement,
)

WRITTEN_BY_ORDERS = (Order, OrderLine, Reservation, StockMovement, OrderEvent, Payment, PaymentTransaction,
                     LineDiscount, PromotionRedemption, IdempotencyKey)


def row_counts(db: Database) -> dict[str, int]:
    """Rows per table that order operations write, plus total on hand: equal before and after means nothing was written."""
    with db.read() as s:
        counts = {model.__tablename__: s.scalar(select(func.count()).select_from(model)) for model in WRITTEN_BY_ORDERS}
        counts["on_hand"] = s.scalar(select(func.coalesce(func.sum(Stock.on_hand), 0)))
        counts["active_reserved"] = s.scalar(
            select(func.coalesce(func.sum(Reservation.quantity), 0)).where(Reservation.status == "active")
        )
    return counts


def table_row_counts(db: Database) -> dict[str, int]:
    """Rows per table, every table, read in a fresh session: equal before and after means no row was added or removed."""
    with db.read() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables}


def table_snapshot(db: Database) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table (values as their repr, rows sorted), read in a fresh session: equal before and
    after means nothing at all was inserted, updated or deleted. The test databases are small enough for this."""
    with db.read() as s:
        return {
            t.name: sorted(tuple(repr(v) for v in row) for row in s.execute(select(t)))
            for t in Base.metadata.sorted_tables
        }


def refused(db: Database, error: type[Exception], write: Callable[[Session], object]) -> Any:
    """Run `write` in a transaction, expect exactly `error` (not a subclass), check that nothing was written, and
    return the exception."""
    before = table_snapshot(db)
    with pytest.raises(error) as info:
        with db.transaction() as s:
            write(s)
    assert type(info.value) is error
    assert table_snapshot(db) == before
    return info.value


def fields(err: ValidationError) -> list[str]:
    """The fields a ValidationError names, in order."""
    return [e["field"] for e in err.errors]


def available(db: Database, sku: str, location: str) -> int:
    from om_core.services.inventory import available_to_promise

    with db.read() as s:
        return available_to_promise(s, sku, location=location)["available"]
