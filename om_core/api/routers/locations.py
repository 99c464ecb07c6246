"""The network: locations (warehouses, stores, dropship) and sales channels with their locations."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import Field
from sqlalchemy import select

from om_core.api.routers._common import Limit, Offset, allow, database, fields, ok, page, write
from om_core.db import Database
from om_core.errors import UnknownChannel, UnknownLocation, ValidationError
from om_core.models import Channel, ChannelLocation, Location
from om_core.services import locations
from om_core.services.apikeys import Principal
from om_core.validation import Input

router = APIRouter(tags=["locations"])

LOCATION_FIELDS = ("code", "name", "kind", "latitude", "longitude", "address_line1", "city", "region", "postal_code", "country",
                   "can_ship", "can_pickup", "can_ship_from_store", "daily_capacity", "cutoff_hour_utc", "active", "created_at")
CHANNEL_FIELDS = ("code", "name", "kind", "prices_include_tax", "currency", "routing_strategy", "active", "created_at")
READERS = allow("channel", "store_ops", "merchandiser", "manager")
MANAGERS = allow("manager")


class LocationUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    address_line1: str | None = Field(default=None, max_length=200)
    city: str | None = Field(default=None, max_length=120)
    region: str | None = Field(default=None, max_length=64)
    postal_code: str | None = Field(default=None, max_length=16)
    can_ship: bool | None = None
    can_pickup: bool | None = None
    can_ship_from_store: bool | None = None
    daily_capacity: int | None = Field(default=None, ge=0, le=1_000_000)
    cutoff_hour_utc: int | None = Field(default=None, ge=0, le=23)
    active: bool | None = None


class ChannelUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    prices_include_tax: bool | None = None
    routing_strategy: Literal["nearest_with_stock", "fewest_shipments", "lowest_cost"] | None = None
    active: bool | None = None


class ChannelLocationIn(Input):
    priority: int = Field(default=100, ge=0, le=1_000_000)


def _apply(row: Any, changes: Input) -> None:
    for name, value in changes.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(row, name, value)


def _location(session: Any, code: str) -> Location:
    row = session.scalar(select(Location).where(Location.code == code))
    if row is None:
        raise UnknownLocation(f"Unknown location {code!r}", location=code)
    return row


def _channel(session: Any, code: str) -> Channel:
    row = session.scalar(select(Channel).where(Channel.code == code))
    if row is None:
        raise UnknownChannel(f"Unknown channel {code!r}", channel=code)
    return row


def channel_view(session: Any, ch: Channel) -> dict[str, Any]:
    linked = session.execute(select(Location.code, ChannelLocation.priority).join(ChannelLocation, ChannelLocation.location_id == Location.id)
                             .where(ChannelLocation.channel_id == ch.id).order_by(ChannelLocation.priority, Location.id)).all()
    return fields(ch, *CHANNEL_FIELDS) | {"locations": [{"code": c, "priority": p} for c, p in linked]}


@router.get("/locations", summary="List locations")
def list_locations(limit: Limit = 100, offset: Offset = 0, kind: Literal["warehouse", "store", "dropship"] | None = None,
                   db: Database = Depends(database), _: Principal = Depends(READERS)):
    with db.read() as s:
        stmt = select(Location).order_by(Location.code).limit(limit).offset(offset)
        if kind:
            stmt = stmt.where(Location.kind == kind)
        return ok(page([fields(l, *LOCATION_FIELDS) for l in s.scalars(stmt)], limit, offset))


@router.get("/locations/{code}", summary="Read a location")
def get_location(code: str, db: Database = Depends(database), _: Principal = Depends(READERS)):
    with db.read() as s:
        return ok(fields(_location(s, code), *LOCATION_FIELDS))


@router.post("/locations", status_code=201, summary="Create a location")
def create_location(body: locations.LocationIn, db: Database = Depends(database), _: Principal = Depends(MANAGERS)):
    with write(db) as s:
        view = fields(locations.create_location(s, body), *LOCATION_FIELDS)
    return ok(view, 201)


@router.patch("/locations/{code}", summary="Update a location")
def update_location(code: str, body: LocationUpdate, db: Database = Depends(database), _: Principal = Depends(MANAGERS)):
    with write(db) as s:
        row = _location(s, code)
        _apply(row, body)
        if row.kind != "store" and (row.can_pickup or row.can_ship_from_store):
            raise ValidationError("Only stores offer in-store pickup or ship from store",
                                  errors=[{"field": "can_pickup" if row.can_pickup else "can_ship_from_store", "reason": f"not a store ({row.kind})"}])
        s.flush()
        view = fields(row, *LOCATION_FIELDS)
    return ok(view)


@router.get("/channels", summary="List channels")
def list_channels(db: Database = Depends(database), who: Principal = Depends(allow("channel", "merchandiser", "manager"))):
    with db.read() as s:
        stmt = select(Channel).order_by(Channel.code)
        if who.role == "channel":
            stmt = stmt.where(Channel.code == who.channel)
        return ok({"items": [channel_view(s, c) for c in s.scalars(stmt)]})


@router.get("/channels/{code}", summary="Read a channel")
def get_channel(code: str, db: Database = Depends(database), who: Principal = Depends(allow("channel", "merchandiser", "manager"))):
    with db.read() as s:
        if who.role == "channel" and code != who.channel:
            raise UnknownChannel(f"Unknown channel {code!r}", channel=code)
        return ok(channel_view(s, _channel(s, code)))


@router.post("/channels", status_code=201, summary="Create a channel")
def create_channel(body: locations.ChannelIn, db: Database = Depends(database), _: Principal = Depends(MANAGERS)):
    with write(db) as s:
        view = channel_view(s, _channel(s, locations.create_channel(s, body).code))
    return ok(view, 201)


@router.patch("/channels/{code}", summary="Update a channel")
def update_channel(code: str, body: ChannelUpdate, db: Database = Depends(database), _: Principal = Depends(MANAGERS)):
    with write(db) as s:
        row = _channel(s, code)
        _apply(row, body)
        s.flush()
        view = channel_view(s, row)
    return ok(view)


@router.put("/channels/{code}/locations/{location_code}", summary="Let a channel sell a location's stock")
def assign_location(code: str, location_code: str, body: ChannelLocationIn, db: Database = Depends(database),
                    _: Principal = Depends(MANAGERS)):
    with write(db) as s:
        locations.assign_location(s, code, location_code, priority=body.priority)
        view = channel_view(s, _channel(s, code))
    return ok(view)
