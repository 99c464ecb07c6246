"""Forecasting: 10,000 daily series of 2 years (issue: forecasting and reorder suggestions).

Target: the whole forecast (model selection by cross-validation, intervals, SKU totals) in < 3 minutes on
2 cores, with a holdout MASE no worse than the better of statsforecast's AutoETS and SeasonalNaive on the
same series, and no slower than AutoETS alone.

The series come from `forecasting.synthetic` (negative-binomial demand around a seasonal mean, a long
tail of slow movers). Each is generated 28 days longer than the history the forecast sees; those last
28 days are the holdout, never seen by any model. MASE is the mean over series of MAE / in-sample
seasonal-naive MAE.

AutoETS (season 7, model ZZZ: statsforecast's automatic choice) costs ~0.2 s per series, so 'small'
times it on a random 1,000-series sample and extrapolates linearly to all series (reported as such);
'large' (50,000 series for the forecast) does the same on 2,000 series.

Dask (issue #10): the same forecast of N series (small 1,000, large 50,000) in a single process (n_jobs=1)
and with its fits on a 2-worker `distributed.LocalCluster` (worker processes, one thread each; cluster
start-up not timed), and whether the two forecasts are identical.
"""

from __future__ import annotations

import os
import resource
import time
import warnings
from datetime import date, timedelta

import pandas as pd

from bench.common import Metric

SIZES = {"small": (10_000, 1_000), "large": (50_000, 2_000)}
DASK_SERIES = {"small": 1_000, "large": 50_000}
DAYS = 730
HORIZON = 28
TARGET_SECONDS = 180.0


def _mase(test: pd.DataFrame, forecast: pd.Series, scales: pd.Series) -> float:
    err = (forecast - test["sold"]).abs().groupby(test["unique_id"]).mean()
    return float((err / scales.reindex(err.index)).mean())


def run(size: str = "small") -> list[Metric]:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, SeasonalNaive

    from forecasting.engine import ForecastConfig, forecast_demand
    from forecasting.metrics import naive_scales
    from forecasting.series import series_id
    from forecasting.synthetic import synthetic_demand

    n_series, ets_sample = SIZES.get(size, SIZES["small"])
    end = date(2026, 10, 31)
    as_of = end - timedelta(days=HORIZON)
    data = synthetic_demand(n_series, DAYS + HORIZON, end, seed=42)
    data["unique_id"] = series_id(data["sku"], data["location"])
    train = data[data["ds"] <= pd.Timestamp(as_of)]
    test = data[data["ds"] > pd.Timestamp(as_of)]
    scales = naive_scales(train.rename(columns={"sold": "y"})).set_index("unique_id")["mae_scale"]
    n_jobs = os.cpu_count() or 1

    started = time.perf_counter()
    result = forecast_demand(train[["sku", "location", "ds", "sold", "censored"]], as_of, config=ForecastConfig(n_jobs=n_jobs))
    seconds = time.perf_counter() - started
    fc = result.forecast[result.forecast["location"] != "ALL"]
    fc = fc.assign(unique_id=series_id(fc["sku"], fc["location"]))
    ours = test.merge(fc[["unique_id", "ds", "forecast"]], on=["unique_id", "ds"], how="left")
    mase_ours_all = _mase(ours, ours["forecast"].fillna(0), scales)

    sample = pd.Series(train["unique_id"].unique()).sample(ets_sample, random_state=0)
    tr_s = train[train["unique_id"].isin(sample)].rename(columns={"sold": "y"})[["unique_id", "ds", "y"]]
    te_s = test[test["unique_id"].isin(sample)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        ets = StatsForecast(models=[AutoETS(season_length=7)], freq="D", n_jobs=n_jobs).forecast(h=HORIZON, df=tr_s, level=[80, 95])
        ets_seconds = (time.perf_counter() - started) * n_series / ets_sample
        naive = StatsForecast(models=[SeasonalNaive(season_length=7)], freq="D").forecast(h=HORIZON, df=tr_s)
    te_s = te_s.merge(ets[["unique_id", "ds", "AutoETS"]], on=["unique_id", "ds"]).merge(
        naive[["unique_id", "ds", "SeasonalNaive"]], on=["unique_id", "ds"]).merge(fc[["unique_id", "ds", "forecast"]], on=["unique_id", "ds"])
    mase_ours = _mase(te_s, te_s["forecast"], scales)
    mase_ets = _mase(te_s, te_s["AutoETS"].clip(lower=0), scales)
    mase_naive = _mase(te_s, te_s["SeasonalNaive"], scales)
    best = min(mase_ets, mase_naive)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    cover = test.merge(fc[["unique_id", "ds", "lo_80", "hi_80", "lo_95", "hi_95"]], on=["unique_id", "ds"])
    metrics = [
        Metric("forecast", "series", n_series, "series"),
        Metric("forecast", "forecast seconds (select+intervals)", seconds, "s", f"< {TARGET_SECONDS:.0f}", seconds < TARGET_SECONDS),
        Metric("forecast", "series per second", n_series / seconds, "series/s"),
        Metric("forecast", "AutoETS alone, seconds (extrapolated)", ets_seconds, "s", "ours faster", seconds <= ets_seconds),
        Metric("forecast", "holdout MASE, ours (all series)", mase_ours_all, ""),
        Metric("forecast", f"holdout MASE, ours ({ets_sample} sample)", mase_ours, "", f"<= {best:.3f}", mase_ours <= best),
        Metric("forecast", f"holdout MASE, AutoETS ({ets_sample} sample)", mase_ets, ""),
        Metric("forecast", f"holdout MASE, SeasonalNaive ({ets_sample})", mase_naive, ""),
        Metric("forecast", "peak memory", peak_gb, "GB"),
    ]
    if len(cover):
        for level in (80, 95):
            within = ((cover["sold"] >= cover[f"lo_{level}"]) & (cover["sold"] <= cover[f"hi_{level}"])).mean()
            metrics.append(Metric("forecast", f"holdout coverage of the {level}% band", 100 * float(within), "%"))
    return metrics + dask_comparison(DASK_SERIES.get(size, DASK_SERIES["small"]), end - timedelta(days=HORIZON))


def _timed(runner, seconds: list[float]):  # type: ignore[no-untyped-def]
    """`runner`, adding each call's wall time to `seconds`."""
    def run(sf, method, df, kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return runner(sf, method, df, kwargs)
        finally:
            seconds.append(time.perf_counter() - started)
    return run


def dask_comparison(n_series: int, as_of: date) -> list[Metric]:
    """The forecast of `n_series` series in one process vs with its statsforecast fits on a 2-worker LocalCluster.
    The fits are what the cluster runs; the rest (scoring, composing, intervals, totals) stays in the caller."""
    import logging

    from distributed import Client, LocalCluster

    from forecasting.distributed import dask_runner
    from forecasting.engine import ForecastConfig, forecast_demand, run_here
    from forecasting.synthetic import synthetic_demand

    config = ForecastConfig(n_jobs=1)
    history = synthetic_demand(n_series, DAYS, as_of, seed=7, stockout_share=0.1)[["sku", "location", "ds", "sold", "censored"]]
    warm_up = history[history["sku"].isin(history["sku"].drop_duplicates().head(20))]  # numba compiles once per process
    forecast_demand(warm_up, as_of, config=config)
    fits_here: list[float] = []
    started = time.perf_counter()
    here = forecast_demand(history, as_of, config=config, runner=_timed(run_here, fits_here))
    single = time.perf_counter() - started
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            Client(cluster, set_as_default=False) as client:
        client.run(forecast_demand, warm_up, as_of, config=config)  # on every worker
        fits_there: list[float] = []
        started = time.perf_counter()
        there = forecast_demand(history, as_of, config=config, runner=_timed(dask_runner(client), fits_there))
        on_dask = time.perf_counter() - started
    same = all(getattr(here, f).equals(getattr(there, f)) for f in ("forecast", "backtest", "uncertainty"))
    return [
        Metric("forecast_dask", "series", n_series, "series"),
        Metric("forecast_dask", "single process (n_jobs=1) seconds", single, "s"),
        Metric("forecast_dask", "2-worker LocalCluster seconds", on_dask, "s"),
        Metric("forecast_dask", "speed-up, whole forecast", single / on_dask, "x"),
        Metric("forecast_dask", "fits, single process seconds", sum(fits_here), "s"),
        Metric("forecast_dask", "fits, LocalCluster seconds", sum(fits_there), "s"),
        Metric("forecast_dask", "speed-up, fits", sum(fits_here) / sum(fits_there) if sum(fits_there) else float("nan"), "x"),
        Metric("forecast_dask", "same forecast, backtest, uncertainty", float(same), "", "= 1", same),
    ]
