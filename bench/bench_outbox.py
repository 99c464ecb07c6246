"""Outbox dispatch: 10,000 enqueued messages delivered to .eml files.

Target: < 30 s on 2 cores (SQLite, FileTransport). Enqueueing (rendering) is set-up, not timed.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import Metric
from om_core.db import Database
from om_core.schema import upgrade
from om_core.services.notifications import FileTransport, dispatch, enqueue

MESSAGES = 10_000


def _context(i: int) -> dict:
    return {
        "order_number": f"SO-BENCH{i:06d}", "first_name": f"Customer{i % 100}", "currency": "USD",
        "lines": [{"sku": f"SKU{(i + k) % 500:05d}", "name": f"Item {(i + k) % 500}", "quantity": 1 + k} for k in range(3)],
        "subtotal": "59.97", "discount_total": "0.00", "shipping_total": "4.95", "tax_total": "4.20", "total": "69.12",
        "delivery_method": "ship",
    }


def run(size: str = "small") -> list[Metric]:
    n = MESSAGES  # the target is about 10,000 messages at either scale
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'outbox.db'}"
        upgrade(url)
        db = Database(url)
        with db.transaction() as s:
            for i in range(n):
                enqueue(s, "order_confirmed", recipient=f"c{i}@example.com", context=_context(i), dedupe_key=f"order_confirmed:bench-{i}")
        out = Path(tmp) / "outbox"
        start = time.perf_counter()
        report = dispatch(db, transport=FileTransport(out), limit=n)
        elapsed = time.perf_counter() - start
        files = sum(1 for _ in out.glob("*.eml"))
        db.dispose()
    ok = report.sent == n and files == n and report.failed == 0 and report.dead == 0
    name = "outbox dispatch (sqlite)"
    return [
        Metric(name, "dispatch 10,000 messages to files", elapsed, "s", "< 30", ok and elapsed < 30),
        Metric(name, "throughput", n / elapsed, "msg/s"),
        Metric(name, "files written", files, "files", f"= {n}", files == n),
    ]


if __name__ == "__main__":
    from bench.common import print_table

    print_table(run())
