"""Stock per SKU x location, the movement ledger, reservations and available-to-promise.

Every change of on-hand or of what is promised appends a `StockMovement`; `Stock.on_hand` is the
ledger's running total, and what is reserved is the sum of active `Reservation` rows. Writers lock
the stock rows they touch in ascending id order (Saleor's discipline), then read and allocate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from om_core.clock import utcnow
from om_core.db import lock_rows, read_rows, write_rows
from om_core.errors import StockError, ValidationError
from om_core.models import ChannelLocation, Location, OrderLine, Reservation, Stock, StockMovement, Transfer
from om_core.services.catalog import get_product
from om_core.services.locations import channel_locations, get_channel, get_location
from om_core.validation import Code, Input, parse

ADJUSTMENT_REASONS = ("count", "damage", "theft", "found", "expired", "correction", "initial")
MAX_MOVEMENT = 1_000_000


class ReceiptIn(Input):
    sku: Code
    location: Code
    quantity: int = Field(gt=0, le=MAX_MOVEMENT)
    reference: str | None = Field(default=None, max_length=64)


class AdjustmentIn(Input):
    """Either a signed change (`delta`) or the quantity found in a count (`counted`), always with a reason."""

    sku: Code
    location: Code
    reason: Literal["count", "damage", "theft", "found", "expired", "correction", "initial"]
    delta: int | None = Field(default=None, ge=-MAX_MOVEMENT, le=MAX_MOVEMENT)
    counted: int | None = Field(default=None, ge=0, le=MAX_MOVEMENT)
    note: str | None = Field(default=None, max_length=150)


class TransferIn(Input):
    sku: Code
    from_location: Code
    to_location: Code
    quantity: int = Field(gt=0, le=MAX_MOVEMENT)
    reason: str | None = Field(default=None, max_length=200)


@dataclass(frozen=True)
class StockLevel:
    stock_id: int | None
    product_id: int
    location_id: int
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return max(self.on_hand - self.reserved, 0)


def get_or_create_stock(session: Session, product_id: int, location_id: int) -> Stock:
    """The stock row for a SKU at a location, locked; created empty on first use."""
    stmt = select(Stock).where(Stock.product_id == product_id, Stock.location_id == location_id)
    stock = lock_rows(session, stmt).first()
    if stock is not None:
        return stock
    try:
        with session.begin_nested():
            stock = Stock(product_id=product_id, location_id=location_id, on_hand=0)
            session.add(stock)
    except IntegrityError:  # created concurrently: use theirs
        stock = lock_rows(session, stmt).first()
        assert stock is not None
    return stock


def lock_stock(session: Session, product_ids: Iterable[int], location_ids: Iterable[int]) -> list[Stock]:
    """Lock existing stock rows for these SKUs x locations in ascending id order (no deadlocks)."""
    product_ids, location_ids = sorted(set(product_ids)), sorted(set(location_ids))
    if not product_ids or not location_ids:
        return []
    stmt = (
        select(Stock)
        .where(Stock.product_id.in_(product_ids), Stock.location_id.in_(location_ids))
        .order_by(Stock.id)
    )
    return list(lock_rows(session, stmt))


_STOCK_ROWS = (
    select(Stock.id, Stock.product_id, Stock.location_id, Stock.on_hand)
    .where(Stock.product_id.in_(bindparam("products", expanding=True)), Stock.location_id.in_(bindparam("locations", expanding=True)))
    .order_by(Stock.id)
)
_STOCK_ROWS_LOCKED = _STOCK_ROWS.with_for_update()
_RESERVED_BY_STOCK = (
    select(Reservation.stock_id, func.sum(Reservation.quantity))
    .where(Reservation.stock_id.in_(bindparam("stock_ids", expanding=True)), Reservation.status == "active")
    .group_by(Reservation.stock_id)
)
_INSERT_RESERVATIONS = insert(Reservation.__table__)
_INSERT_MOVEMENTS = insert(StockMovement.__table__)


def stock_rows(session: Session, product_ids: Iterable[int], location_ids: Iterable[int], *, lock: bool) -> list[Any]:
    """Stock rows (id, product_id, location_id, on_hand) for SKUs x locations, read-only; with `lock`,
    locked in ascending id order. Read what is reserved with a separate statement after locking, so
    on PostgreSQL it sees every reservation committed before the lock was granted."""
    product_ids, location_ids = sorted(set(product_ids)), sorted(set(location_ids))
    if not product_ids or not location_ids:
        return []
    return read_rows(session, _STOCK_ROWS_LOCKED if lock else _STOCK_ROWS, {"products": product_ids, "locations": location_ids})


_RESERVED_NOW = (
    select(func.coalesce(func.sum(Reservation.quantity), 0))
    .where(Reservation.stock_id == Stock.id, Reservation.status == "active")
    .correlate(Stock)
    .scalar_subquery()
)
_STOCK_WITH_RESERVED = (
    select(Stock.id, Stock.product_id, Stock.location_id, Stock.on_hand, _RESERVED_NOW.label("reserved"))
    .where(Stock.product_id.in_(bindparam("products", expanding=True)), Stock.location_id.in_(bindparam("locations", expanding=True)))
    .order_by(Stock.id)
)


def stock_available(session: Session, product_ids: Iterable[int], location_ids: Iterable[int], *, lock: bool) -> tuple[list[Any], dict[tuple[int, int], int]]:
    """`stock_rows` and each row's available units, in one statement where that is safe: on SQLite (its
    IMMEDIATE write transaction already holds the database, so nothing can commit in between) or without
    `lock`. PostgreSQL with `lock` reads what is reserved after the lock is granted (see `stock_rows`)."""
    if lock and session.connection().dialect.name != "sqlite":
        rows = stock_rows(session, product_ids, location_ids, lock=True)
        levels = stock_levels(session, rows)
        return rows, {key: level.available for key, level in levels.items()}
    product_ids, location_ids = sorted(set(product_ids)), sorted(set(location_ids))
    if not product_ids or not location_ids:
        return [], {}
    rows = read_rows(session, _STOCK_WITH_RESERVED, {"products": product_ids, "locations": location_ids})
    return rows, {(product_id, location_id): max(on_hand - int(reserved), 0) for _, product_id, location_id, on_hand, reserved in rows}


def reserved_by_stock(session: Session, stock_ids: Iterable[int]) -> dict[int, int]:
    ids = list(stock_ids)
    if not ids:
        return {}
    return {stock_id: int(total) for stock_id, total in read_rows(session, _RESERVED_BY_STOCK, {"stock_ids": ids})}


def stock_levels(session: Session, stocks: list[Stock]) -> dict[tuple[int, int], StockLevel]:
    reserved = reserved_by_stock(session, [s.id for s in stocks])
    return {
        (s.product_id, s.location_id): StockLevel(s.id, s.product_id, s.location_id, s.on_hand, reserved.get(s.id, 0))
        for s in stocks
    }


def record_movement(
    session: Session,
    stock: Stock,
    kind: str,
    *,
    quantity: int = 0,
    reserved_change: int = 0,
    reason: str | None = None,
    reference: str | None = None,
    actor: str | None = None,
) -> StockMovement:
    """Append to the ledger and move on-hand with it; on-hand may never go below zero."""
    if stock.on_hand + quantity < 0:
        raise StockError(
            f"Stock of product {stock.product_id} at location {stock.location_id} would go negative "
            f"({stock.on_hand} on hand, change {quantity})",
            on_hand=stock.on_hand,
            change=quantity,
        )
    stock.on_hand += quantity
    movement = StockMovement(
        stock_id=stock.id,
        kind=kind,
        quantity=quantity,
        reserved_change=reserved_change,
        reason=reason,
        reference=reference,
        actor=actor,
        at=utcnow(),
    )
    session.add(movement)
    return movement


def receive_stock(session: Session, data: ReceiptIn | dict[str, Any], *, actor: str | None = None) -> Stock:
    """Goods in (delivery, opening balance): on hand goes up by the received quantity."""
    data = parse(ReceiptIn, data)
    product, location = get_product(session, data.sku), get_location(session, data.location)
    stock = get_or_create_stock(session, product.id, location.id)
    record_movement(session, stock, "receipt", quantity=data.quantity, reference=data.reference, actor=actor)
    session.flush()
    return stock


def adjust_stock(session: Session, data: AdjustmentIn | dict[str, Any], *, actor: str | None = None) -> StockMovement:
    """Correct on hand after a count, damage or loss. A count sets on hand; a delta moves it."""
    data = parse(AdjustmentIn, data)
    if (data.delta is None) == (data.counted is None):
        raise ValidationError("Give exactly one of delta or counted", errors=[{"field": "delta", "reason": "exactly one of delta/counted"}])
    product, location = get_product(session, data.sku), get_location(session, data.location)
    stock = get_or_create_stock(session, product.id, location.id)
    delta = data.delta if data.delta is not None else data.counted - stock.on_hand  # type: ignore[operator]
    if delta == 0 and data.counted is None:
        raise ValidationError("An adjustment of 0 changes nothing", errors=[{"field": "delta", "reason": "must not be 0"}])
    reason = data.reason + (f": {data.note}" if data.note else "")
    movement = record_movement(session, stock, "adjustment", quantity=delta, reason=reason, actor=actor)
    session.flush()
    return movement


def transfer_stock(session: Session, data: TransferIn | dict[str, Any], *, actor: str | None = None) -> Transfer:
    """Move available units between locations (reserved units stay where they are promised)."""
    data = parse(TransferIn, data)
    if data.from_location == data.to_location:
        raise ValidationError("A transfer needs two different locations", errors=[{"field": "to_location", "reason": "same as from_location"}])
    product = get_product(session, data.sku)
    source, target = get_location(session, data.from_location), get_location(session, data.to_location)
    stocks = {s.location_id: s for s in lock_stock(session, [product.id], [source.id, target.id])}
    source_stock = stocks.get(source.id)
    available = stock_levels(session, [source_stock])[(product.id, source.id)].available if source_stock else 0
    if data.quantity > available:
        raise StockError(
            f"Only {available} of {data.sku} available at {source.code} to transfer", available=available, requested=data.quantity
        )
    assert source_stock is not None
    target_stock = stocks.get(target.id) or get_or_create_stock(session, product.id, target.id)
    transfer = Transfer(
        product_id=product.id, from_location_id=source.id, to_location_id=target.id,
        quantity=data.quantity, reason=data.reason, actor=actor, at=utcnow(),
    )
    session.add(transfer)
    session.flush()
    ref = f"transfer:{transfer.id}"
    record_movement(session, source_stock, "transfer_out", quantity=-data.quantity, reference=ref, reason=data.reason, actor=actor)
    record_movement(session, target_stock, "transfer_in", quantity=data.quantity, reference=ref, reason=data.reason, actor=actor)
    session.flush()
    return transfer


def reserve_stock(session: Session, allocations: list[tuple[int, Any, int, str | None]], *, actor: str | None = None) -> None:
    """Promise units of locked stock rows to order lines: one reservation row and one ledger row each.

    `allocations` is [(order_line_id, stock, quantity, ledger reference)]; the caller locked the stock
    rows and checked availability. Written as two multi-row inserts: the hot path of order placement.
    """
    if not allocations:
        return
    now = utcnow()
    write_rows(
        session,
        _INSERT_RESERVATIONS,
        [{"stock_id": stock.id, "order_line_id": line_id, "quantity": qty, "status": "active", "created_at": now}
         for line_id, stock, qty, _ in allocations],
    )
    write_rows(
        session,
        _INSERT_MOVEMENTS,
        [{"stock_id": stock.id, "kind": "reservation", "quantity": 0, "reserved_change": qty, "reason": None,
          "reference": reference, "actor": actor, "at": now} for _, stock, qty, reference in allocations],
    )


_ACTIVE_FOR_LINES = (
    select(Reservation.id, Reservation.stock_id, Reservation.quantity)
    .where(Reservation.order_line_id.in_(bindparam("line_ids", expanding=True)), Reservation.status == "active")
    .order_by(Reservation.id)
)
_RELEASE = (
    update(Reservation.__table__)
    .where(Reservation.id.in_(bindparam("ids", expanding=True)), Reservation.status == "active")
    .values(status="released", closed_at=bindparam("now"))
)


def release_all(session: Session, line_ids: list[int], *, reference: str | None, reason: str | None = None, actor: str | None = None) -> int:
    """Release every active reservation of these order lines in three statements (cancel, re-route).

    The caller holds the lock on the stock rows involved. Returns the units released.
    """
    if not line_ids:
        return 0
    session.flush()
    rows = read_rows(session, _ACTIVE_FOR_LINES, {"line_ids": list(line_ids)})
    if not rows:
        return 0
    now = utcnow()
    write_rows(session, _RELEASE, {"ids": [r.id for r in rows], "now": now})
    write_rows(session, _INSERT_MOVEMENTS, [
        {"stock_id": r.stock_id, "kind": "reservation_release", "quantity": 0, "reserved_change": -r.quantity, "reason": reason,
         "reference": reference, "actor": actor, "at": now} for r in rows
    ])
    for obj in list(session.identity_map.values()):  # loaded reservations no longer match the table
        if isinstance(obj, Reservation):
            session.expire(obj)
        elif isinstance(obj, OrderLine):
            session.expire(obj, ["reservations"])
    return sum(r.quantity for r in rows)


def release_reservations(
    session: Session, line: OrderLine, quantity: int | None = None, *, actor: str | None = None, reason: str | None = None,
    location_id: int | None = None,
) -> int:
    """Give back up to `quantity` (default: all) reserved units of a line, newest reservation first
    (only those at `location_id` when given)."""
    return _close_reservations(session, line, quantity, "released", actor=actor, reason=reason, location_id=location_id)


def fulfil_reservations(
    session: Session, line: OrderLine, quantity: int, *, actor: str | None = None, location_id: int | None = None
) -> int:
    """Units leave the building: reserved units become a sale (on hand and reserved both go down)."""
    return _close_reservations(session, line, quantity, "fulfilled", actor=actor, reason=None, location_id=location_id)


def _close_reservations(
    session: Session, line: OrderLine, quantity: int | None, status: str, *, actor: str | None, reason: str | None,
    location_id: int | None = None,
) -> int:
    stmt = select(Reservation).where(Reservation.order_line_id == line.id, Reservation.status == "active")
    if location_id is not None:
        stmt = stmt.join(Stock, Stock.id == Reservation.stock_id).where(Stock.location_id == location_id)
    active = list(session.scalars(stmt.order_by(Reservation.id.desc())))
    stocks = {s.id: s for s in lock_rows(session, select(Stock).where(Stock.id.in_({r.stock_id for r in active})).order_by(Stock.id))}
    remaining = sum(r.quantity for r in active) if quantity is None else quantity
    closed = 0
    now = utcnow()
    for reservation in active:
        if remaining <= 0:
            break
        take = min(reservation.quantity, remaining)
        reservation.status, reservation.closed_at = status, now
        stock = stocks[reservation.stock_id]
        if status == "fulfilled":
            record_movement(session, stock, "sale", quantity=-take, reserved_change=-take, reference=f"order:{line.order.number}", actor=actor)
        else:
            record_movement(session, stock, "reservation_release", reserved_change=-take, reference=f"order:{line.order.number}", reason=reason, actor=actor)
        if take < reservation.quantity:  # keep the rest promised as a new row
            line.reservations.append(Reservation(stock_id=stock.id, quantity=reservation.quantity - take, status="active", created_at=now))
        remaining -= take
        closed += take
    session.flush()
    return closed


def available_to_promise(
    session: Session, sku: str, *, channel: str | None = None, location: str | None = None
) -> dict[str, Any]:
    """What can still be sold: on hand minus active reservations, per location and in total.

    With a channel, only that channel's locations count; with a location, only that one.
    """
    product = get_product(session, sku)
    if location is not None:
        locations = [get_location(session, location)]
    elif channel is not None:
        locations = channel_locations(session, get_channel(session, channel))
    else:
        locations = list(session.scalars(select(Location).where(Location.active.is_(True)).order_by(Location.id)))
    stocks = list(session.scalars(select(Stock).where(Stock.product_id == product.id, Stock.location_id.in_([l.id for l in locations]))))
    levels = stock_levels(session, stocks)
    rows = []
    for loc in locations:
        level = levels.get((product.id, loc.id))
        on_hand, reserved = (level.on_hand, level.reserved) if level else (0, 0)
        rows.append({"location": loc.code, "on_hand": on_hand, "reserved": reserved, "available": max(on_hand - reserved, 0)})
    return {"sku": sku, "channel": channel, "available": sum(r["available"] for r in rows), "locations": rows}


def channel_availability(session: Session, product_ids: list[int], channel_id: int) -> dict[int, int]:
    """Available units per product across a channel's locations (for alternatives and listings)."""
    stocks = list(session.scalars(
        select(Stock)
        .join(ChannelLocation, (ChannelLocation.location_id == Stock.location_id) & (ChannelLocation.channel_id == channel_id))
        .where(Stock.product_id.in_(product_ids))
    ))
    totals: dict[int, int] = defaultdict(int)
    for level in stock_levels(session, stocks).values():
        totals[level.product_id] += level.available
    return dict(totals)


def verify_ledger(session: Session) -> list[dict[str, Any]]:
    """Re-derive every stock row from the ledger; return the rows that disagree (empty means consistent).

    Checks on hand against the sum of movements, reserved against the sum of active reservation rows,
    and that no stock row is negative.
    """
    ledger = dict(
        session.execute(
            select(StockMovement.stock_id, func.sum(StockMovement.quantity)).group_by(StockMovement.stock_id)
        ).all()
    )
    ledger_reserved = dict(
        session.execute(
            select(StockMovement.stock_id, func.sum(StockMovement.reserved_change)).group_by(StockMovement.stock_id)
        ).all()
    )
    active = dict(
        session.execute(
            select(Reservation.stock_id, func.sum(Reservation.quantity))
            .where(Reservation.status == "active")
            .group_by(Reservation.stock_id)
        ).all()
    )
    problems = []
    for stock in session.scalars(select(Stock).order_by(Stock.id)):
        derived = int(ledger.get(stock.id) or 0)
        reserved_rows = int(active.get(stock.id) or 0)
        reserved_ledger = int(ledger_reserved.get(stock.id) or 0)
        if derived != stock.on_hand or reserved_rows != reserved_ledger or stock.on_hand < 0:
            problems.append(
                {"stock_id": stock.id, "on_hand": stock.on_hand, "ledger_on_hand": derived,
                 "reserved": reserved_rows, "ledger_reserved": reserved_ledger}
            )
    return problems


def movements_for(session: Session, sku: str, location: str | None = None, limit: int = 100) -> list[StockMovement]:
    product = get_product(session, sku)
    stmt = select(StockMovement).join(Stock).where(Stock.product_id == product.id)
    if location:
        stmt = stmt.where(Stock.location_id == get_location(session, location).id)
    return list(session.scalars(stmt.order_by(StockMovement.id.desc()).limit(limit)))


__all__ = [
    "ADJUSTMENT_REASONS", "StockLevel", "adjust_stock", "available_to_promise", "channel_availability",
    "fulfil_reservations", "get_or_create_stock", "lock_stock", "receive_stock", "release_reservations",
    "reserve_stock", "stock_levels", "transfer_stock", "verify_ledger"
]
