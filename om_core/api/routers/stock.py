"""Stock: receipts, adjustments (counts, damage, ...), transfers and the movement ledger. A store_ops key
moves stock at its own locations only (a transfer out of one of them)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from om_core.api.routers._common import allow, database, ok, require_location, write
from om_core.db import Database
from om_core.services import inventory
from om_core.services.apikeys import Principal

router = APIRouter(tags=["stock"])
OPS = allow("store_ops", "manager")


@router.post("/stock/receipts", status_code=201, summary="Receive stock at a location (outside a purchase order)")
def receipt(body: inventory.ReceiptIn, db: Database = Depends(database), who: Principal = Depends(OPS)):
    require_location(who, body.location)
    with write(db) as s:
        inventory.receive_stock(s, body, actor=who.actor)
        view = inventory.available_to_promise(s, body.sku, location=body.location)
    return ok(view, 201)


@router.post("/stock/adjustments", status_code=201, summary="Adjust on hand: a signed change or a counted quantity")
def adjustment(body: inventory.AdjustmentIn, db: Database = Depends(database), who: Principal = Depends(OPS)):
    require_location(who, body.location)
    with write(db) as s:
        movement = inventory.adjust_stock(s, body, actor=who.actor)
        view = {"change": movement.quantity, **inventory.available_to_promise(s, body.sku, location=body.location)}
    return ok(view, 201)


@router.post("/stock/transfers", status_code=201, summary="Move stock between locations")
def transfer(body: inventory.TransferIn, db: Database = Depends(database), who: Principal = Depends(OPS)):
    require_location(who, body.from_location)
    with write(db) as s:
        t = inventory.transfer_stock(s, body, actor=who.actor)
        view = {"transfer_id": t.id, "sku": body.sku, "from": body.from_location, "to": body.to_location, "quantity": t.quantity}
    return ok(view, 201)


@router.get("/stock/movements", summary="The movement ledger of a SKU (newest first)")
def movements(sku: str = Query(min_length=1, max_length=64), location: str | None = Query(None, max_length=64),
              limit: int = Query(50, ge=1, le=1000), db: Database = Depends(database),
              who: Principal = Depends(allow("store_ops", "merchandiser", "manager"))):
    if who.role == "store_ops":
        require_location(who, location)
    with db.read() as s:
        items = [{"id": m.id, "kind": m.kind, "quantity": m.quantity, "reserved_change": m.reserved_change, "reason": m.reason,
                  "reference": m.reference, "actor": m.actor, "at": m.at} for m in inventory.movements_for(s, sku, location, limit)]
    return ok({"sku": sku, "location": location, "items": items})
