"""Order placement: a 3-line order with reservation, payment authorization and events.

Targets (issue #2): >= 300 orders/s single process on SQLite with p99 < 50 ms; 8 concurrent
clients on one hot SKU on PostgreSQL with zero oversell.

Throughput follows whatever else runs on the machine; the CPU per order and the SQL statements per order
(both reported, with the load average) are what to compare between versions on a shared machine.
"""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import event, func, select, text

from bench.common import Metric, percentile
from om_core.db import Database
from om_core.errors import InsufficientStock
from om_core.models import Base, Reservation, Stock
from om_core.schema import upgrade
from om_core.services import catalog, customers, inventory, locations, orders, shipping, taxes

SKUS = 500


def build_bench_store(db: Database, *, hot_stock: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    with db.transaction() as s:
        catalog.create_supplier(s, {"code": "SUP", "name": "Supplier"})
        for loc in ("WH1", "WH2"):
            locations.create_location(s, {"code": loc, "name": loc, "kind": "warehouse"})
        locations.create_channel(s, {"code": "web", "name": "Web", "kind": "web", "locations": ["WH1", "WH2"]})
        taxes.set_tax_rate(s, {"country": "US", "tax_class": "standard", "rate": "0.07"})
        shipping.create_shipping_method(s, {"code": "standard", "name": "Standard", "service_level": "standard",
                                            "base_price": "4.95", "free_over": "75", "promised_days": 4})
        catalog.create_product(s, {"sku": "HOT", "name": "Hot item", "category": "c0", "price": "19.99", "cost": "8", "supplier": "SUP"})
        inventory.receive_stock(s, {"sku": "HOT", "location": "WH1", "quantity": hot_stock})
        for i in range(SKUS):
            catalog.create_product(s, {"sku": f"SKU{i:05d}", "name": f"Item {i}", "category": f"c{i % 20}",
                                       "price": f"{rng.randint(1, 200)}.{rng.randint(0, 99):02d}", "cost": "1.00", "supplier": "SUP"})
            inventory.receive_stock(s, {"sku": f"SKU{i:05d}", "location": "WH1" if i % 2 else "WH2", "quantity": 1_000_000})
        for i in range(100):
            customers.create_customer(s, {"email": f"c{i}@example.com", "address": {
                "line1": f"{i} Main St", "city": "Springfield", "postal_code": f"{10000 + i}", "country": "US"}})


def _request(rng: random.Random, hot: bool) -> dict:
    skus = rng.sample(range(SKUS), 3 - hot)
    lines = [{"sku": f"SKU{i:05d}", "quantity": rng.randint(1, 3)} for i in skus]
    if hot:
        lines.insert(0, {"sku": "HOT", "quantity": 1})
    return {"channel": "web", "customer_id": rng.randint(1, 100), "lines": lines,
            "shipping_method": "standard", "payment_token": "tok_bench"}


def fresh_database(url: str | None, workdir: Path) -> Database:
    if url is None:
        url = f"sqlite:///{workdir / 'bench.db'}"
        upgrade(url)
        return Database(url)
    db = Database(url)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade(url)
    return db


def statements_per_order(db: Database, request: dict) -> int:
    """SQL statements one placement with an idempotency key sends (BEGIN included: the SQLite engine
    issues it straight to the driver)."""
    sent = [1 if db.dialect == "sqlite" else 0]

    def count(*_args) -> None:  # type: ignore[no-untyped-def]
        sent[0] += 1

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.transaction() as s:
            orders.place_order(s, request, idempotency_key="bench-count")
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return sent[0]


def single_process(url: str | None, n: int) -> list[Metric]:
    backend = "postgresql" if url else "sqlite"
    with tempfile.TemporaryDirectory() as tmp:
        db = fresh_database(url, Path(tmp))
        build_bench_store(db, hot_stock=10)
        rng = random.Random(42)
        latencies = []
        cpu = 0.0
        for i in range(n + 50):
            request = _request(rng, hot=False)
            start, cpu_start = time.perf_counter(), time.process_time()
            with db.transaction() as s:
                orders.place_order(s, request, idempotency_key=f"bench-{i}")
            if i >= 50:  # warm-up excluded
                latencies.append(time.perf_counter() - start)
                cpu += time.process_time() - cpu_start
        total = sum(latencies)
        statements = statements_per_order(db, _request(rng, hot=False))
        db.dispose()
    name = f"order placement ({backend})"
    rate = n / total
    p99 = percentile(latencies, 99) * 1000
    return [
        Metric(name, "throughput, 1 process", rate, "orders/s", ">= 300" if not url else "", rate >= 300 if not url else None),
        Metric(name, "p50 latency", percentile(latencies, 50) * 1000, "ms"),
        Metric(name, "p99 latency", p99, "ms", "< 50" if not url else "", p99 < 50 if not url else None),
        Metric(name, "CPU per order (this process)", cpu / n * 1000, "ms"),
        Metric(name, "SQL statements per order", statements, "statements"),
        Metric(name, "load average (1 min) at the end", os.getloadavg()[0], "runnable"),
    ]


def hot_sku_contention(url: str | None, clients: int, orders_per_client: int, hot_stock: int) -> list[Metric]:
    backend = "postgresql" if url else "sqlite"
    with tempfile.TemporaryDirectory() as tmp:
        db = fresh_database(url, Path(tmp))
        build_bench_store(db, hot_stock=hot_stock)
        latencies: list[float] = []
        placed = [0]
        refused = [0]
        lock = threading.Lock()

        def client(cid: int) -> None:
            rng = random.Random(cid)
            for i in range(orders_per_client):
                request = _request(rng, hot=True)
                start = time.perf_counter()
                try:
                    with db.transaction() as s:
                        orders.place_order(s, request, idempotency_key=f"c{cid}-{i}")
                    ok = True
                except InsufficientStock:
                    ok = False
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    placed[0] += ok
                    refused[0] += not ok

        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        with db.read() as s:
            reserved = s.scalar(
                select(func.coalesce(func.sum(Reservation.quantity), 0)).join(Stock).where(
                    Reservation.status == "active", Stock.product_id == select(Base.metadata.tables["products"].c.id).where(
                        Base.metadata.tables["products"].c.sku == "HOT").scalar_subquery())
            )
            problems = inventory.verify_ledger(s)
        db.dispose()
    name = f"hot SKU, {clients} clients ({backend})"
    oversell = max(0, int(reserved) - hot_stock)
    return [
        Metric(name, "throughput", (placed[0] + refused[0]) / wall, "orders/s"),
        Metric(name, "p99 latency", percentile(latencies, 99) * 1000, "ms"),
        Metric(name, "orders placed", placed[0], "orders", f"= {hot_stock}", placed[0] == hot_stock),
        Metric(name, "refused (out of stock)", refused[0], "orders"),
        Metric(name, "oversell", oversell, "units", "= 0", oversell == 0 and not problems),
    ]


def run(size: str = "small") -> list[Metric]:
    n = 2000 if size == "small" else 10_000
    metrics = single_process(None, n)
    metrics += hot_sku_contention(None, clients=8, orders_per_client=50, hot_stock=300)
    pg = os.environ.get("STOREOM_BENCH_POSTGRES_URL") or os.environ.get("STOREOM_TEST_POSTGRES_URL")
    if pg:
        metrics += single_process(pg, n // 2)
        metrics += hot_sku_contention(pg, clients=8, orders_per_client=100, hot_stock=500)
    else:
        print("PostgreSQL benchmarks skipped: set STOREOM_BENCH_POSTGRES_URL")
    return metrics
