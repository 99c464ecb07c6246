"""The retail simulator: the default store end to end, and order lines per second as it grows.

Targets (simulator issue): the default store (scale 1, two years ending yesterday) simulated in
< 90 s on 2 cores. Throughput is reported in order lines per second, end to end (world set-up
included) and for the day loop alone, at scale 1, at scale 10 and, with `--scale large`, at the
size of five million order lines (memory < 8 GB). The small run simulates scale 10 over a shorter
window. The default store's size (SKUs, customers, order lines) and time per phase (the simulator's
own timings: orders, overnight receipts, after-sales, ...) show what was built and where the time goes.
Peak memory is the process's resident high-water mark after each run (runs go smallest first, so
the last one's is its own).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import Metric
from om_core.db import Database
from om_core.schema import upgrade
from om_core.simulator.config import SimulationConfig
from om_core.simulator.run import SimulationReport, simulate

DEFAULT_TARGET_SECONDS = 90.0
SCALE10_SMALL_DAYS = 30
LARGE_LINES = 5_000_000


def simulate_into_fresh_sqlite(config: SimulationConfig) -> SimulationReport:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'sim.db'}"
        upgrade(url)
        db = Database(url)
        try:
            return simulate(db, config, progress=False)
        finally:
            db.dispose()


MEMORY_LIMIT_GB = 8.0


def _peak_memory_gb() -> float:
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**3 if sys.platform == "darwin" else peak / 1024**2  # bytes on macOS, KiB on Linux


def _throughput(name: str, label: str, report: SimulationReport, *, memory_target: bool = False,
                lines_target: int | None = None) -> list[Metric]:
    loop = max(report.seconds - report.setup_seconds, 1e-9)
    peak = _peak_memory_gb()
    return [
        Metric(name, f"order lines ({label})", float(report.order_lines), "lines", f">= {lines_target}" if lines_target else "",
               report.order_lines >= lines_target if lines_target else None),
        Metric(name, f"wall time ({label})", report.seconds, "s"),
        Metric(name, f"order lines/s end to end ({label})", report.lines_per_second, "lines/s"),
        Metric(name, f"order lines/s day loop ({label})", report.order_lines / loop, "lines/s"),
        Metric(name, f"peak memory ({label})", peak, "GB", f"< {MEMORY_LIMIT_GB:.0f}" if memory_target else "",
               peak < MEMORY_LIMIT_GB if memory_target else None),
    ]


def run(size: str) -> list[Metric]:
    metrics: list[Metric] = []
    default = simulate_into_fresh_sqlite(SimulationConfig(seed=7))
    metrics.append(Metric("simulate default store", f"wall time (scale 1, {default.days} days)", default.seconds, "s",
                          f"< {DEFAULT_TARGET_SECONDS:.0f}", default.seconds < DEFAULT_TARGET_SECONDS))
    metrics += [Metric("simulate default store", what, float(n), unit) for what, n, unit in (
        ("SKUs", default.skus, "SKUs"), ("customers", default.customers, "customers"), ("orders", default.orders, "orders"))]
    metrics += [Metric("simulate default store", f"time in {phase}", seconds, "s") for phase, seconds in sorted(default.timings.items())]
    metrics += _throughput("simulate scale 1", "scale 1", default)
    if size == "large":
        ten = simulate_into_fresh_sqlite(SimulationConfig(seed=7, scale=10))
        metrics += _throughput("simulate scale 10", f"scale 10, {ten.days} days", ten)
        big = simulate_into_fresh_sqlite(SimulationConfig(seed=7, lines_target=LARGE_LINES))
        metrics += _throughput("simulate 5M lines", f"scale {big.scale:g}, {big.days} days", big, memory_target=True,
                               lines_target=LARGE_LINES)
    else:
        ten = simulate_into_fresh_sqlite(SimulationConfig(seed=7, days=SCALE10_SMALL_DAYS, scale=10))
        metrics += _throughput("simulate scale 10", f"scale 10, {ten.days} days", ten)
    return metrics


if __name__ == "__main__":  # python -m bench.bench_simulate [small|large]
    import sys

    from bench.common import print_table

    print_table(run(sys.argv[1] if len(sys.argv) > 1 else "small"))
