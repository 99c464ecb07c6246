"""Run the simulation: record the world through the services, then live through every day of the period.

`simulate(db, config)` needs a migrated, empty database. It creates the suppliers, locations,
channels, tax rates, shipping methods, catalogue, customers and opening stock through the services,
then, day by day, in one transaction per day and always through the services (with the core's
batched fast path `om_core.services.bulk` when it is there: products, customers, opening stock,
orders, shipments, deliveries, carrier exceptions, purchase orders and their receipts, transfers,
returns and feedback, one call per kind and day):

* overnight: goods received against purchase orders that have arrived (which also fills
  backorders), store transfers from the warehouses, returned parcels received and refunded, new
  products listed, list price changes, end-of-life products deactivated, promotions set up a week
  before they start, new customers signing up;
* orders placed in time order, in batches; a customer told "not enough stock" (InsufficientStock)
  answers at once, within the same batched placement (`bulk.place_orders(on_refused=...)`): those
  lines are lost (lost sales) unless every short SKU may be backordered and the customer waits, and
  the order is placed with what is left; a pickup that the store cannot fill is shipped instead;
* online orders shipped the next working day (pickups made ready), delivered after the service's
  transit time, a few of them late with a carrier exception scan; pickups collected (or left to
  expire); POS sales are carried out at the till; a few orders cancelled by the customer;
* returns at category-specific rates with reasons, received and refunded; feedback on some orders;
* at the end of the day the stock is read back from the ledger: stockout days are counted, and the
  replenishment rules run: a reorder-point / order-up-to rule per SKU x warehouse raises purchase
  orders to each supplier on its review day (received after a lead time drawn around the supplier's
  mean and deviation, sometimes late, sometimes in two parts), and a review per store (weekly for
  the big ones, every other week for the rest) sends stock from its warehouse two days later.

Simulated orders are placed with `notify=False`: no order confirmation is written to the outbox for
them (two years of confirmations would flood it). The services without that switch (the per-order
fallback, returns and refunds, carrier delays, cancellations, expired pickups) still write theirs.

Store customers bring till (carry-out) purchases back to the store they bought them in, at their
categories' return rates (a little lower than online), within two weeks; the store receives and
refunds them at once. Everything the simulator writes goes through the services; it only reads
tables directly (the stock ledger each night, what an order has delivered, which backorders got stock).
"""

from __future__ import annotations

import gc
import math
import random
import time as wallclock
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from om_core.clock import frozen_at
from om_core.db import Database, read_rows
from om_core.errors import InsufficientStock, StoreOMError
from om_core.models import Order, OrderLine, Product, Reservation, Shipment, Stock, StockMovement
from om_core.services import (
    catalog,
    customers,
    feedback,
    fulfilment,
    inventory,
    locations,
    orders,
    promotions,
    purchasing,
    returns,
    shipping,
    taxes,
)
from om_core.simulator.baskets import WELCOME_COUPON, BasketMaker, PlannedOrder
from om_core.simulator.config import SimulationConfig
from om_core.simulator.demand import DemandModel, thanksgiving
from om_core.simulator.world import (
    CITIES,
    COUNTRY_TAX,
    RETURN_REASONS,
    SEGMENTS,
    SHIPPING_METHODS,
    TAX_RATES,
    World,
    generate_world,
    nearest_warehouse,
)

ACTOR = "simulator"
MORNING = time(0, 5)
SHIP_HOUR = 14  # UTC: 9-10 am on the east coast
REVIEW_HOUR = time(23, 30)
TRANSIT_DAYS = {"standard": (2, 3, 3, 4, 4, 5), "expedited": (1, 2, 2), "overnight": (1,)}
DELAY_REASONS = ("Weather delay", "Carrier network delay", "Address could not be verified", "Missed connection at hub", "Held at facility")
FEEDBACK_COMMENTS = {
    5: ("Great quality, arrived quickly.", "Exactly as described, will buy again.", "Love it!", None, None),
    4: ("Good product, delivery took a little while.", "Nice, fits well.", None, None),
    3: ("It's okay.", "Packaging could be better.", None),
    2: ("Arrived late.", "Not what I expected.", "Item was damaged."),
    1: ("Very late and nobody told me.", "Poor quality, returning it.", "Wrong item sent."),
}
RETURN_FACTOR = 0.6  # scales every category's return rate: about one online order in ten comes back


# --- the report -------------------------------------------------------------------------------


@dataclass
class SimulationReport:
    seed: int
    start: str
    end: str
    days: int
    scale: float
    path: str  # "bulk" (the core's batched fast path) or "per-order"
    skus: int = 0
    customers: int = 0
    orders: int = 0
    order_lines: int = 0
    units: int = 0
    revenue: str = "0"
    lost_sales_lines: int = 0
    lost_sales_units: int = 0
    backordered_orders: int = 0
    cancelled_orders: int = 0
    declined_payments: int = 0
    stockout_days: int = 0
    purchase_orders: int = 0
    purchase_order_lines: int = 0
    transfers: int = 0
    shipments: int = 0
    delayed_shipments: int = 0
    pickups_expired: int = 0
    returns: int = 0
    feedback: int = 0
    promotions: int = 0
    price_changes: int = 0
    seconds: float = 0.0
    setup_seconds: float = 0.0
    lines_per_second: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- the adapter: the one place that writes orders, shipments and deliveries --------------------


class Recorder:
    """Orders, shipments and deliveries through `om_core.services.bulk` when the core has it (one
    call per batch), else through the per-order services under a moved clock. Switching is here only."""

    def __init__(self, *, use_bulk: bool | None = None) -> None:
        bulk = None
        if use_bulk is not False:
            try:
                from om_core.services import bulk as bulk_module  # type: ignore[attr-defined]

                bulk = bulk_module
            except ImportError:
                if use_bulk:
                    raise
        self.bulk = bulk
        self.path = "bulk" if bulk is not None else "per-order"

    def place(self, session: Session, batch: list[tuple[dict[str, Any], datetime]],
              on_refused: Callable[[int, StoreOMError], dict[str, Any] | None] | None = None) -> list[tuple[str | None, StoreOMError | None]]:
        """Place these orders; `on_refused(index, error)` gives the customer's answer to a refusal (a new
        request, tried at once) or None."""
        if not batch:
            return []
        if self.bulk is None:
            return [self._place_one(session, i, request, at, on_refused) for i, (request, at) in enumerate(batch)]
        with frozen_at(batch[-1][1]):
            results = self.bulk.place_orders(session, [self.bulk.BulkOrder(request=req, placed_at=at) for req, at in batch], actor=ACTOR,
                                             notify=False, on_refused=on_refused)
        return [(r.number, r.error) for r in results]

    @staticmethod
    def _place_one(session: Session, index: int, request: dict[str, Any], at: datetime,
                   on_refused: Callable[[int, StoreOMError], dict[str, Any] | None] | None) -> tuple[str | None, StoreOMError | None]:
        while True:
            try:
                with frozen_at(at), session.begin_nested():
                    return orders.place_order(session, request, actor=ACTOR).number, None
            except StoreOMError as exc:
                answer = on_refused(index, exc) if on_refused is not None else None
                if answer is None:
                    return None, exc
                request = answer

    def ship(self, session: Session, numbers: list[str], at: datetime, *, pickups: set[str] = frozenset()) -> dict[str, list[str]]:  # type: ignore[assignment]
        """Ship these orders (`pickups`: those to be collected in store, made ready instead)."""
        if not numbers:
            return {}
        # bulk.ship_orders writes an empty tracking insert when every shipment is a pickup: those go one by one
        if self.bulk is not None and not set(numbers) <= pickups:
            with frozen_at(at):
                return self.bulk.ship_orders(session, numbers, at=at, actor=ACTOR)
        out: dict[str, list[str]] = {}
        with frozen_at(at):
            for number in numbers:
                try:
                    with session.begin_nested():
                        made = fulfilment.create_shipments(session, number, actor=ACTOR)
                        for shipment in made:
                            if shipment.kind == "pickup":
                                fulfilment.mark_ready_for_pickup(session, shipment.number, actor=ACTOR)
                            else:
                                fulfilment.dispatch_shipment(session, shipment.number, actor=ACTOR)
                        out[number] = [s.number for s in made]
                except StoreOMError:
                    out[number] = []
        return out

    def deliver(self, session: Session, deliveries: dict[str, datetime], *, pickups: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        """Parcels delivered and pickups (`pickups`: their shipment numbers) collected at the given times."""
        if not deliveries:
            return
        # bulk.deliver_shipments writes an empty tracking insert when only pickups are collected: those go one by one
        if self.bulk is not None and not set(deliveries) <= pickups:
            with frozen_at(max(deliveries.values())):
                self.bulk.deliver_shipments(session, deliveries)
            return
        for number, at in deliveries.items():
            shipment = fulfilment.get_shipment(session, number)
            with frozen_at(at):
                if shipment.kind == "pickup":
                    fulfilment.collect_pickup(session, number, actor=ACTOR)
                else:
                    fulfilment.record_tracking_event(session, {
                        "tracking_number": shipment.tracking_number, "kind": "delivered", "at": at,
                        "carrier_event_id": f"sim:{number}:delivered", "description": "Delivered"})

    def bulk_helper(self, name: str) -> Any:
        """An optional batched helper of the core (e.g. `create_customers`), or None."""
        return getattr(self.bulk, name, None) if self.bulk is not None else None


# --- the running state --------------------------------------------------------------------------


class OrderRec:
    __slots__ = ("number", "plan", "day", "shipments", "delivered", "last_delivery", "delayed", "cancelled", "backorder", "placed_at")

    def __init__(self, number: str, plan: PlannedOrder, day: int) -> None:
        self.number, self.plan, self.day = number, plan, day
        self.shipments: list[str] = []
        self.delivered = 0
        self.last_delivery: datetime | None = None
        self.delayed = False
        self.cancelled = False
        self.backorder = plan.allow_backorder
        self.placed_at = plan.at


_MOVEMENTS_SINCE = (
    select(StockMovement.stock_id, StockMovement.kind, func.sum(StockMovement.quantity), func.sum(StockMovement.reserved_change))
    .where(StockMovement.id > bindparam("after"), StockMovement.id <= bindparam("upto"))
    .group_by(StockMovement.stock_id, StockMovement.kind)
)
_MAX_MOVEMENT = select(func.max(StockMovement.id))
_NEW_STOCK = select(Stock.id, Stock.product_id, Stock.location_id).where(Stock.id > bindparam("after"))
_ORDER_LINES = (
    select(Order.number, OrderLine.line_no, OrderLine.quantity_delivered, OrderLine.quantity_returned, OrderLine.quantity_backordered)
    .join(Order, Order.id == OrderLine.order_id)
    .where(Order.number.in_(bindparam("numbers", expanding=True)))
)
_ACTIVE_RESERVED = (
    select(Order.number, func.sum(Reservation.quantity))
    .join(OrderLine, OrderLine.order_id == Order.id)
    .join(Reservation, Reservation.order_line_id == OrderLine.id)
    .where(Order.number.in_(bindparam("numbers", expanding=True)), Reservation.status == "active")
    .group_by(Order.number)
)
_TRACKING = select(Shipment.number, Shipment.tracking_number).where(Shipment.number.in_(bindparam("numbers", expanding=True)))


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class Simulation:
    def __init__(self, db: Database, config: SimulationConfig, *, progress: bool = True, recorder: Recorder | None = None) -> None:
        self.db = db
        self.config = config.resolved()
        self.progress = progress
        self.recorder = recorder or Recorder()
        self.world: World = generate_world(self.config)
        self.demand = DemandModel(self.world)
        self.baskets = BasketMaker(self.world, self.demand)
        self.rng = random.Random(self.config.seed * 7919 + 4)
        self.np_rng = np.random.default_rng(np.random.SeedSequence([self.config.seed, 4]))
        w = self.world
        self.n_skus = len(w.skus)
        self.loc_codes = list(w.warehouses) + list(w.stores)
        self.n_locs = len(self.loc_codes)
        self.wh_index = {code: i for i, code in enumerate(w.warehouses)}
        self.store_loc = {k: len(w.warehouses) + k for k in range(len(w.stores))}
        self.store_wh = np.array([self.wh_index[w.location(s).warehouse] for s in w.stores])  # type: ignore[index]
        self.report = SimulationReport(seed=self.config.seed, start=self.config.start_date.isoformat(), end=self.config.end_date.isoformat(),
                                       days=self.config.n_days, scale=round(self.config.scale, 6), path=self.recorder.path)
        # database ids
        self.product_id = np.zeros(self.n_skus, dtype=np.int64)
        self.sku_of_product: dict[int, int] = {}
        self.location_id: dict[str, int] = {}
        self.loc_of_location: dict[int, int] = {}
        self.customer_id = np.zeros(len(w.customers), dtype=np.int64)
        # what the ledger says (read back every day) and what is on its way
        self.on_hand = np.zeros((self.n_skus, self.n_locs), dtype=np.int64)
        self.reserved = np.zeros((self.n_skus, self.n_locs), dtype=np.int64)
        self.stock_cell: dict[int, tuple[int, int]] = {}
        self.last_movement = 0
        self.last_stock = 0
        self.observed = np.zeros((self.n_skus, self.n_locs))  # smoothed daily demand seen at each location
        self.on_order = np.zeros((self.n_skus, self.n_locs), dtype=np.int64)
        self.in_transit = np.zeros((self.n_skus, self.n_locs), dtype=np.int64)
        self.stockout_days = np.zeros((self.n_skus, self.n_locs), dtype=np.int32)
        self.lost_units = np.zeros((self.n_skus, self.n_locs), dtype=np.int64)
        self.listed = np.zeros(self.n_skus, dtype=bool)
        self.active = np.zeros(self.n_skus, dtype=bool)
        self.bias = self.np_rng.lognormal(0.0, 0.25, size=self.n_skus)  # the planners' forecast error per SKU
        self.wh_share = self._warehouse_shares()
        # schedules: day -> work
        self.to_ship: deque[OrderRec] = deque()
        self.backorders: list[OrderRec] = []
        self.deliveries: dict[int, list[tuple[str, datetime, OrderRec]]] = defaultdict(list)
        self.exceptions: dict[int, list[tuple[str, datetime, OrderRec]]] = defaultdict(list)
        self.po_arrivals: dict[int, list[tuple[str, int, dict[str, int], bool]]] = defaultdict(list)
        self.transfers: dict[int, list[tuple[int, dict[int, int]]]] = defaultdict(list)
        self.cancels: dict[int, list[tuple[OrderRec, datetime]]] = defaultdict(list)
        self.return_opens: dict[int, list[tuple[OrderRec, datetime]]] = defaultdict(list)
        self.return_receipts: dict[int, list[tuple[str, str, datetime, dict[int, str]]]] = defaultdict(list)
        self.feedbacks: dict[int, list[tuple[OrderRec, datetime]]] = defaultdict(list)
        self.promos_by_day: dict[int, list[Any]] = defaultdict(list)
        self.prices_by_day: dict[int, list[Any]] = defaultdict(list)
        self.eol_by_day: dict[int, list[int]] = defaultdict(list)
        self.list_by_day: dict[int, list[int]] = defaultdict(list)
        self.join_by_day: dict[int, list[int]] = defaultdict(list)
        self.timings: dict[str, float] = defaultdict(float)
        self.pos_returns = True

    # --- helpers ------------------------------------------------------------------------------

    def at(self, day: int, t: time | float) -> datetime:
        """A moment of simulated day `day` (UTC): a time of day, or hours after midnight."""
        base = datetime.combine(self.demand.date(day), time(0), tzinfo=UTC)
        if isinstance(t, time):
            return base.replace(hour=t.hour, minute=t.minute, second=t.second)
        return base + timedelta(hours=t)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        t0 = wallclock.perf_counter()
        try:
            yield
        finally:
            self.timings[name] += wallclock.perf_counter() - t0

    def _warehouse_shares(self) -> np.ndarray:
        """(n_warehouses, n_points): the planners' view of where each point's demand is served from."""
        w, d = self.world, self.demand
        shares = np.zeros((len(w.warehouses), len(d.points)))
        warehouse_of_city = np.array([self.wh_index[nearest_warehouse(w, c)] for c in range(len(CITIES))])
        mass = np.bincount(warehouse_of_city[w.customers.city], weights=w.customers.activity, minlength=len(w.warehouses))
        mass /= mass.sum()
        for j, p in enumerate(d.points):
            if p.store is None:
                shares[:, j] = mass
            else:
                shares[self.store_wh[p.store], j] = 1.0
        return shares

    def _progress(self, total: int, desc: str, unit: str) -> Any:
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, leave=True, dynamic_ncols=True, mininterval=0.5)

    # --- setup --------------------------------------------------------------------------------

    def setup(self) -> None:
        w, cfg = self.world, self.config
        with self.db.read() as s:
            if s.scalar(select(func.count()).select_from(Product)):
                raise ValueError("the database already holds a store: simulate into an empty database (storeom simulate --fresh)")
        skus = w.skus
        for i in range(self.n_skus):
            day = int(skus.listed_day[i])
            (self.list_by_day[day] if day > 0 else self.list_by_day[0]).append(i)
            if skus.eol_day[i] < cfg.n_days:
                self.eol_by_day[int(skus.eol_day[i])].append(i)
        for ev in self.demand.promotions:
            self.promos_by_day[max(ev.start_day - 7, 0)].append(ev)
        for ch in self.demand.price_changes:
            self.prices_by_day[ch.day].append(ch)
        for c in range(len(w.customers)):  # -1: customers before the period; those joining after it do not exist yet
            self.join_by_day[int(w.customers.join_day[c]) if w.customers.join_day[c] >= 0 else -1].append(c)

        t0 = self.at(0, time(0)) - timedelta(days=1)
        with self.db.transaction() as s, frozen_at(t0 - timedelta(days=400)):
            for sup in w.suppliers:
                catalog.create_supplier(s, {"code": sup.code, "name": sup.name, "email": sup.email,
                                            "lead_time_days": str(sup.lead_time_days), "lead_time_std_days": str(sup.lead_time_std_days)})
            for loc in w.locations:
                city, region = w.address(loc.code)
                self.location_id[loc.code] = locations.create_location(s, {
                    "code": loc.code, "name": loc.name, "kind": loc.kind, "latitude": loc.lat, "longitude": loc.lon,
                    "address_line1": loc.address_line1, "city": city, "region": region, "postal_code": loc.postal_code, "country": "US",
                    "can_ship": loc.kind == "warehouse" or loc.can_ship_from_store, "can_pickup": loc.can_pickup,
                    "can_ship_from_store": loc.can_ship_from_store, "cutoff_hour_utc": 20 if loc.kind == "warehouse" else None,
                }).id
            self.loc_of_location = {self.location_id[c]: i for i, c in enumerate(self.loc_codes)}
            for ch in w.channels:
                locations.create_channel(s, {"code": ch.code, "name": ch.name, "kind": ch.kind, "prices_include_tax": False,
                                             "locations": list(ch.locations)})
            for cls, rate in zip(("standard", "grocery", "clothing"), COUNTRY_TAX):
                taxes.set_tax_rate(s, {"country": "US", "tax_class": cls, "rate": rate})
            for state, rates in TAX_RATES.items():
                for cls, rate in zip(("standard", "grocery", "clothing"), rates):
                    taxes.set_tax_rate(s, {"country": "US", "region": state, "tax_class": cls, "rate": rate})
            for method in SHIPPING_METHODS:
                shipping.create_shipping_method(s, dict(method))
            promotions.create_promotion(s, {"name": "Welcome: 10% off your first order over $40", "kind": "percentage", "scope": "order",
                                            "value": "10", "coupon_code": WELCOME_COUPON, "min_subtotal": "40", "usage_limit_per_customer": 1})
            self.report.promotions += 1
        with self.db.transaction() as s, frozen_at(t0):
            self._list_products(s, self.list_by_day.pop(0, []))
        existing = sorted(self.join_by_day.pop(-1, []), key=lambda c: (int(w.customers.join_day[c]), c))  # ids follow sign-up dates
        self._create_customers(existing, before=True)
        self._opening_stock(t0 + timedelta(hours=12))

    def _list_products(self, s: Session, idx: list[int]) -> None:
        w = self.world
        skus, cats = w.skus, w.categories
        bar = self._progress(len(idx), "catalogue at the start", "sku") if len(idx) > 200 else None
        payloads = []
        for i in idx:
            cat = cats[int(skus.category[i])]
            payloads.append({
                "sku": skus.code[i], "name": skus.name[i], "category": cat.code, "brand": skus.brand[i], "price": str(skus.price[i]),
                "cost": str(skus.cost[i]), "tax_class": cat.tax_class, "size": skus.size[i], "colour": skus.colour[i],
                "pack_size": int(skus.pack[i]), "min_order_qty": int(skus.pack[i]), "weight_kg": f"{skus.weight[i]:.3f}", "supplier": cat.supplier,
                "returnable": bool(skus.returnable[i]), "backorder_policy": "allow" if skus.backorder[i] else "deny",
                "attributes": {"style": int(skus.style[i]), "abc": "ABC"[int(skus.abc[i])]},
            })
        helper = self.recorder.bulk_helper("create_products")
        for chunk_idx, chunk in zip(_chunks(idx, 2000), _chunks(payloads, 2000)):
            ids = helper(s, chunk) if helper is not None else [catalog.create_product(s, p).id for p in chunk]
            for i, product_id in zip(chunk_idx, ids):
                self.product_id[i] = product_id
                self.sku_of_product[product_id] = i
                self.listed[i] = self.active[i] = True
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
        self.report.skus = int(self.listed.sum())

    def _customer_payload(self, c: int) -> dict[str, Any]:
        cust = self.world.customers
        city = CITIES[int(cust.city[c])]
        return {
            "email": cust.email[c], "first_name": cust.first_name[c], "last_name": cust.last_name[c], "phone": cust.phone[c],
            "marketing_consent": bool(cust.consent[c]), "segment": SEGMENTS[int(cust.segment[c])],
            "address": {"name": f"{cust.first_name[c]} {cust.last_name[c]}", "line1": cust.line1[c], "line2": cust.line2[c],
                        "city": city.name, "region": city.state, "postal_code": cust.postal_code[c], "country": "US"},
        }

    def _signup_moment(self, c: int, day: int | None) -> datetime:
        """When customer `c` signs up: their own day before the period (spread over the day), else the morning of `day`."""
        if day is not None:
            return self.at(day, MORNING)
        return self.at(0, time(0)) + timedelta(days=int(self.world.customers.join_day[c]), hours=8 + (c * 7919 % 840) / 60)

    def _create_customers(self, idx: list[int], *, before: bool = False, session: Session | None = None, day: int = 0) -> None:
        """Customers sign up: those from before the period on their own sign-up dates, then day by day.
        With the core's batched `create_customers` (when it has one), one call per 5,000, each at their own sign-up moment."""
        if not idx:
            return
        cust = self.world.customers
        with self.timed("customers"):
            helper = self.recorder.bulk_helper("create_customers")
            bar = self._progress(len(idx), "customers at the start", "customer") if before else None
            for chunk in _chunks(idx, 5000):
                ctx = self.db.transaction() if session is None else nullcontext(session)
                with ctx as s:
                    if helper is not None:
                        moments = [self.at(0, time(12)) + timedelta(days=int(cust.join_day[c])) if before else self.at(day, MORNING)
                                   for c in chunk]
                        with frozen_at(max(moments)):
                            ids = helper(s, [self._customer_payload(c) for c in chunk], created_at=moments)
                        for c, cid in zip(chunk, ids):
                            self.customer_id[c] = cid
                    else:
                        for c in chunk:
                            with frozen_at(self._signup_moment(c, None if before else day)):
                                self.customer_id[c] = customers.create_customer(s, self._customer_payload(c)).id
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
        self.report.customers += len(idx)

    def _opening_stock(self, moment: datetime) -> None:
        """Opening balances: what the order-up-to rules would hold, received at every location."""
        w = self.world
        with self.timed("opening stock"):
            wh_target, _ = self._warehouse_levels(0, np.arange(self.n_skus), opening=True)
            receipts: list[tuple[int, int, int]] = []
            for s in np.flatnonzero(self.listed):
                for wi in range(len(w.warehouses)):
                    if wh_target[s, wi] > 0:
                        receipts.append((int(s), wi, int(wh_target[s, wi])))
            for k in range(len(w.stores)):
                target, _ = self._store_levels(0, k, opening=True)
                for s in np.flatnonzero(target > 0):
                    receipts.append((int(s), self.store_loc[k], int(target[s])))
            helper = self.recorder.bulk_helper("receive_stock")
            bar = self._progress(len(receipts), "opening stock", "row")
            with self.db.transaction() as s, frozen_at(moment):
                items = [{"sku": w.skus.code[sku], "location": self.loc_codes[loc], "quantity": qty, "reference": "opening balance"}
                         for sku, loc, qty in receipts]
                if helper is not None:
                    helper(s, items, actor=ACTOR)
                    if bar is not None:
                        bar.update(len(items))
                else:
                    for item in items:
                        inventory.receive_stock(s, item, actor=ACTOR)
                        if bar is not None:
                            bar.update(1)
                self._read_ledger(s)
            if bar is not None:
                bar.close()

    # --- the planners -------------------------------------------------------------------------

    def _forecast(self, day: int, days: int) -> np.ndarray:
        """The planners' expected daily units per SKU x point over the next `days` days: biased per SKU,
        and cautious about launches (new items are bought short; some sell out and go on backorder)."""
        launch = self.world.skus.launch_day
        cautious = np.where((launch > day - 42) & (launch < day + days + 60), 0.6, 1.0)
        return self.demand.expected_window(day + 1, days) / days * (self.bias * cautious)[:, None]

    def _blend(self, model: np.ndarray, observed: np.ndarray, day: int, sku_idx: np.ndarray) -> np.ndarray:
        """Half the planners' forecast, half what was actually seen, once there is a month of history."""
        age = day - np.maximum(self.world.skus.launch_day[sku_idx], 0)
        weight = np.where(age >= 28, 0.5, 0.0)
        if model.ndim == 2:
            weight = weight[:, None]
        return model * (1 - weight) + observed * weight

    def _warehouse_levels(self, day: int, sku_idx: np.ndarray, *, opening: bool = False, lead: float | None = None,
                          lead_std: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(order-up-to, reorder point) per SKU x warehouse for the SKUs `sku_idx` (others zero)."""
        w = self.world
        n_wh = len(w.warehouses)
        up_to = np.zeros((self.n_skus, n_wh))
        reorder = np.zeros((self.n_skus, n_wh))
        if len(sku_idx) == 0:
            return up_to, reorder
        if lead is None:
            leads = np.array([w.supplier_of(int(s)).lead_time_days for s in sku_idx])
            lead_val = float(leads.mean())
        else:
            lead_val = lead
        review = 7.0
        protect = lead_val + review
        horizon = int(math.ceil(protect + 14))
        rate = self._forecast(day, horizon)[sku_idx] @ self.wh_share.T  # (n, n_wh)
        if not opening:
            rate = self._blend(rate, self.observed[sku_idx, :n_wh], day, sku_idx)
        z = np.array([1.4, 1.0, 0.6])[w.skus.abc[sku_idx]][:, None]
        cycle = np.array([21.0, 42.0, 70.0])[w.skus.abc[sku_idx]][:, None]  # days of sales a purchase order covers
        sd = np.sqrt(protect * rate * 2.0 + (rate * lead_std) ** 2)
        reorder[sku_idx] = rate * protect + z * sd
        up_to[sku_idx] = reorder[sku_idx] + rate * cycle
        if opening:
            up_to[sku_idx] = np.ceil(reorder[sku_idx] * 0.6 + rate * cycle * self.np_rng.uniform(0.4, 1.0, size=(len(sku_idx), 1)))
        return up_to, reorder

    def _store_levels(self, day: int, k: int, *, opening: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(order-up-to, reorder point) per SKU for store `k` (zero for what it does not carry)."""
        w = self.world
        loc = self.store_loc[k]
        j = next(i for i, p in enumerate(self.demand.points) if p.store == k)
        carried = w.skus.carried[:, k] & self.active & (w.skus.eol_day > day + 21)
        protect = 2 + 7
        rate = self._forecast(day, protect + 7)[:, j] * 1.1  # pickups and ship-from-store come on top of the tills
        if not opening:
            rate = self._blend(rate, self.observed[:, loc], day, np.arange(self.n_skus))
        z = np.array([1.3, 0.9, 0.5])[w.skus.abc]
        cover = np.array([28.0, 42.0, 56.0])[w.skus.abc]  # days of sales a truck brings
        inner = np.maximum(2, w.skus.pack // 2)
        reorder = rate * protect + z * np.sqrt(protect * rate * 2.0)
        reorder = np.maximum(reorder, 1.0)
        up_to = np.maximum(reorder + np.maximum(rate * cover, inner), 3.0)
        if opening:
            up_to = np.ceil(up_to * self.np_rng.uniform(0.6, 1.0, size=self.n_skus))
        return np.where(carried, up_to, 0.0), np.where(carried, reorder, 0.0)

    # --- reading the ledger back ------------------------------------------------------------------

    def _read_ledger(self, s: Session) -> np.ndarray:
        """Apply the new ledger rows to the mirror of on-hand and reserved; returns today's demand per cell."""
        conn = s.connection()
        for sid, pid, lid in conn.execute(_NEW_STOCK, {"after": self.last_stock}).all():
            self.stock_cell[sid] = (self.sku_of_product[pid], self.loc_of_location[lid])
            self.last_stock = max(self.last_stock, sid)
        upto = conn.execute(_MAX_MOVEMENT).scalar() or 0
        seen = np.zeros((self.n_skus, self.n_locs))
        if upto > self.last_movement:
            for sid, kind, qty, res in conn.execute(_MOVEMENTS_SINCE, {"after": self.last_movement, "upto": upto}).all():
                sku, loc = self.stock_cell[sid]
                self.on_hand[sku, loc] += int(qty or 0)
                self.reserved[sku, loc] += int(res or 0)
                if kind == "reservation":
                    seen[sku, loc] += int(res or 0)
                elif kind == "transfer_out":
                    seen[sku, loc] -= int(qty or 0)
            self.last_movement = upto
        return seen

    # --- the day ------------------------------------------------------------------------------

    def run(self) -> SimulationReport:
        started = wallclock.perf_counter()
        with _long_lived_heap() as freeze:
            self.setup()
            self.report.setup_seconds = round(wallclock.perf_counter() - started, 2)
            freeze()  # the world: lives until the end
            cfg = self.config
            bar = self._progress(cfg.n_days, "simulating", "day")
            for day in range(cfg.n_days):
                self.day(day)
                if bar is not None:
                    bar.set_postfix(orders=self.report.orders, lines=self.report.order_lines, lost=self.report.lost_sales_lines, refresh=False)
                    bar.update(1)
        if bar is not None:
            bar.close()
        self.report.seconds = round(wallclock.perf_counter() - started, 2)
        self.report.lines_per_second = round(self.report.order_lines / max(self.report.seconds, 1e-9), 1)
        self.report.stockout_days = int(self.stockout_days.sum())
        with self.db.read() as s:
            self.report.revenue = str(s.scalar(select(func.coalesce(func.sum(Order.total), 0))))
        self.report.timings = {k: round(v, 2) for k, v in sorted(self.timings.items())}
        return self.report

    def day(self, day: int) -> None:
        morning = self.at(day, MORNING)
        with self.db.transaction() as s:
            with self.timed("overnight"), frozen_at(morning):
                self._catalogue_changes(s, day)
                self._create_customers(self.join_by_day.pop(day, []), session=s, day=day)
                self._receive_purchase_orders(s, day)
                self._do_transfers(s, day)
                self._receive_returns(s, day)
            with self.timed("shipping"):
                self._ship(s, day)
            with self.timed("deliveries"):
                self._deliver(s, day)
            with self.timed("orders"):
                self._place_orders(s, day)
            with self.timed("after-sales"):
                self._cancel(s, day)
                self._open_returns(s, day)
                self._feedback(s, day)
                with frozen_at(self.at(day, time(23, 0))):
                    self.report.pickups_expired += len(fulfilment.expire_pickups(s, actor=ACTOR))
            with self.timed("replenishment"):
                seen = self._read_ledger(s)
                self.observed += (seen - self.observed) / 28.0
                self._count_stockouts(day)
                with frozen_at(self.at(day, REVIEW_HOUR)):
                    self._review_warehouses(s, day)
                    self._review_stores(day)

    # overnight -----------------------------------------------------------------------------------

    def _catalogue_changes(self, s: Session, day: int) -> None:
        w = self.world
        listing = self.list_by_day.pop(day, [])
        if listing:
            self._list_products(s, listing)
        for ch in self.prices_by_day.pop(day, []):
            if self.listed[ch.sku] and self.active[ch.sku]:
                catalog.update_product(s, w.skus.code[ch.sku], {"price": str(ch.price)})
                self.report.price_changes += 1
        for sku in self.eol_by_day.pop(day, []):
            if self.listed[sku] and self.active[sku]:
                catalog.update_product(s, w.skus.code[sku], {"active": False})
                self.active[sku] = False
        for ev in self.promos_by_day.pop(day, []):
            promotions.create_promotion(s, {
                "name": ev.name[:200], "kind": "percentage", "scope": ev.scope, "target": ev.target, "value": str(ev.percent),
                "starts_at": self.at(ev.start_day, time(0)), "ends_at": self.at(ev.end_day, time(0)),
                "priority": 50 if ev.scope == "sku" else 100, "stackable": False,
            })
            self.report.promotions += 1

    def _receive_purchase_orders(self, s: Session, day: int) -> None:
        """Deliveries from suppliers: with the core's batched `receive_purchase_orders` when it has it
        (one call for the morning's deliveries), else one purchase order at a time."""
        w = self.world
        receipts: list[tuple[str, list[dict[str, Any]]]] = []
        for number, loc, lines, partial in self.po_arrivals.pop(day, []):
            if partial:  # the supplier ships most of it now, the rest a few days later
                now = {sku: max(1, int(q * self.rng.uniform(0.6, 0.9))) for sku, q in lines.items()}
                rest = {sku: lines[sku] - q for sku, q in now.items() if lines[sku] - q > 0}
                if rest:
                    self.po_arrivals[day + self.rng.randint(3, 8)].append((number, loc, rest, False))
                received = now
            else:
                received = lines
            receipts.append((number, [{"sku": w.skus.code[k], "quantity": q} for k, q in received.items()]))
            for sku, q in received.items():
                self.on_order[sku, loc] -= q
        helper = self.recorder.bulk_helper("receive_purchase_orders")
        if helper is not None and receipts:
            helper(s, receipts, actor=ACTOR)
            return
        for number, items in receipts:
            purchasing.receive_purchase_order(s, number, items, actor=ACTOR)

    def _do_transfers(self, s: Session, day: int) -> None:
        """Trucks from the warehouses arrive at the stores: transfer what the warehouse can give."""
        w = self.world
        helper = self.recorder.bulk_helper("transfer_stock")
        items = []
        taken: dict[tuple[int, int], int] = defaultdict(int)
        for loc, lines in self.transfers.pop(day, []):
            wh = int(self.store_wh[loc - len(w.warehouses)])
            for sku, q in lines.items():
                self.in_transit[sku, loc] -= q
                q = min(q, int(self.on_hand[sku, wh] - self.reserved[sku, wh]) - taken[(sku, wh)])
                if q <= 0 or not self.active[sku]:
                    continue
                taken[(sku, wh)] += q
                items.append({"sku": w.skus.code[sku], "from_location": self.loc_codes[wh], "to_location": self.loc_codes[loc],
                              "quantity": q, "reason": "store replenishment"})
        if not items:
            return
        if helper is not None:
            helper(s, items, actor=ACTOR)
        else:
            for item in items:
                inventory.transfer_stock(s, item, actor=ACTOR)
        self.report.transfers += len(items)

    def _receive_returns(self, s: Session, day: int) -> None:
        self._receive_and_refund(s, self.return_receipts.pop(day, []))

    def _receive_and_refund(self, s: Session, due: list[tuple[str, str, datetime, dict[int, str]]]) -> None:
        """Returns back at a location, inspected and refunded at once: with the core's batched
        `receive_returns`/`refund_returns` when it has them, else one return at a time."""
        if not due:
            return
        receive, refund = self.recorder.bulk_helper("receive_returns"), self.recorder.bulk_helper("refund_returns")
        if receive is not None and refund is not None:
            with frozen_at(max(at for _, _, at, _ in due)):
                receive(s, [self.recorder.bulk.ReturnReceipt(rma, location, [{"line_no": n, "condition": c} for n, c in sorted(conditions.items())], at)
                            for rma, location, at, conditions in due], actor=ACTOR)
                refund(s, {rma: at for rma, _, at, _ in due}, actor=ACTOR)
            return
        for rma, location, at, conditions in due:
            with frozen_at(at):
                returns.receive_return(s, rma, location, [{"line_no": n, "condition": c} for n, c in sorted(conditions.items())], actor=ACTOR)
                returns.refund_return(s, rma, actor=ACTOR)

    # shipping and delivery ---------------------------------------------------------------------------

    def _is_shipping_day(self, day: int) -> bool:
        d = self.demand.date(day)
        return d.weekday() != 6 and (d.month, d.day) not in ((12, 25), (1, 1)) and d != thanksgiving(d.year)

    def _ship(self, s: Session, day: int) -> None:
        if not self._is_shipping_day(day):
            return
        ready: list[OrderRec] = []
        while self.to_ship and self.to_ship[0].day < day:
            rec = self.to_ship.popleft()
            if not rec.cancelled and not rec.backorder:
                ready.append(rec)
        if self.backorders:
            reserved = dict(read_rows(s, _ACTIVE_RESERVED, {"numbers": [r.number for r in self.backorders if not r.cancelled]}))
            ready += [r for r in self.backorders if not r.cancelled and reserved.get(r.number) and r.day < day]
        if not ready:
            return
        at = self.at(day, SHIP_HOUR + self.rng.random() * 3)
        by_number = {r.number: r for r in ready}
        made: dict[str, list[str]] = {}
        pickups = {r.number for r in ready if r.plan.delivery == "pickup"}
        for chunk in _chunks(list(by_number), self.config.batch_orders):
            made.update(self.recorder.ship(s, chunk, at, pickups=pickups))
        delayed_shipments: list[tuple[str, OrderRec, int, datetime]] = []
        for number, shipment_numbers in made.items():
            rec = by_number[number]
            for sh in shipment_numbers:
                rec.shipments.append(sh)
                self.report.shipments += 1
                plan = rec.plan
                if plan.delivery == "pickup":
                    if self.rng.random() < 0.97:
                        collect = at + timedelta(hours=self.rng.uniform(2, 4.5 * 24))
                        self.deliveries[(collect.date() - self.config.start_date).days].append((sh, collect, rec))
                    continue
                transit = self.rng.choice(TRANSIT_DAYS.get(plan.method or "standard", (3,)))
                d = self.demand.date(day)
                peak = d.month == 12 and d.day <= 24
                if peak and self.rng.random() < 0.5:
                    transit += 1
                delay_p = 0.09 if peak else (0.06 if d.month in (1, 2) else 0.035)
                arrive = self.at(day + transit, self.rng.uniform(15, 23.9))
                if self.rng.random() < delay_p:
                    late = self.rng.randint(1, 4)
                    delayed_shipments.append((sh, rec, day + max(1, transit - 1), arrive))
                    arrive += timedelta(days=late)
                    rec.delayed = True
                    self.report.delayed_shipments += 1
                self.deliveries[(arrive.date() - self.config.start_date).days].append((sh, arrive, rec))
        if delayed_shipments:
            tracking = dict(read_rows(s, _TRACKING, {"numbers": [x[0] for x in delayed_shipments]}))
            for sh, rec, when, _ in delayed_shipments:
                if tracking.get(sh):
                    self.exceptions[when].append((tracking[sh], self.at(when, self.rng.uniform(12, 22)), rec))
        still = []
        for r in self.backorders:
            if r.cancelled:
                continue
            still.append(r)
        if self.backorders:
            lines = read_rows(s, _ORDER_LINES, {"numbers": [r.number for r in still]})
            waiting: dict[str, int] = defaultdict(int)
            for number, _, _, _, backordered in lines:
                waiting[number] += int(backordered or 0)
            reserved_left = dict(read_rows(s, _ACTIVE_RESERVED, {"numbers": [r.number for r in still]}))
            self.backorders = [r for r in still if waiting.get(r.number) or reserved_left.get(r.number)]

    def _deliver(self, s: Session, day: int) -> None:
        scans = [({"tracking_number": tracking, "kind": "exception", "at": at, "carrier_event_id": f"sim:{tracking}:exception",
                   "description": self.rng.choice(DELAY_REASONS)}, at) for tracking, at, _ in self.exceptions.pop(day, [])]
        helper = self.recorder.bulk_helper("record_exceptions")
        if helper is not None and scans:
            with frozen_at(max(at for _, at in scans)):
                helper(s, [scan for scan, _ in scans], received_at=[at for _, at in scans])
        else:
            for scan, at in scans:
                with frozen_at(at):
                    fulfilment.record_tracking_event(s, scan)
        due = self.deliveries.pop(day, [])
        if not due:
            return
        due.sort(key=lambda x: x[1])
        self.recorder.deliver(s, {sh: at for sh, at, _ in due}, pickups={sh for sh, _, rec in due if rec.plan.delivery == "pickup"})
        for sh, at, rec in due:
            rec.delivered += 1
            rec.last_delivery = at if rec.last_delivery is None or at > rec.last_delivery else rec.last_delivery
            if rec.delivered == len(rec.shipments) and not rec.backorder:
                self._after_delivery(rec, day)

    def _after_delivery(self, rec: OrderRec, day: int) -> None:
        """Everything arrived: maybe a return later, maybe feedback."""
        w = self.world
        plan = rec.plan
        if plan.customer is not None and self.rng.random() < self.config.knob("feedback_rate", 0.12):
            self.feedbacks[day + self.rng.randint(0, 6)].append((rec, rec.last_delivery))  # type: ignore[arg-type]
        rate_factor = 1.0
        if plan.customer is not None:
            rate_factor = (0.9, 1.0, 1.2, 0.9)[int(w.customers.segment[plan.customer])]
        if rec.delayed:
            rate_factor *= 1.3
        if any(self.rng.random() < w.categories[int(w.skus.category[s])].return_rate * rate_factor * self.config.knob("return_factor", RETURN_FACTOR)
               for s, _ in plan.lines if w.skus.returnable[s]):
            self.return_opens[day + self.rng.randint(1, 20)].append((rec, rec.last_delivery))  # type: ignore[arg-type]

    # orders --------------------------------------------------------------------------------------

    def _request(self, plan: PlannedOrder) -> dict[str, Any]:
        w = self.world
        point = self.demand.points[plan.point]
        req: dict[str, Any] = {
            "channel": point.code, "lines": [{"sku": w.skus.code[s], "quantity": q} for s, q in plan.lines],
            "delivery": plan.delivery, "payment_token": f"tok_{'decline_' if plan.decline else ''}sim_{plan.seq}",
        }
        if plan.customer is not None:
            req["customer_id"] = int(self.customer_id[plan.customer])
        if plan.delivery == "carry_out":
            req["location"] = w.stores[plan.store]  # type: ignore[index]
        elif plan.delivery == "pickup":
            req["pickup_location"] = w.stores[plan.store]  # type: ignore[index]
        else:
            req["shipping_method"] = plan.method
        if plan.coupon:
            req["coupon_codes"] = [plan.coupon]
        if plan.allow_backorder:
            req["allow_backorder"] = True
        return req

    def _place_orders(self, s: Session, day: int) -> None:
        plans = [p for p in self.baskets.plan_day(day, self.active) if p.lines]
        for p in plans:  # a customer created today or earlier: guard against ones not yet recorded
            if p.customer is not None and self.customer_id[p.customer] == 0:
                self._create_customers([p.customer], session=s, day=day)
        for chunk in _chunks(plans, self.config.batch_orders):
            self._place_batch(s, day, chunk)

    def _place_batch(self, s: Session, day: int, plans: list[PlannedOrder]) -> None:
        """Place the batch; a customer told "not enough stock" answers at once (see `_shortage`)."""
        current = list(plans)

        def answer(i: int, error: StoreOMError) -> dict[str, Any] | None:
            if not isinstance(error, InsufficientStock):
                return None
            follow = self._shortage(current[i], error)
            if follow is None:
                return None
            current[i] = follow
            return self._request(follow)

        results = self.recorder.place(s, [(self._request(p), p.at) for p in plans], on_refused=answer)
        for plan, (number, error) in zip(current, results):
            if number is not None:
                self._placed(number, plan, day)
                continue
            if isinstance(error, InsufficientStock):  # the customer gave up: `_shortage` counted what was lost
                continue
            if error is not None and error.code == "payment_declined":
                self.report.declined_payments += 1
            self._lose(plan, plan.lines)

    def _lose(self, plan: PlannedOrder, lines: list[tuple[int, int]]) -> None:
        loc = self._plan_location(plan)
        for sku, q in lines:
            self.report.lost_sales_lines += 1
            self.report.lost_sales_units += q
            self.lost_units[sku, loc] += q

    def _plan_location(self, plan: PlannedOrder) -> int:
        if plan.store is not None:
            return self.store_loc[plan.store]
        if plan.customer is not None:
            return self.wh_index[nearest_warehouse(self.world, int(self.world.customers.city[plan.customer]))]
        return 0

    def _shortage(self, plan: PlannedOrder, error: InsufficientStock) -> PlannedOrder | None:
        """The customer's answer to "not enough stock": pickup becomes delivery, backorder if allowed
        and acceptable, else take what there is or drop the line (lost sales)."""
        rng = self.rng
        if plan.attempt >= 2:
            self._lose(plan, plan.lines)
            return None
        follow = PlannedOrder(seq=plan.seq, point=plan.point, customer=plan.customer, lines=list(plan.lines), at=plan.at,
                              delivery=plan.delivery, method=plan.method, store=plan.store, coupon=plan.coupon, decline=plan.decline,
                              allow_backorder=plan.allow_backorder, attempt=plan.attempt + 1)
        if plan.delivery == "pickup":
            follow.delivery, follow.store, follow.method = "ship", None, "standard"
            return follow
        short = {sh["sku"]: sh for sh in error.shortages}
        lines = []
        backorder = plan.delivery == "ship" and all(sh.get("alternatives", {}).get("backorder") for sh in short.values()) and rng.random() < 0.65
        if backorder:
            follow.allow_backorder = True
            return follow
        lost: list[tuple[int, int]] = []
        for s, q in plan.lines:
            sh = short.get(self.world.skus.code[s])
            if sh is None:
                lines.append((s, q))
                continue
            available = int(sh.get("available", 0))
            if 0 < available < q and rng.random() < 0.5:
                lines.append((s, available))
                lost.append((s, q - available))
            else:
                lost.append((s, q))
        self._lose(plan, lost)
        if not lines or rng.random() < 0.25:  # some customers walk away from the whole basket
            if lines:
                self._lose(plan, lines)
            return None
        follow.lines = lines
        return follow

    def _placed(self, number: str, plan: PlannedOrder, day: int) -> None:
        rec = OrderRec(number, plan, day)
        self.report.orders += 1
        self.report.order_lines += len(plan.lines)
        self.report.units += sum(q for _, q in plan.lines)
        self.baskets.record_purchase(plan, day)
        if plan.allow_backorder:
            self.report.backordered_orders += 1
            self.backorders.append(rec)
        if plan.delivery == "carry_out":
            if self.pos_returns and plan.customer is not None:
                self._after_delivery_pos(rec, day)
            return
        self.to_ship.append(rec)
        if plan.delivery == "ship" and self.rng.random() < self.config.knob("cancel_rate", 0.012):
            self.cancels[day].append((rec, plan.at + timedelta(hours=self.rng.uniform(0.5, 6))))

    def _after_delivery_pos(self, rec: OrderRec, day: int) -> None:
        w = self.world
        rec.last_delivery = rec.placed_at
        if any(self.rng.random() < w.categories[int(w.skus.category[s])].return_rate * 0.6 * self.config.knob("return_factor", RETURN_FACTOR)
               for s, _ in rec.plan.lines if w.skus.returnable[s]):
            self.return_opens[day + self.rng.randint(1, 14)].append((rec, rec.placed_at))

    # after-sales -----------------------------------------------------------------------------------

    def _cancel(self, s: Session, day: int) -> None:
        """Customers cancel before shipment (with the core's batched `cancel_orders` when it has it:
        one call for the day's, each refused alone), and give up on backorders that have waited a month."""
        wanted: list[tuple[OrderRec, str, datetime]] = []
        for rec, at in self.cancels.pop(day, []):
            if rec.cancelled or rec.shipments:
                continue
            wanted.append((rec, self.rng.choice(("changed my mind", "found it cheaper", "ordered by mistake")), min(at, self.at(day, time(23, 59)))))
        asked = {rec.number for rec, _, _ in wanted}
        for rec in self.backorders:
            if not rec.cancelled and not rec.shipments and rec.number not in asked and day - rec.day >= 30 and self.rng.random() < 0.1:
                wanted.append((rec, "waited too long for a backorder", self.at(day, 12.0)))
        if not wanted:
            return
        helper = self.recorder.bulk_helper("cancel_orders")
        if helper is not None:
            with frozen_at(max(at for _, _, at in wanted)):
                done = [r.error is None for r in helper(s, [self.recorder.bulk.Cancellation(rec.number, why, at) for rec, why, at in wanted],
                                                        actor=ACTOR)]
        else:
            done = []
            for rec, why, at in wanted:
                try:
                    with frozen_at(at), s.begin_nested():
                        orders.cancel_order(s, rec.number, reason=why, actor=ACTOR)
                    done.append(True)
                except StoreOMError:
                    done.append(False)
        for (rec, _, _), ok in zip(wanted, done):
            if ok:
                rec.cancelled = True
                self.report.cancelled_orders += 1

    def _open_returns(self, s: Session, day: int) -> None:
        due = self.return_opens.pop(day, [])
        if not due:
            return
        w = self.world
        at_the_store: list[tuple[str, str, datetime, dict[int, str]]] = []
        wanted: list[tuple[OrderRec, list[tuple[int, int, int, str]], datetime, dict[str, Any]]] = []
        lines = defaultdict(dict)
        for number, line_no, delivered, returned, _ in read_rows(s, _ORDER_LINES, {"numbers": [rec.number for rec, _ in due]}):
            lines[number][line_no] = int(delivered or 0) - int(returned or 0)
        for rec, delivered_at in due:
            plan = rec.plan
            items = []
            for line_no, (sku, q) in enumerate(plan.lines, start=1):
                if not w.skus.returnable[sku] or lines[rec.number].get(line_no, 0) <= 0:
                    continue
                cat = w.categories[int(w.skus.category[sku])]
                if self.rng.random() >= cat.return_rate * 3 and items:
                    continue
                reason = self.rng.choices(RETURN_REASONS, weights=cat.reasons)[0]
                if rec.delayed and self.rng.random() < 0.4:
                    reason = "late_delivery"
                qty = min(lines[rec.number][line_no], q if self.rng.random() < 0.7 else 1)
                items.append((line_no, sku, qty, reason))
            if not items:
                continue
            at = self.at(day, self.rng.uniform(13, 23))
            wanted.append((rec, items, at, {"reason_code": items[0][3],
                                            "lines": [{"line_no": n, "quantity": q, "reason_code": r} for n, _, q, r in items]}))
        for (rec, items, at, _), number in zip(wanted, self._open(s, [(rec.number, request, at) for rec, _, at, request in wanted])):
            if number is None:
                continue
            plan = rec.plan
            self.report.returns += 1
            conditions = {}
            for n, _, _, r in items:
                if r in ("damaged", "defective"):
                    conditions[n] = "damaged"
                elif r == "wrong_item":
                    conditions[n] = "wrong_item"
                else:
                    conditions[n] = "damaged" if self.rng.random() < 0.06 else "resellable"
            if plan.delivery == "ship":  # sent back to the warehouse, received a few days later
                location = nearest_warehouse(w, int(w.customers.city[plan.customer])) if plan.customer is not None else w.warehouses[0]
                back = day + self.rng.randint(3, 8)
                self.return_receipts[back].append((number, location, self.at(back, MORNING), conditions))
            else:  # brought back to the store
                store = w.stores[plan.store] if plan.store is not None else w.stores[0]
                at_the_store.append((number, store, at + timedelta(minutes=10), conditions))
        self._receive_and_refund(s, at_the_store)

    def _open(self, s: Session, wanted: list[tuple[str, dict[str, Any], datetime]]) -> list[str | None]:
        """Open these returns (order number, request, when): with the core's batched `open_returns`
        when it has it, else one at a time. The number of each, or None when it was refused."""
        helper = self.recorder.bulk_helper("open_returns")
        if helper is not None and wanted:
            with frozen_at(max(at for _, _, at in wanted)):
                results = helper(s, [self.recorder.bulk.ReturnOpening(number, request, at) for number, request, at in wanted], actor=ACTOR)
            return [r.number for r in results]
        numbers: list[str | None] = []
        for order_number, request, at in wanted:
            try:
                with frozen_at(at), s.begin_nested():
                    numbers.append(returns.open_return(s, order_number, request, actor=ACTOR).number)
            except StoreOMError:
                numbers.append(None)
        return numbers

    def _feedback(self, s: Session, day: int) -> None:
        """Some customers rate their delivered orders (with the core's batched `record_feedbacks` when it has it)."""
        given: list[tuple[str, dict[str, Any], datetime]] = []
        for rec, delivered_at in self.feedbacks.pop(day, []):
            base = (0.03, 0.04, 0.10, 0.33, 0.50) if not rec.delayed else (0.15, 0.2, 0.25, 0.25, 0.15)
            rating = self.rng.choices((1, 2, 3, 4, 5), weights=base)[0]
            nps = max(0, min(10, int(round(rating * 2 - 0.5 + self.rng.gauss(0, 1.2)))))
            tags = []
            if rec.delayed:
                tags.append("delivery_speed")
            tags.append(self.rng.choice(("product_quality", "price", "packaging", "service", "accuracy", "condition")))
            comment = self.rng.choice(FEEDBACK_COMMENTS[rating])
            at = max(self.at(day, self.rng.uniform(12, 23)), (delivered_at or self.at(day, 12.0)) + timedelta(hours=1))
            given.append((rec.number, {"rating": rating, "would_recommend": nps, "comment": comment, "tags": tags}, at))
        helper = self.recorder.bulk_helper("record_feedbacks")
        if helper is not None and given:
            with frozen_at(max(at for _, _, at in given)):
                results = helper(s, [self.recorder.bulk.FeedbackEntry(number, data, at) for number, data, at in given], actor=ACTOR)
            self.report.feedback += sum(r.error is None for r in results)
            return
        for number, data, at in given:
            try:
                with frozen_at(at), s.begin_nested():
                    feedback.record_feedback(s, number, data, actor=ACTOR)
                self.report.feedback += 1
            except StoreOMError:
                pass

    # end of day ------------------------------------------------------------------------------------

    def _count_stockouts(self, day: int) -> None:
        w = self.world
        launched = self.active & (w.skus.launch_day <= day)
        listed = np.zeros((self.n_skus, self.n_locs), dtype=bool)
        listed[:, : len(w.warehouses)] = launched[:, None]
        listed[:, len(w.warehouses):] = launched[:, None] & w.skus.carried
        out = listed & (self.on_hand - self.reserved <= 0)
        self.stockout_days += out

    def _review_warehouses(self, s: Session, day: int) -> None:
        w = self.world
        weekday = self.demand.date(day).weekday()
        raised: list[tuple[Any, int, dict[int, int]]] = []  # (supplier, warehouse, {sku: units})
        for j, sup in enumerate(w.suppliers):
            review_days = (0, 3) if sup.lead_time_days <= 5 else (j % 5,)
            if weekday not in review_days:
                continue
            cats = [i for i, c in enumerate(w.categories) if c.supplier == sup.code]
            mine = np.flatnonzero(np.isin(w.skus.category, cats) & self.active & (w.skus.eol_day > day + sup.lead_time_days + 30))
            if len(mine) == 0:
                continue
            review = 3.5 if len(review_days) == 2 else 7.0
            up_to, reorder = self._warehouse_levels(day, mine, lead=sup.lead_time_days + review - 7.0, lead_std=sup.lead_time_std_days)
            for wi in range(len(w.warehouses)):
                position = self.on_hand[mine, wi] - self.reserved[mine, wi] + self.on_order[mine, wi]
                need = (position <= reorder[mine, wi]) & (up_to[mine, wi] > position)
                lines: dict[int, int] = {}
                for s_idx, pos_, target in zip(mine[need], position[need], up_to[mine, wi][need]):
                    pack = int(w.skus.pack[s_idx])
                    qty = int(math.ceil((target - pos_) / pack) * pack)
                    if qty > 0:
                        lines[int(s_idx)] = qty
                if lines:
                    raised.append((sup, wi, lines))
        numbers = self._raise_purchase_orders(s, [
            {"supplier": sup.code, "location": w.warehouses[wi], "lines": [{"sku": w.skus.code[k], "quantity": q} for k, q in lines.items()]}
            for sup, wi, lines in raised
        ])
        for (sup, wi, lines), number in zip(raised, numbers):
            lead = max(1.0, self.rng.gauss(sup.lead_time_days, sup.lead_time_std_days))
            if self.rng.random() < sup.late_probability:
                lead += 7
            arrival = day + int(math.ceil(lead))
            self.po_arrivals[arrival].append((number, wi, lines, self.rng.random() < 0.06))
            for k, q in lines.items():
                self.on_order[k, wi] += q
            self.report.purchase_orders += 1
            self.report.purchase_order_lines += len(lines)

    def _raise_purchase_orders(self, s: Session, wanted: list[dict[str, Any]]) -> list[str]:
        """Create and send these purchase orders: with the core's batched `create_purchase_orders` when
        it has it (one call for the day's), else one at a time. Their numbers."""
        if not wanted:
            return []
        helper = self.recorder.bulk_helper("create_purchase_orders")
        if helper is not None:
            return helper(s, wanted, actor=ACTOR, send=True)
        numbers = []
        for request in wanted:
            po = purchasing.create_purchase_order(s, request, actor=ACTOR)
            purchasing.send_purchase_order(s, po.number)
            numbers.append(po.number)
        return numbers

    def _review_stores(self, day: int) -> None:
        w = self.world
        weekday = self.demand.date(day).weekday()
        for k, code in enumerate(w.stores):
            # big stores get a truck every week, the others every other week
            if weekday != k % 7 or (w.location(code).size < 1.0 and (day // 7) % 2 == k % 2):
                continue
            loc = self.store_loc[k]
            up_to, reorder = self._store_levels(day, k)
            position = self.on_hand[:, loc] - self.reserved[:, loc] + self.in_transit[:, loc]
            need = np.flatnonzero((up_to > 0) & (position <= reorder) & (up_to > position))
            lines = {}
            for sku in need:
                inner = max(1, int(w.skus.pack[sku]) // 2)
                qty = int(math.ceil((up_to[sku] - position[sku]) / inner) * inner)
                if qty > 0:
                    lines[int(sku)] = qty
                    self.in_transit[sku, loc] += qty
            if lines:
                self.transfers[day + 2].append((loc, lines))


GC_THRESHOLD = (20_000, 20, 10)  # allocations before a young collection (CPython's default 700), then as default


@contextmanager
def _long_lived_heap() -> Iterator[Callable[[], None]]:
    """A run without most of the cyclic garbage collector's work (a tenth of a run's CPU by default,
    rescanning the world over and over): young collections every 20,000 allocations instead of every
    700 (a batch's rows and drafts are mostly acyclic, freed by reference counting anyway), and what
    exists now, or when the caller calls the given function (after set-up), is frozen: never scanned
    again. Both are undone afterwards; a process that froze its heap itself keeps it as it was."""
    threshold = gc.get_threshold()
    own = gc.get_freeze_count() == 0

    def freeze() -> None:
        if own:
            gc.freeze()

    freeze()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        yield freeze
    finally:
        gc.set_threshold(*threshold)
        if own:
            gc.unfreeze()


def simulate(db: Database, config: SimulationConfig | None = None, *, progress: bool = True) -> SimulationReport:
    """Simulate the retailer of `config` into the migrated, empty database `db` (see the module docstring).

    Orders are recorded with `notify=False` (no outbox messages for simulated orders). Returns the
    report: counts of what happened and how long it took."""
    sim = Simulation(db, config or SimulationConfig(), progress=progress)
    return sim.run()


__all__ = ["Recorder", "Simulation", "SimulationReport", "simulate"]
