"""Assertions shared by core tests: counting what a refused request must not have written."""

from __future__ import annotations

from sqlalchemy import func, select

from om_core.db import Database
from om_core.models import (
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


def available(db: Database, sku: str, location: str) -> int:
    from om_core.services.inventory import available_to_promise

    with db.read() as s:
        return available_to_promise(s, sku, location=location)["available"]
