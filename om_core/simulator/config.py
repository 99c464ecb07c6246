"""What to simulate: the period, the seed and the size of the retailer.

`scale` 1 is the default store (2 warehouses, 8 stores, ~1,500 SKUs, ~30,000 customers, two years of
orders). Order volume and customers grow linearly with `scale`; the catalogue grows sub-linearly
(a retailer ten times the size does not sell ten times as many different things). `lines_target`
is the other way to size a run: the scale is chosen so the period holds at least about that many order lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

DEFAULT_DAYS = 730
BASE_SKUS = 1500
BASE_CUSTOMERS = 30_000
BASE_LINES_PER_DAY = 120.0
"""Demand-driven order lines per day at scale 1, on average over the period (baskets add a few
co-purchased lines on top, stockouts take some away)."""
NET_LINE_SHARE = 0.94
"""Order lines recorded per demand-driven line, net of both: 94.9 %, 95.4 % and 95.5 % at scale 1, 10 and 57
over two years. `lines_target` divides by it (rounded down, so that a run reaches its target)."""
SKU_EXPONENT = 0.5
MIN_SKUS = 120
MIN_CUSTOMERS = 300


def yesterday_utc(today: date | None = None) -> date:
    return (today or datetime.now(UTC).date()) - timedelta(days=1)


@dataclass(frozen=True)
class SimulationConfig:
    """A reproducible simulation: the same config (seed included) gives the same history.

    `start`/`end` are UTC calendar days, both included. By default the period is the two years
    (730 days) ending yesterday; `days` sets the length instead when `start` is not given.
    """

    seed: int = 7
    start: date | None = None
    end: date | None = None
    days: int | None = None
    scale: float = 1.0
    lines_target: int | None = None
    batch_orders: int = 4000
    """At most this many orders per call into the core (one call per simulated day otherwise)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Tuning knobs for experiments and tests (see run.py: e.g. `{"feedback_rate": 0.2}`)."""

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ValueError("scale must be positive")
        if self.days is not None and self.days < 1:
            raise ValueError("days must be at least 1")
        if self.lines_target is not None and self.lines_target < 1:
            raise ValueError("lines_target must be at least 1")
        if self.start and self.end and self.end < self.start:
            raise ValueError("end must not be before start")

    # --- the period ------------------------------------------------------------------------

    @property
    def end_date(self) -> date:
        if self.end is not None:
            return self.end
        if self.start is not None and self.days is not None:
            return self.start + timedelta(days=self.days - 1)
        return yesterday_utc()

    @property
    def start_date(self) -> date:
        if self.start is not None:
            return self.start
        return self.end_date - timedelta(days=(self.days or DEFAULT_DAYS) - 1)

    @property
    def n_days(self) -> int:
        return (self.end_date - self.start_date).days + 1

    def resolved(self) -> SimulationConfig:
        """The same config with the period pinned down (so "yesterday" does not move during a run)
        and `lines_target` turned into a scale."""
        pinned = replace(self, start=self.start_date, end=self.end_date, days=None)
        if self.lines_target is not None:
            per_scale = BASE_LINES_PER_DAY * NET_LINE_SHARE * pinned.n_days
            pinned = replace(pinned, scale=max(self.lines_target / per_scale, 1e-3), lines_target=None)
        return pinned

    # --- the size -----------------------------------------------------------------------------

    @property
    def n_skus(self) -> int:
        return max(MIN_SKUS, int(round(BASE_SKUS * self.scale ** SKU_EXPONENT)))

    @property
    def n_customers(self) -> int:
        return max(MIN_CUSTOMERS, int(round(BASE_CUSTOMERS * self.scale)))

    @property
    def lines_per_day(self) -> float:
        return BASE_LINES_PER_DAY * self.scale

    def knob(self, name: str, default: Any) -> Any:
        return self.extra.get(name, default)

