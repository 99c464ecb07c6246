"""Shared benchmark plumbing: a result table (metric, value, unit, target, pass/fail) and latest.json."""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import statistics
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


@dataclass
class Metric:
    benchmark: str
    metric: str
    value: float
    unit: str
    target: str = ""
    passed: bool | None = None


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def mean(samples: list[float]) -> float:
    return statistics.fmean(samples) if samples else float("nan")


def print_table(metrics: list[Metric]) -> None:
    header = f"{'benchmark':<32} {'metric':<34} {'value':>12} {'unit':<10} {'target':<12} result"
    print(header)
    print("-" * len(header))
    for m in metrics:
        verdict = "" if m.passed is None else ("PASS" if m.passed else "FAIL")
        print(f"{m.benchmark:<32} {m.metric:<34} {m.value:>12.2f} {m.unit:<10} {m.target:<12} {verdict}")


def write_results(metrics: list[Metric], path: Path | None = None, *, scale: str = "small") -> Path:
    path = path or RESULTS / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "at": datetime.now(UTC).isoformat(),
        "scale": scale,
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "metrics": [asdict(m) for m in metrics],
    }
    path.write_text(json.dumps(payload, indent=2))
    return path


CHILD_EXIT_SECONDS = 120


def _child_main(conn: Any, fn: Callable, args: tuple) -> None:
    # A spawned child inherits 'spawn' as its default start method: statsforecast's worker pool would then start
    # fresh interpreters that import and compile everything again. The platform default is what production gets.
    multiprocessing.set_start_method(None, force=True)
    try:
        conn.send(fn(*args))
    except BaseException:  # noqa: BLE001 -- reported to the parent
        conn.send(RuntimeError(traceback.format_exc()))
    finally:
        conn.close()


def in_child(fn: Callable, *args: Any) -> Any:
    """`fn(*args)` in a fresh spawned process, so each size's memory and imports are its own (not a daemon:
    statsforecast and Dask start processes of their own). The child exits on its own once it has answered:
    no pool to terminate (a pool's SIGTERM can be swallowed by a handler the work installed, and hang)."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child_main, args=(send, fn, args))
    process.start()
    send.close()
    try:
        result = receive.recv()
    except EOFError:
        result = None
    process.join(timeout=CHILD_EXIT_SECONDS)
    if process.is_alive():  # answered, but something it started keeps it from exiting
        process.kill()
        process.join()
    if result is None:
        result = RuntimeError(f"the benchmark's child process died (exit code {process.exitcode})")
    if isinstance(result, BaseException):
        raise result
    return result
