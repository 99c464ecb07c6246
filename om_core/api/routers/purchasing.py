"""Purchase orders and receipts: merchandisers raise, send and cancel them; the receiving location's
store_ops (or a manager) books the goods in."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import Field

from om_core.api.routers._common import allow, database, ok, require_location, write
from om_core.db import Database
from om_core.models import Location, PurchaseOrder, Supplier
from om_core.services import purchasing
from om_core.services.apikeys import Principal
from om_core.validation import Input

router = APIRouter(tags=["purchasing"])
BUYERS = allow("merchandiser", "manager")


class ReceiptIn(Input):
    lines: list[purchasing.ReceiptLineIn] | None = Field(default=None, max_length=5000,
                                                          description="Default: everything still outstanding.")


def po_view(session: Any, po: PurchaseOrder) -> dict[str, Any]:
    return {
        "number": po.number, "status": po.status, "supplier": session.get_one(Supplier, po.supplier_id).code,
        "location": session.get_one(Location, po.location_id).code, "expected_at": po.expected_at, "note": po.note,
        "created_at": po.created_at, "sent_at": po.sent_at, "closed_at": po.closed_at,
        "lines": [{"sku": l.product.sku, "ordered": l.quantity_ordered, "received": l.quantity_received, "unit_cost": l.unit_cost}
                  for l in po.lines],
    }


def _location_of(session: Any, number: str) -> str:
    po = purchasing.get_purchase_order(session, number)
    return session.get_one(Location, po.location_id).code


@router.post("/purchase-orders", status_code=201, summary="Raise a purchase order (draft)")
def create(body: purchasing.PurchaseOrderIn, db: Database = Depends(database), who: Principal = Depends(BUYERS)):
    with write(db) as s:
        view = po_view(s, purchasing.create_purchase_order(s, body, actor=who.actor))
    return ok(view, 201)


@router.get("/purchase-orders/{number}", summary="Read a purchase order")
def get(number: str, db: Database = Depends(database), who: Principal = Depends(allow("merchandiser", "manager", "store_ops"))):
    with db.read() as s:
        if who.role == "store_ops":
            require_location(who, _location_of(s, number))
        return ok(po_view(s, purchasing.get_purchase_order(s, number)))


@router.post("/purchase-orders/{number}/send", summary="Send a draft purchase order to the supplier")
def send(number: str, db: Database = Depends(database), _: Principal = Depends(BUYERS)):
    with write(db) as s:
        view = po_view(s, purchasing.send_purchase_order(s, number))
    return ok(view)


@router.post("/purchase-orders/{number}/cancel", summary="Cancel a purchase order")
def cancel(number: str, db: Database = Depends(database), _: Principal = Depends(BUYERS)):
    with write(db) as s:
        view = po_view(s, purchasing.cancel_purchase_order(s, number))
    return ok(view)


@router.post("/purchase-orders/{number}/receipts", summary="Book goods in against a sent purchase order")
def receive(number: str, body: ReceiptIn, db: Database = Depends(database), who: Principal = Depends(allow("store_ops", "manager"))):
    with write(db) as s:
        if who.role == "store_ops":
            require_location(who, _location_of(s, number))
        po = purchasing.receive_purchase_order(s, number, list(body.lines) if body.lines is not None else None, actor=who.actor)
        view = po_view(s, po)
    return ok(view)
