"""Pipelines: every asset (staging, daily demand, KPI marts) materialized in-process on an imported order history.

Target (issue: analytics platform): all KPI assets for 5,000,000 order lines in < 3 minutes on 2 cores.
'small' imports 200,000 generated lines (bench_import's generator, ~75k lines/s) plus stock for 1,000 SKU x
location rows (stamped today, so the run's as-of is today) so the inventory marts have a ledger; 'large' imports 5,000,000 lines. Reports per-asset
seconds and the process's peak memory (ru_maxrss) after the run.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from datetime import date
from pathlib import Path

from bench.bench_import import generate_orders_csv
from bench.common import Metric

SIZES = {"small": 200_000, "large": 5_000_000}
TARGET_SECONDS_5M = 180.0


def run(size: str = "small") -> list[Metric]:
    import dagster as dg

    from om_core.db import Database
    from om_core.schema import upgrade
    from om_core.services.importing import import_file

    lines = SIZES.get(size, SIZES["small"])
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["STOREOM_HOME"] = str(home)
        os.environ.pop("STOREOM_DATABASE_URL", None)
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
            result = dg.materialize(list(d.assets) + list(d.asset_checks), resources=default_resources(as_of=str(date.today())), instance=instance,
                                    raise_on_error=False)
            total = time.perf_counter() - started
            step_seconds: dict[str, float] = {}
            for event in instance.all_logs(result.run_id):
                dagster_event = event.dagster_event
                if dagster_event is not None and dagster_event.event_type_value == "STEP_SUCCESS":
                    step_seconds[dagster_event.step_key] = dagster_event.event_specific_data.duration_ms / 1000
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    name = "pipelines"
    full = lines >= 5_000_000
    metrics = [
        Metric(name, f"import {lines:,} lines", import_seconds, "s"),
        Metric(name, "all assets + checks", total, "s", "< 180 at 5M",
               passed=(result.success and total < TARGET_SECONDS_5M) if full else (result.success or False) and None),
        Metric(name, "run succeeded", float(result.success), "bool", "1", passed=result.success),
        Metric(name, "peak memory (RSS)", peak_mb, "MB"),
    ]
    for step, seconds in sorted(step_seconds.items(), key=lambda kv: -kv[1]):
        metrics.append(Metric(name, f"  {step}", seconds, "s"))
    return metrics


if __name__ == "__main__":
    import sys

    from bench.common import print_table

    print_table(run(sys.argv[1] if len(sys.argv) > 1 else "small"))
