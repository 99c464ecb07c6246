"""From a placed order to the parcel at the door or the pickup counter.

Shipments are made from an order's reservations, one per location. A shipment is picked (pick list),
packed, then dispatched: the label is printed, reserved units become a sale in the ledger, the
shipped amount is captured and the customer is told. Carrier scans move it on to delivered; a
shipment past its promise, or with an exception, is flagged as delayed and the customer is told.
Pickups are made ready, collected, or expire (stock released, authorization voided).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from om_core.clock import utcnow
from om_core.config import get_settings
from om_core.db import lock_rows
from om_core.errors import AlreadyExists, InvalidTransition, NotFound, UnknownLocation, ValidationError
from om_core.models import (
    Location,
    Order,
    OrderLine,
    Package,
    Payment,
    Product,
    Shipment,
    ShipmentLine,
    ShippingMethod,
    Stock,
    TrackingEvent,
)
from om_core.money import ZERO, to_money
from om_core.services import inventory, notifications, numbering, payments
from om_core.services.events import record_event
from om_core.services.labels import LabelData, render_label
from om_core.services.orders import derive_status, get_order
from om_core.validation import Input, parse

CARRIERS = {"standard": "usps", "expedited": "ups", "overnight": "fedex"}
TRACKING_URLS = {
    "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
    "ups": "https://www.ups.com/track?tracknum={}",
    "fedex": "https://www.fedex.com/fedextrack/?trknbr={}",
}
PICKUP_HOLD_DAYS = 7
OPEN_SHIPMENT = ("pending", "packed")
IN_FLIGHT = ("dispatched", "in_transit", "out_for_delivery", "exception")
TRACKING_PROGRESS = {"label_created": 0, "picked_up": 1, "in_transit": 2, "exception": 2, "out_for_delivery": 3, "delivered": 4}
STATUS_FOR_EVENT = {"picked_up": "in_transit", "in_transit": "in_transit", "out_for_delivery": "out_for_delivery", "exception": "exception"}


class UnknownShipment(NotFound):
    code = "unknown_shipment"


class PackageIn(Input):
    weight_kg: Decimal = Field(gt=0, le=1000)
    length_cm: Decimal = Field(default=Decimal(30), gt=0, le=400)
    width_cm: Decimal = Field(default=Decimal(20), gt=0, le=400)
    height_cm: Decimal = Field(default=Decimal(10), gt=0, le=400)


class TrackingEventIn(Input):
    """A carrier scan, whatever the carrier: normalized to our kinds."""

    tracking_number: str = Field(min_length=4, max_length=64)
    kind: Literal["label_created", "picked_up", "in_transit", "out_for_delivery", "delivered", "exception"]
    at: AwareDatetime
    carrier_event_id: str = Field(min_length=1, max_length=128)
    location: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=300)
    estimated_delivery: AwareDatetime | None = None


def get_shipment(session: Session, number: str, *, lock: bool = False) -> Shipment:
    stmt = select(Shipment).where(Shipment.number == number)
    shipment = lock_rows(session, stmt).first() if lock else session.scalar(stmt)
    if shipment is None:
        raise UnknownShipment(f"Unknown shipment {number!r}", shipment=number)
    return shipment


def _units_in_open_shipments(session: Session, order: Order) -> dict[tuple[int, int], int]:
    """(order line, location) -> units already in a shipment that has not left yet."""
    rows = session.execute(
        select(ShipmentLine.order_line_id, Shipment.location_id, func.sum(ShipmentLine.quantity))
        .join(Shipment, Shipment.id == ShipmentLine.shipment_id)
        .where(Shipment.order_id == order.id, Shipment.status.in_(OPEN_SHIPMENT + ("ready_for_pickup",)))
        .group_by(ShipmentLine.order_line_id, Shipment.location_id)
    ).all()
    return {(line_id, loc): int(q) for line_id, loc, q in rows}


def _promised_at(order: Order, location: Location) -> datetime:
    """Promised delivery: the service's days from placement; after the location's cut-off, one day later."""
    start = order.placed_at
    if location.cutoff_hour_utc is not None and start.hour >= location.cutoff_hour_utc:
        start += timedelta(days=1)
    return start + timedelta(days=order.promised_delivery_days or 0)


def create_shipments(session: Session, number: str, *, actor: str | None = None) -> list[Shipment]:
    """One shipment per location for the reserved units not yet in a shipment."""
    order = get_order(session, number, lock=True)
    if order.hold or order.status in ("cancelled", "on_hold"):
        raise InvalidTransition(f"Order {number} is {order.status}; nothing can ship", order=number, status=order.status)
    taken = _units_in_open_shipments(session, order)
    reserved: dict[tuple[int, int], int] = defaultdict(int)
    for line in order.lines:
        for r in line.reservations:
            if r.status == "active":
                reserved[(line.id, r.stock_id)] += r.quantity
    stock_location = dict(session.execute(select(Stock.id, Stock.location_id).where(Stock.id.in_({k[1] for k in reserved}))).all())
    per_location: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for (line_id, stock_id), qty in reserved.items():
        per_location[stock_location[stock_id]][line_id] += qty
    method = session.get(ShippingMethod, order.shipping_method_id) if order.shipping_method_id else None
    now = utcnow()
    created = []
    for location_id, lines in sorted(per_location.items()):
        todo = {lid: q - taken.get((lid, location_id), 0) for lid, q in lines.items()}
        todo = {lid: q for lid, q in todo.items() if q > 0}
        if not todo:
            continue
        location = session.get_one(Location, location_id)
        kind = "pickup" if order.delivery_method == "pickup" else ("dropship" if location.kind == "dropship" else "ship")
        service = "pickup" if kind == "pickup" else (method.service_level if method else "standard")
        shipment = Shipment(
            number=numbering.new_numbers(session, Shipment.number, numbering.shipment_number)[0], order_id=order.id, location_id=location_id, kind=kind, status="pending",
            carrier=None if kind == "pickup" else CARRIERS.get(service, "usps"), service_level=service,
            promised_at=_promised_at(order, location), created_at=now, delayed=False,
        )
        shipment.lines = [ShipmentLine(order_line_id=lid, quantity=q) for lid, q in sorted(todo.items())]
        session.add(shipment)
        created.append(shipment)
    if not created:
        raise InvalidTransition(f"Order {number} has no reserved units waiting for a shipment", order=number)
    order.fulfilment_started_at = order.fulfilment_started_at or now
    session.flush()
    for shipment in created:
        record_event(session, order, "shipment_created", actor=actor, shipment=shipment.number,
                     location=session.get_one(Location, shipment.location_id).code,
                     lines={str(l.order_line_id): l.quantity for l in shipment.lines})
    return created


def pick_list(session: Session, location_code: str) -> dict[str, Any]:
    """What to take off the shelves at a location: per SKU in total, and per shipment."""
    location = session.scalar(select(Location).where(Location.code == location_code))
    if location is None:
        raise UnknownLocation(f"Unknown location {location_code!r}", location=location_code)
    rows = session.execute(
        select(Shipment.number, Order.number, OrderLine.sku, OrderLine.name, ShipmentLine.quantity)
        .join(ShipmentLine, ShipmentLine.shipment_id == Shipment.id)
        .join(OrderLine, OrderLine.id == ShipmentLine.order_line_id)
        .join(Order, Order.id == Shipment.order_id)
        .where(Shipment.location_id == location.id, Shipment.status == "pending")
        .order_by(Shipment.created_at, Shipment.id, OrderLine.line_no)
    ).all()
    totals: dict[str, dict[str, Any]] = {}
    shipments: dict[str, dict[str, Any]] = {}
    for shipment_no, order_no, sku, name, qty in rows:
        totals.setdefault(sku, {"sku": sku, "name": name, "quantity": 0})["quantity"] += qty
        shipments.setdefault(shipment_no, {"shipment": shipment_no, "order": order_no, "lines": []})["lines"].append({"sku": sku, "quantity": qty})
    return {"location": location.code, "generated_at": utcnow().isoformat(), "skus": sorted(totals.values(), key=lambda t: t["sku"]),
            "shipments": list(shipments.values())}


def pack_shipment(session: Session, number: str, packages: list[PackageIn | dict[str, Any]] | None = None, *, actor: str | None = None) -> Shipment:
    """Record the packages (default: one box weighing what the goods weigh)."""
    shipment = get_shipment(session, number, lock=True)
    if shipment.status != "pending" or shipment.kind == "pickup":
        raise InvalidTransition(f"Shipment {number} is {shipment.status} ({shipment.kind}); only pending parcels are packed", shipment=number)
    parsed = [parse(PackageIn, p) for p in packages] if packages else None
    if parsed is None:
        parsed = [PackageIn(weight_kg=max(_goods_weight(session, shipment), Decimal("0.1")))]
    shipment.packages = [Package(**p.model_dump()) for p in parsed]
    shipment.weight_kg = sum((p.weight_kg for p in parsed), Decimal(0))
    shipment.status, shipment.packed_at = "packed", utcnow()
    session.flush()
    record_event(session, session.get_one(Order, shipment.order_id), "shipment_packed", actor=actor, shipment=number, packages=len(parsed))
    return shipment


def _goods_weight(session: Session, shipment: Shipment) -> Decimal:
    weights = dict(session.execute(
        select(OrderLine.id, Product.weight_kg).join(Product, Product.id == OrderLine.product_id)
        .where(OrderLine.id.in_([l.order_line_id for l in shipment.lines]))
    ).all())
    return sum((Decimal(weights[l.order_line_id]) * l.quantity for l in shipment.lines), Decimal(0))


def _hand_over(session: Session, order: Order, shipment: Shipment, actor: str | None) -> Decimal:
    """Reserved units at the shipment's location become a sale; capture what they are worth."""
    lines = {l.id: l for l in order.lines}
    for sl in shipment.lines:
        line = lines[sl.order_line_id]
        done = inventory.fulfil_reservations(session, line, sl.quantity, actor=actor, location_id=shipment.location_id)
        if done != sl.quantity:
            raise ValidationError(
                f"Only {done} of {sl.quantity} units of {line.sku} are still reserved at the shipping location",
                errors=[{"field": f"lines.{line.line_no}", "reason": "reservation missing"}],
            )
        line.quantity_fulfilled += sl.quantity
    order.status, order.updated_at = derive_status(order), utcnow()
    return _capture_for(session, order, shipment, actor)


def _capture_for(session: Session, order: Order, shipment: Shipment, actor: str | None) -> Decimal:
    """Capture the value of the shipped units (the first shipment carries the shipping charge);
    once everything has shipped, capture whatever is still authorized so no cent is left behind."""
    payment = session.scalar(select(Payment).where(Payment.order_id == order.id))
    if payment is None:
        return ZERO
    open_amount = payments.balance(payment).open_authorization
    if open_amount <= 0:
        return ZERO
    lines = {l.id: l for l in order.lines}
    everything_shipped = all(l.quantity_fulfilled >= l.quantity - l.quantity_cancelled for l in order.lines)
    if everything_shipped:
        amount = open_amount
    else:
        amount = sum(
            (Decimal(lines[sl.order_line_id].line_total) * sl.quantity / max(lines[sl.order_line_id].quantity - lines[sl.order_line_id].quantity_cancelled, 1)
             for sl in shipment.lines),
            ZERO,
        )
        first = session.scalar(select(func.count()).select_from(Shipment).where(
            Shipment.order_id == order.id, Shipment.dispatched_at.is_not(None), Shipment.id != shipment.id)) == 0
        if first:
            amount += Decimal(order.shipping_total) + (ZERO if order.prices_include_tax else _shipping_tax(order))
        amount = min(to_money(amount), open_amount)
    if amount > 0:
        payments.capture(session, order.number, amount, actor=actor, idempotency_key=f"capture:{shipment.number}")
    return amount


def _shipping_tax(order: Order) -> Decimal:
    return Decimal(order.tax_total) - sum((Decimal(l.tax_amount) for l in order.lines), ZERO)


def dispatch_shipment(
    session: Session, number: str, *, carrier: str | None = None, tracking_number: str | None = None, actor: str | None = None
) -> Shipment:
    """Hand a packed parcel to the carrier: label, sale in the ledger, payment capture, customer told."""
    shipment = get_shipment(session, number, lock=True)
    if shipment.kind == "pickup":
        raise InvalidTransition(f"Shipment {number} is an in-store pickup: mark it ready instead", shipment=number)
    if shipment.status not in ("pending", "packed"):
        raise InvalidTransition(f"Shipment {number} is {shipment.status}; it has already left", shipment=number, status=shipment.status)
    order = get_order(session, session.get_one(Order, shipment.order_id).number, lock=True)
    _require_not_held(order, shipment)
    if tracking_number is not None:
        other = session.scalar(select(Shipment.number).where(Shipment.tracking_number == tracking_number, Shipment.id != shipment.id))
        if other is not None:
            raise AlreadyExists(f"Tracking number {tracking_number} is already on shipment {other}",
                                tracking_number=tracking_number, shipment=other)
    if shipment.status == "pending":
        pack_shipment(session, number, actor=actor)
    now = utcnow()
    shipment.carrier = carrier or shipment.carrier or "usps"
    shipment.tracking_number = tracking_number or numbering.new_numbers(
        session, Shipment.tracking_number, lambda: numbering.tracking_number(shipment.carrier))[0]
    origin = session.get_one(Location, shipment.location_id)
    shipment.label_path = str(render_label(LabelData(
        shipment_number=shipment.number, order_number=order.number, carrier=shipment.carrier, service_level=shipment.service_level,
        tracking_number=shipment.tracking_number,
        ship_from=[origin.name, " ".join(filter(None, [origin.city, origin.region, origin.postal_code]))],
        ship_to=[x for x in [order.ship_name, order.ship_line1, order.ship_line2,
                             " ".join(filter(None, [order.ship_city, order.ship_region, order.ship_postal_code])), order.ship_country] if x],
        weight_kg=str(shipment.weight_kg), packages=len(shipment.packages), dispatched_at=now,
    ), get_settings().home / "labels"))
    shipment.status, shipment.dispatched_at = "dispatched", now
    shipment.estimated_at = shipment.promised_at
    from om_core.services.routing import estimate_shipment_cost

    shipment.shipping_cost = estimate_shipment_cost(None, Decimal(shipment.weight_kg or 0))
    shipment.events.append(TrackingEvent(kind="label_created", at=now, carrier_event_id=f"storeom:{shipment.number}:label",
                                         description="Label created", received_at=now))
    captured = _hand_over(session, order, shipment, actor)
    record_event(session, order, "shipment_dispatched", actor=actor, shipment=shipment.number, carrier=shipment.carrier,
                 tracking_number=shipment.tracking_number, captured=str(captured))
    notifications.notify_order(
        session, order, "shipped", dedupe_suffix=shipment.number, carrier=shipment.carrier, tracking_number=shipment.tracking_number,
        tracking_url=TRACKING_URLS.get(shipment.carrier, "{}").format(shipment.tracking_number),
        estimated_delivery=f"{shipment.estimated_at:%Y-%m-%d}" if shipment.estimated_at else None,
    )
    session.flush()
    return shipment


def _require_not_held(order: Order, shipment: Shipment) -> None:
    """Goods never leave (nor is money captured) while the order is on hold, e.g. for a fraud check."""
    if order.hold:
        raise InvalidTransition(f"Order {order.number} is on hold; shipment {shipment.number} cannot be handed over",
                                order=order.number, shipment=shipment.number, status=order.status)


def record_tracking_event(session: Session, data: TrackingEventIn | dict[str, Any]) -> TrackingEvent:
    """Ingest a carrier scan. The same scan twice (same carrier event id) is recorded once."""
    data = parse(TrackingEventIn, data)
    shipment = session.scalar(select(Shipment).where(Shipment.tracking_number == data.tracking_number))
    if shipment is None:
        raise UnknownShipment(f"No shipment with tracking number {data.tracking_number!r}", tracking_number=data.tracking_number)
    shipment = get_shipment(session, shipment.number, lock=True)
    existing = next((e for e in shipment.events if e.carrier_event_id == data.carrier_event_id), None)
    if existing is not None:
        return existing
    if shipment.status in ("pending", "packed", "cancelled"):
        raise InvalidTransition(f"Shipment {shipment.number} has not been dispatched", shipment=shipment.number, status=shipment.status)
    event = TrackingEvent(kind=data.kind, at=data.at, carrier_event_id=data.carrier_event_id, location_text=data.location,
                          description=data.description, received_at=utcnow())
    shipment.events.append(event)
    order = session.get_one(Order, shipment.order_id)
    if data.estimated_delivery is not None:
        shipment.estimated_at = data.estimated_delivery
    if shipment.status != "delivered":
        if data.kind == "delivered":
            _deliver(session, order, shipment, data.at)
        elif data.kind in STATUS_FOR_EVENT and TRACKING_PROGRESS[data.kind] >= TRACKING_PROGRESS.get(shipment.status, 0):
            shipment.status = STATUS_FOR_EVENT[data.kind]
            if data.kind == "out_for_delivery":
                notifications.notify_order(session, order, "out_for_delivery", dedupe_suffix=shipment.number,
                                           tracking_number=shipment.tracking_number, carrier=shipment.carrier)
        late = shipment.estimated_at is not None and shipment.promised_at is not None and shipment.estimated_at > shipment.promised_at
        if shipment.status != "delivered" and (data.kind == "exception" or late):
            _flag_delay(session, order, shipment, data.description or ("carrier exception" if data.kind == "exception" else "running late"))
    record_event(session, order, f"tracking_{data.kind}", shipment=shipment.number, at=data.at.isoformat())
    session.flush()
    return event


def _deliver(session: Session, order: Order, shipment: Shipment, at: datetime) -> None:
    shipment.status, shipment.delivered_at = "delivered", at
    lines = {l.id: l for l in order.lines}
    for sl in shipment.lines:
        lines[sl.order_line_id].quantity_delivered += sl.quantity
    order.status, order.updated_at = derive_status(order), utcnow()
    notifications.notify_order(session, order, "delivered", dedupe_suffix=shipment.number)
    if order.status == "delivered":
        notifications.notify_order(session, order, "feedback_request", feedback_url=f"{get_settings().public_url}/feedback/{order.number}")


def _flag_delay(session: Session, order: Order, shipment: Shipment, why: str) -> None:
    if not shipment.delayed:
        shipment.delayed = True
        record_event(session, order, "shipment_delayed", shipment=shipment.number, reason=why)
    notifications.notify_order(
        session, order, "delayed", dedupe_suffix=shipment.number, tracking_number=shipment.tracking_number, carrier=shipment.carrier,
        estimated_delivery=f"{shipment.estimated_at:%Y-%m-%d}" if shipment.estimated_at else None, reason=why,
    )


def mark_delivered(session: Session, number: str, *, at: datetime | None = None, actor: str | None = None) -> Shipment:
    """Delivered without a carrier scan (own van, proof of delivery entered by staff)."""
    shipment = get_shipment(session, number)
    if shipment.status not in IN_FLIGHT:
        raise InvalidTransition(f"Shipment {number} is {shipment.status}; only dispatched parcels are delivered", shipment=number)
    record_tracking_event(session, {"tracking_number": shipment.tracking_number, "kind": "delivered", "at": at or utcnow(),
                                    "carrier_event_id": f"storeom:{number}:delivered:{actor or 'staff'}", "description": "Delivered (recorded by staff)"})
    return shipment


def detect_delays(session: Session, *, now: datetime | None = None) -> list[str]:
    """Flag parcels past their promise (or in exception) and tell their customers, once each."""
    now = now or utcnow()
    late = list(session.scalars(
        select(Shipment).where(Shipment.status.in_(IN_FLIGHT), Shipment.delayed.is_(False),
                               (Shipment.promised_at < now) | (Shipment.status == "exception"))
        .order_by(Shipment.id)
    ))
    for shipment in late:
        order = session.get_one(Order, shipment.order_id)
        _flag_delay(session, order, shipment, "past the promised delivery date" if shipment.status != "exception" else "carrier exception")
    session.flush()
    return [s.number for s in late]


# --- in-store pickup ---------------------------------------------------------------------------


def mark_ready_for_pickup(session: Session, number: str, *, actor: str | None = None) -> Shipment:
    shipment = get_shipment(session, number, lock=True)
    if shipment.kind != "pickup" or shipment.status != "pending":
        raise InvalidTransition(f"Shipment {number} is {shipment.status} ({shipment.kind}); only pending pickups can be made ready", shipment=number)
    now = utcnow()
    shipment.status, shipment.ready_at, shipment.expires_at = "ready_for_pickup", now, now + timedelta(days=PICKUP_HOLD_DAYS)
    order = session.get_one(Order, shipment.order_id)
    store = session.get_one(Location, shipment.location_id)
    record_event(session, order, "ready_for_pickup", actor=actor, shipment=number, store=store.code)
    notifications.notify_order(session, order, "ready_for_pickup", dedupe_suffix=number, store_name=store.name,
                               pickup_until=f"{shipment.expires_at:%Y-%m-%d}")
    session.flush()
    return shipment


def collect_pickup(session: Session, number: str, *, actor: str | None = None) -> Shipment:
    """The customer picked it up: a sale, captured, delivered."""
    shipment = get_shipment(session, number, lock=True)
    if shipment.status != "ready_for_pickup":
        raise InvalidTransition(f"Shipment {number} is {shipment.status}; it is not waiting at the counter", shipment=number)
    order = get_order(session, session.get_one(Order, shipment.order_id).number, lock=True)
    _require_not_held(order, shipment)
    now = utcnow()
    shipment.status, shipment.dispatched_at = "collected", now
    _hand_over(session, order, shipment, actor)
    _deliver(session, order, shipment, now)
    shipment.status = "collected"
    record_event(session, order, "picked_up", actor=actor, shipment=number)
    session.flush()
    return shipment


def expire_pickups(session: Session, *, now: datetime | None = None, actor: str | None = "system") -> list[str]:
    """Uncollected pickups past their hold: stock back on the shelf, lines cancelled, hold voided."""
    now = now or utcnow()
    expired = list(session.scalars(
        select(Shipment).where(Shipment.status == "ready_for_pickup", Shipment.expires_at < now).order_by(Shipment.id)
    ))
    for shipment in expired:
        order = session.get_one(Order, shipment.order_id)
        lines = {l.id: l for l in order.lines}
        for sl in shipment.lines:
            line = lines[sl.order_line_id]
            inventory.release_reservations(session, line, sl.quantity, actor=actor, reason="pickup not collected", location_id=shipment.location_id)
            line.quantity_cancelled += sl.quantity
        shipment.status = "expired"
        payment = session.scalar(select(Payment).where(Payment.order_id == order.id))
        if payment is not None:
            keep = _value_still_wanted(order)
            open_amount = payments.balance(payment).open_authorization
            if open_amount > keep:
                payments.void(session, order.number, open_amount - keep, actor=actor, idempotency_key=f"expire:{shipment.number}")
        order.status, order.updated_at = derive_status(order), now
        record_event(session, order, "pickup_expired", actor=actor, shipment=shipment.number)
        notifications.notify_order(session, order, "order_cancelled", dedupe_suffix=f"expired:{shipment.number}", reason="not collected in time")
    session.flush()
    return [s.number for s in expired]


def _value_still_wanted(order: Order) -> Decimal:
    """What the order's remaining, not yet delivered units are worth."""
    total = ZERO
    for line in order.lines:
        active = line.quantity - line.quantity_cancelled
        original = line.quantity if active == 0 else active
        open_units = active - line.quantity_fulfilled
        if open_units > 0 and original:
            total += Decimal(line.line_total) * open_units / original
    return to_money(total)


def shipments_for(session: Session, order: Order) -> list[Shipment]:
    return list(session.scalars(select(Shipment).where(Shipment.order_id == order.id).order_by(Shipment.id)))


def shipment_view(session: Session, shipment: Shipment) -> dict[str, Any]:
    location = session.get_one(Location, shipment.location_id)
    lines = dict(session.execute(select(OrderLine.id, OrderLine.sku).where(OrderLine.id.in_([l.order_line_id for l in shipment.lines]))).all())
    return {
        "number": shipment.number, "order": session.get_one(Order, shipment.order_id).number, "location": location.code,
        "kind": shipment.kind, "status": shipment.status, "carrier": shipment.carrier, "service_level": shipment.service_level,
        "tracking_number": shipment.tracking_number,
        "tracking_url": TRACKING_URLS[shipment.carrier].format(shipment.tracking_number) if shipment.tracking_number and shipment.carrier in TRACKING_URLS else None,
        "label_path": shipment.label_path, "weight_kg": None if shipment.weight_kg is None else str(shipment.weight_kg),
        "promised_at": shipment.promised_at.isoformat() if shipment.promised_at else None,
        "estimated_at": shipment.estimated_at.isoformat() if shipment.estimated_at else None,
        "delayed": shipment.delayed,
        "delivered_at": shipment.delivered_at.isoformat() if shipment.delivered_at else None,
        "lines": [{"sku": lines[l.order_line_id], "quantity": l.quantity} for l in shipment.lines],
        "events": [{"kind": e.kind, "at": e.at.isoformat(), "location": e.location_text, "description": e.description} for e in shipment.events],
    }


__all__ = [
    "PackageIn", "TrackingEventIn", "UnknownShipment", "collect_pickup", "create_shipments", "detect_delays", "dispatch_shipment",
    "expire_pickups", "get_shipment", "mark_delivered", "mark_ready_for_pickup", "pack_shipment", "pick_list", "record_tracking_event",
    "shipment_view", "shipments_for",
]
