"""Returns and exchanges.

A return is opened for delivered lines within the return window, with a reason. It is received and
inspected at a location: resellable units go back on the shelf through the ledger, damaged or wrong
items are written off. The refund follows the policy (what the customer paid for the units, net of
their share of discounts; shipping back when the retailer was at fault; an optional restocking fee
otherwise) through the payment ledger. Receiving and refunding are independent of each other.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from om_core.clock import utcnow
from om_core.db import lock_rows
from om_core.errors import Conflict, InvalidTransition, NotFound, ValidationError
from om_core.models import Order, OrderLine, Payment, Product, ReturnLine, ReturnRequest, Shipment, ShipmentLine
from om_core.money import ZERO, to_money
from om_core.services import inventory, notifications, numbering, payments
from om_core.services.events import record_event
from om_core.services.locations import get_location
from om_core.services.orders import derive_status, get_order, place_replacement_order
from om_core.validation import Code, Input, Quantity, parse

ReasonCode = Literal["damaged", "defective", "wrong_item", "not_as_described", "late_delivery", "size_fit", "no_longer_needed", "other"]
RETAILER_FAULT = frozenset({"damaged", "defective", "wrong_item", "not_as_described", "late_delivery"})
Condition = Literal["resellable", "damaged", "wrong_item"]


def return_window_days() -> int:
    return int(os.environ.get("STOREOM_RETURN_WINDOW_DAYS", "30"))


class UnknownReturn(NotFound):
    code = "unknown_return"


class NotReturnable(Conflict):
    code = "not_returnable"


class ReturnLineIn(Input):
    line_no: int = Field(gt=0)
    quantity: Quantity
    reason_code: ReasonCode | None = None


class ReturnIn(Input):
    reason_code: ReasonCode
    lines: list[ReturnLineIn] = Field(min_length=1, max_length=200)
    note: str | None = Field(default=None, max_length=2000)


class InspectionIn(Input):
    line_no: int = Field(gt=0)
    condition: Condition


class ExchangeLineIn(Input):
    sku: Code
    quantity: Quantity


def get_return(session: Session, number: str, *, lock: bool = False) -> ReturnRequest:
    stmt = select(ReturnRequest).where(ReturnRequest.number == number)
    found = lock_rows(session, stmt).first() if lock else session.scalar(stmt)
    if found is None:
        raise UnknownReturn(f"Unknown return {number!r}", return_number=number)
    return found


def _already_returning(session: Session, order: Order) -> dict[int, int]:
    """Units per order line on returns that are not cancelled (open ones count: no double returns)."""
    rows = session.execute(
        select(ReturnLine.order_line_id, func.sum(ReturnLine.quantity))
        .join(ReturnRequest, ReturnRequest.id == ReturnLine.return_id)
        .where(ReturnRequest.order_id == order.id, ReturnRequest.status != "cancelled")
        .group_by(ReturnLine.order_line_id)
    ).all()
    return {line_id: int(q) for line_id, q in rows}


def _last_delivery(session: Session, line: OrderLine) -> Any:
    return session.scalar(
        select(func.max(Shipment.delivered_at)).join(ShipmentLine, ShipmentLine.shipment_id == Shipment.id)
        .where(ShipmentLine.order_line_id == line.id, Shipment.delivered_at.is_not(None))
    )


def check_return_lines(order_number: str, data: ReturnIn, by_no: Mapping[int, Any], *, returning: Mapping[int, int], now: datetime,
                       returnable: Callable[[Any], bool], delivered_at: Callable[[Any], datetime | None]) -> None:
    """Refuse a return request whose lines are unknown, listed twice, not returnable, more than was
    delivered and not already being returned, or past the return window (counted from the last delivery,
    or from the hand-over for a till sale). `by_no` maps line numbers to the order's lines."""
    window = timedelta(days=return_window_days())
    errors = []
    seen = set()
    for item in data.lines:
        line = by_no.get(item.line_no)
        if line is None:
            errors.append({"field": f"lines.{item.line_no}", "reason": "no such line on the order"})
            continue
        if item.line_no in seen:
            errors.append({"field": f"lines.{item.line_no}", "reason": "listed twice"})
        seen.add(item.line_no)
        if not returnable(line):
            raise NotReturnable(f"{line.sku} ({line.name}) cannot be returned", sku=line.sku)
        left = line.quantity_delivered - returning.get(line.id, 0)
        if item.quantity > left:
            errors.append({"field": f"lines.{item.line_no}", "reason": f"{item.quantity} requested, {left} delivered and not already being returned"})
            continue
        since = delivered_at(line)
        if since is not None and now > since + window:
            raise NotReturnable(f"The return window for {line.sku} closed on {(since + window):%Y-%m-%d}", sku=line.sku, reason="window_closed")
    if errors:
        raise ValidationError(f"Cannot open a return on {order_number}: " + "; ".join(f"{e['field']} {e['reason']}" for e in errors), errors=errors)


def open_return(session: Session, order_number: str, data: ReturnIn | dict[str, Any], *, actor: str | None = None) -> ReturnRequest:
    """Open a return (RMA) for delivered units. Refused: undelivered units, units already being
    returned, non-returnable SKUs, or a return window that has closed."""
    data = parse(ReturnIn, data)
    order = get_order(session, order_number, lock=True)
    by_no = {l.line_no: l for l in order.lines}
    returning = _already_returning(session, order)
    now = utcnow()
    check_return_lines(order_number, data, by_no, returning=returning, now=now,
                       returnable=lambda line: session.get_one(Product, line.product_id).returnable,
                       delivered_at=lambda line: _last_delivery(session, line) or order.fulfilment_started_at)
    rma = ReturnRequest(number=numbering.new_numbers(session, ReturnRequest.number, numbering.rma_number)[0], order_id=order.id, status="open", reason_code=data.reason_code,
                        note=data.note, opened_by=actor, opened_at=now)
    rma.lines = [ReturnLine(order_line_id=by_no[i.line_no].id, quantity=i.quantity, reason_code=i.reason_code or data.reason_code)
                 for i in data.lines]
    session.add(rma)
    session.flush()
    record_event(session, order, "return_opened", actor=actor, return_number=rma.number, reason=data.reason_code,
                 lines={str(i.line_no): i.quantity for i in data.lines})
    return rma


def receive_return(
    session: Session, number: str, location_code: str, inspections: list[InspectionIn | dict[str, Any]] | None = None,
    *, actor: str | None = None,
) -> ReturnRequest:
    """Goods are back: inspect each line. Resellable units are restocked at the receiving location,
    damaged and wrong items are written off; the ledger records both."""
    rma = get_return(session, number, lock=True)
    if rma.status not in ("open", "refunded") or rma.received_at is not None:
        raise InvalidTransition(f"Return {number} is {rma.status}; it cannot be received again", return_number=number)
    location = get_location(session, location_code)
    order = session.get_one(Order, rma.order_id)
    lines = {l.id: l for l in order.lines}
    by_no = {lines[rl.order_line_id].line_no: rl for rl in rma.lines}
    checked = {i.line_no: i.condition for i in (parse(InspectionIn, x) for x in (inspections or []))}
    unknown = sorted(set(checked) - set(by_no))
    if unknown:
        raise ValidationError(f"Return {number} has no line(s) {unknown}", errors=[{"field": f"inspections.{n}", "reason": "not on this return"} for n in unknown])
    inventory.lock_stock(session, {lines[rl.order_line_id].product_id for rl in rma.lines}, [location.id])
    for line_no, rl in sorted(by_no.items()):
        line = lines[rl.order_line_id]
        rl.condition = checked.get(line_no, "resellable")
        stock = inventory.get_or_create_stock(session, line.product_id, location.id)
        inventory.record_movement(session, stock, "return", quantity=rl.quantity, reference=f"return:{rma.number}", actor=actor,
                                  reason=rl.reason_code)
        if rl.condition != "resellable":
            inventory.record_movement(session, stock, "write_off", quantity=-rl.quantity, reference=f"return:{rma.number}", actor=actor,
                                      reason=rl.condition)
        line.quantity_returned += rl.quantity
    now = utcnow()
    rma.received_at, rma.received_location_id = now, location.id
    if rma.status == "open":
        rma.status = "received"
    else:
        rma.status = "closed"
    order.status, order.updated_at = derive_status(order), now
    record_event(session, order, "return_received", actor=actor, return_number=number, location=location.code,
                 conditions={str(k): v.condition for k, v in by_no.items()})
    notifications.notify_order(session, order, "return_received", dedupe_suffix=number, return_number=number)
    session.flush()
    return rma


def refund_amount(
    order: Order, rma: ReturnRequest, *, restocking_fee_rate: Decimal = ZERO, refunded_units: dict[int, int] | None = None
) -> tuple[Decimal, dict[int, Decimal]]:
    """What the policy refunds, in total and per return line.

    Each unit refunds what the customer paid for it: its line total (after discounts, with tax when
    added on top) divided by the units bought. When the retailer was at fault (damaged, defective,
    wrong, not as described, late) the returned goods' share of the shipping charge comes back too
    (all of it when everything comes back); otherwise a restocking fee may apply.

    `refunded_units` (order line id -> units refunded by earlier returns) makes the cents add up:
    a line's units refunded over several returns refund exactly its line total, never a cent more.
    """
    lines = {l.id: l for l in order.lines}
    already = refunded_units or {}
    per_line: dict[int, Decimal] = {}
    for rl in rma.lines:
        line = lines[rl.order_line_id]
        bought = max(line.quantity - line.quantity_cancelled, 1)
        before = already.get(line.id, 0)
        total = Decimal(line.line_total)
        per_line[rl.id] = to_money(total * (before + rl.quantity) / bought) - to_money(total * before / bought)
    goods = sum(per_line.values(), ZERO)
    if rma.reason_code in RETAILER_FAULT:
        shipping = Decimal(order.shipping_total)
        if not order.prices_include_tax:
            shipping += Decimal(order.tax_total) - sum((Decimal(l.tax_amount) for l in order.lines), ZERO)
        merchandise = sum((Decimal(l.line_total) for l in order.lines), ZERO)
        share = goods / merchandise if merchandise > 0 else Decimal(1)
        return to_money(goods + shipping * min(share, Decimal(1))), per_line
    fee = to_money(goods * restocking_fee_rate)
    return goods - fee, per_line


def refund_return(
    session: Session, number: str, *, restocking_fee_rate: Decimal = ZERO, idempotency_key: str | None = None, actor: str | None = None
) -> ReturnRequest:
    """Refund a return through the payment ledger (never more than was captured and not refunded)."""
    if not (ZERO <= restocking_fee_rate < 1):
        raise ValidationError("restocking_fee_rate must be between 0 and 1", errors=[{"field": "restocking_fee_rate", "reason": "0 <= rate < 1"}])
    rma = get_return(session, number, lock=True)
    if rma.refunded_at is not None or rma.status in ("refunded", "closed", "cancelled"):
        raise InvalidTransition(f"Return {number} is {rma.status}; it was already refunded or cancelled", return_number=number)
    order = session.get_one(Order, rma.order_id)
    refunded_units = dict(session.execute(
        select(ReturnLine.order_line_id, func.sum(ReturnLine.quantity))
        .join(ReturnRequest, ReturnRequest.id == ReturnLine.return_id)
        .where(ReturnRequest.order_id == order.id, ReturnRequest.refunded_at.is_not(None), ReturnRequest.id != rma.id)
        .group_by(ReturnLine.order_line_id)
    ).all())
    amount, per_line = refund_amount(order, rma, restocking_fee_rate=restocking_fee_rate,
                                     refunded_units={k: int(v) for k, v in refunded_units.items()})
    payment = session.scalar(select(Payment).where(Payment.order_id == order.id))
    if amount > 0:
        if payment is None:
            raise Conflict(f"Order {order.number} has no payment to refund", order=order.number)
        payments.refund(session, order.number, amount, idempotency_key=idempotency_key or f"refund:{number}", actor=actor)
    for rl in rma.lines:
        rl.refund_amount = per_line[rl.id]
    now = utcnow()
    rma.refund_amount, rma.refunded_at = amount, now
    rma.status = "closed" if rma.received_at is not None else "refunded"
    record_event(session, order, "refund_issued", actor=actor, return_number=number, amount=str(amount))
    notifications.notify_order(session, order, "refund_issued", dedupe_suffix=number, return_number=number, refund_amount=str(amount))
    session.flush()
    return rma


def create_exchange(
    session: Session, number: str, lines: list[ExchangeLineIn | dict[str, Any]], *, actor: str | None = None
) -> Order:
    """Send replacements for a return: a no-charge order linked to it, reserving stock like any order."""
    wanted = [parse(ExchangeLineIn, l) for l in lines]
    if not wanted:
        raise ValidationError("An exchange needs at least one line", errors=[{"field": "lines", "reason": "empty"}])
    rma = get_return(session, number, lock=True)
    if rma.exchange_order_id is not None:
        raise InvalidTransition(f"Return {number} already has exchange order", return_number=number)
    if rma.status == "cancelled":
        raise InvalidTransition(f"Return {number} is cancelled", return_number=number)
    returned_units = sum(rl.quantity for rl in rma.lines)
    if sum(l.quantity for l in wanted) > returned_units:
        raise ValidationError(
            f"An exchange replaces at most the {returned_units} unit(s) returned",
            errors=[{"field": "lines", "reason": f"more than {returned_units} units"}],
        )
    original = session.get_one(Order, rma.order_id)
    replacement = place_replacement_order(session, original, [l.model_dump() for l in wanted], reason=f"exchange for {number}", actor=actor)
    rma.exchange_order_id = replacement.id
    record_event(session, original, "exchange_created", actor=actor, return_number=number, replacement=replacement.number)
    session.flush()
    return replacement


def return_view(session: Session, rma: ReturnRequest) -> dict[str, Any]:
    order = session.get_one(Order, rma.order_id)
    lines = {l.id: l for l in order.lines}
    exchange = session.get(Order, rma.exchange_order_id) if rma.exchange_order_id else None
    return {
        "number": rma.number, "order": order.number, "status": rma.status, "reason_code": rma.reason_code,
        "opened_at": rma.opened_at.isoformat(), "received_at": rma.received_at.isoformat() if rma.received_at else None,
        "refund_amount": None if rma.refund_amount is None else str(rma.refund_amount),
        "exchange_order": exchange.number if exchange else None,
        "lines": [{"line_no": lines[rl.order_line_id].line_no, "sku": lines[rl.order_line_id].sku, "quantity": rl.quantity,
                   "reason_code": rl.reason_code, "condition": rl.condition,
                   "refund_amount": None if rl.refund_amount is None else str(rl.refund_amount)} for rl in rma.lines],
    }
