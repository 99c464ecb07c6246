"""The forecast's statsforecast fits on a Dask cluster: `forecast_demand(..., runner=dask_runner(client))`.

The series of one call are cut into blocks of whole series (sorted by id, as statsforecast sorts them),
each block is fitted on a worker by the very call the in-process path makes, and the blocks' results are
concatenated in order. Every series is fitted on its own, so the numbers and their order are those of
the in-process run.

Why not statsforecast's own distributed backend (a Dask DataFrame through fugue): in statsforecast 2.1.1
it casts the series and every forecast to float32 (so forecasts and backtest scores, and with them a
close model choice, differ from the in-process run), and fugue's Dask engine fits one series per
`groupby.apply` call after a shuffle -- about 40x slower than in-process on 500 series. Whole blocks of
series keep float64 and pay the per-call cost once per block.

The workers need this repository importable (the same install as the Dagster code location).
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from statsforecast import StatsForecast

from forecasting.engine import StatsRunner, run_here

BLOCKS_PER_THREAD = 4
"""Blocks per worker thread: enough for a slow block not to leave the other workers idle."""
MIN_SERIES_PER_BLOCK = 50
"""Fewer series than this per block and the per-block overhead (a task, a statsforecast set-up) dominates."""
MIN_SERIES_ON_CLUSTER = 100
"""A call with fewer series runs in the caller: a round trip to the cluster (~30 ms) costs more than its fits."""


def series_blocks(df: pd.DataFrame, blocks: int) -> list[pd.DataFrame]:
    """`df` sorted by `unique_id` (stable, so each series keeps its day order) and cut into at most
    `blocks` frames of whole series, as even in series counts as they come."""
    ids = df["unique_id"].to_numpy()
    if len(ids) > 1 and not (ids[1:] >= ids[:-1]).all():
        df = df.sort_values("unique_id", kind="stable", ignore_index=True)
        ids = df["unique_id"].to_numpy()
    if len(ids) == 0:
        return [df]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    blocks = max(1, min(blocks, len(starts)))
    cuts = starts[np.linspace(0, len(starts), blocks + 1).astype(int)[1:-1]]
    bounds = [0, *cuts.tolist(), len(df)]
    return [df.iloc[a:b].reset_index(drop=True) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def fit_block(block: pd.DataFrame, sf: StatsForecast, method: str, kwargs: dict) -> pd.DataFrame:
    """One block on a worker: exactly the in-process call, on its own copy of `sf` (a fit keeps state on
    the object, and a worker's threads may share one deserialised copy). The ids travel as a categorical
    (a fraction of the bytes) and are turned back into the caller's strings first."""
    if isinstance(block["unique_id"].dtype, pd.CategoricalDtype):
        block = block.assign(unique_id=block["unique_id"].astype(object))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(copy.deepcopy(sf), method)(df=block, **kwargs)


def dask_runner(client: Any, *, blocks: int | None = None, min_series: int = MIN_SERIES_ON_CLUSTER) -> StatsRunner:
    """A runner for `forecast_demand` that fits on the cluster behind `client` (a `distributed.Client`).
    `blocks` defaults to BLOCKS_PER_THREAD per worker thread (at least MIN_SERIES_PER_BLOCK series each);
    calls with fewer than `min_series` series run in the caller (the same fits, so the same numbers)."""

    def run(sf: StatsForecast, method: str, df: pd.DataFrame, kwargs: dict) -> pd.DataFrame:
        n_series = df["unique_id"].nunique()
        if n_series < min_series:
            return run_here(sf, method, df, kwargs)
        wanted = blocks or BLOCKS_PER_THREAD * max(1, sum(client.nthreads().values()))
        wanted = min(wanted, max(1, math.ceil(n_series / MIN_SERIES_PER_BLOCK))) if blocks is None else wanted
        parts = [p.assign(unique_id=p["unique_id"].astype("category")) for p in series_blocks(df, wanted)]
        futures = client.map(fit_block, client.scatter(parts, hash=False), sf=sf, method=method, kwargs=kwargs, pure=False)
        return pd.concat(client.gather(futures), ignore_index=True)

    return run
