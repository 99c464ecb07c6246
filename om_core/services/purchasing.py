"""Purchase orders to suppliers: draft -> sent -> partially received -> received (or cancelled).
Receipts add stock through the movement ledger."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from om_core.clock import utcnow
from om_core.errors import InvalidTransition, UnknownPurchaseOrder, ValidationError
from om_core.models import Location, PurchaseOrder, PurchaseOrderLine
from om_core.services import numbering, webhooks
from om_core.services.catalog import get_supplier, lead_time, products_by_sku
from om_core.services.inventory import get_or_create_stock, lock_stock, record_movement
from om_core.services.locations import get_location
from om_core.services.orders import fill_backorders
from om_core.validation import Amount, Code, Input, parse

TRANSITIONS = {
    "draft": {"sent", "cancelled"},
    "sent": {"partially_received", "received", "cancelled"},
    "partially_received": {"partially_received", "received"},
    "received": set(),
    "cancelled": set(),
}


class PurchaseLineIn(Input):
    sku: Code
    quantity: int = Field(gt=0, le=10_000_000)
    unit_cost: Amount | None = None


class PurchaseOrderIn(Input):
    supplier: Code
    location: Code
    lines: list[PurchaseLineIn] = Field(min_length=1, max_length=5000)
    expected_at: AwareDatetime | None = None
    note: str | None = Field(default=None, max_length=2000)


class ReceiptLineIn(Input):
    sku: Code
    quantity: int = Field(gt=0, le=10_000_000)


def _transition(po: PurchaseOrder, status: str) -> None:
    if status not in TRANSITIONS[po.status]:
        raise InvalidTransition(f"Purchase order {po.number} is {po.status}; it cannot become {status}", status=po.status, to=status)
    po.status = status


def create_purchase_order(session: Session, data: PurchaseOrderIn | dict[str, Any], *, actor: str | None = None) -> PurchaseOrder:
    """A draft PO. Missing unit costs come from the catalog, a missing arrival date from the lead time."""
    data = parse(PurchaseOrderIn, data)
    supplier, location = get_supplier(session, data.supplier), get_location(session, data.location)
    skus = [l.sku for l in data.lines]
    if len(set(skus)) != len(skus):
        raise ValidationError("Each SKU may appear once per purchase order", errors=[{"field": "lines", "reason": "duplicate sku"}])
    products = products_by_sku(session, skus)
    now = utcnow()
    expected = data.expected_at
    if expected is None:
        days = max(lead_time(products[s])[0] for s in skus)
        expected = now + timedelta(days=float(days))
    po = PurchaseOrder(
        number=numbering.new_numbers(session, PurchaseOrder.number, lambda: numbering.purchase_order_number(now))[0], supplier_id=supplier.id, location_id=location.id,
        status="draft", expected_at=expected, note=data.note, created_by=actor, created_at=now,
    )
    for line in data.lines:
        product = products[line.sku]
        po.lines.append(PurchaseOrderLine(product_id=product.id, quantity_ordered=line.quantity, unit_cost=line.unit_cost if line.unit_cost is not None else product.cost))
    session.add(po)
    session.flush()
    return po


def get_purchase_order(session: Session, number: str) -> PurchaseOrder:
    po = session.scalar(select(PurchaseOrder).where(PurchaseOrder.number == number))
    if po is None:
        raise UnknownPurchaseOrder(f"Unknown purchase order {number!r}", purchase_order=number)
    return po


def send_purchase_order(session: Session, number: str) -> PurchaseOrder:
    po = get_purchase_order(session, number)
    _transition(po, "sent")
    po.sent_at = utcnow()
    session.flush()
    return po


def cancel_purchase_order(session: Session, number: str) -> PurchaseOrder:
    po = get_purchase_order(session, number)
    if any(l.quantity_received for l in po.lines):
        raise InvalidTransition(f"Purchase order {number} has receipts; it cannot be cancelled", status=po.status)
    _transition(po, "cancelled")
    po.closed_at = utcnow()
    session.flush()
    return po


def receipt_lines(number: str, outstanding: dict[str, int], wanted: list[ReceiptLineIn] | None) -> list[ReceiptLineIn]:
    """What a receipt books in: `wanted`, or everything `outstanding` (units still due per SKU) when None.
    Refused: nothing to receive, a SKU twice, a SKU not on the order, more than is outstanding."""
    if wanted is None:
        wanted = [ReceiptLineIn(sku=sku, quantity=due) for sku, due in outstanding.items() if due > 0]
    if not wanted:
        raise ValidationError(f"Cannot receive purchase order {number}: no lines given", errors=[{"field": "lines", "reason": "no lines to receive"}])
    skus = [item.sku for item in wanted]
    errors = [{"field": f"lines.{sku}", "reason": "appears more than once"} for sku in sorted({s for s in skus if skus.count(s) > 1})]
    for item in wanted:
        due = outstanding.get(item.sku)
        if due is None:
            errors.append({"field": f"lines.{item.sku}", "reason": "not on this purchase order"})
        elif item.quantity > due:
            errors.append({"field": f"lines.{item.sku}", "reason": f"receives {item.quantity}, only {due} outstanding"})
    if errors:
        raise ValidationError(f"Cannot receive purchase order {number}: " + "; ".join(e["field"] + " " + e["reason"] for e in errors), errors=errors)
    return wanted


def receive_purchase_order(
    session: Session, number: str, lines: list[ReceiptLineIn | dict[str, Any]] | None = None, *, actor: str | None = None
) -> PurchaseOrder:
    """Book goods in against a sent PO: each receipt is a ledger movement at the PO's location.
    Without `lines`, everything still outstanding is received. Over-receipt is refused."""
    po = get_purchase_order(session, number)
    if po.status not in ("sent", "partially_received"):
        raise InvalidTransition(f"Purchase order {number} is {po.status}; only sent orders can be received", status=po.status)
    by_sku = {l.product.sku: l for l in po.lines}
    wanted = receipt_lines(number, {sku: l.quantity_ordered - l.quantity_received for sku, l in by_sku.items()},
                           [parse(ReceiptLineIn, l) for l in lines] if lines is not None else None)
    product_ids = {by_sku[item.sku].product_id for item in wanted}
    # lock every stock row of these SKUs first, in id order: backorders may draw on any location
    locked = {s.product_id: s for s in lock_stock(session, product_ids, session.scalars(select(Location.id)).all())
              if s.location_id == po.location_id}
    for item in wanted:
        line = by_sku[item.sku]
        stock = locked.get(line.product_id) or get_or_create_stock(session, line.product_id, po.location_id)
        record_movement(session, stock, "receipt", quantity=item.quantity, reference=f"po:{po.number}", actor=actor)
        line.quantity_received += item.quantity
    done = all(l.quantity_received >= l.quantity_ordered for l in po.lines)
    _transition(po, "received" if done else "partially_received")
    if done:
        po.closed_at = utcnow()
    session.flush()
    webhooks.emit(session, "purchase_order.received", {
        "purchase_order": po.number, "status": po.status, "location": session.get_one(Location, po.location_id).code,
        "lines": [{"sku": item.sku, "received": item.quantity} for item in wanted]})
    fill_backorders(session, product_ids=product_ids, actor=actor)
    return po


def open_quantity(po: PurchaseOrder) -> dict[str, int]:
    return {l.product.sku: l.quantity_ordered - l.quantity_received for l in po.lines}


def po_value(po: PurchaseOrder) -> Decimal:
    return sum((Decimal(l.unit_cost) * l.quantity_ordered for l in po.lines), Decimal(0))
