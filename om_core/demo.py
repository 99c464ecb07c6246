"""A small sample store for `storeom demo`: enough to try every command of the core.

Everything is recorded through the services (the same code paths as real orders), with the clock
moved back so the history spans the last 60 days. Re-running reuses an existing store.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from om_core.clock import frozen_at
from om_core.config import Settings
from om_core.db import Database
from om_core.errors import InsufficientStock, PaymentDeclined
from om_core.models import Customer, Order, Product, PurchaseOrder
from om_core.schema import downgrade, upgrade
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

CATEGORIES = {
    "coffee": [("Espresso beans 250g", "9.99"), ("Filter coffee 500g", "12.49"), ("Decaf beans 250g", "10.99"), ("Cold brew bottle", "4.49")],
    "kitchen": [("Coffee mug", "12.50"), ("Electric kettle", "49.99"), ("French press", "29.99"), ("Milk frother", "24.99")],
    "apparel": [("T-shirt", "20.00"), ("Hoodie", "45.00"), ("Cap", "15.00"), ("Socks 3-pack", "12.00")],
    "books": [("Coffee atlas", "35.00"), ("Barista handbook", "22.00"), ("Latte art guide", "18.00")],
    "grocery": [("Dark chocolate", "3.49"), ("Oat milk 1L", "2.29"), ("Almond biscuits", "4.99"), ("Vanilla syrup", "7.99")],
}
STORES = [
    ("WH-NJ", "New Jersey DC", "warehouse", 40.73, -74.17, "Newark", "NJ", "07102"),
    ("WH-NV", "Nevada DC", "warehouse", 39.53, -119.81, "Reno", "NV", "89501"),
    ("ST-NYC", "Manhattan store", "store", 40.75, -73.99, "New York", "NY", "10001"),
    ("ST-CHI", "Chicago store", "store", 41.88, -87.63, "Chicago", "IL", "60601"),
    ("ST-SF", "San Francisco store", "store", 37.79, -122.40, "San Francisco", "CA", "94105"),
]
CITIES = [("New York", "NY", "100"), ("Chicago", "IL", "606"), ("San Francisco", "CA", "941"), ("Austin", "TX", "787"), ("Seattle", "WA", "981")]


def build_demo_store(settings: Settings, *, fresh: bool = False, seed: int = 7, days: int = 60, order_count: int = 400) -> dict[str, Any]:
    """Create (or reuse) the demo store in the configured database and return what it holds."""
    url = settings.database_url
    if fresh:
        downgrade(url, "base")
    upgrade(url)
    db = Database(url)
    try:
        with db.read() as s:
            exists = s.scalar(select(func.count()).select_from(Product)) > 0
        if not exists:
            _build(db, random.Random(seed), days, order_count)
        return _summary(db, reused=exists)
    finally:
        db.dispose()


def _summary(db: Database, *, reused: bool) -> dict[str, Any]:
    with db.read() as s:
        count = lambda model: s.scalar(select(func.count()).select_from(model))  # noqa: E731
        by_status = dict(s.execute(select(Order.status, func.count()).group_by(Order.status)).all())
        return {
            "database": db.engine.url.render_as_string(hide_password=True),
            "reused_existing_store": reused,
            "products": count(Product),
            "customers": count(Customer),
            "orders": by_status,
            "purchase_orders": count(PurchaseOrder),
            "ledger_consistent": inventory.verify_ledger(s) == [],
            "try": ["storeom order show <number>", "storeom shipment show <number>", "storeom picklist WH-NJ",
                    "storeom stock show DEMO-COFFEE-01 --channel web", "storeom outbox dispatch"],
        }


def _build(db: Database, rng: random.Random, days: int, order_count: int) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days)
    skus: list[str] = []
    with frozen_at(start - timedelta(days=1)), db.transaction() as s:
        catalog.create_supplier(s, {"code": "ROASTERY", "name": "Hilltop Roastery", "lead_time_days": "4", "lead_time_std_days": "1"})
        catalog.create_supplier(s, {"code": "HOMEGOODS", "name": "Home Goods Wholesale", "lead_time_days": "10", "lead_time_std_days": "3"})
        catalog.create_supplier(s, {"code": "PRINTSHOP", "name": "Print & Thread", "lead_time_days": "14", "lead_time_std_days": "4"})
        suppliers = {"coffee": "ROASTERY", "grocery": "ROASTERY", "kitchen": "HOMEGOODS", "apparel": "PRINTSHOP", "books": "PRINTSHOP"}
        for category, items in CATEGORIES.items():
            for i, (name, price) in enumerate(items, start=1):
                sku = f"DEMO-{category.upper()}-{i:02d}"
                catalog.create_product(s, {
                    "sku": sku, "name": name, "category": category, "price": price,
                    "cost": str((Decimal(price) * Decimal("0.45")).quantize(Decimal("0.01"))),
                    "supplier": suppliers[category], "pack_size": 6 if category in ("coffee", "grocery") else 1,
                    "tax_class": "reduced" if category == "grocery" else "standard",
                    "returnable": category != "grocery", "backorder_policy": "allow" if category == "books" else "deny",
                })
                skus.append(sku)
        for code, name, kind, lat, lon, city, region, postal in STORES:
            locations.create_location(s, {
                "code": code, "name": name, "kind": kind, "latitude": lat, "longitude": lon, "city": city, "region": region,
                "postal_code": postal, "country": "US", "can_pickup": kind == "store", "can_ship_from_store": kind == "store",
            })
        online = ["WH-NJ", "WH-NV", "ST-NYC", "ST-CHI", "ST-SF"]
        locations.create_channel(s, {"code": "web", "name": "Web shop", "kind": "web", "locations": online})
        locations.create_channel(s, {"code": "app", "name": "Mobile app", "kind": "app", "locations": online})
        locations.create_channel(s, {"code": "marketplace", "name": "Marketplace", "kind": "marketplace", "locations": ["WH-NJ", "WH-NV"]})
        for code in ("ST-NYC", "ST-CHI", "ST-SF"):
            locations.create_channel(s, {"code": f"pos-{code[3:].lower()}", "name": f"{code} tills", "kind": "pos", "prices_include_tax": True, "locations": [code]})
        taxes.set_tax_rate(s, {"country": "US", "tax_class": "standard", "rate": "0.06"})
        for region, rate in (("NY", "0.08875"), ("IL", "0.1025"), ("CA", "0.08625"), ("TX", "0.0825"), ("WA", "0.101")):
            taxes.set_tax_rate(s, {"country": "US", "region": region, "tax_class": "standard", "rate": rate})
        taxes.set_tax_rate(s, {"country": "US", "tax_class": "reduced", "rate": "0"})
        shipping.create_shipping_method(s, {"code": "standard", "name": "Standard", "service_level": "standard", "base_price": "4.95", "free_over": "50", "promised_days": 5})
        shipping.create_shipping_method(s, {"code": "expedited", "name": "Expedited", "service_level": "expedited", "base_price": "9.95", "price_per_kg": "1.00", "promised_days": 2})
        shipping.create_shipping_method(s, {"code": "overnight", "name": "Overnight", "service_level": "overnight", "base_price": "24.95", "promised_days": 1})
        promotions.create_promotion(s, {"name": "Coffee week", "kind": "percentage", "scope": "category", "target": "coffee", "value": "15",
                                        "starts_at": start + timedelta(days=20), "ends_at": start + timedelta(days=27)})
        promotions.create_promotion(s, {"name": "Welcome coupon", "kind": "fixed", "scope": "order", "value": "5", "coupon_code": "WELCOME5",
                                        "min_subtotal": "30", "usage_limit_per_customer": 1})
        promotions.create_promotion(s, {"name": "Socks 3 for 2", "kind": "buy_x_get_y", "scope": "sku", "target": "DEMO-APPAREL-04",
                                        "value": "100", "buy_quantity": 2, "get_quantity": 1})
        for sku in skus:
            for code in ("WH-NJ", "WH-NV", "ST-NYC", "ST-CHI", "ST-SF"):
                qty = rng.randint(40, 120) if code.startswith("WH") else rng.randint(0, 25)
                if qty:
                    inventory.receive_stock(s, {"sku": sku, "location": code, "quantity": qty, "reference": "opening balance"}, actor="demo")
        for i in range(200):
            city, region, prefix = rng.choice(CITIES)
            customers.create_customer(s, {
                "email": f"customer{i:04d}@example.com", "first_name": f"Customer {i}", "marketing_consent": rng.random() < 0.6,
                "address": {"line1": f"{rng.randint(1, 999)} Main St", "city": city, "region": region,
                            "postal_code": f"{prefix}{rng.randint(0, 99):02d}", "country": "US"},
            })

    placed: list[tuple[str, datetime]] = []
    for n, moment in enumerate(sorted(start + timedelta(seconds=rng.uniform(0, days * 86400)) for _ in range(order_count))):
        channel = rng.choices(["web", "app", "marketplace", "pos"], weights=[5, 3, 1, 2])[0]
        lines = {sku: rng.choice([1, 1, 1, 2, 3]) for sku in rng.sample(skus, rng.choice([1, 1, 2, 3, 4]))}
        request: dict[str, Any] = {"lines": [{"sku": k, "quantity": q} for k, q in lines.items()], "payment_token": f"tok_demo_{n}"}
        if channel == "pos":
            store = rng.choice(["nyc", "chi", "sf"])
            request |= {"channel": f"pos-{store}", "delivery": "carry_out", "location": f"ST-{store.upper()}"}
        else:
            request |= {"channel": channel, "customer_id": rng.randint(1, 200), "shipping_method": rng.choice(["standard", "standard", "expedited"])}
        try:
            with frozen_at(moment), db.transaction() as s:
                placed.append((orders.place_order(s, request, idempotency_key=f"demo-{n}", actor="demo").number, moment))
        except (InsufficientStock, PaymentDeclined):
            continue
    now = datetime.now(UTC)
    for number, moment in placed:
        _fulfil(db, rng, number, moment, now)
    with db.transaction() as s:
        po = purchasing.create_purchase_order(s, {"supplier": "ROASTERY", "location": "WH-NJ",
                                                  "lines": [{"sku": sku, "quantity": 60} for sku in skus if sku.startswith("DEMO-COFFEE")]}, actor="demo")
        purchasing.send_purchase_order(s, po.number)


def _fulfil(db: Database, rng: random.Random, number: str, placed_at: datetime, now: datetime) -> None:
    """Take one order through its life as the store would: a few cancellations, shipments that leave
    the next day and arrive around their promise (some late), pickups, a few returns, some feedback."""
    with db.read() as s:
        status = orders.get_order(s, number).status
    if status != "placed":
        return
    if rng.random() < 0.05:
        with frozen_at(placed_at + timedelta(hours=2)), db.transaction() as s:
            orders.cancel_order(s, number, reason="customer changed their mind", actor="demo")
        return
    ship_at = placed_at + timedelta(hours=rng.uniform(4, 30))
    if ship_at > now:
        return
    with frozen_at(ship_at), db.transaction() as s:
        shipments = [(x.number, x.kind, x.promised_at) for x in fulfilment.create_shipments(s, number, actor="demo")]
    delivered_all = True
    last_arrival = ship_at
    for shipment, kind, promised in shipments:
        if kind == "pickup":
            with frozen_at(ship_at), db.transaction() as s:
                fulfilment.mark_ready_for_pickup(s, shipment, actor="demo")
            collect_at = ship_at + timedelta(days=rng.uniform(0.2, 4))
            if collect_at > now:
                delivered_all = False
                continue
            with frozen_at(collect_at), db.transaction() as s:
                fulfilment.collect_pickup(s, shipment, actor="demo")
            last_arrival = max(last_arrival, collect_at)
            continue
        with frozen_at(ship_at), db.transaction() as s:
            tracking = fulfilment.dispatch_shipment(s, shipment, actor="demo").tracking_number
        late = rng.random() < 0.08
        arrive = (promised or ship_at + timedelta(days=3)) + timedelta(days=rng.uniform(0.5, 3) if late else -rng.uniform(0, 2))
        arrive = max(arrive, ship_at + timedelta(hours=12))
        last_arrival = max(last_arrival, arrive)
        scans = [("picked_up", ship_at + timedelta(hours=3)), ("in_transit", ship_at + timedelta(hours=20))]
        if late:
            scans.append(("exception", arrive - timedelta(days=1)))
        scans += [("out_for_delivery", arrive - timedelta(hours=6)), ("delivered", arrive)]
        for i, (kind_, at) in enumerate(scans):
            if at > now:
                delivered_all = False
                break
            with frozen_at(at), db.transaction() as s:
                fulfilment.record_tracking_event(s, {"tracking_number": tracking, "kind": kind_, "at": at, "carrier_event_id": f"demo-{i}",
                                                     "description": "Weather delay" if kind_ == "exception" else None})
    after = last_arrival + timedelta(days=rng.uniform(0.5, 6))
    if not delivered_all or after > now:
        return
    with frozen_at(after), db.transaction() as s:
        order = orders.get_order(s, number)
        if rng.random() < 0.3:
            feedback.record_feedback(s, number, {"rating": rng.choices([1, 2, 3, 4, 5], [1, 1, 2, 5, 8])[0],
                                                 "would_recommend": rng.randint(4, 10), "tags": [rng.choice(["delivery_speed", "condition", "service"])]})
        returnable = [l for l in order.lines if l.quantity_delivered and not l.sku.startswith("DEMO-GROCERY")]
        if returnable and rng.random() < 0.08:
            line = rng.choice(returnable)
            reason = rng.choice(["size_fit", "damaged", "no_longer_needed", "not_as_described"])
            rma = returns.open_return(s, number, {"reason_code": reason, "lines": [{"line_no": line.line_no, "quantity": 1}]}, actor="demo")
            returns.receive_return(s, rma.number, "WH-NJ", [{"line_no": line.line_no, "condition": "damaged" if reason == "damaged" else "resellable"}], actor="demo")
            returns.refund_return(s, rma.number, actor="demo")
