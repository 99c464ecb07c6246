"""Synthetic daily demand with a known truth, for tests and benchmarks: a catalogue mix of fast, slow and
intermittent SKUs with weekly and yearly seasonality, trend, and optional stockout spells."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

WEEKLY = np.array([0.85, 0.8, 0.85, 0.95, 1.1, 1.35, 1.1])
BLOCK_CELLS = 4_000_000
"""Series x days computed at a time: the temporaries of the mean stay a few tens of MB at any size."""


def synthetic_demand(n_series: int, days: int, end: date, *, seed: int = 0, locations: int = 4,
                     stockout_share: float = 0.0) -> pd.DataFrame:
    """`sku, location, ds, sold, censored, truth` for `n_series` series of `days` days ending at `end`.
    Daily means are gamma-distributed across series (a long tail of slow movers), demand is negative
    binomial around them; `truth` is the expected demand. With `stockout_share`, that share of series get
    stockout spells: sales drop to zero (censored) for 3-20 days, a few times a year.

    Built a block of series at a time, drawing from one generator in the same order as a single pass (so a
    seed gives the same frame at any block size); rows of one series share their sku and location strings."""
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    ds = pd.date_range(end=pd.Timestamp(end), periods=days, freq="D")
    dow = ds.dayofweek.to_numpy()
    doy = ds.dayofyear.to_numpy()
    level = rng.gamma(0.6, 2.5, n_series) + 0.02
    trend = rng.normal(0, 0.3, n_series) / days
    yearly_amp = rng.uniform(0, 0.35, n_series)
    phase = rng.uniform(0, 2 * np.pi, n_series)
    weekly_strength = rng.uniform(0.3, 1.0, n_series)
    step = max(1, BLOCK_CELLS // max(days, 1))
    blocks = [slice(a, min(a + step, n_series)) for a in range(0, n_series, step)]
    mean = np.empty((n_series, days))
    for b in blocks:
        mean[b] = (level[b, None] * (1 + trend[b, None] * t[None, :])
                   * (1 + yearly_amp[b, None] * np.sin(2 * np.pi * doy[None, :] / 365.25 + phase[b, None]))
                   * (1 + weekly_strength[b, None] * (WEEKLY[dow][None, :] - 1)))
        np.clip(mean[b], 0.0, None, out=mean[b])
    dispersion = 2.0
    sold = np.empty((n_series, days))
    for b in blocks:  # every gamma draw comes before the first Poisson draw, as in one pass
        sold[b] = rng.gamma(dispersion, mean[b] / dispersion)
    for b in blocks:
        sold[b] = rng.poisson(sold[b])
    censored = np.zeros_like(sold, dtype=bool)
    if stockout_share > 0:
        hit = rng.random(n_series) < stockout_share
        for i in np.flatnonzero(hit):
            for _ in range(max(1, days // 120)):
                start = rng.integers(0, days - 3)
                censored[i, start:start + rng.integers(3, 21)] = True
        sold[censored] = 0.0
    sku = np.array([f"SKU-{i // locations:05d}" for i in range(n_series)], dtype=object)
    loc = np.array([f"L{i % locations:02d}" for i in range(n_series)], dtype=object)
    return pd.DataFrame({
        "sku": np.repeat(sku, days), "location": np.repeat(loc, days), "ds": np.tile(ds.to_numpy(), n_series),
        "sold": sold.ravel(), "censored": censored.ravel(), "truth": mean.ravel(),
    }, copy=False)  # fresh arrays: no copy to consolidate them
