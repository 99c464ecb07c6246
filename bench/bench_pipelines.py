"""KPI pipelines: staging, daily demand and every KPI mart materialized in-process on an imported order history,
at several sizes, to show how the cost grows.

Target (issue: analytics platform): all KPI assets for 5,000,000 order lines in < 3 minutes on 2 cores; the
scaling issue (#10) adds that the cost grows about linearly with the lines (the fitted log-log slope of time
against lines stays <= 1.2) and that memory stays under 8 GB at 5M lines.

Each size runs in a fresh child process (so its peak RSS is its own) on a fresh SQLite database: the order lines
are generated (bench_import's generator) and imported, plus stock for 1,000 SKU x location rows stamped today
(so the run's as-of is today and the inventory marts have a ledger). 'small' runs 100,000 and 200,000 lines,
'large' 500,000, 1,000,000 and 5,000,000. The forecasting and recommendation assets have their own benchmarks.
"""

from __future__ import annotations

import math
import os
import resource
import tempfile
import time
from datetime import date
from pathlib import Path

from bench.common import Metric, in_child

SIZES = {"small": [100_000, 200_000], "large": [500_000, 1_000_000, 5_000_000]}
GROUPS = ("staging", "demand", "kpis")
TARGET_SECONDS_5M = 180.0
TARGET_SLOPE = 1.2
MEMORY_LIMIT_MB = 8 * 1024


def measure(lines: int) -> dict:
    """Import `lines` generated order lines into a fresh home and materialize the KPI groups; runs in a child."""
    import dagster as dg

    from bench.bench_import import generate_orders_csv
    from om_core.db import Database
    from om_core.schema import upgrade
    from om_core.services.importing import import_file

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["STOREOM_HOME"] = str(home)
        os.environ.pop("STOREOM_DATABASE_URL", None)
        os.environ.pop("STOREOM_WAREHOUSE_URL", None)
        url = f"sqlite:///{home / 'storeom.db'}"
        upgrade(url)
        db = Database(url)
        csv_path = home / "orders.csv"
        generate_orders_csv(csv_path, lines)
        started = time.perf_counter()
        import_file(db, "orders", csv_path)
        stock = home / "stock.csv"
        stock.write_text("sku,location,quantity\n" + "".join(f"SKU{s:05d},ST{l:02d},{(s * 7 + l) % 40}\n"
                                                              for s in range(100) for l in range(1, 11)))
        import_file(db, "stock", stock)
        import_seconds = time.perf_counter() - started
        db.dispose()

        from pipelines.definitions import defs
        from pipelines.resources import default_resources

        d = defs()
        with dg.instance_for_test() as instance:
            started = time.perf_counter()
            result = dg.materialize(list(d.assets) + list(d.asset_checks), selection=dg.AssetSelection.groups(*GROUPS),
                                    resources=default_resources(as_of=str(date.today())), instance=instance, raise_on_error=False)
            total = time.perf_counter() - started
            steps: dict[str, float] = {}
            for event in instance.all_logs(result.run_id):
                dagster_event = event.dagster_event
                if dagster_event is not None and dagster_event.event_type_value == "STEP_SUCCESS":
                    steps[dagster_event.step_key] = dagster_event.event_specific_data.duration_ms / 1000
    return {"lines": lines, "import_seconds": import_seconds, "seconds": total, "success": bool(result.success),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "steps": steps}


def loglog_slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(y) on log(x): 1 is linear growth, 2 quadratic."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum((a - mx) ** 2 for a in lx)


def run(size: str = "small") -> list[Metric]:
    sizes = SIZES.get(size, SIZES["small"])
    runs = []
    for lines in sizes:
        runs.append(in_child(measure, lines))
    name = "KPI pipelines"
    metrics: list[Metric] = []
    for r in runs:
        label = f"{r['lines']:,} lines"
        at_5m = r["lines"] >= 5_000_000
        metrics += [
            Metric(name, f"import ({label})", r["import_seconds"], "s"),
            Metric(name, f"KPI assets + checks ({label})", r["seconds"], "s", "< 180" if at_5m else "",
                   (r["success"] and r["seconds"] < TARGET_SECONDS_5M) if at_5m else None),
            Metric(name, f"run succeeded ({label})", float(r["success"]), "bool", "1", r["success"]),
            Metric(name, f"peak memory ({label})", r["peak_mb"], "MB", "< 8192" if at_5m else "",
                   r["peak_mb"] < MEMORY_LIMIT_MB if at_5m else None),
            Metric(name, f"lines per second ({label})", r["lines"] / r["seconds"], "lines/s"),
        ]
    slope = loglog_slope([r["lines"] for r in runs], [r["seconds"] for r in runs])
    metrics.append(Metric(name, "time vs lines, log-log slope", slope, "", f"<= {TARGET_SLOPE}", slope <= TARGET_SLOPE))
    largest = runs[-1]
    for step, seconds in sorted(largest["steps"].items(), key=lambda kv: -kv[1])[:12]:
        metrics.append(Metric(name, f"  {step} ({largest['lines']:,})", seconds, "s"))
    return metrics


if __name__ == "__main__":
    import sys

    from bench.common import print_table

    print_table(run(sys.argv[1] if len(sys.argv) > 1 else "small"))
