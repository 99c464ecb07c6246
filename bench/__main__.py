"""`make bench` / `python -m bench [--scale small|large] [--only NAME]`: run the benchmarks, print the
table and write bench/results/latest.json."""

from __future__ import annotations

import argparse
import importlib

from bench.common import print_table, write_results

BENCHMARKS = ["bench_orders", "bench_routing", "bench_outbox", "bench_import", "bench_pipelines", "bench_simulate", "bench_api",
              "bench_dashboards", "bench_recommend", "bench_forecast"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--scale", choices=["small", "large"], default="small")
    parser.add_argument("--only", choices=BENCHMARKS, action="append")
    args = parser.parse_args()
    metrics = []
    for name in args.only or BENCHMARKS:
        module = importlib.import_module(f"bench.{name}")
        metrics += module.run(args.scale)
    print_table(metrics)
    print(f"results written to {write_results(metrics)}")
    if any(m.passed is False for m in metrics):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
