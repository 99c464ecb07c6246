"""Orders: quote, place, modify, cancel, hold and release, and the status derived from line quantities.

Placement runs in one transaction: validate the request, lock the candidate stock rows in id order,
allocate, price (promotions, tax, shipping), write the order with its reservations and ledger rows,
authorize the payment, record events. Any failure rolls all of it back (and voids an authorization
the gateway already gave).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from sqlalchemy import bindparam, func, insert, inspect, select
from sqlalchemy.orm import Session, make_transient_to_detached

from om_core import geo
from om_core.clock import utcnow
from om_core.db import lock_rows, read_rows, write_rows
from om_core.errors import (
    InsufficientStock,
    InvalidTransition,
    ModificationNotAllowed,
    PriceMismatch,
    UnknownOrder,
    ValidationError,
)
from om_core.models import (
    Channel,
    ChannelLocation,
    Customer,
    LineDiscount,
    Location,
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    Product,
    PromotionRedemption,
    Reservation,
    Shipment,
    ShippingMethod,
    Stock,
)
from om_core.money import ZERO, to_money
from om_core.services import idempotency, inventory, notifications, numbering, payments, webhooks
from om_core.services.catalog import products_by_sku
from om_core.services.customers import AddressIn, customer_with_address, normalize_email
from om_core.services.events import order_events, record_event, record_events
from om_core.services.locations import channel_locations, get_channel, get_location
from om_core.services.promotions import PricedLine, apply_promotions, eligible_promotions
from om_core.services.routing import RoutePlan, Site, plan_route
from om_core.services.shipping import CARRY_OUT, PICKUP, ShippingCharge, get_shipping_method, shipping_charge
from om_core.services.taxes import TaxTable, tax_on
from om_core.validation import MAX_LINE_QUANTITY, Amount, Code, Input, Quantity, parse

MAX_LINES = 200
ORDER_NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class LineIn(Input):
    sku: Code
    quantity: Quantity
    unit_price: Amount | None = Field(default=None, description="The price the channel showed; must match.")


class OrderIn(Input):
    """A quote or placement request from a channel."""

    channel: Code
    lines: list[LineIn] = Field(min_length=1, max_length=MAX_LINES)
    customer_id: int | None = Field(default=None, gt=0)
    email: str | None = None
    delivery: Literal["ship", "pickup", "carry_out"] = "ship"
    shipping_method: str | None = None
    pickup_location: Code | None = None
    location: Code | None = Field(default=None, description="The selling store, for carry-out (POS) sales.")
    ship_from_store: bool = True
    shipping_address: AddressIn | None = None
    coupon_codes: list[str] = Field(default_factory=list, max_length=10)
    allow_backorder: bool = False
    payment_token: str | None = None
    gateway: str = "test"
    expected_total: Amount | None = None
    external_ref: str | None = Field(default=None, max_length=64)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return normalize_email(value) if value else None

    @model_validator(mode="after")
    def _delivery_fields(self) -> OrderIn:
        skus = [l.sku for l in self.lines]
        if len(set(skus)) != len(skus):
            raise ValueError("each SKU may appear on one line only")
        if self.delivery == "ship" and not self.shipping_method:
            raise ValueError("shipping_method is required for delivery 'ship'")
        if self.delivery == "pickup" and not self.pickup_location:
            raise ValueError("pickup_location is required for delivery 'pickup'")
        if self.delivery == "carry_out" and not self.location:
            raise ValueError("location (the selling store) is required for delivery 'carry_out'")
        return self


class ModifyOrderIn(Input):
    """Changes to an order before fulfilment starts. Quantity 0 removes a line."""

    set_quantities: dict[int, Annotated[int, Field(ge=0, le=MAX_LINE_QUANTITY)]] = Field(default_factory=dict)
    add_lines: list[LineIn] = Field(default_factory=list, max_length=MAX_LINES)
    remove_lines: list[int] = Field(default_factory=list)
    delivery: Literal["ship", "pickup"] | None = None
    shipping_method: str | None = None
    pickup_location: Code | None = None
    shipping_address: AddressIn | None = None

    @model_validator(mode="after")
    def _something(self) -> ModifyOrderIn:
        if not (self.set_quantities or self.add_lines or self.remove_lines or self.delivery or self.shipping_method
                or self.pickup_location or self.shipping_address):
            raise ValueError("no change requested")
        return self


# --- the draft: everything a quote shows and a placement writes ----------------------------


@dataclass
class DraftLine:
    line: PricedLine
    product: Product
    allocations: list[tuple[Location, int]] = field(default_factory=list)
    backordered: int = 0
    tax_rate: Decimal = ZERO
    tax_amount: Decimal = ZERO
    line_total: Decimal = ZERO

    @property
    def discount_total(self) -> Decimal:
        return sum((d[1] for d in self.line.discounts), ZERO)


@dataclass
class Draft:
    channel: Channel
    customer: Customer | None
    email: str | None
    delivery: str
    shipping: ShippingCharge
    shipping_method_id: int | None
    pickup_location: Location | None
    address: dict[str, Any]
    lines: list[DraftLine]
    coupon_codes: list[str]
    promotions: list[Any]
    stocks: dict[tuple[int, int], Stock]
    routing_reason: str = ""
    destination: tuple[float, float] | None = None
    subtotal: Decimal = ZERO
    discount_total: Decimal = ZERO
    shipping_tax: Decimal = ZERO
    tax_total: Decimal = ZERO
    total: Decimal = ZERO

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel.code,
            "currency": self.channel.currency,
            "prices_include_tax": self.channel.prices_include_tax,
            "delivery": self.delivery,
            "shipping_method": self.shipping.method,
            "promised_delivery_days": self.shipping.promised_days,
            "routing_reason": self.routing_reason,
            "lines": [
                {
                    "line_no": d.line.key,
                    "sku": d.product.sku,
                    "name": d.product.name,
                    "quantity": d.line.quantity,
                    "unit_price": str(d.line.unit_price),
                    "discounts": [{"promotion_id": p.id, "amount": str(a), "description": desc} for p, a, desc in d.line.discounts],
                    "discount_total": str(d.discount_total),
                    "tax_rate": str(d.tax_rate),
                    "tax_amount": str(d.tax_amount),
                    "line_total": str(d.line_total),
                    "allocation": [{"location": loc.code, "quantity": q} for loc, q in d.allocations],
                    "backordered": d.backordered,
                }
                for d in self.lines
            ],
            "subtotal": str(self.subtotal),
            "discount_total": str(self.discount_total),
            "shipping_total": str(self.shipping.amount),
            "tax_total": str(self.tax_total),
            "total": str(self.total),
        }


def _candidate_locations(look: Lookups, channel: Channel, req: OrderIn) -> tuple[list[Location], Location | None]:
    """Where the stock for this order may come from, in the channel's preference order."""
    if req.delivery == "pickup":
        store = look.location(req.pickup_location)  # type: ignore[arg-type]
        if not (store.active and store.can_pickup):
            raise ValidationError(
                f"Location {store.code} does not offer in-store pickup",
                errors=[{"field": "pickup_location", "reason": "no in-store pickup"}],
            )
        return [store], store
    assigned = look.channel_locations(channel)
    if req.delivery == "carry_out":
        store = look.location(req.location)  # type: ignore[arg-type]
        if store.id not in {l.id for l in assigned}:
            raise ValidationError(
                f"Location {store.code} does not sell through channel {channel.code}",
                errors=[{"field": "location", "reason": "not assigned to the channel"}],
            )
        return [store], None
    shippers = shipping_locations(assigned, ship_from_store=req.ship_from_store)
    full = look.locations_at_capacity([l for l in shippers if l.daily_capacity is not None])
    return [l for l in shippers if l.id not in full], None


def shipping_locations(assigned: list[Any], *, ship_from_store: bool) -> list[Any]:
    """Of a channel's locations, those that can send a parcel: warehouses that ship, dropship
    suppliers, and stores that ship from store when the customer allows it."""
    return [
        l for l in assigned
        if (l.kind == "warehouse" and l.can_ship)
        or l.kind == "dropship"
        or (l.kind == "store" and l.can_ship_from_store and ship_from_store)
    ]


def location_point(loc: Any) -> tuple[float, float] | None:
    """Where a location is: its coordinates, else its postal code's."""
    if loc.latitude is not None and loc.longitude is not None:
        return (loc.latitude, loc.longitude)
    return geo.coordinates(loc.postal_code, loc.country)


def routing_sites(candidates: list[Any], destination: tuple[float, float] | None) -> list[Site]:
    """The candidate locations as routing sees them: preference order and distance to the customer."""
    sites = []
    for priority, loc in enumerate(candidates):
        point = location_point(loc)
        distance = geo.haversine_km(point, destination) if point and destination else None
        sites.append(Site(location_id=loc.id, code=loc.code, kind=loc.kind, priority=priority, distance_km=distance))
    return sites


def dropship_sources(products: list[Any], candidates: list[Any]) -> dict[int, int]:
    """Products whose supplier ships direct, mapped to that supplier's dropship location."""
    by_supplier = {loc.supplier_id: loc.id for loc in candidates if loc.kind == "dropship" and loc.supplier_id}
    return {p.id: by_supplier[p.supplier_id] for p in products if p.supplier_id in by_supplier}


def plan_fulfilment(strategy: str, demand: list[tuple[int, int]], candidates: list[Any], destination: tuple[float, float] | None,
                    available: dict[tuple[int, int], int], products: list[Any], *, sites: list[Site] | None = None) -> RoutePlan:
    """Route the demand; `sites`: `routing_sites(candidates, destination)` when the caller has them already."""
    try:
        return plan_route(
            strategy, demand, routing_sites(candidates, destination) if sites is None else sites, available,
            weights={p.id: Decimal(p.weight_kg) for p in products}, dropship=dropship_sources(products, candidates),
            skus={p.id: p.sku for p in products},
        )
    except ValueError as exc:
        raise ValidationError(f"Cannot route: {exc}", errors=[{"field": "strategy", "reason": str(exc)}]) from None


def _alternatives(session: Session, channel: Channel, product: Product, requested: int, candidate_ids: set[int]) -> dict[str, Any]:
    """What the customer could do instead: backorder, another location, or a similar SKU in stock."""
    others = session.execute(
        select(Location, Stock).join(Stock, Stock.location_id == Location.id)
        .where(Stock.product_id == product.id, Location.active.is_(True), Stock.on_hand > 0)
        .order_by(Location.code)
    ).all()
    levels = inventory.stock_levels(session, [s for _, s in others])
    other_locations = [
        {"location": loc.code, "available": levels[(product.id, loc.id)].available, "pickup": loc.can_pickup}
        for loc, _ in others
        if loc.id not in candidate_ids and levels[(product.id, loc.id)].available > 0
    ]
    similar = list(session.scalars(
        select(Product).where(Product.category == product.category, Product.id != product.id, Product.active.is_(True)).limit(200)
    ))
    stock_by_product = inventory.channel_availability(session, [p.id for p in similar], channel.id) if similar else {}
    in_stock = sorted(
        (p for p in similar if stock_by_product.get(p.id, 0) >= requested),
        key=lambda p: (abs(Decimal(p.price) - Decimal(product.price)), p.sku),
    )[:3]
    return {
        "backorder": product.backorder_policy == "allow",
        "other_locations": other_locations,
        "similar_skus": [{"sku": p.sku, "name": p.name, "price": str(p.price), "available": stock_by_product[p.id]} for p in in_stock],
    }


def _resolve_address(req: OrderIn, saved: AddressIn | None, pickup: Location | None, carry_out: Location | None) -> dict[str, Any]:
    if pickup is not None or carry_out is not None:
        loc = pickup or carry_out
        return {"ship_country": loc.country, "ship_region": loc.region}  # type: ignore[union-attr]
    a = req.shipping_address or saved
    if a is None:
        raise ValidationError("A shipping address is required to ship", errors=[{"field": "shipping_address", "reason": "required"}])
    return {
        "ship_name": a.name, "ship_line1": a.line1, "ship_line2": a.line2, "ship_city": a.city,
        "ship_region": a.region, "ship_postal_code": a.postal_code, "ship_country": a.country,
    }


_CHANNEL_KEYS = tuple(c.key for c in Channel.__table__.c)
_LOCATION_KEYS = tuple(c.key for c in Location.__table__.c)
_CHANNEL_WITH_LOCATIONS = (
    select(Channel.__table__, *[c.label(f"loc_{c.key}") for c in Location.__table__.c],
           webhooks.ACTIVE_SUBSCRIPTIONS.label("active_webhook_subscriptions"))
    .outerjoin(ChannelLocation, ChannelLocation.channel_id == Channel.id)
    .outerjoin(Location, (Location.id == ChannelLocation.location_id) & Location.active.is_(True))
    .where(Channel.code == bindparam("code"))
    .order_by(ChannelLocation.priority, Location.id)
)


class Lookups:
    """Where `build_draft` reads what it needs: here straight from the database, once per request.

    A batch of placements shares one `BatchLookups` (om_core.services.bulk) instead, which reads each
    thing once for the whole batch and keeps stock and promotion use in step as drafts are taken.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._channel_locations: dict[int, list[Any]] = {}
        self._sites: dict[tuple[tuple[int, ...], tuple[float, float] | None], list[Site]] = {}

    def channel(self, code: str) -> Any:
        """The channel and, in the same read, its active locations in preference order (for
        `channel_locations`); an unknown or inactive channel is refused by `get_channel`."""
        rows = read_rows(self.session, _CHANNEL_WITH_LOCATIONS, {"code": code})
        if not rows or not rows[0].active:
            return get_channel(self.session, code)
        webhooks.note_active_subscriptions(self.session, rows[0].active_webhook_subscriptions)
        channel = SimpleNamespace(**{k: getattr(rows[0], k) for k in _CHANNEL_KEYS})
        self._channel_locations[channel.id] = [
            SimpleNamespace(**{k: getattr(r, f"loc_{k}") for k in _LOCATION_KEYS}) for r in rows if r.loc_id is not None
        ]
        return channel

    def customer(self, customer_id: int) -> tuple[Any, AddressIn | None]:
        return customer_with_address(self.session, customer_id)

    def products(self, skus: list[str]) -> dict[str, Any]:
        return products_by_sku(self.session, skus, rows=True)

    def channel_locations(self, channel: Any) -> list[Any]:
        found = self._channel_locations.get(channel.id)
        return found if found is not None else channel_locations(self.session, channel)

    def location(self, code: str) -> Any:
        return get_location(self.session, code)

    def routing_sites(self, candidates: list[Any], destination: tuple[float, float] | None) -> list[Site]:
        """`routing_sites`, worked out once per candidate list and destination (many orders of a batch
        go to the same ZIP from the same locations); locations do not move within one `Lookups`."""
        key = (tuple(l.id for l in candidates), destination)
        found = self._sites.get(key)
        if found is None:
            found = self._sites[key] = routing_sites(candidates, destination)
        return found

    def shipping_method(self, code: str) -> Any:
        return get_shipping_method(self.session, code)

    def taxes(self, country: str, region: str | None) -> TaxTable:
        return TaxTable(self.session, country, region)

    def stock(self, product_ids: set[int], location_ids: set[int], *, lock: bool,
              before_allocation: Callable[[], None] | None) -> tuple[dict[tuple[int, int], Any], dict[tuple[int, int], int]]:
        """(stock rows, units available) per (product, location); with `lock`, the rows stay locked."""
        if before_allocation is None:
            rows, available = inventory.stock_available(self.session, product_ids, location_ids, lock=lock)
            return dict(zip(available, rows)), available  # `available` is keyed (product, location) row by row
        rows = inventory.stock_rows(self.session, product_ids, location_ids, lock=lock)
        before_allocation()
        levels = inventory.stock_levels(self.session, rows)
        return {(s.product_id, s.location_id): s for s in rows}, {key: level.available for key, level in levels.items()}

    def promotions(self, *, coupon_codes: list[str], customer_id: int | None, at: datetime, lock: bool, exclude_order: int | None) -> list[Any]:
        return eligible_promotions(self.session, coupon_codes=coupon_codes, customer_id=customer_id, at=at, lock=lock, exclude_order=exclude_order)

    def alternatives(self, channel: Any, product: Any, requested: int, candidate_ids: set[int]) -> dict[str, Any]:
        return _alternatives(self.session, channel, product, requested, candidate_ids)

    def locations_at_capacity(self, locations: list[Any]) -> set[int]:
        """Locations that have already taken today's `daily_capacity` of orders to ship (UTC day):
        new orders are routed elsewhere until tomorrow."""
        if not locations:
            return set()
        day_start = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        taken = dict(self.session.execute(
            select(Stock.location_id, func.count(func.distinct(OrderLine.order_id)))
            .join(Reservation, Reservation.stock_id == Stock.id)
            .join(OrderLine, OrderLine.id == Reservation.order_line_id)
            .where(Stock.location_id.in_([l.id for l in locations]), Reservation.created_at >= day_start)
            .group_by(Stock.location_id)
        ).all())
        return {l.id for l in locations if taken.get(l.id, 0) >= l.daily_capacity}


def build_draft(
    session: Session,
    req: OrderIn,
    *,
    lock: bool,
    lookups: Lookups | None = None,
    at: datetime | None = None,
    channel: Channel | None = None,
    unit_prices: dict[str, Decimal] | None = None,
    lock_also: tuple[set[int], set[int]] = (set(), set()),
    before_allocation: Callable[[], None] | None = None,
    exclude_order: int | None = None,
    free_shipping: bool = False,
) -> Draft:
    """Validate, allocate and price an order request. With `lock`, the stock and promotion rows read
    stay locked until the caller's transaction ends, so the draft can be written as is."""
    at = at or utcnow()
    look = lookups or Lookups(session)
    channel = channel or look.channel(req.channel)
    customer, saved_address = look.customer(req.customer_id) if req.customer_id is not None else (None, None)
    products = look.products([l.sku for l in req.lines])
    inactive = [s for s, p in products.items() if not p.active]
    if inactive:
        raise ValidationError(f"SKU(s) not for sale: {', '.join(sorted(inactive))}", errors=[{"field": "lines", "reason": f"{s} is inactive"} for s in inactive])
    prices = {sku: Decimal(p.price) for sku, p in products.items()} | (unit_prices or {})
    mismatched = [
        {"sku": l.sku, "sent": str(l.unit_price), "current": str(to_money(prices[l.sku]))}
        for l in req.lines if l.unit_price is not None and to_money(l.unit_price) != to_money(prices[l.sku])
    ]
    if mismatched:
        raise PriceMismatch(
            "Price changed for " + ", ".join(f"{m['sku']} (sent {m['sent']}, now {m['current']})" for m in mismatched),
            lines=mismatched,
        )
    candidates, pickup = _candidate_locations(look, channel, req)
    carry_out = candidates[0] if req.delivery == "carry_out" else None
    address = _resolve_address(req, saved_address, pickup, carry_out)
    method = look.shipping_method(req.shipping_method) if req.delivery == "ship" else None  # type: ignore[arg-type]

    product_ids = {p.id for p in products.values()} | lock_also[0]
    location_ids = {l.id for l in candidates} | lock_also[1]
    stocks, available = look.stock(product_ids, location_ids, lock=lock, before_allocation=before_allocation)
    by_id = {l.id: l for l in candidates}
    demand = [(products[l.sku].id, l.quantity) for l in req.lines]
    destination = location_point(pickup or carry_out) if (pickup or carry_out) else geo.coordinates(
        address.get("ship_postal_code"), address.get("ship_country"))
    route = plan_fulfilment(channel.routing_strategy, demand, candidates, destination, available, list(products.values()),
                            sites=look.routing_sites(candidates, destination))
    plan, short = route.allocations, route.short

    backordered: dict[int, int] = {}
    shortages = []
    for line in req.lines:
        product = products[line.sku]
        missing = short.get(product.id, 0)
        if not missing:
            continue
        if req.allow_backorder and product.backorder_policy == "allow":
            backordered[product.id] = missing
            continue
        shortages.append({
            "sku": line.sku, "requested": line.quantity, "available": line.quantity - missing,
            "alternatives": look.alternatives(channel, product, line.quantity, set(by_id)),
        })
    if shortages:
        raise InsufficientStock(shortages)

    priced = [
        PricedLine(key=i, sku=l.sku, category=products[l.sku].category, quantity=l.quantity, unit_price=to_money(prices[l.sku]))
        for i, l in enumerate(req.lines, start=1)
    ]
    promos = look.promotions(coupon_codes=req.coupon_codes, customer_id=req.customer_id, at=at, lock=lock, exclude_order=exclude_order)
    applied = apply_promotions(priced, promos)

    taxes = look.taxes(address["ship_country"], address.get("ship_region"))
    inclusive = channel.prices_include_tax
    lines: list[DraftLine] = []
    for pl, req_line in zip(priced, req.lines):
        product = products[req_line.sku]
        rate = taxes.rate(product.tax_class)
        tax = tax_on(pl.net, rate, inclusive=inclusive)
        lines.append(DraftLine(
            line=pl, product=product,
            allocations=[(by_id[loc], q) for loc, q in plan.get(product.id, [])],
            backordered=backordered.get(product.id, 0), tax_rate=rate, tax_amount=tax,
            line_total=pl.net if inclusive else pl.net + tax,
        ))
    merchandise = sum((d.line.net for d in lines), ZERO)
    if method is not None:
        weight = sum((Decimal(d.product.weight_kg) * d.line.quantity for d in lines), Decimal(0))
        charge = shipping_charge(method, merchandise=merchandise, weight_kg=weight, country=address["ship_country"])
        if free_shipping:
            charge = ShippingCharge(charge.method, charge.service_level, ZERO, charge.promised_days)
    else:
        charge = PICKUP if req.delivery == "pickup" else CARRY_OUT
    draft = Draft(
        channel=channel, customer=customer, email=req.email or (customer.email if customer else None),
        delivery=req.delivery, shipping=charge, shipping_method_id=method.id if method else None,
        pickup_location=pickup, address=address, lines=lines,
        coupon_codes=sorted({c.strip().upper() for c in req.coupon_codes}), promotions=applied,
        stocks=stocks,
        routing_reason=route.reason, destination=destination,
    )
    draft.subtotal = sum((d.line.gross for d in lines), ZERO)
    draft.discount_total = sum((d.discount_total for d in lines), ZERO)
    draft.shipping_tax = tax_on(charge.amount, taxes.shipping_rate(), inclusive=inclusive)
    draft.tax_total = sum((d.tax_amount for d in lines), ZERO) + draft.shipping_tax
    draft.total = draft.subtotal - draft.discount_total + charge.amount + (ZERO if inclusive else draft.tax_total)
    if req.expected_total is not None and to_money(req.expected_total) != draft.total:
        raise PriceMismatch(f"Order total is {draft.total}, not {to_money(req.expected_total)}", expected=str(req.expected_total), total=str(draft.total))
    return draft


def quote(session: Session, request: OrderIn | dict[str, Any]) -> Draft:
    """Price and allocate without writing anything or holding stock."""
    return build_draft(session, parse(OrderIn, request), lock=False)


# --- placement --------------------------------------------------------------------------------


def _new_number(prefix: str = "SO") -> str:
    # 32 symbols: each random byte picks one uniformly (one system call per number, not ten)
    return f"{prefix}-" + "".join(ORDER_NUMBER_ALPHABET[b % 32] for b in secrets.token_bytes(10))


_INSERT_LINES = insert(OrderLine.__table__).returning(OrderLine.id, OrderLine.order_id, OrderLine.product_id)
_INSERT_DISCOUNTS = insert(LineDiscount.__table__)
_INSERT_REDEMPTIONS = insert(PromotionRedemption.__table__)


def _write_lines(session: Session, items: list[tuple[Order, Draft, dict[int, OrderLine]]], actor: str | None) -> None:
    """Write drafts' lines onto their orders: update lines an order already has (modification),
    insert new ones for all orders in one statement, then reserve stock for every line and record
    discounts and promotion redemptions, each kind in one statement for the whole batch."""
    line_ids: dict[tuple[int, int], int] = {}
    new_rows = []
    now = utcnow()
    for order, draft, existing in items:
        next_no = max((l.line_no for l in existing.values()), default=0) + 1
        for d in draft.lines:
            values = dict(
                unit_price=d.line.unit_price, discount_total=d.discount_total, tax_rate=d.tax_rate,
                tax_amount=d.tax_amount, line_total=d.line_total, quantity_backordered=d.backordered,
            )
            line = existing.get(d.product.id)
            if line is None:
                new_rows.append(dict(
                    order_id=order.id, line_no=next_no, product_id=d.product.id, sku=d.product.sku, name=d.product.name,
                    quantity=d.line.quantity, quantity_cancelled=0, quantity_fulfilled=0, quantity_returned=0, quantity_delivered=0,
                    **values,
                ))
                next_no += 1
                continue
            active = line.quantity - line.quantity_cancelled
            if d.line.quantity > active:
                line.quantity += d.line.quantity - active
            else:
                line.quantity_cancelled += active - d.line.quantity
            for key, value in values.items():
                setattr(line, key, value)
            line.discounts.clear()
            line_ids[(order.id, d.product.id)] = line.id
    session.flush()
    if new_rows:
        for line_id, order_id, product_id in write_rows(session, _INSERT_LINES, new_rows):
            line_ids[(order_id, product_id)] = line_id
    discounts, allocations, redemptions = [], [], []
    for order, draft, _ in items:
        for d in draft.lines:
            line_id = line_ids[(order.id, d.product.id)]
            discounts += [{"order_line_id": line_id, "promotion_id": promo.id, "amount": amount, "description": description}
                          for promo, amount, description in d.line.discounts]
            allocations += [(line_id, draft.stocks[(d.product.id, location.id)], qty, f"order:{order.number}") for location, qty in d.allocations]
        redemptions += [
            {"promotion_id": promo.id, "order_id": order.id, "customer_id": order.customer_id, "voided": False, "at": now,
             "amount": sum((a for d in draft.lines for p, a, _ in d.line.discounts if p.id == promo.id), ZERO)}
            for promo in draft.promotions
        ]
    if discounts:
        write_rows(session, _INSERT_DISCOUNTS, discounts)
    inventory.reserve_stock(session, allocations, actor=actor)
    if redemptions:
        write_rows(session, _INSERT_REDEMPTIONS, redemptions)
    for order, _, _ in items:
        if isinstance(order, Order) and inspect(order).persistent:
            session.expire(order, ["lines"])


_SHIP_KEYS = ("ship_name", "ship_line1", "ship_line2", "ship_city", "ship_region", "ship_postal_code", "ship_country")


def _totals(draft: Draft) -> dict[str, Any]:
    """The order columns a draft decides: totals, delivery, routing and the ship-to address."""
    latitude, longitude = draft.destination or (None, None)
    address = draft.address
    return {
        "subtotal": draft.subtotal, "discount_total": draft.discount_total, "shipping_total": draft.shipping.amount,
        "tax_total": draft.tax_total, "total": draft.total, "promised_delivery_days": draft.shipping.promised_days,
        "routing_reason": draft.routing_reason, "ship_latitude": latitude, "ship_longitude": longitude,
        "delivery_method": draft.delivery, "shipping_method_id": draft.shipping_method_id,
        "pickup_location_id": draft.pickup_location.id if draft.pickup_location else None,
        **{key: address.get(key) for key in _SHIP_KEYS},
    }


def _apply_totals(order: Order, draft: Draft) -> None:
    for key, value in _totals(draft).items():
        setattr(order, key, value)


_INSERT_ORDERS = insert(Order.__table__).returning(Order.id, Order.number)


def _event_count(session: Session, order: Order) -> int:
    return session.scalar(select(func.count()).select_from(OrderEvent).where(OrderEvent.order_id == order.id)) or 0


def _record_orders(
    session: Session, entries: list[tuple[OrderIn, Draft, datetime]], *, actor: str | None, event: str, adopt: bool = True,
    numbers: list[str] | None = None, events: list[dict[str, Any]] | None = None, **event_data: Any,
) -> list[Order]:
    """Write priced, allocated drafts as new orders with their lines, reservations and first event, in
    a handful of multi-row statements whatever the number of orders. With `adopt`, the new orders are
    attached to the session as persistent objects (a unit-of-work flush would cost more than the insert);
    without, they are plain records of the written columns and id (`Order(**vars(record))` makes one an Order).
    `numbers`: the order numbers when the caller drew them already (e.g. to authorize payment first).
    `events`: a list to add the first events to, for the caller to record with its own (one insert)."""
    if numbers is None:
        numbers = numbering.new_numbers(session, Order.number, _new_number, len(entries))
    values = [
        dict(
            number=numbers[k], channel_id=draft.channel.id, customer_id=req.customer_id,
            external_ref=req.external_ref, status="backordered" if any(d.backordered for d in draft.lines) else "placed", hold=False,
            currency=draft.channel.currency, prices_include_tax=draft.channel.prices_include_tax,
            ship_from_store_allowed=req.ship_from_store, email=draft.email, coupon_codes=draft.coupon_codes,
            placed_at=placed_at, updated_at=placed_at, fulfilment_started_at=None, **_totals(draft),
        )
        for k, (req, draft, placed_at) in enumerate(entries)
    ]
    ids = {number: order_id for order_id, number in write_rows(session, _INSERT_ORDERS, values[0] if len(values) == 1 else values)}
    orders: list[Any] = []
    for row in values:
        if adopt:
            order = Order(id=ids[row["number"]], **row)
            make_transient_to_detached(order)
            session.add(order)
        else:
            order = SimpleNamespace(id=ids[row["number"]], **row)
        orders.append(order)
    _write_lines(session, [(o, e[1], {}) for o, e in zip(orders, entries)], actor)
    first = [
        dict(order_id=o.id, kind=event, actor=actor, channel=draft.channel.code, at=placed_at,
             data=dict(total=str(o.total), lines=len(draft.lines),
                       allocation={d.product.sku: [[loc.code, q] for loc, q in d.allocations] for d in draft.lines}, **event_data))
        for o, (_, draft, placed_at) in zip(orders, entries)
    ]
    if events is None:
        record_events(session, first)
    else:
        events += first
    return orders


def _selling_store(session: Session, order: Order) -> str:
    """Where a carry-out sale happened: the recorded store, else the channel's first location."""
    if order.pickup_location_id is not None:
        return session.get_one(Location, order.pickup_location_id).code
    return channel_locations(session, order.channel)[0].code


def place_replacement_order(
    session: Session, original: Order, lines: list[LineIn | dict[str, Any]], *, reason: str, actor: str | None = None
) -> Order:
    """A no-charge order that sends replacement goods (an exchange), reserving stock like any order.

    It ships the way the original did, to the same address, with every price and the shipping at zero.
    """
    wanted = [parse(LineIn, l) for l in lines]
    address = None
    if original.delivery_method == "ship":
        address = {"name": original.ship_name, "line1": original.ship_line1, "line2": original.ship_line2, "city": original.ship_city,
                   "region": original.ship_region, "postal_code": original.ship_postal_code, "country": original.ship_country}
    method = session.get(ShippingMethod, original.shipping_method_id) if original.shipping_method_id else None
    req = parse(OrderIn, {
        "channel": original.channel.code, "customer_id": original.customer_id, "email": original.email,
        "lines": [l.model_dump(exclude_none=True) for l in wanted],
        "delivery": original.delivery_method,
        "shipping_method": method.code if method else None,
        "pickup_location": session.get_one(Location, original.pickup_location_id).code if original.pickup_location_id else None,
        "location": _selling_store(session, original) if original.delivery_method == "carry_out" else None,
        "ship_from_store": original.ship_from_store_allowed, "shipping_address": address,
    })
    draft = build_draft(session, req, lock=True, unit_prices={l.sku: ZERO for l in wanted}, free_shipping=True)
    [order] = _record_orders(session, [(req, draft, utcnow())], actor=actor, event="replacement_order_placed", replaces=original.number, reason=reason)
    if order.delivery_method == "carry_out":  # exchanged over the counter
        hand_over_at_till(session, order, actor=actor)
    return order


def place_order(
    session: Session,
    request: OrderIn | dict[str, Any],
    *,
    idempotency_key: str | None = None,
    actor: str | None = None,
) -> Order:
    """Place an order: reserve stock, authorize payment and record it all, or nothing at all.

    A retry with the same idempotency key returns the original order and writes nothing.
    """
    session.info.pop(_PLACED, None)
    req = parse(OrderIn, request)
    digest = idempotency.request_hash(req)
    remembered = idempotency.recall(session, "order.place", idempotency_key, digest)
    if remembered is not None:
        return get_order(session, remembered["order_number"])
    if req.payment_token is not None:
        payments.check_token(req.payment_token)
    known = set(session.identity_map.keys())
    try:
        draft = build_draft(session, req, lock=True)
        if draft.total > 0 and req.payment_token is None:
            raise ValidationError("A payment token is required for an order with a total above zero", errors=[{"field": "payment_token", "reason": "required"}])
        events: list[dict[str, Any]] = []
        [order] = _record_orders(session, [(req, draft, utcnow())], actor=actor, event="order_placed", events=events)
        if req.payment_token is not None:
            payments.authorize_new(session, [(order, req.payment_token, req.gateway)], actor=actor, events=events)
        record_events(session, events)
        if req.delivery == "carry_out":
            hand_over_at_till(session, order, actor=actor)
            if order.total > 0:
                payments.capture(session, order.number, actor=actor)
        notifications.notify_new_order(session, order, "order_confirmed", customer=draft.customer,
                                       lines=[{"sku": d.product.sku, "name": d.product.name, "quantity": d.line.quantity} for d in draft.lines])
        idempotency.remember(session, "order.place", idempotency_key, digest, {"order_number": order.number})
        session.flush()
        session.info[_PLACED] = (order.id, [
            {"line_no": d.line.key, "sku": d.product.sku, "quantity": d.line.quantity, "backordered": d.backordered,
             "unit_price": d.line.unit_price, "discount_total": d.discount_total, "tax_amount": d.tax_amount, "line_total": d.line_total}
            for d in draft.lines
        ])
    except BaseException:
        # What this placement brought into the session (the adopted order, its lines, payment...) was
        # written in the transaction that is now failing: a savepoint's rollback would leave them
        # behind, stale, with ids the next order may get again.
        for key in [k for k in session.identity_map.keys() if k not in known]:
            obj = session.identity_map.get(key)
            if obj is not None:
                session.expunge(obj)
        raise
    return order


_PLACED = "om_core.orders.placed_lines"
_PLACED_LINES = (select(OrderLine.line_no, OrderLine.sku, OrderLine.quantity, OrderLine.quantity_backordered.label("backordered"),
                        OrderLine.unit_price, OrderLine.discount_total, OrderLine.tax_amount, OrderLine.line_total)
                 .where(OrderLine.order_id == bindparam("order_id")).order_by(OrderLine.line_no))


def placed_lines(session: Session, order: Order) -> list[dict[str, Any]]:
    """The order's lines as placed (line_no, sku, quantity, backordered and the amounts): taken from the
    draft when this session has just placed the order, else read in one plain statement."""
    placed = session.info.get(_PLACED)
    if placed is not None and placed[0] == order.id:
        return placed[1]
    return [dict(r._mapping) for r in read_rows(session, _PLACED_LINES, {"order_id": order.id})]


# --- status ---------------------------------------------------------------------------------

MANUAL_TRANSITIONS: dict[str, set[str]] = {
    "hold": {"placed", "backordered", "partially_fulfilled"},
    "release": {"on_hold"},
    "cancel": {"placed", "backordered", "on_hold"},
}
"""Which derived statuses allow each manual action."""


def derive_status(order: Order) -> str:
    """The order's status follows from its lines: what is still wanted, sent, delivered and sent back."""
    return status_from(
        active=sum(l.quantity - l.quantity_cancelled for l in order.lines),
        fulfilled=sum(l.quantity_fulfilled for l in order.lines),
        delivered=sum(l.quantity_delivered for l in order.lines),
        returned=sum(l.quantity_returned for l in order.lines),
        backordered=sum(l.quantity_backordered for l in order.lines),
        hold=order.hold,
    )


def status_from(*, active: int, fulfilled: int, delivered: int, returned: int, backordered: int, hold: bool) -> str:
    """`derive_status` on the line totals (what batch operations compute in SQL)."""
    if active == 0:
        return "cancelled"
    if hold:
        return "on_hold"
    if fulfilled == 0:
        return "backordered" if backordered else "placed"
    if fulfilled < active:
        return "partially_fulfilled"
    if returned == 0:
        return "delivered" if delivered >= active else "fulfilled"
    return "returned" if returned == fulfilled else "partially_returned"


def _require(order: Order, action: str) -> None:
    if order.status not in MANUAL_TRANSITIONS[action]:
        raise InvalidTransition(f"Order {order.number} is {order.status}; cannot {action} it", order=order.number, status=order.status, action=action)


def get_order(session: Session, number: str, *, lock: bool = False) -> Order:
    stmt = select(Order).where(Order.number == number)
    order = lock_rows(session, stmt).first() if lock else session.scalar(stmt)
    if order is None:
        raise UnknownOrder(f"Unknown order {number!r}", order=number)
    return order


def hold_order(session: Session, number: str, *, reason: str, actor: str | None = None) -> Order:
    order = get_order(session, number, lock=True)
    _require(order, "hold")
    order.hold, order.status, order.updated_at = True, "on_hold", utcnow()
    record_event(session, order, "order_on_hold", actor=actor, reason=reason)
    session.flush()
    return order


def release_order(session: Session, number: str, *, actor: str | None = None) -> Order:
    order = get_order(session, number, lock=True)
    _require(order, "release")
    order.hold = False
    order.status, order.updated_at = derive_status(order), utcnow()
    record_event(session, order, "order_released", actor=actor)
    session.flush()
    return order


def _active_reservation_stock(session: Session, order: Order) -> tuple[set[int], set[int]]:
    rows = session.execute(
        select(Stock.product_id, Stock.location_id).join(Reservation, Reservation.stock_id == Stock.id)
        .where(Reservation.order_line_id.in_([l.id for l in order.lines]), Reservation.status == "active")
    ).all()
    return {r[0] for r in rows}, {r[1] for r in rows}


def _void_redemptions(session: Session, order: Order) -> None:
    for redemption in session.scalars(select(PromotionRedemption).where(PromotionRedemption.order_id == order.id, PromotionRedemption.voided.is_(False))):
        redemption.voided = True


def cancel_order(session: Session, number: str, *, reason: str, actor: str | None = None) -> Order:
    """Cancel before fulfilment: release every reservation, void the authorization, free coupon uses."""
    order = get_order(session, number, lock=True)
    if order.fulfilment_started_at is not None or any(l.quantity_fulfilled for l in order.lines):
        raise ModificationNotAllowed(f"Order {number} is already being fulfilled; open a return instead", order=number)
    _require(order, "cancel")
    products, locations = _active_reservation_stock(session, order)
    inventory.lock_stock(session, products, locations)
    inventory.release_all(session, [l.id for l in order.lines], reference=f"order:{order.number}", reason=f"order cancelled: {reason}", actor=actor)
    for line in order.lines:
        line.quantity_cancelled, line.quantity_backordered = line.quantity, 0
    _void_redemptions(session, order)
    payment = session.scalar(select(Payment).where(Payment.order_id == order.id))
    if payment is not None and payments.balance(payment).open_authorization > 0:
        payments.void(session, order.number, actor=actor)
    order.hold = False
    order.status, order.updated_at = derive_status(order), utcnow()
    record_event(session, order, "order_cancelled", actor=actor, reason=reason)
    notifications.notify_order(session, order, "order_cancelled", reason=reason)
    session.flush()
    return order


def modify_order(
    session: Session, number: str, changes: ModifyOrderIn | dict[str, Any], *, idempotency_key: str | None = None, actor: str | None = None
) -> Order:
    """Change lines, quantities, address or delivery before fulfilment starts.

    Existing lines keep their price; new lines take today's. Stock is re-reserved as a whole (the
    order's own reservations count as available), promotions are re-applied as of placement, and the
    payment authorization is topped up or partly voided to the new total.
    """
    changes = parse(ModifyOrderIn, changes)
    digest = idempotency.request_hash({"order": number, **changes.model_dump(mode="json")})
    remembered = idempotency.recall(session, "order.modify", idempotency_key, digest)
    if remembered is not None:
        return get_order(session, number)
    order = get_order(session, number, lock=True)
    if order.status == "cancelled":
        raise ModificationNotAllowed(f"Order {number} is cancelled", order=number)
    if order.fulfilment_started_at is not None or any(l.quantity_fulfilled for l in order.lines):
        raise ModificationNotAllowed(f"Order {number} is already being fulfilled and can no longer be changed", order=number)

    by_no = {l.line_no: l for l in order.lines}
    unknown = sorted(({*changes.set_quantities} | {*changes.remove_lines}) - set(by_no))
    if unknown:
        raise ValidationError(f"Order {number} has no line(s) {unknown}", errors=[{"field": "line_no", "reason": f"unknown line {n}"} for n in unknown])
    wanted = {l.line_no: l.quantity - l.quantity_cancelled for l in order.lines if l.quantity > l.quantity_cancelled}
    wanted.update({n: q for n, q in changes.set_quantities.items()})
    for n in changes.remove_lines:
        wanted[n] = 0
    on_order = {by_no[n].sku for n, q in wanted.items() if q > 0}
    dup = [l.sku for l in changes.add_lines if l.sku in on_order]
    if dup:
        raise ValidationError(f"SKU(s) already on the order, change their quantity instead: {', '.join(dup)}", errors=[{"field": "add_lines", "reason": f"{s} already on order"} for s in dup])
    kept = [LineIn(sku=by_no[n].sku, quantity=q) for n, q in sorted(wanted.items()) if q > 0]
    if not kept and not changes.add_lines:
        raise ValidationError("That would leave the order empty: cancel it instead", errors=[{"field": "set_quantities", "reason": "no lines left"}])

    channel = session.get_one(Channel, order.channel_id)
    delivery = changes.delivery or order.delivery_method
    current_method = None
    if order.shipping_method_id is not None:
        current_method = session.get_one(ShippingMethod, order.shipping_method_id).code
    address = changes.shipping_address
    if address is None and delivery == "ship" and order.ship_line1:
        address = AddressIn(name=order.ship_name, line1=order.ship_line1, line2=order.ship_line2, city=order.ship_city,  # type: ignore[arg-type]
                            region=order.ship_region, postal_code=order.ship_postal_code, country=order.ship_country)  # type: ignore[arg-type]
    pickup_code = changes.pickup_location
    if pickup_code is None and delivery == "pickup" and order.pickup_location_id:
        pickup_code = session.get_one(Location, order.pickup_location_id).code
    req = parse(OrderIn, {
        "channel": channel.code, "customer_id": order.customer_id, "email": order.email,
        "lines": [l.model_dump() for l in kept + list(changes.add_lines)], "delivery": delivery,
        "shipping_method": (changes.shipping_method or current_method) if delivery == "ship" else None,
        "pickup_location": pickup_code if delivery == "pickup" else None,
        "ship_from_store": order.ship_from_store_allowed,
        "shipping_address": address.model_dump() if address and delivery == "ship" else None,
        "coupon_codes": order.coupon_codes, "allow_backorder": any(l.quantity_backordered for l in order.lines),
    })
    before = {"total": str(order.total), "lines": {l.sku: l.quantity - l.quantity_cancelled for l in order.lines}}

    def release_own_stock() -> None:
        inventory.release_all(session, [l.id for l in order.lines], reference=f"order:{order.number}", reason="order modified", actor=actor)
        _void_redemptions(session, order)
        session.flush()

    draft = build_draft(
        session, req, lock=True, at=order.placed_at, channel=channel,
        unit_prices={l.sku: Decimal(l.unit_price) for l in order.lines},
        lock_also=_active_reservation_stock(session, order), before_allocation=release_own_stock, exclude_order=order.id,
    )
    existing = {l.product_id: l for l in order.lines}
    kept_products = {d.product.id for d in draft.lines}
    for line in order.lines:
        if line.product_id not in kept_products:
            line.quantity_cancelled, line.quantity_backordered = line.quantity, 0
    _write_lines(session, [(order, draft, existing)], actor)
    _apply_totals(order, draft)

    payment = session.scalar(select(Payment).where(Payment.order_id == order.id))
    if payment is not None:
        open_amount = payments.balance(payment).open_authorization
        if draft.total > open_amount:
            payments.authorize(
                session, order, draft.total - open_amount, token=payment.token, gateway=payment.gateway,
                payment_id=payment.id, sequence=len(payment.transactions), actor=actor,
            )
        elif draft.total < open_amount:
            payments.void(session, order.number, open_amount - draft.total, actor=actor)
    elif draft.total > 0:
        raise ModificationNotAllowed(f"Order {number} has no payment to cover a total of {draft.total}", order=number)
    order.status, order.updated_at = derive_status(order), utcnow()
    record_event(
        session, order, "order_modified", actor=actor, channel=channel.code, before=before,
        after={"total": str(order.total), "lines": {l.sku: l.quantity - l.quantity_cancelled for l in order.lines}},
    )
    notifications.notify_order(session, order, "order_modified", dedupe_suffix=str(_event_count(session, order)))
    idempotency.remember(session, "order.modify", idempotency_key, digest, {"order_number": order.number})
    session.flush()
    return order


def fulfil_lines(session: Session, order: Order, quantities: dict[int, int], *, actor: str | None = None) -> Order:
    """Hand over units (shipment dispatched, or carried out of the store): reserved stock becomes a sale."""
    by_no = {l.line_no: l for l in order.lines}
    for line_no, qty in sorted(quantities.items()):
        line = by_no.get(line_no)
        if line is None:
            raise ValidationError(f"Order {order.number} has no line {line_no}", errors=[{"field": "line_no", "reason": "unknown"}])
        reserved = sum(r.quantity for r in line.reservations if r.status == "active")
        if qty <= 0 or qty > reserved:
            raise ValidationError(
                f"Line {line_no} ({line.sku}) has {reserved} reserved units; cannot fulfil {qty}",
                errors=[{"field": f"lines.{line_no}", "reason": f"{reserved} reserved"}],
            )
        inventory.fulfil_reservations(session, line, qty, actor=actor)
        line.quantity_fulfilled += qty
    order.fulfilment_started_at = order.fulfilment_started_at or utcnow()
    order.status, order.updated_at = derive_status(order), utcnow()
    record_event(session, order, "order_fulfilled" if order.status == "fulfilled" else "order_partially_fulfilled", actor=actor,
                 lines={str(k): v for k, v in quantities.items()})
    session.flush()
    session.expire(order, ["lines"])
    return order


def _order_candidates(session: Session, order: Order) -> list[Any]:
    """The locations an existing order may still draw stock from, in its channel's preference order."""
    if order.delivery_method == "pickup" and order.pickup_location_id:
        return [session.get_one(Location, order.pickup_location_id)]
    return shipping_locations(channel_locations(session, order.channel), ship_from_store=order.ship_from_store_allowed)


def route_order(session: Session, number: str, *, strategy: str | None = None, actor: str | None = None) -> Order:
    """Choose again where an order's reserved units come from, and move the reservations atomically.

    Used when a location cannot fulfil after all (a count found less, a store closed early) or to
    apply another strategy. Units already in a shipment stay where they are; if the order can no
    longer be filled, nothing changes and the shortage is reported.
    """
    order = get_order(session, number, lock=True)
    if order.hold or order.status not in ("placed", "backordered", "partially_fulfilled"):
        raise InvalidTransition(f"Order {number} is {order.status}; it cannot be routed", order=number, status=order.status)
    if session.scalar(select(Shipment.id).where(Shipment.order_id == order.id, Shipment.status.in_(("pending", "packed", "ready_for_pickup")))):
        raise InvalidTransition(f"Order {number} has shipments being prepared; ship or cancel them before re-routing", order=number)
    demand_by_product: dict[int, int] = {}
    for line in order.lines:
        reserved = sum(r.quantity for r in line.reservations if r.status == "active")
        if reserved:
            demand_by_product[line.product_id] = demand_by_product.get(line.product_id, 0) + reserved
    if not demand_by_product:
        raise InvalidTransition(f"Order {number} has no reserved units to route", order=number)
    channel = order.channel
    candidates = _order_candidates(session, order)
    held_products, held_locations = _active_reservation_stock(session, order)
    stocks = {(s.product_id, s.location_id): s for s in inventory.stock_rows(
        session, set(demand_by_product) | held_products, {l.id for l in candidates} | held_locations, lock=True)}
    lines_by_product = {l.product_id: l for l in order.lines}
    inventory.release_all(session, [l.id for l in order.lines], reference=f"order:{order.number}", reason="re-routed", actor=actor)
    levels = inventory.stock_levels(session, list(stocks.values()))
    available = {key: level.available for key, level in levels.items()}
    products = list(session.execute(select(Product.__table__).where(Product.id.in_(demand_by_product))).all())
    destination = (order.ship_latitude, order.ship_longitude) if order.ship_latitude is not None else None
    if order.delivery_method == "pickup" and candidates:
        destination = location_point(candidates[0])
    route = plan_fulfilment(strategy or channel.routing_strategy, sorted(demand_by_product.items()), candidates, destination, available, products)
    if route.short:
        by_id = {p.id: p for p in products}
        raise InsufficientStock([
            {"sku": by_id[pid].sku, "requested": demand_by_product[pid], "available": demand_by_product[pid] - missing,
             "alternatives": _alternatives(session, channel, by_id[pid], demand_by_product[pid], {l.id for l in candidates})}
            for pid, missing in sorted(route.short.items())
        ])
    allocations = [(lines_by_product[pid].id, stocks[(pid, loc)], qty, f"order:{order.number}")
                   for pid, parts in route.allocations.items() for loc, qty in parts]
    inventory.reserve_stock(session, allocations, actor=actor)
    order.routing_reason, order.updated_at = route.reason, utcnow()
    codes = {l.id: l.code for l in candidates}
    record_event(session, order, "order_routed", actor=actor, strategy=strategy or channel.routing_strategy, reason=route.reason,
                 allocation={lines_by_product[pid].sku: [[codes.get(loc, str(loc)), q] for loc, q in parts] for pid, parts in route.allocations.items()})
    session.expire(order, ["lines"])
    session.flush()
    return order


def fill_backorders(
    session: Session, *, sku: str | None = None, product_ids: set[int] | None = None, actor: str | None = None
) -> dict[str, int]:
    """Reserve newly arrived stock for backordered lines, oldest order first.

    Run it after goods come in (a purchase order receipt, a transfer): every backordered line gets
    what its order's locations can now give, and its order's status follows. Returns units reserved
    per order number.
    """
    stmt = (
        select(OrderLine).join(Order)
        .where(OrderLine.quantity_backordered > 0, Order.hold.is_(False), Order.status.in_(("placed", "backordered", "partially_fulfilled")))
        .order_by(Order.placed_at, Order.id, OrderLine.line_no)
    )
    if sku is not None:
        stmt = stmt.where(OrderLine.sku == sku)
    if product_ids is not None:
        stmt = stmt.where(OrderLine.product_id.in_(product_ids))
    lines = list(session.scalars(stmt))
    if not lines:
        return {}
    candidates = {o.id: _order_candidates(session, o) for o in {l.order for l in lines}}
    location_ids = {loc.id for locs in candidates.values() for loc in locs}
    stocks = {(s.product_id, s.location_id): s for s in inventory.stock_rows(session, {l.product_id for l in lines}, location_ids, lock=True)}
    left = {key: level.available for key, level in inventory.stock_levels(session, list(stocks.values())).items()}
    filled: dict[str, int] = {}
    for line in lines:
        allocations = []
        want = line.quantity_backordered
        for loc in candidates[line.order_id]:
            take = min(want, left.get((line.product_id, loc.id), 0))
            if take > 0:
                allocations.append((line.id, stocks[(line.product_id, loc.id)], take, f"order:{line.order.number}"))
                left[(line.product_id, loc.id)] -= take
                want -= take
        if not allocations:
            continue
        reserved = line.quantity_backordered - want
        inventory.reserve_stock(session, allocations, actor=actor)
        line.quantity_backordered = want
        filled[line.order.number] = filled.get(line.order.number, 0) + reserved
        record_event(session, line.order, "backorder_allocated", actor=actor, sku=line.sku, quantity=reserved)
    for order in {l.order for l in lines}:
        order.status, order.updated_at = derive_status(order), utcnow()
    session.flush()
    return filled


def hand_over_at_till(session: Session, order: Order, *, actor: str | None = None) -> Order:
    """A till sale: the customer walks out with the goods, so they are fulfilled and delivered at once."""
    fulfil_lines(session, order, {l.line_no: l.quantity - l.quantity_cancelled for l in order.lines}, actor=actor)
    for line in order.lines:
        line.quantity_delivered = line.quantity_fulfilled
    order.status = derive_status(order)
    session.flush()
    return order


def order_view(session: Session, order: Order) -> dict[str, Any]:
    """The order as channels and staff see it: lines with allocations, totals, payment and timeline."""
    stocks = {s.id: s for s in session.scalars(select(Stock).where(Stock.id.in_({r.stock_id for l in order.lines for r in l.reservations})))}
    locations = {l.id: l.code for l in session.scalars(select(Location).where(Location.id.in_({s.location_id for s in stocks.values()})))}
    payment = session.scalar(select(Payment).where(Payment.order_id == order.id))
    bal = payments.balance(payment) if payment else None
    return {
        "number": order.number,
        "status": order.status,
        "channel": order.channel.code,
        "customer_id": order.customer_id,
        "placed_at": order.placed_at.isoformat(),
        "delivery": order.delivery_method,
        "currency": order.currency,
        "lines": [
            {
                "line_no": l.line_no, "sku": l.sku, "name": l.name, "quantity": l.quantity,
                "cancelled": l.quantity_cancelled, "fulfilled": l.quantity_fulfilled, "returned": l.quantity_returned,
                "backordered": l.quantity_backordered, "unit_price": str(l.unit_price), "discount_total": str(l.discount_total),
                "tax_amount": str(l.tax_amount), "line_total": str(l.line_total),
                "discounts": [{"promotion_id": d.promotion_id, "amount": str(d.amount), "description": d.description} for d in l.discounts],
                "reservations": [
                    {"location": locations[stocks[r.stock_id].location_id], "quantity": r.quantity, "status": r.status}
                    for r in l.reservations
                ],
            }
            for l in order.lines
        ],
        "subtotal": str(order.subtotal),
        "discount_total": str(order.discount_total),
        "shipping_total": str(order.shipping_total),
        "tax_total": str(order.tax_total),
        "total": str(order.total),
        "payment": None if bal is None else {
            "authorized": str(bal.authorized), "captured": str(bal.captured), "voided": str(bal.voided),
            "refunded": str(bal.refunded), "open_authorization": str(bal.open_authorization),
        },
        "events": [
            {"kind": e.kind, "at": e.at.isoformat(), "actor": e.actor, "channel": e.channel, "data": e.data}
            for e in order_events(session, order.id)
        ],
    }
