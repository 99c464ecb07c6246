"""`make bench` / `python -m bench [--scale small|large] [--only NAME]`: run the benchmarks, print the
table and write bench/results/latest.json.

The whole suite at 'small' must finish in under 15 minutes on 2 cores (issue #10); each benchmark's wall
time and the total are part of the table. 'large' is the 5-million-line / 50,000-series size.
"""

from __future__ import annotations

import argparse
import importlib
import time

from bench.common import Metric, print_table, write_results

SMALL_SUITE_SECONDS = 15 * 60

BENCHMARKS = ["bench_orders", "bench_routing", "bench_outbox", "bench_import", "bench_pipelines", "bench_simulate", "bench_api",
              "bench_dashboards", "bench_recommend", "bench_forecast"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--scale", choices=["small", "large"], default="small")
    parser.add_argument("--only", choices=BENCHMARKS, action="append")
    args = parser.parse_args()
    metrics = []
    suite_started = time.perf_counter()
    for name in args.only or BENCHMARKS:
        module = importlib.import_module(f"bench.{name}")
        started = time.perf_counter()
        metrics += module.run(args.scale)
        metrics.append(Metric("suite", f"{name} wall time", time.perf_counter() - started, "s"))
    total = time.perf_counter() - suite_started
    whole_small_suite = args.scale == "small" and not args.only
    metrics.append(Metric("suite", f"total wall time ({args.scale})", total, "s", "< 900" if whole_small_suite else "",
                          total < SMALL_SUITE_SECONDS if whole_small_suite else None))
    print_table(metrics)
    print(f"results written to {write_results(metrics, scale=args.scale)}")
    if any(m.passed is False for m in metrics):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
