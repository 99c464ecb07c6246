"""Fulfilment: shipments (create, pack, ship, deliver, pickups), pick lists and carrier tracking events.
A store_ops key works on its own locations' shipments and pick lists."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import Field

from om_core.api.routers._common import allow, database, ok, order_for, require_location, write
from om_core.db import Database
from om_core.models import Location, Order, Shipment
from om_core.services import fulfilment
from om_core.services.apikeys import Principal
from om_core.validation import Input

router = APIRouter(tags=["fulfilment"])

OPS = allow("store_ops", "manager")


class PackIn(Input):
    packages: list[fulfilment.PackageIn] = Field(default_factory=list, max_length=100)


class DispatchIn(Input):
    carrier: str | None = Field(default=None, min_length=1, max_length=32)
    tracking_number: str | None = Field(default=None, min_length=4, max_length=64)


def _own_shipment(session: Any, who: Principal, number: str) -> Shipment:
    shipment = fulfilment.get_shipment(session, number)
    if who.role == "store_ops":
        require_location(who, session.get_one(Location, shipment.location_id).code)
    if who.role == "channel":
        order_for(session, who, session.get_one(Order, shipment.order_id).number)
    return shipment


@router.post("/orders/{number}/shipments", status_code=201, summary="Create shipments (one per location) for the reserved units")
def create_shipments(number: str, db: Database = Depends(database), who: Principal = Depends(allow("manager"))):
    with write(db) as s:
        views = [fulfilment.shipment_view(s, x) for x in fulfilment.create_shipments(s, number, actor=who.actor)]
    return ok({"items": views}, 201)


@router.get("/locations/{code}/pick-list", summary="What to pick at a location: totals per SKU and lines per shipment")
def pick_list(code: str, db: Database = Depends(database), who: Principal = Depends(OPS)):
    require_location(who, code)
    with db.read() as s:
        return ok(fulfilment.pick_list(s, code))


@router.get("/shipments/{number}", summary="Read a shipment with its tracking events")
def get_shipment(number: str, db: Database = Depends(database), who: Principal = Depends(allow("store_ops", "manager", "channel"))):
    with db.read() as s:
        return ok(fulfilment.shipment_view(s, _own_shipment(s, who, number)))


@router.post("/shipments/{number}/pack", summary="Record the packages of a shipment")
def pack(number: str, body: PackIn, db: Database = Depends(database), who: Principal = Depends(OPS)):
    with write(db) as s:
        _own_shipment(s, who, number)
        view = fulfilment.shipment_view(s, fulfilment.pack_shipment(s, number, list(body.packages) or None, actor=who.actor))
    return ok(view)


@router.post("/shipments/{number}/ship", summary="Dispatch a shipment: label, tracking number, payment capture")
def ship(number: str, body: DispatchIn, db: Database = Depends(database), who: Principal = Depends(OPS)):
    with write(db) as s:
        _own_shipment(s, who, number)
        shipment = fulfilment.dispatch_shipment(s, number, carrier=body.carrier, tracking_number=body.tracking_number, actor=who.actor)
        view = fulfilment.shipment_view(s, shipment)
    return ok(view)


def _step(name: str, service: str, summary: str) -> None:
    @router.post(f"/shipments/{{number}}/{name}", summary=summary, name=f"shipment_{name}")
    def step(number: str, db: Database = Depends(database), who: Principal = Depends(OPS)):
        with write(db) as s:
            _own_shipment(s, who, number)
            view = fulfilment.shipment_view(s, getattr(fulfilment, service)(s, number, actor=who.actor))
        return ok(view)


for _name, _service, _summary in (
    ("deliver", "mark_delivered", "Delivered without a carrier scan (own van, proof entered by staff)"),
    ("ready", "mark_ready_for_pickup", "An in-store pickup is ready at the counter"),
    ("collect", "collect_pickup", "The customer collected an in-store pickup"),
):
    _step(_name, _service, _summary)


@router.post("/tracking-events", status_code=201, summary="Record a carrier tracking event (idempotent by carrier_event_id)")
def tracking_event(body: fulfilment.TrackingEventIn, db: Database = Depends(database), _: Principal = Depends(allow("manager"))):
    with write(db) as s:
        event = fulfilment.record_tracking_event(s, body)
        view = fulfilment.shipment_view(s, s.get_one(Shipment, event.shipment_id))
    return ok(view, 201)
