"""History import: `storeom import orders` of a generated order-line CSV into a fresh SQLite database.

Target (issue: history importer): 500,000 lines at >= 50,000 lines/s on SQLite; importing the same
file again imports nothing (and is timed too).

The file is generated with a fixed seed: ~100k orders of 1-9 lines over two years, 5,000 SKUs,
20,000 customers, 20 stores, and about 3% return orders (negative quantities of an earlier purchase
of the same customer, in the manner of the Online Retail data's `C` invoices).
"""

from __future__ import annotations

import csv
import random
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from bench.common import Metric
from om_core.db import Database
from om_core.models import ReturnLine
from om_core.schema import upgrade

TARGET_LINES_PER_S = 50_000
SIZES = {"small": 500_000, "large": 2_000_000}
HEADER = ["order_id", "sku", "description", "quantity", "unit_price", "ordered_at", "customer_id", "location"]


def generate_orders_csv(path: Path, lines: int = 500_000, *, seed: int = 7, skus: int = 5_000, customers: int = 20_000,
                        stores: int = 20, return_rate: float = 0.03) -> dict[str, int]:
    """Write `lines` order lines to `path`; returns counts of what is in the file."""
    rng = random.Random(seed)
    prices = [f"{rng.randint(1, 99)}.{rng.choice(('00', '49', '95', '99', rng.randint(0, 99)))}" for _ in range(skus)]
    prices = [p if len(p.split(".")[1]) == 2 else p + "0" for p in prices]
    start = datetime(2023, 1, 1, 8, 0, 0)
    # roughly 100k orders spread over two years: ~7 minutes apart on average
    step_seconds = int(2 * 365 * 24 * 3600 / (lines / 5))
    purchases: dict[int, list[list]] = {}  # customer -> [[order_id, sku, open quantity]]
    written = orders = returns = returned_units = 0
    at = start
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        n = 0
        while written < lines:
            n += 1
            at += timedelta(seconds=rng.randint(1, 2 * step_seconds))
            stamp = at.strftime("%Y-%m-%d %H:%M:%S")
            customer = rng.randint(1, customers)
            store = f"ST{rng.randint(1, stores):02d}"
            bought = purchases.get(customer)
            if bought and rng.random() < return_rate:
                open_lines = [p for p in bought if p[2] > 0]
                if open_lines:
                    p = rng.choice(open_lines)
                    qty = rng.randint(1, p[2])
                    p[2] -= qty
                    sku = p[1]
                    out.writerow([f"C{n}", f"SKU{sku:05d}", f"Product {sku}", -qty, prices[sku], stamp, f"CU{customer}", store])
                    written += 1
                    returns += 1
                    returned_units += qty
                    continue
            orders += 1
            chosen = rng.sample(range(skus), rng.randint(1, 9))
            for sku in chosen:
                if written >= lines:
                    break
                qty = rng.randint(1, 5)
                out.writerow([str(n), f"SKU{sku:05d}", f"Product {sku}", qty, prices[sku], stamp, f"CU{customer}", store])
                written += 1
                purchases.setdefault(customer, []).append([n, sku, qty])
            if len(purchases[customer]) > 40:
                del purchases[customer][:20]
    return {"lines": written, "orders": orders, "return_lines": returns, "returned_units": returned_units}


def run(size: str = "small") -> list[Metric]:
    from om_core.services.importing import import_file

    lines = SIZES.get(size, SIZES["small"])
    name = f"history import {lines // 1000}k (sqlite)"
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        source = workdir / "orders.csv"
        counts = generate_orders_csv(source, lines)
        url = f"sqlite:///{workdir / 'bench.db'}"
        upgrade(url)
        db = Database(url)
        try:
            start = time.perf_counter()
            first = import_file(db, "orders", source)
            elapsed = time.perf_counter() - start
            start = time.perf_counter()
            again = import_file(db, "orders", source)
            reimport = time.perf_counter() - start
            with db.read() as s:
                returned_units = int(s.scalar(select(func.coalesce(func.sum(ReturnLine.quantity), 0))))
        finally:
            db.dispose()
    rate = lines / elapsed
    # A negative line returns units of the customer's most recent purchases of the SKU: one return line per
    # purchase it reaches, so return lines can outnumber the file's negative lines; the units must match.
    complete = (first.rejected == 0 and first.lines == lines - counts["return_lines"] and returned_units == counts["returned_units"]
                and first.returns >= counts["return_lines"] and first.imported == counts["orders"])
    nothing_twice = again.imported == 0 and again.lines == 0 and again.returns == 0 and again.duplicates == first.imported
    return [
        Metric(name, "import throughput", rate, "lines/s", f">= {TARGET_LINES_PER_S}", rate >= TARGET_LINES_PER_S and complete),
        Metric(name, "import time", elapsed, "s"),
        Metric(name, "orders imported", first.imported, "orders", f"= {counts['orders']}", first.imported == counts["orders"]),
        Metric(name, "return lines recorded", first.returns, "lines", f">= {counts['return_lines']}", first.returns >= counts["return_lines"]),
        Metric(name, "units returned", returned_units, "units", f"= {counts['returned_units']}", returned_units == counts["returned_units"]),
        Metric(name, "re-import time (nothing new)", reimport, "s", "0 imported", nothing_twice),
    ]
