"""`POST /v1/orders` through uvicorn on loopback: 8 concurrent clients against a fresh SQLite store.

The server runs `storeom serve` in a subprocess (one worker by default, STOREOM_BENCH_API_WORKERS for more:
on SQLite a second process adds little throughput and a worse tail, since writers wait on each other in
SQLite's busy loop instead of the in-process lock). Each client
keeps one HTTP connection and places 3-line orders with its own Idempotency-Keys; a share of the orders
also wants one unit of a hot SKU with little stock, so clients race for it (about 40 of them find it sold out). Reported: placed orders per
second, latency p50/p99 of every request, and oversell (units of any SKU promised beyond its stock,
which must be zero) checked in the database afterwards. The server's CPU time per request, the core's CPU
time per order (place_order alone, in this process, just before) and the load average are reported too: on
a shared machine they tell a slower version from a busier machine, and their difference is what the HTTP
layer (uvicorn, FastAPI, the thread hop, JSON) costs per request.

Target (issue #9): >= 200 orders/s on SQLite with zero oversell.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from bench.bench_orders import _request, build_bench_store, fresh_database
from bench.common import Metric, percentile
from om_core.models import Reservation, Stock
from om_core.services.apikeys import create_api_key
from om_core.services.inventory import verify_ledger

CLIENTS = 8
HOT_STOCK = 150
HOT_SHARE = 0.08


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(base: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"storeom serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("storeom serve did not become healthy")


def _client(base: str, key: str, requests: list[dict], results: list[tuple[int, float]], start: threading.Barrier, worker: int) -> None:
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as client:
        start.wait()
        for i, body in enumerate(requests):
            t0 = time.perf_counter()
            r = client.post("/v1/orders", json=body, headers={"Idempotency-Key": f"bench-{worker}-{i}"})
            results.append((r.status_code, time.perf_counter() - t0))


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), or None where that cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _core_alone(db, n: int = 300) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """The core's place_order in this process, one at a time, at the same moment: the yardstick for the
    API's own overhead on a machine whose speed varies with what else runs on it. Orders per second and
    CPU milliseconds per order."""
    from om_core.services.orders import place_order

    rng = random.Random(3)
    for _ in range(20):  # warm-up: the first ZIP-code look-up loads the offline ZIP database (~0.7 s)
        with db.transaction() as s:
            place_order(s, _request(rng, hot=False))
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        with db.transaction() as s:
            place_order(s, _request(rng, hot=False))
    return n / (time.perf_counter() - started), (time.process_time() - cpu) / n * 1000


def run_once(n: int, workers: int) -> list[Metric]:
    name = f"bench_api[{workers}w]"
    with tempfile.TemporaryDirectory() as tmp:
        db = fresh_database(None, Path(tmp))
        build_bench_store(db, hot_stock=HOT_STOCK)
        with db.transaction() as s:
            key = create_api_key(s, {"role": "channel", "channel": "web", "name": "bench"})[1]
        core_rate, core_cpu = _core_alone(db)
        port = _free_port()
        env = {**os.environ, "STOREOM_HOME": tmp, "STOREOM_DATABASE_URL": f"sqlite:///{Path(tmp) / 'bench.db'}",
               "STOREOM_API_RATE": "0", "STOREOM_API_ACCESS_LOG": "0"}
        server = subprocess.Popen([sys.executable, "-m", "om_core.cli", "serve", "--port", str(port), "--workers", str(workers),
                                   "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(base, server)
            rng = random.Random(7)
            per_client = [[_request(rng, hot=rng.random() < HOT_SHARE) for _ in range(n // CLIENTS)] for _ in range(CLIENTS)]
            warm: list[tuple[int, float]] = []
            _client(base, key, [_request(rng, hot=False) for _ in range(20)], warm, threading.Barrier(1), 99)
            results: list[tuple[int, float]] = []
            barrier = threading.Barrier(CLIENTS + 1)
            threads = [threading.Thread(target=_client, args=(base, key, per_client[w], results, barrier, w)) for w in range(CLIENTS)]
            for t in threads:
                t.start()
            cpu_before = _cpu_seconds(server.pid)
            barrier.wait()
            started = time.perf_counter()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            cpu_after = _cpu_seconds(server.pid)
            load = os.getloadavg()[0]
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        placed = sum(1 for status, _ in results if status == 201)
        refused = sum(1 for status, _ in results if status == 409)
        errors = len(results) - placed - refused
        latencies = [t * 1000 for _, t in results]
        with db.read() as s:
            reserved = dict(s.execute(select(Reservation.stock_id, func.sum(Reservation.quantity))
                                      .where(Reservation.status == "active").group_by(Reservation.stock_id)).all())
            on_hand = dict(s.execute(select(Stock.id, Stock.on_hand)).all())
            oversold = sum(max(0, int(q) - on_hand[sid]) for sid, q in reserved.items())
            ledger_problems = len(verify_ledger(s))
        db.dispose()
    rate = placed / elapsed
    per_request = None if cpu_before is None or cpu_after is None or not results else (cpu_after - cpu_before) / len(results) * 1000
    server_cpu = [] if per_request is None else [
        Metric(name, "server CPU per request", per_request, "ms"),
        Metric(name, "HTTP layer CPU (server - core)", per_request - core_cpu, "ms")]
    return [
        Metric(name, "orders placed /s (8 clients)", rate, "orders/s", ">= 200", rate >= 200),
        Metric(name, "requests /s", len(results) / elapsed, "req/s"),
        Metric(name, "core place_order alone, 1 thread", core_rate, "orders/s"),
        Metric(name, "core CPU per order", core_cpu, "ms"),
        *server_cpu,
        Metric(name, "load average (1 min) at the end", load, "runnable"),
        Metric(name, "latency p50", percentile(latencies, 50), "ms"),
        Metric(name, "latency p99", percentile(latencies, 99), "ms"),
        Metric(name, "refused: hot SKU sold out (409)", refused, "requests"),
        Metric(name, "other errors", errors, "requests", "0", errors == 0),
        Metric(name, "oversold units", oversold + ledger_problems, "units", "0", oversold == 0 and ledger_problems == 0),
    ]


def run(scale: str = "small") -> list[Metric]:
    n = 2_400 if scale == "small" else 12_000
    workers = int(os.environ.get("STOREOM_BENCH_API_WORKERS", "1"))
    return run_once(n, workers)


if __name__ == "__main__":
    from bench.common import print_table

    print_table(run(sys.argv[1] if len(sys.argv) > 1 else "small"))
