"""Forecasting: 10,000 daily series of 2 years (issue: forecasting and reorder suggestions), and at 'large' the
scaling curve at 1,000 / 10,000 / 50,000 series (issue #10).

Target: the whole forecast (model selection by cross-validation, intervals, SKU totals) in < 3 minutes on
2 cores, with a holdout MASE no worse than the better of statsforecast's AutoETS and SeasonalNaive on the
same series, and no slower than AutoETS alone. Scaling (#10): time grows about linearly with the series
(log-log slope of time vs series <= 1.15) and the 50,000-series forecast stays under 8 GB.

The series come from `forecasting.synthetic` (negative-binomial demand around a seasonal mean, a long
tail of slow movers). Each is generated 28 days longer than the history the forecast sees; those last
28 days are the holdout, never seen by any model. MASE is the mean over series of MAE / in-sample
seasonal-naive MAE.

Each size runs in a fresh child process, so its memory is its own: 'peak memory' is the most the child and
its descendants (statsforecast's forked workers, the Dask cluster) held at once -- the sum of their
proportional set sizes (shared pages split between the processes that share them), sampled every 0.1 s,
or the child's own peak RSS if that is higher -- from the start of the child to the end of the forecast.
Each child first forecasts 20 series so that numba's compilation (once per process) is not in the timings.

AutoETS (season 7, model ZZZ: statsforecast's automatic choice) costs ~0.2 s per series, so 'small'
times it on a random 1,000-series sample and extrapolates linearly to all series (reported as such);
'large' (50,000 series for the forecast) does the same on 2,000 series.

Dask (issue #10): the same forecast of N series (small 1,000, large 50,000) in a single process (n_jobs=1)
and with its fits on a 2-worker `distributed.LocalCluster` (worker processes, one thread each; cluster
start-up not timed), and whether the two forecasts are identical; at 'large' its peak memory (the cluster's
workers included) is held to the same 8 GB.
"""

from __future__ import annotations

import math
import os
import resource
import threading
import time
import warnings
from datetime import date, timedelta
from typing import Any

import pandas as pd

from bench.common import Metric, in_child

SIZES = {"small": (10_000, 1_000), "large": (50_000, 2_000)}
CURVE = {"small": [], "large": [1_000, 10_000]}
"""Sizes forecast (time and memory only) before the main one, for the scaling curve."""
DASK_SERIES = {"small": 1_000, "large": 50_000}
DAYS = 730
HORIZON = 28
END = date(2026, 10, 31)
TARGET_SECONDS = 180.0
TARGET_SLOPE = 1.15
MEMORY_LIMIT_GB = 8.0


class PeakMemory:
    """Peak memory of this process and its descendants while running: the sampled sum of their PSS, or this
    process's own peak RSS (`ru_maxrss`, exact) when that is higher."""

    def __init__(self, interval: float = 0.1) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            total = 0
            for p in [self._process, *self._process.children(recursive=True)]:
                try:
                    total += p.memory_full_info().pss
                except Exception:  # noqa: BLE001 -- a worker that just exited
                    continue
            self._peak = max(self._peak, total)
            self._stop.wait(self._interval)

    def gb(self) -> float:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return max(self._peak, own) / 1024**3

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.gb()


def _warm_up(history: pd.DataFrame, as_of: date, config: Any) -> None:
    """Forecast 20 series: numba compiles the models once per process."""
    from forecasting.engine import forecast_demand

    forecast_demand(history[history["sku"].isin(history["sku"].drop_duplicates().head(20))], as_of, config=config)


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (statsforecast's workers): on a shared machine it
    moves less with the load than the wall time does."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _mase(test: pd.DataFrame, forecast: pd.Series, scales: pd.Series) -> float:
    err = (forecast - test["sold"]).abs().groupby(test["unique_id"]).mean()
    return float((err / scales.reindex(err.index)).mean())


def measure(n_series: int, ets_sample: int) -> dict:
    """Generate `n_series` series, forecast them and score the holdout (and AutoETS on `ets_sample` series, if any).
    Runs in a child process."""
    memory = PeakMemory()
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, SeasonalNaive

    from forecasting.engine import ForecastConfig, forecast_demand
    from forecasting.metrics import naive_scales
    from forecasting.series import series_id
    from forecasting.synthetic import synthetic_demand

    as_of = END - timedelta(days=HORIZON)
    started = time.perf_counter()
    data = synthetic_demand(n_series, DAYS + HORIZON, END, seed=42)
    seen = (data["ds"] <= pd.Timestamp(as_of)).to_numpy()
    train = pd.DataFrame({c: data[c].to_numpy()[seen] for c in ("sku", "location", "ds", "sold", "censored")}, copy=False)
    test = data[~seen].drop(columns=["truth"]).reset_index(drop=True)
    del data
    train["unique_id"] = series_id(train["sku"], train["location"])
    test["unique_id"] = series_id(test["sku"], test["location"])
    scales = naive_scales(pd.DataFrame({"unique_id": train["unique_id"], "y": train["sold"]})).set_index("unique_id")["mae_scale"]
    data_seconds = time.perf_counter() - started
    config = ForecastConfig(n_jobs=os.cpu_count() or 1)
    _warm_up(train, as_of, config)

    started, cpu_started = time.perf_counter(), _cpu_seconds()
    result = forecast_demand(train, as_of, config=config)
    seconds, cpu_seconds = time.perf_counter() - started, _cpu_seconds() - cpu_started
    peak_gb = memory.stop()
    fc = result.forecast[result.forecast["location"] != "ALL"]
    fc = fc.assign(unique_id=series_id(fc["sku"], fc["location"]))
    ours = test.merge(fc[["unique_id", "ds", "forecast"]], on=["unique_id", "ds"], how="left")
    out: dict[str, Any] = {"series": n_series, "seconds": seconds, "cpu_seconds": cpu_seconds, "data_seconds": data_seconds, "peak_gb": peak_gb,
                           "mase_all": _mase(ours, ours["forecast"].fillna(0), scales)}
    cover = test.merge(fc[["unique_id", "ds", "lo_80", "hi_80", "lo_95", "hi_95"]], on=["unique_id", "ds"])
    out["coverage"] = {level: 100 * float(((cover["sold"] >= cover[f"lo_{level}"]) & (cover["sold"] <= cover[f"hi_{level}"])).mean())
                       for level in (80, 95)} if len(cover) else {}
    if not ets_sample:
        return out

    sample = pd.Series(train["unique_id"].unique()).sample(ets_sample, random_state=0)
    tr_s = train[train["unique_id"].isin(sample)].rename(columns={"sold": "y"})[["unique_id", "ds", "y"]]
    te_s = test[test["unique_id"].isin(sample)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        ets = StatsForecast(models=[AutoETS(season_length=7)], freq="D", n_jobs=config.n_jobs).forecast(h=HORIZON, df=tr_s, level=[80, 95])
        out["ets_seconds"] = (time.perf_counter() - started) * n_series / ets_sample
        naive = StatsForecast(models=[SeasonalNaive(season_length=7)], freq="D").forecast(h=HORIZON, df=tr_s)
    te_s = te_s.merge(ets[["unique_id", "ds", "AutoETS"]], on=["unique_id", "ds"]).merge(
        naive[["unique_id", "ds", "SeasonalNaive"]], on=["unique_id", "ds"]).merge(fc[["unique_id", "ds", "forecast"]], on=["unique_id", "ds"])
    out["mase_sample"] = _mase(te_s, te_s["forecast"], scales)
    out["mase_ets"] = _mase(te_s, te_s["AutoETS"].clip(lower=0), scales)
    out["mase_naive"] = _mase(te_s, te_s["SeasonalNaive"], scales)
    return out


def loglog_slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(y) on log(x): 1 is linear growth, 2 quadratic."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum((a - mx) ** 2 for a in lx)


def run(size: str = "small") -> list[Metric]:
    n_series, ets_sample = SIZES.get(size, SIZES["small"])
    curve = [in_child(measure, n, 0) for n in CURVE.get(size, [])]
    main = in_child(measure, n_series, ets_sample)
    curve.append(main)
    large = size == "large"
    seconds, best = main["seconds"], min(main["mase_ets"], main["mase_naive"])
    metrics = [
        Metric("forecast", "series", n_series, "series"),
        Metric("forecast", "forecast seconds (select+intervals)", seconds, "s", f"< {TARGET_SECONDS:.0f}" if not large else "",
               seconds < TARGET_SECONDS if not large else None),
        Metric("forecast", "series per second", n_series / seconds, "series/s"),
        Metric("forecast", "AutoETS alone, seconds (extrapolated)", main["ets_seconds"], "s", "ours faster", seconds <= main["ets_seconds"]),
        Metric("forecast", "holdout MASE, ours (all series)", main["mase_all"], ""),
        Metric("forecast", f"holdout MASE, ours ({ets_sample} sample)", main["mase_sample"], "", f"<= {best:.3f}", main["mase_sample"] <= best),
        Metric("forecast", f"holdout MASE, AutoETS ({ets_sample} sample)", main["mase_ets"], ""),
        Metric("forecast", f"holdout MASE, SeasonalNaive ({ets_sample})", main["mase_naive"], ""),
        Metric("forecast", "peak memory", main["peak_gb"], "GB", f"< {MEMORY_LIMIT_GB:.0f}" if large else "",
               main["peak_gb"] < MEMORY_LIMIT_GB if large else None),
    ]
    for level, within in main["coverage"].items():
        metrics.append(Metric("forecast", f"holdout coverage of the {level}% band", within, "%"))
    if len(curve) > 1:
        for r in curve:
            label = f"{r['series']:,} series"
            at_10k = r["series"] == SIZES["small"][0]
            metrics += [Metric("forecast scaling", f"forecast seconds ({label})", r["seconds"], "s", f"< {TARGET_SECONDS:.0f}" if at_10k else "",
                               r["seconds"] < TARGET_SECONDS if at_10k else None),
                        Metric("forecast scaling", f"CPU seconds ({label})", r["cpu_seconds"], "s"),
                        Metric("forecast scaling", f"series per second ({label})", r["series"] / r["seconds"], "series/s"),
                        Metric("forecast scaling", f"peak memory ({label})", r["peak_gb"], "GB")]
        slope = loglog_slope([r["series"] for r in curve], [r["seconds"] for r in curve])
        metrics.append(Metric("forecast scaling", "time vs series, log-log slope", slope, "", f"<= {TARGET_SLOPE}", slope <= TARGET_SLOPE))
        cpu_slope = loglog_slope([r["series"] for r in curve], [r["cpu_seconds"] for r in curve])
        metrics.append(Metric("forecast scaling", "CPU time vs series, log-log slope", cpu_slope, ""))
        mem_slope = loglog_slope([r["series"] for r in curve], [r["peak_gb"] for r in curve])
        metrics.append(Metric("forecast scaling", "memory vs series, log-log slope", mem_slope, ""))
    return metrics + in_child(dask_comparison, DASK_SERIES.get(size, DASK_SERIES["small"]), END - timedelta(days=HORIZON))


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
    The fits are what the cluster runs; the rest (scoring, composing, intervals, totals) stays in the caller.
    Runs in a child process; only the two results' comparison is kept, not both results."""
    memory = PeakMemory()
    import logging

    from distributed import Client, LocalCluster

    from forecasting.distributed import dask_runner
    from forecasting.engine import ForecastConfig, forecast_demand, run_here
    from forecasting.synthetic import synthetic_demand

    config = ForecastConfig(n_jobs=1)
    history = synthetic_demand(n_series, DAYS, as_of, seed=7, stockout_share=0.1).drop(columns=["truth"])
    warm_up = history[history["sku"].isin(history["sku"].drop_duplicates().head(20))][["sku", "location", "ds", "sold", "censored"]]
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
        peak_gb = memory.stop()
    same = all(getattr(here, f).equals(getattr(there, f)) for f in ("forecast", "backtest", "uncertainty"))
    large = n_series >= DASK_SERIES["large"]
    return [
        Metric("forecast_dask", "series", n_series, "series"),
        Metric("forecast_dask", "single process (n_jobs=1) seconds", single, "s"),
        Metric("forecast_dask", "2-worker LocalCluster seconds", on_dask, "s"),
        Metric("forecast_dask", "speed-up, whole forecast", single / on_dask, "x"),
        Metric("forecast_dask", "fits, single process seconds", sum(fits_here), "s"),
        Metric("forecast_dask", "fits, LocalCluster seconds", sum(fits_there), "s"),
        Metric("forecast_dask", "speed-up, fits", sum(fits_here) / sum(fits_there) if sum(fits_there) else float("nan"), "x"),
        Metric("forecast_dask", "same forecast, backtest, uncertainty", float(same), "", "= 1", same),
        Metric("forecast_dask", "peak memory (cluster included)", peak_gb, "GB", f"< {MEMORY_LIMIT_GB:.0f}" if large else "",
               peak_gb < MEMORY_LIMIT_GB if large else None),
    ]


if __name__ == "__main__":
    import sys

    from bench.common import print_table

    print_table(run(sys.argv[1] if len(sys.argv) > 1 else "small"))
