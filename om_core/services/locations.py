"""Locations (warehouses, stores, dropship suppliers) and the sales channels that sell their stock."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from om_core.db import read_rows
from om_core.errors import AlreadyExists, UnknownChannel, UnknownLocation, ValidationError
from om_core.models import Channel, ChannelLocation, Location
from om_core.services.catalog import get_supplier
from om_core.validation import Code, CountryCode, Input, parse


class LocationIn(Input):
    code: Code
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["warehouse", "store", "dropship"]
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    address_line1: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: CountryCode = "US"
    can_ship: bool = True
    can_pickup: bool = False
    can_ship_from_store: bool = False
    supplier: str | None = None
    daily_capacity: int | None = Field(default=None, ge=0)
    cutoff_hour_utc: int | None = Field(default=None, ge=0, le=23)

    @field_validator("country", "region", mode="before")
    @classmethod
    def _upper_codes(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _kind_rules(self) -> LocationIn:
        if self.kind == "dropship" and not self.supplier:
            raise ValueError("a dropship location needs its supplier")
        if self.kind != "store" and (self.can_pickup or self.can_ship_from_store):
            raise ValueError("only stores offer in-store pickup or ship from store")
        return self


class ChannelIn(Input):
    code: Code
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["web", "app", "pos", "marketplace"]
    prices_include_tax: bool = False
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    locations: list[Code] = Field(default_factory=list)


_CHANNEL_BY_CODE = select(Channel.__table__).where(Channel.code == bindparam("code"))
_CHANNEL_LOCATIONS = (
    select(Location.__table__)
    .join(ChannelLocation, ChannelLocation.location_id == Location.id)
    .where(ChannelLocation.channel_id == bindparam("channel_id"), Location.active.is_(True))
    .order_by(ChannelLocation.priority, Location.id)
)


def create_location(session: Session, data: LocationIn | dict[str, Any]) -> Location:
    data = parse(LocationIn, data)
    if session.scalar(select(Location.id).where(Location.code == data.code)) is not None:
        raise AlreadyExists(f"Location {data.code} already exists", location=data.code)
    supplier = get_supplier(session, data.supplier) if data.supplier else None
    location = Location(**data.model_dump(exclude={"supplier"}), supplier_id=supplier.id if supplier else None)
    session.add(location)
    session.flush()
    return location


def get_location(session: Session, code: str) -> Location:
    location = session.scalar(select(Location).where(Location.code == code))
    if location is None:
        raise UnknownLocation(f"Unknown location {code!r}", location=code)
    return location


def list_locations(session: Session) -> list[Location]:
    return list(session.scalars(select(Location).order_by(Location.code)))


def create_channel(session: Session, data: ChannelIn | dict[str, Any]) -> Channel:
    data = parse(ChannelIn, data)
    if session.scalar(select(Channel.id).where(Channel.code == data.code)) is not None:
        raise AlreadyExists(f"Channel {data.code} already exists", channel=data.code)
    channel = Channel(**data.model_dump(exclude={"locations"}))
    session.add(channel)
    session.flush()
    for priority, code in enumerate(data.locations):
        assign_location(session, channel.code, code, priority=priority)
    return channel


def get_channel(session: Session, code: str) -> Channel:
    """The channel's row (read-only)."""
    found = read_rows(session, _CHANNEL_BY_CODE, {"code": code})
    channel = found[0] if found else None
    if channel is None:
        raise UnknownChannel(f"Unknown channel {code!r}", channel=code)
    if not channel.active:
        raise ValidationError(f"Channel {code!r} is inactive", errors=[{"field": "channel", "reason": "inactive"}], channel=code)
    return channel


def assign_location(session: Session, channel_code: str, location_code: str, *, priority: int = 100) -> None:
    """Let a channel sell a location's stock; re-assigning changes only the priority."""
    channel = get_channel(session, channel_code)
    location = get_location(session, location_code)
    link = session.get(ChannelLocation, (channel.id, location.id))
    if link is None:
        session.add(ChannelLocation(channel_id=channel.id, location_id=location.id, priority=priority))
    else:
        link.priority = priority
    session.flush()


def channel_locations(session: Session, channel: Channel) -> list[Location]:
    """The channel's active locations in preference order."""
    return read_rows(session, _CHANNEL_LOCATIONS, {"channel_id": channel.id})
