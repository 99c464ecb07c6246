"""Approving reorder suggestions into draft purchase orders.

The analytics platform suggests what to buy (the `reorder_suggestions` asset); a merchandiser approves
rows (CLI or dashboard) and this service turns them into one draft purchase order per supplier and
receiving location. Drafts, not sent orders: a buyer still reviews and sends them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from om_core.errors import Conflict, ValidationError
from om_core.models import Location, PurchaseOrder, PurchaseOrderLine
from om_core.services.catalog import get_supplier, products_by_sku
from om_core.services.locations import get_location
from om_core.services.purchasing import create_purchase_order
from om_core.validation import Amount, Code, Input, parse

OPEN_PO_STATUSES = ("draft", "sent", "partially_received")


class ReorderLineIn(Input):
    sku: Code
    location: Code
    quantity: int = Field(gt=0, le=10_000_000)
    supplier: Code | None = None
    unit_cost: Amount | None = None


class ReorderApprovalIn(Input):
    lines: list[ReorderLineIn] = Field(min_length=1, max_length=20_000)


def approve_reorder(
    session: Session, lines: list[ReorderLineIn | dict[str, Any]], *, actor: str | None = None, as_of: date | None = None,
    computed_at: datetime | None = None,
) -> list[PurchaseOrder]:
    """Draft purchase orders for the approved suggestion rows, grouped by (supplier, location).

    The supplier defaults to the SKU's own. The suggestions knew the purchase orders created before the
    end of their as-of day and before they were computed (`as_of`, `computed_at`: whichever is given,
    the earlier counts); a SKU x location that got a purchase order since then is refused, because
    approving its suggestion again would order twice.
    """
    data = parse(ReorderApprovalIn, {"lines": lines})
    duplicates = sorted(k for k, n in Counter((l.sku, l.location) for l in data.lines).items() if n > 1)
    if duplicates:
        raise ValidationError(
            "Each SKU x location may be approved once per request",
            errors=[{"field": "lines", "reason": f"duplicate {sku} at {loc}"} for sku, loc in duplicates],
        )
    products = products_by_sku(session, [l.sku for l in data.lines])
    locations = {code: get_location(session, code) for code in sorted({l.location for l in data.lines})}
    errors = []
    for i, line in enumerate(data.lines):
        if locations[line.location].kind == "dropship":
            errors.append({"field": f"lines[{i}].location", "reason": f"{line.location} is a dropship supplier; it does not receive stock"})
        if line.supplier is None and products[line.sku].supplier is None:
            errors.append({"field": f"lines[{i}].supplier", "reason": f"{line.sku} has no supplier; name one"})
    if errors:
        raise ValidationError("Some suggestions cannot become purchase orders", errors=errors)
    for code in sorted({l.supplier for l in data.lines if l.supplier}):
        get_supplier(session, code)
    known_until = _known_until(as_of, computed_at)
    if known_until is not None:
        _refuse_already_ordered(session, data.lines, products, locations, known_until)

    groups: dict[tuple[str, str], list[ReorderLineIn]] = defaultdict(list)
    for line in data.lines:
        supplier = line.supplier or products[line.sku].supplier.code  # type: ignore[union-attr]
        groups[(supplier, line.location)].append(line)
    note = "Approved reorder suggestions" + (f" (as of {as_of.isoformat()})" if as_of else "")
    return [
        create_purchase_order(
            session,
            {"supplier": supplier, "location": location, "note": note,
             "lines": [{"sku": l.sku, "quantity": l.quantity, "unit_cost": l.unit_cost} for l in group]},
            actor=actor,
        )
        for (supplier, location), group in sorted(groups.items())
    ]


def _known_until(as_of: date | None, computed_at: datetime | None) -> datetime | None:
    limits = []
    if as_of is not None:
        limits.append(datetime.combine(as_of + timedelta(days=1), time(), tzinfo=UTC))
    if computed_at is not None:
        limits.append(computed_at if computed_at.tzinfo else computed_at.replace(tzinfo=UTC))
    return min(limits) if limits else None


def _refuse_already_ordered(
    session: Session, lines: list[ReorderLineIn], products: dict[str, Any], locations: dict[str, Location], after: datetime
) -> None:
    wanted = {(products[l.sku].id, locations[l.location].id): (l.sku, l.location) for l in lines}
    rows = session.execute(
        select(PurchaseOrderLine.product_id, PurchaseOrder.location_id, PurchaseOrder.number)
        .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
        .where(PurchaseOrder.status.in_(OPEN_PO_STATUSES), PurchaseOrder.created_at >= after,
               PurchaseOrderLine.product_id.in_({p for p, _ in wanted}))
    ).all()
    clashes = sorted({(*wanted[(p, loc)], number) for p, loc, number in rows if (p, loc) in wanted})
    if clashes:
        raise Conflict(
            "Already on a purchase order created after these suggestions were computed; re-run the pipeline first",
            already_ordered=[{"sku": sku, "location": loc, "purchase_order": number} for sku, loc, number in clashes],
        )
