"""Availability: what can be promised per SKU, per channel and per location, and the delivery date
each shipping service would promise from each location (its cut-off counted)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from om_core.api.routers._common import allow, database, ok, require_location
from om_core.clock import utcnow
from om_core.db import Database
from om_core.models import Location
from om_core.services import inventory, shipping
from om_core.services.apikeys import Principal

router = APIRouter(tags=["availability"])


@router.get("/availability/{sku}", summary="Available to promise, with promised delivery dates per shipping service")
def availability(sku: str, channel: str | None = Query(None, max_length=64), location: str | None = Query(None, max_length=64),
                 db: Database = Depends(database), who: Principal = Depends(allow("channel", "store_ops", "merchandiser", "manager"))):
    if who.role == "channel":
        channel = who.channel
    if who.role == "store_ops":
        require_location(who, location)
    with db.read() as s:
        data = inventory.available_to_promise(s, sku, channel=channel, location=location)
        now = utcnow()
        methods = [m for m in shipping.list_shipping_methods(s) if m.active]
        cutoffs = dict(s.execute(select(Location.code, Location.cutoff_hour_utc).where(Location.code.in_([r["location"] for r in data["locations"]]))).all())
        for row in data["locations"]:
            cutoff = cutoffs.get(row["location"])
            start = now + timedelta(days=1) if cutoff is not None and now.hour >= cutoff else now
            row["promised_delivery"] = {m.code: (start + timedelta(days=m.promised_days)).date().isoformat()
                                        for m in methods} if row["available"] > 0 else {}
        data["channel"] = channel
    return ok(data)
