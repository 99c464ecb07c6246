"""Shared benchmark plumbing: a result table (metric, value, unit, target, pass/fail) and latest.json."""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

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
