"""No oversell: concurrent placements against scarce stock reserve exactly what there is,
with real threads (SQLite and PostgreSQL) and real processes (SQLite file)."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter

from sqlalchemy import func, select

from om_core.db import Database
from om_core.errors import InsufficientStock
from om_core.models import Reservation
from om_core.services import inventory, orders
from tests.om_core.store import build_store, web_order


def active_reserved(db: Database) -> int:
    with db.read() as s:
        return s.scalar(select(func.coalesce(func.sum(Reservation.quantity), 0)).where(Reservation.status == "active"))


def race(db: Database, requests: list[dict], threads: int) -> Counter:
    """Fire the requests from `threads` threads at once; count outcomes."""
    outcomes: Counter = Counter()
    lock = threading.Lock()
    start = threading.Barrier(threads)
    queue = list(enumerate(requests))

    def worker() -> None:
        start.wait()
        while True:
            with lock:
                if not queue:
                    return
                i, request = queue.pop()
            try:
                with db.transaction() as s:
                    orders.place_order(s, request, idempotency_key=f"race-{i}")
                result = "placed"
            except InsufficientStock:
                result = "short"
            except Exception as exc:  # noqa: BLE001 - anything else is a failure we want to see
                result = f"error: {type(exc).__name__}: {exc}"
            with lock:
                outcomes[result] += 1

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return outcomes


def test_threads_never_oversell_a_scarce_sku(store):
    # TEE-L: 3 units, only at WH-WEST. 24 one-unit orders from 8 threads.
    outcomes = race(store, [web_order(("TEE-L", 1), ("MUG", 1)) for _ in range(24)], threads=8)
    assert outcomes == Counter({"placed": 3, "short": 21})
    assert inventory_available(store, "TEE-L") == 0
    with store.read() as s:
        assert inventory.verify_ledger(s) == []


def test_threads_with_lines_in_opposite_order_do_not_deadlock(store):
    # half the orders list MUG then BEANS, half BEANS then MUG; both SKUs are plentiful
    requests = [web_order(("MUG", 1), ("BEANS", 1)) if i % 2 else web_order(("BEANS", 1), ("MUG", 1)) for i in range(40)]
    outcomes = race(store, requests, threads=8)
    assert outcomes == Counter({"placed": 40})
    assert active_reserved(store) == 80


def test_split_allocations_under_contention_reserve_exactly_the_stock(store):
    # TEE-M: 5 at WH-EAST + 5 at WH-WEST; orders of 3 must split and only 3 can succeed (9 of 10 units)
    outcomes = race(store, [web_order(("TEE-M", 3)) for _ in range(12)], threads=6)
    assert outcomes == Counter({"placed": 3, "short": 9})
    assert active_reserved(store) == 9
    with store.read() as s:
        assert inventory.verify_ledger(s) == []


def inventory_available(db: Database, sku: str) -> int:
    with db.read() as s:
        return inventory.available_to_promise(s, sku, channel="web")["available"]


def _place_in_process(url: str, n: int, seed: int, results) -> None:  # type: ignore[no-untyped-def]
    db = Database(url)
    placed = short = 0
    for i in range(n):
        try:
            with db.transaction() as s:
                orders.place_order(s, web_order(("TEE-S", 1)), idempotency_key=f"proc-{seed}-{i}")
            placed += 1
        except InsufficientStock:
            short += 1
    db.dispose()
    results.put((placed, short))


def test_processes_never_oversell_on_sqlite(sqlite_db):
    build_store(sqlite_db)
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    # TEE-S: 10 units at WH-EAST; 4 processes x 6 orders of one unit
    procs = [ctx.Process(target=_place_in_process, args=(sqlite_db.url, 6, p, results)) for p in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    totals = [results.get(timeout=5) for _ in procs]
    assert sum(p for p, _ in totals) == 10
    assert sum(s for _, s in totals) == 14
    assert active_reserved(sqlite_db) == 10
    with sqlite_db.read() as s:
        assert inventory.verify_ledger(s) == []


def test_coupon_usage_limit_holds_under_contention(store):
    from om_core.errors import PromotionLimitReached
    from om_core.services import promotions

    with store.transaction() as s:
        promotions.create_promotion(s, {"name": "First three", "kind": "fixed", "scope": "order", "value": "5",
                                        "coupon_code": "FIRST3", "usage_limit_total": 3})
    outcomes: Counter = Counter()
    lock = threading.Lock()
    skus = ["TEE-S", "TEE-M", "MUG", "BEANS", "TEE-L", "SOFA"]  # different stock rows: only the coupon is shared
    start = threading.Barrier(len(skus))

    def worker(i: int) -> None:
        start.wait()
        for j in range(3):
            try:
                with store.transaction() as s:
                    orders.place_order(s, web_order((skus[i], 1), coupon_codes=["first3"]), idempotency_key=f"cpn-{i}-{j}")
                result = "placed"
            except PromotionLimitReached:
                result = "limit"
            with lock:
                outcomes[result] += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(len(skus))]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert outcomes == Counter({"placed": 3, "limit": 15})
