"""The demand forecast: per SKU x location, a model chosen by rolling-origin cross-validation among
statsforecast models suited to the series' demand class, with intervals from its own backtest errors,
and SKU totals (location `ALL`) as the sum of the locations (bottom-up, so they always add up).

Why this shape:
- Model choice per series, by backtest on recent windows: no single model wins on a retail
  catalogue (a weekly-seasonal smoother for the bestsellers, Croston-type methods for slow movers).
- Only models that fit in a fraction of a millisecond per series are candidates: the whole catalogue
  is re-forecast every night on two cores.
- Intervals are conformal-style: the chosen model's backtest residuals, standardised per series and
  pooled per demand class for the tails, so an intermittent SKU gets skewed bands that never go below
  zero and a smooth one gets tight symmetric bands.
- Series with too little history get a profile (their own recent average, else their category's at
  that location) instead of nothing.
- Memory grows with a block of series, not with the catalogue: cross-validation and fits run
  `ForecastConfig.block_series` series at a time, keeping only the scores (the choice is pooled over a
  class) and the backtest frames; the history is not copied and a series' rows share one id string.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import (
    ADIDA,
    IMAPA,
    TSB,
    CrostonSBA,
    SeasonalExponentialSmoothingOptimized,
    SeasonalNaive,
    SeasonalWindowAverage,
    SimpleExponentialSmoothingOptimized,
    WindowAverage,
)

from forecasting.classify import classify
from forecasting.metrics import accuracy, naive_scales
from forecasting.series import ALL, impute_censored, series_id

BASELINE = "SeasonalNaive"
PROFILE = "CategoryProfile"
RECENT = "RecentAverage"
BOTTOM_UP = "BottomUp"
NEW = "new"
RESID_COLUMNS = ["unique_id", "ds", "cutoff", "y", "yhat", "resid", "naive", "censored"]


def candidate_models(series_class: str, season: int = 7) -> list:
    """The statsforecast models fitted for a demand class (the seasonal-naive baseline is always one)."""
    baseline = SeasonalNaive(season_length=season, alias=BASELINE)
    if series_class in ("smooth", "erratic"):
        return [
            baseline,
            SeasonalExponentialSmoothingOptimized(season_length=season, alias="SeasonalES"),
            SeasonalWindowAverage(season_length=season, window_size=4, alias="SeasonalWindowAverage"),
            SimpleExponentialSmoothingOptimized(alias="SES"),
            WindowAverage(window_size=28, alias="WindowAverage"),
        ]
    return [
        baseline,
        CrostonSBA(alias="CrostonSBA"),
        ADIDA(alias="ADIDA"),
        IMAPA(alias="IMAPA"),
        TSB(alpha_d=0.1, alpha_p=0.1, alias="TSB"),
        WindowAverage(window_size=28, alias="WindowAverage"),
    ]


WEEKDAY = "+Weekday"
"""Suffix of a flat model's forecast multiplied by the series' weekday profile."""
FLAT_MODELS = ("SES", "WindowAverage", "CrostonSBA", "ADIDA", "IMAPA", "TSB")
COMBINATIONS = {
    "smooth": ("SES+Weekday", "WindowAverage+Weekday", "SeasonalES"),
    "intermittent": ("CrostonSBA+Weekday", "ADIDA+Weekday", "TSB+Weekday", "IMAPA+Weekday"),
}
COMBO = "Combination"
"""The equal-weight mean of the class's members in COMBINATIONS: combining usually beats each one."""


def combination_members(series_class: str) -> tuple[str, ...]:
    return COMBINATIONS["smooth" if series_class in ("smooth", "erratic") else "intermittent"]


def candidate_names(series_class: str, season: int = 7) -> list[str]:
    """Every candidate the selection compares: the fitted models, their weekday-adjusted variants, the combination."""
    fitted = [m.alias for m in candidate_models(series_class, season)]
    return fitted + [f"{m}{WEEKDAY}" for m in fitted if m in FLAT_MODELS] + [COMBO]


def model_by_name(name: str, season: int = 7):  # type: ignore[no-untyped-def]
    for cls in ("smooth", "intermittent"):
        for m in candidate_models(cls, season):
            if m.alias == name:
                return m
    raise KeyError(name)


def base_models(name: str, series_class: str) -> set[str]:
    """The fitted models a candidate needs."""
    if name == COMBO:
        return set().union(*(base_models(m, series_class) for m in combination_members(series_class)))
    return {name.removesuffix(WEEKDAY)}


def weekday_profile(frame: pd.DataFrame, cutoff: pd.Timestamp, *, weeks: int = 12, prior_units: float = 20.0) -> pd.DataFrame:
    """Per series, each weekday's share of an average day over the `weeks` weeks up to `cutoff`,
    shrunk towards 1 by prior_units / (units + prior_units) so a thin series keeps a flat profile.
    Columns `unique_id, dow, share`."""
    recent = frame[(frame["ds"] > cutoff - pd.Timedelta(days=7 * weeks)) & (frame["ds"] <= cutoff)]
    by = recent.groupby(["unique_id", recent["ds"].dt.dayofweek.rename("dow")])["y"].mean().unstack("dow").reindex(columns=range(7))
    by = by.fillna(0.0)
    mean = by.mean(axis=1)
    units = recent.groupby("unique_id")["y"].sum().reindex(by.index).fillna(0.0)
    raw = by.div(mean.where(mean > 0), axis=0).fillna(1.0)
    weight = (units / (units + prior_units)).to_numpy()[:, None]
    share = 1.0 + (raw - 1.0) * weight
    long = share.stack().rename("share").reset_index()
    long["dow"] = long["dow"].astype(int)
    return long


def _compose(frame: pd.DataFrame, fitted: pd.DataFrame, names: list[str], series_class: str,
             last_day: pd.Timestamp | None = None) -> pd.DataFrame:
    """Add the weekday-adjusted and combined candidates to `fitted` (rows unique_id, ds, [cutoff], one column
    per fitted model), with the weekday profile known at each row's cutoff (`cutoff` column, or `last_day`:
    the last day of history of the class, by default `frame`'s)."""
    out = fitted.copy()
    if COMBO in names:
        names = [*names, *combination_members(series_class)]
    last = frame["ds"].max() if last_day is None else pd.Timestamp(last_day)
    cut = out["cutoff"] if "cutoff" in out else pd.Series(last, index=out.index)
    profiles = [weekday_profile(frame, c).assign(cutoff=c) for c in pd.unique(cut)]
    prof = pd.concat(profiles, ignore_index=True)
    key = pd.DataFrame({"unique_id": out["unique_id"].to_numpy(), "dow": out["ds"].dt.dayofweek.to_numpy(), "cutoff": cut.to_numpy()})
    share = key.merge(prof, on=["unique_id", "dow", "cutoff"], how="left")["share"].fillna(1.0).to_numpy()
    for name in names:
        if name.endswith(WEEKDAY) and name.removesuffix(WEEKDAY) in out:
            out[name] = out[name.removesuffix(WEEKDAY)].to_numpy() * share
    if COMBO in names:
        members = [m for m in combination_members(series_class) if m in out]
        out[COMBO] = out[members].mean(axis=1)
    return out


@dataclass(frozen=True)
class ForecastConfig:
    horizon: int = 28
    cv_windows: int = 2
    cv_horizon: int = 28
    season: int = 7
    min_history_days: int = 84
    """Shorter series (or series that never sold) are forecast from a profile, not fitted."""
    recent_days_for_own_average: int = 14
    """A short series with at least this many days uses its own average; shorter ones their category's."""
    n_jobs: int = 1
    """statsforecast worker processes (forked). Keep 1 inside a process that runs threads (an in-process
    Dagster run): forking such a process can deadlock a worker."""
    selection: str = "mase+rmsse"
    """Backtest score minimised per series: 'mase', 'rmsse' or 'mase+rmsse'."""
    selection_margin: float = 0.25
    """How much better (relative) a series' own best model must score than its class's best to be chosen."""
    block_series: int = 10_000
    """Series cross-validated and fitted at a time: memory grows with the block, not the catalogue. Any block size
    gives the same numbers (every series is fitted on its own; the model choice is made on the whole class's scores)."""


@dataclass
class ForecastResult:
    forecast: pd.DataFrame
    """sku, location, ds, forecast, lo_80, hi_80, lo_95, hi_95, model (location ALL = SKU total)."""
    backtest: pd.DataFrame
    """sku, location, category, series_class, model, selected, mase, rmsse, wape, bias, windows."""
    uncertainty: pd.DataFrame
    """sku, location, series_class, model, sigma (daily RMS backtest error), rho (7-day error-sum variance / 7 sigma²),
    bias (units/day the forecast runs low (+) or high (-): the class's backtest error relative to its forecasts x
    the series' level), adi and cv2 (the demand-class measures; NaN for new series)."""


StatsRunner = Callable[[StatsForecast, str, pd.DataFrame, dict], pd.DataFrame]
"""Runs one statsforecast call -- `runner(sf, "forecast" | "cross_validation", df, kwargs)` -- and returns what
`getattr(sf, method)(df=df, **kwargs)` returns; `forecasting.distributed.dask_runner` runs it on a Dask cluster."""


def run_here(sf: StatsForecast, method: str, df: pd.DataFrame, kwargs: dict) -> pd.DataFrame:
    """The in-process runner (statsforecast's own `n_jobs` pool above PARALLEL_MIN_SERIES)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(sf, method)(df=df, **kwargs)


HISTORY_COLUMNS = ["sku", "location", "ds", "sold", "censored"]


@dataclass
class _Layout:
    """Where each series sits in the history (rows sorted by sku, location, ds): series `i` is rows
    `starts[i]:ends[i]`. `blocks` are runs of about `block_series` series that never split a SKU."""
    starts: np.ndarray
    ends: np.ndarray
    ids: np.ndarray
    totals: np.ndarray
    blocks: list[np.ndarray]

    @property
    def lengths(self) -> np.ndarray:
        return self.ends - self.starts


def _history(history: pd.DataFrame, as_of: date, block_series: int) -> tuple[pd.DataFrame, _Layout]:
    """The history up to `as_of` sorted by sku, location, ds, with the demand estimate `y` and `unique_id`, and
    its layout. A history already in that order (as `daily_series` builds it) is not copied: the frame shares
    the caller's columns (nothing here writes into it)."""
    keep = (history["ds"] <= pd.Timestamp(as_of)).to_numpy()
    if keep.all():
        hist = pd.DataFrame({c: history[c].array for c in HISTORY_COLUMNS}, copy=False)
    else:
        hist = history.loc[keep, HISTORY_COLUMNS].reset_index(drop=True)
    sku_codes, loc_codes = _sort_codes(hist["sku"]), _sort_codes(hist["location"])
    ds = hist["ds"].to_numpy()
    sku_up, loc_up = np.diff(sku_codes), np.diff(loc_codes)
    ordered = ((sku_up > 0) | ((sku_up == 0) & ((loc_up > 0) | ((loc_up == 0) & (ds[1:] >= ds[:-1]))))).all()
    if not ordered:
        hist = hist.sort_values(["sku", "location", "ds"], ignore_index=True)
        sku_codes, loc_codes = _sort_codes(hist["sku"]), _sort_codes(hist["location"])
    new_series = np.r_[True, (sku_codes[1:] != sku_codes[:-1]) | (loc_codes[1:] != loc_codes[:-1])] if len(hist) else np.zeros(0, bool)
    starts = np.flatnonzero(new_series)
    ends = np.r_[starts[1:], len(hist)].astype(starts.dtype) if len(starts) else starts.copy()
    ids = series_id(hist["sku"].iloc[starts].reset_index(drop=True), hist["location"].iloc[starts].reset_index(drop=True)).to_numpy(object)
    new_sku = np.r_[True, sku_codes[starts[1:]] != sku_codes[starts[:-1]]] if len(starts) else np.zeros(0, bool)
    blocks = _sku_blocks(new_sku, block_series)
    y = np.empty(len(hist))
    totals = np.empty(len(starts))
    for block in blocks:
        a, b = starts[block[0]], ends[block[-1]]
        part = hist.iloc[a:b]
        y[a:b] = impute_censored(part).to_numpy(float)
        totals[block] = part["sold"].groupby(np.repeat(np.arange(len(block)), ends[block] - starts[block]), sort=False).sum().to_numpy()
    hist["y"] = y
    hist["unique_id"] = np.repeat(ids, ends - starts)
    return hist, _Layout(starts=starts, ends=ends, ids=ids, totals=totals, blocks=blocks)


def _sort_codes(values: pd.Series) -> np.ndarray:
    """Codes in sorted order of the values, missing ones last (the order `sort_values` gives)."""
    codes, uniques = pd.factorize(values, sort=True)
    codes[codes < 0] = len(uniques)
    return codes


def _sku_blocks(new_sku: np.ndarray, block_series: int) -> list[np.ndarray]:
    """Consecutive series positions cut into runs of at least `block_series` series, each ending with a SKU."""
    n = len(new_sku)
    sku_starts = np.flatnonzero(new_sku)
    cuts = [0] if n else []
    while n:
        i = np.searchsorted(sku_starts, cuts[-1] + max(1, block_series))
        if i >= len(sku_starts):
            break
        cuts.append(int(sku_starts[i]))
    bounds = [*cuts, n]
    return [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=False) if b > a]


def _take(hist: pd.DataFrame, layout: _Layout, series: np.ndarray) -> pd.DataFrame:
    """The rows of the series at positions `series` (ascending), in history order; a contiguous run is a view."""
    if len(series) and series[-1] - series[0] + 1 == len(series):
        return hist.iloc[layout.starts[series[0]]:layout.ends[series[-1]]]
    lengths = layout.ends[series] - layout.starts[series]
    rows = np.repeat(layout.starts[series] - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(lengths.sum())
    return hist.take(rows)


def _classify(hist: pd.DataFrame, layout: _Layout, is_established: np.ndarray) -> pd.DataFrame:
    """`classify` of the established series, a block at a time."""
    parts = []
    for block in layout.blocks:
        series = block[is_established[block]]
        if len(series):
            parts.append(classify(_take(hist, layout, series), recent_days=365))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["unique_id", "series_class"])


def _class_blocks(layout: _Layout, series: np.ndarray, block_series: int) -> list[np.ndarray]:
    """A class's series cut into blocks of at most `block_series`, in order of their ids (the order statsforecast
    returns them in, so the blocks' results concatenate to the one-block result); positions ascending in a block."""
    by_id = series[np.argsort(layout.ids[series], kind="stable")]
    parts = np.array_split(by_id, max(1, -(-len(by_id) // max(1, block_series))))
    return [np.sort(p) for p in parts if len(p)]


def _sku_scales(hist: pd.DataFrame, layout: _Layout, is_established: np.ndarray, config: ForecastConfig) -> pd.DataFrame:
    """The naive scales of the SKU totals (summed established series) over the training part of the backtest,
    a block of whole SKUs at a time."""
    last = hist["ds"].to_numpy()[layout.ends[is_established] - 1].max()
    train_cut = pd.Timestamp(last) - pd.Timedelta(days=config.cv_windows * config.cv_horizon)
    parts = []
    for block in layout.blocks:
        series = block[is_established[block]]
        if len(series):
            est = _take(hist, layout, series)
            keep = (est["ds"] <= train_cut).to_numpy()
            train = pd.DataFrame({c: est[c].array[keep] for c in ("sku", "ds", "y")}, copy=False)
            history = train.groupby(["sku", "ds"], as_index=False)["y"].sum()
            parts.append(naive_scales(history.rename(columns={"sku": "unique_id"}), season=config.season))
    return pd.concat(parts, ignore_index=True)


def forecast_demand(history: pd.DataFrame, as_of: date, *, categories: pd.DataFrame | None = None,
                    config: ForecastConfig | None = None, runner: StatsRunner | None = None) -> ForecastResult:
    """Forecast every series in `history` (`sku, location, ds, sold, censored`, dense daily, as
    `forecasting.series.daily_series` builds it) for `config.horizon` days after `as_of`.
    `categories` (`sku, category`) lets new SKUs borrow their category's profile.
    Rows after `as_of` are ignored: nothing from the future reaches a forecast.
    `runner` runs the statsforecast fits elsewhere (a Dask cluster); every series is fitted on its own,
    so where it runs does not change a number."""
    config = config or ForecastConfig()
    h = config.horizon
    hist, layout = _history(history, as_of, config.block_series)
    cat_map = categories.drop_duplicates("sku").set_index("sku")["category"] if categories is not None and len(categories) else pd.Series(dtype=str)

    per = pd.DataFrame({"sku": hist["sku"].iloc[layout.starts].array, "location": hist["location"].iloc[layout.starts].array,
                        "days": layout.lengths, "total": layout.totals}, index=pd.Index(layout.ids, name="unique_id"))
    is_established = ((per["days"] >= config.min_history_days) & (per["total"] > 0)).to_numpy()
    established = per.index[is_established]
    classes = _classify(hist, layout, is_established)
    class_of = classes.set_index("unique_id")["series_class"] if len(classes) else pd.Series(dtype=str)

    frames, backtests, cv_resid = [], [], []
    train_cut = pd.Timestamp(as_of) - pd.Timedelta(days=config.cv_windows * config.cv_horizon)
    position = pd.Series(np.arange(len(per)), index=per.index)
    for series_class, ids in class_of.groupby(class_of).groups.items():
        series = position.loc[ids].to_numpy()
        blocks = _class_blocks(layout, series, config.block_series)
        last_day = hist["ds"].to_numpy()[layout.ends[series] - 1].max()
        selected, cv, scores = _select(hist, layout, blocks, ids, series_class, train_cut, config, runner)
        backtests.append(scores)
        cv_resid.extend(_selected_residuals(part, selected) for part in cv)
        del cv  # every candidate's backtest, no longer needed once the chosen one's residuals are kept
        for block in blocks:
            group = _take(hist, layout, block)
            frames.append(_final_forecast(group, selected.reindex(layout.ids[block]), series_class, h, config, runner, last_day=last_day))
    fitted = pd.concat(frames, ignore_index=True) if frames else _empty_fc()
    resid = pd.concat(cv_resid, ignore_index=True) if cv_resid else pd.DataFrame(columns=RESID_COLUMNS)
    unc = _uncertainty(resid, class_of, config)

    new_ids = per.index.difference(established)
    profile_fc, profile_unc = _profiles(hist, per.loc[new_ids], cat_map, as_of, h, config)
    fc = pd.concat([f for f in (fitted, profile_fc) if len(f)], ignore_index=True) if len(fitted) or len(profile_fc) else fitted
    unc_all = pd.concat([u for u in (unc, profile_unc) if len(u)], ignore_index=True) if len(unc) or len(profile_unc) else unc
    fc = fc.merge(unc_all[["unique_id", "series_class", "sigma", "z_lo80", "z_hi80", "z_lo95", "z_hi95"]], on="unique_id", how="left")
    fc = _bands(fc)
    fc = fc.merge(per[["sku", "location"]], left_on="unique_id", right_index=True)

    totals = _bottom_up(fc, resid, unc_all, per)
    out = pd.concat([fc, totals], ignore_index=True)
    out = out[["sku", "location", "ds", "forecast", "lo_80", "hi_80", "lo_95", "hi_95", "model"]]
    out = out.sort_values(["sku", "location", "ds"], ignore_index=True)

    backtest = pd.concat(backtests, ignore_index=True) if backtests else _empty_backtest()
    backtest = backtest.merge(per[["sku", "location"]], left_on="unique_id", right_index=True, how="left")
    total_bt = _bottom_up_backtest(resid, _sku_scales(hist, layout, is_established, config) if len(resid) else None, per, config)
    backtest = pd.concat([backtest, total_bt], ignore_index=True)
    backtest["category"] = backtest["sku"].map(cat_map)
    backtest = backtest[["sku", "location", "category", "series_class", "model", "selected", "mase", "rmsse", "wape", "bias", "windows"]]

    unc_all = unc_all.merge(per[["sku", "location"]], left_on="unique_id", right_index=True)
    model_of = fc.drop_duplicates("unique_id").set_index("unique_id")["model"]
    unc_all["model"] = unc_all["unique_id"].map(model_of)
    shape = classes.set_index("unique_id")[["adi", "cv2"]] if len(classes) else pd.DataFrame(columns=["adi", "cv2"])
    unc_all["adi"] = unc_all["unique_id"].map(shape["adi"]).astype(float)
    unc_all["cv2"] = unc_all["unique_id"].map(shape["cv2"]).astype(float)
    uncertainty = unc_all[["sku", "location", "series_class", "model", "sigma", "rho", "bias", "adi", "cv2"]].reset_index(drop=True)
    return ForecastResult(forecast=out, backtest=backtest.sort_values(["sku", "location", "model"], ignore_index=True), uncertainty=uncertainty)


# --- model selection ------------------------------------------------------------------------------


PARALLEL_MIN_SERIES = 1000
"""Below this many series a worker pool costs more than it saves."""


def _sf(models: list, config: ForecastConfig, series: int, runner: StatsRunner | None = None) -> StatsForecast:
    n_jobs = config.n_jobs if series >= PARALLEL_MIN_SERIES and runner is None else 1
    return StatsForecast(models=models, freq="D", n_jobs=n_jobs, fallback_model=SeasonalNaive(season_length=config.season))


def _select(hist: pd.DataFrame, layout: _Layout, blocks: list[np.ndarray], ids: pd.Index, series_class: str,
            train_cut: pd.Timestamp, config: ForecastConfig, runner: StatsRunner | None = None) -> tuple[pd.Series, list[pd.DataFrame], pd.DataFrame]:
    """Rolling-origin cross-validation of the class's candidates, a block of series at a time; per series the model
    with the lowest score over the windows (censored days are not scored: their 'actual' is an estimate).
    Returns the choice for each of `ids`, each block's backtest frame and the scores."""
    names = candidate_names(series_class, config.season)
    per_model: dict[str, list[pd.DataFrame]] = {m: [] for m in names}
    cvs, rates = [], []
    for block in blocks:
        group = _take(hist, layout, block)
        cv, block_scores = _backtest(group, series_class, train_cut, config, runner)
        cvs.append(cv)
        for m, part in zip(names, block_scores, strict=True):
            per_model[m].append(part)
        rates.append(group.groupby("unique_id")["y"].mean())
    scores = pd.concat([part for m in names for part in per_model[m]], ignore_index=True)
    scores["score"] = _score(scores, config.selection)
    best = _choose(scores, pd.concat(rates), config.selection_margin)
    best = best.reindex(ids.to_numpy()).fillna(BASELINE)
    scores["selected"] = scores["model"] == scores["unique_id"].map(best)
    scores["series_class"] = series_class
    scores["windows"] = config.cv_windows
    return best, cvs, scores.drop(columns=["score", "points"])


def _backtest(group: pd.DataFrame, series_class: str, train_cut: pd.Timestamp, config: ForecastConfig,
              runner: StatsRunner | None = None) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """The cross-validation of one block: its backtest frame (a column per candidate) and each candidate's scores."""
    models = candidate_models(series_class, config.season)
    names = candidate_names(series_class, config.season)
    sf = _sf(models, config, len(group["unique_id"].unique()), runner)
    cv = (runner or run_here)(sf, "cross_validation", group[["unique_id", "ds", "y"]],
                              {"h": config.cv_horizon, "n_windows": config.cv_windows, "step_size": config.cv_horizon})
    fitted_names = [m.alias for m in models]
    cv[fitted_names] = cv[fitted_names].clip(lower=0).fillna(0.0)
    cv = _compose(group, cv, names, series_class)
    window = (group["ds"] >= cv["ds"].min()).to_numpy() if len(cv) else np.zeros(len(group), bool)
    cv = cv.merge(pd.DataFrame({c: group[c].array[window] for c in ("unique_id", "ds", "censored")}, copy=False),
                  on=["unique_id", "ds"], how="left")
    cv[names] = cv[names].clip(lower=0).fillna(0.0)
    scored = cv[~cv["censored"].fillna(False).astype(bool)]
    train = (group["ds"] <= train_cut).to_numpy()
    scales = naive_scales(pd.DataFrame({c: group[c].array[train] for c in ("unique_id", "y")}, copy=False), season=config.season)
    return cv, [accuracy(scored["y"], scored[m], scored["unique_id"], scales).assign(model=m) for m in names]


VOLUME_BANDS = (0.0, 0.5, 2.0, 10.0, np.inf)
"""Mean units/day bands: a model's class-wide record is judged among series of similar volume."""


def _choose(scores: pd.DataFrame, rate: pd.Series, margin: float) -> pd.Series:
    """Per series, the model with the best average score among series of its class and volume band,
    unless the series' own best beats that on the series by more than `margin` (relative). Two backtest
    windows of a noisy daily series cannot tell close models apart; the pooled winner is the safer bet
    unless the series' own evidence is clear."""
    band = pd.cut(scores["unique_id"].map(rate).fillna(0.0), VOLUME_BANDS, right=False, labels=False)
    pooled = scores.groupby([band.rename("band"), scores["model"]])["score"].mean().rename("pooled").reset_index()
    pooled = pooled.sort_values(["band", "pooled", "model"]).drop_duplicates("band").set_index("band")["model"]
    default = band.map(pooled)
    frame = scores.assign(default=default.to_numpy())
    own = frame.sort_values(["unique_id", "score", "model"]).drop_duplicates("unique_id").set_index("unique_id")
    base = frame[frame["model"] == frame["default"]].set_index("unique_id")["score"].reindex(own.index)
    keep_own = own["score"] < base * (1.0 - margin)
    return own["model"].where(keep_own, own["default"])


def _score(scores: pd.DataFrame, selection: str) -> pd.Series:
    if selection == "mase":
        return scores["mase"]
    if selection == "rmsse":
        return scores["rmsse"]
    return scores["mase"] + scores["rmsse"]


def _selected_residuals(cv: pd.DataFrame, selected: pd.Series) -> pd.DataFrame:
    """Backtest forecasts and errors (actual - forecast) of each series' chosen model, with the
    seasonal-naive forecast alongside (for the totals' backtest)."""
    model = cv["unique_id"].map(selected)
    names = [c for c in cv.columns if c not in ("unique_id", "ds", "cutoff", "y", "censored")]
    values = cv[names].to_numpy()
    col = pd.Index(names).get_indexer(model)
    yhat = values[np.arange(len(cv)), col]
    out = pd.DataFrame({"unique_id": cv["unique_id"].to_numpy(), "ds": cv["ds"].to_numpy(), "cutoff": cv["cutoff"].to_numpy(),
                        "y": cv["y"].to_numpy(), "yhat": yhat, "resid": cv["y"].to_numpy() - yhat, "naive": cv[BASELINE].to_numpy(),
                        "censored": cv["censored"].fillna(False).astype(bool).to_numpy()})
    return out


def _final_forecast(group: pd.DataFrame, selected: pd.Series, series_class: str, h: int, config: ForecastConfig,
                    runner: StatsRunner | None = None, *, last_day: pd.Timestamp | None = None) -> pd.DataFrame:
    """Refit the models each series' choice needs on all its history, forecast `h` days, and compose (weekday
    profiles as of `last_day`, by default the group's last day)."""
    needs: dict[str, set[str]] = {}
    for uid, name in selected.items():
        for base in base_models(name, series_class):
            needs.setdefault(base, set()).add(uid)
    wide = None
    for base, ids in sorted(needs.items()):
        sub = group[group["unique_id"].isin(ids)][["unique_id", "ds", "y"]]
        fc = (runner or run_here)(_sf([model_by_name(base, config.season)], config, len(ids), runner), "forecast", sub, {"h": h})
        fc = fc[["unique_id", "ds", base]].assign(**{base: fc[base].clip(lower=0).fillna(0.0)})
        wide = fc if wide is None else wide.merge(fc, on=["unique_id", "ds"], how="outer")
    if wide is None:
        return _empty_fc()
    wide = _compose(group, wide, sorted(set(selected)), series_class, last_day)
    model = wide["unique_id"].map(selected)
    col = pd.Index(wide.columns).get_indexer(model)
    values = wide.to_numpy()[np.arange(len(wide)), col].astype(float)
    return pd.DataFrame({"unique_id": wide["unique_id"].to_numpy(), "ds": wide["ds"].to_numpy(),
                         "forecast": np.nan_to_num(values, nan=0.0).clip(min=0), "model": model.to_numpy()})


def _empty_fc() -> pd.DataFrame:
    return pd.DataFrame({"unique_id": pd.Series(dtype=str), "ds": pd.Series(dtype="datetime64[ns]"),
                         "forecast": pd.Series(dtype=float), "model": pd.Series(dtype=str)})


def _empty_backtest() -> pd.DataFrame:
    return pd.DataFrame(columns=["unique_id", "model", "mase", "rmsse", "wape", "bias", "selected", "series_class", "windows"])


# --- uncertainty ----------------------------------------------------------------------------------

NORMAL_Z = {"z_lo80": -1.2816, "z_hi80": 1.2816, "z_lo95": -1.96, "z_hi95": 1.96}
QUANTILES = {"z_lo80": 0.10, "z_hi80": 0.90, "z_lo95": 0.025, "z_hi95": 0.975}
MIN_POOLED = 200
"""Standardised residuals a class needs before its own quantiles replace the normal ones."""


def _uncertainty(resid: pd.DataFrame, class_of: pd.Series, config: ForecastConfig) -> pd.DataFrame:
    """Per series: sigma (RMS backtest error on in-stock days), the class's standardised residual quantiles,
    and rho = variance of 7-day error sums / (7 sigma²), pooled per class (errors of neighbouring days
    are correlated; rho carries that into lead-time demand)."""
    r = resid[~resid["censored"]] if len(resid) else resid
    ids = class_of.index
    sigma = np.sqrt((r["resid"] ** 2).groupby(r["unique_id"]).mean()).reindex(ids) if len(r) else pd.Series(np.nan, index=ids)
    level = r.groupby("unique_id")["y"].mean().reindex(ids) if len(r) else pd.Series(np.nan, index=ids)
    sigma = sigma.where(sigma > 0, np.sqrt(level.clip(lower=0.01))).fillna(0.1)
    if len(r):
        # One lump in two backtest windows says little about a series' bias; its class's says more.
        cls_of_row = r["unique_id"].map(class_of)
        ratio = r.groupby(cls_of_row)["resid"].sum() / r.groupby(cls_of_row)["yhat"].sum().where(lambda v: v > 0)
        level = r.groupby("unique_id")["yhat"].mean().reindex(ids)
        bias = (level * class_of.map(ratio).reindex(ids).clip(-0.5, 0.5)).fillna(0.0)
    else:
        bias = pd.Series(0.0, index=ids)
    out = pd.DataFrame({"unique_id": ids, "series_class": class_of.to_numpy(), "sigma": sigma.to_numpy(), "bias": bias.to_numpy()})
    if len(r):
        z = r["resid"] / r["unique_id"].map(sigma)
        cls = r["unique_id"].map(class_of)
        for col, q in QUANTILES.items():
            pooled = z.groupby(cls).quantile(q)
            counts = z.groupby(cls).size()
            pooled = pooled.where(counts >= MIN_POOLED)
            out[col] = out["series_class"].map(pooled).fillna(NORMAL_Z[col])
        out["rho"] = out["series_class"].map(_rho(resid, sigma, cls_of=class_of, k=7)).fillna(1.0)
    else:
        for col, zval in NORMAL_Z.items():
            out[col] = zval
        out["rho"] = 1.0
    return out


def _rho(resid: pd.DataFrame, sigma: pd.Series, *, cls_of: pd.Series, k: int) -> pd.Series:
    block = ((resid["ds"] - resid["cutoff"]).dt.days - 1) // k
    sums = resid.groupby([resid["unique_id"], resid["cutoff"], block])["resid"].agg(["sum", "size"])
    sums = sums[sums["size"] == k].reset_index()
    if sums.empty:
        return pd.Series(dtype=float)
    sums["expected"] = k * sums["unique_id"].map(sigma) ** 2
    sums["cls"] = sums["unique_id"].map(cls_of)
    g = sums.groupby("cls")
    rho = (g["sum"].apply(lambda s: (s**2).sum()) / g["expected"].sum()).clip(0.5, 3.0)
    return rho


def _bands(fc: pd.DataFrame) -> pd.DataFrame:
    f, s = fc["forecast"], fc["sigma"]
    fc["lo_80"] = (f + fc["z_lo80"] * s).clip(lower=0).clip(upper=f)
    fc["hi_80"] = (f + fc["z_hi80"] * s).clip(lower=f)
    fc["lo_95"] = (f + fc["z_lo95"] * s).clip(lower=0).clip(upper=fc["lo_80"])
    fc["hi_95"] = (f + fc["z_hi95"] * s).clip(lower=fc["hi_80"])
    return fc


# --- series too new to fit ------------------------------------------------------------------------


def _profiles(hist: pd.DataFrame, new: pd.DataFrame, cat_map: pd.Series, as_of: date, h: int,
              config: ForecastConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Forecasts for series with too little history: their own weekday-shaped average when they have
    `recent_days_for_own_average` days, else the average SKU of their category at that location (or in
    the whole network). Variance is negative-binomial-like (mean + mean²/2): a guess, said so."""
    if new.empty:
        return _empty_fc(), pd.DataFrame(columns=["unique_id", "series_class", "sigma", "rho", "bias", *NORMAL_Z])
    days = pd.date_range(pd.Timestamp(as_of) + pd.Timedelta(days=1), periods=h, freq="D")
    recent = hist[hist["ds"] > pd.Timestamp(as_of) - pd.Timedelta(days=28)]
    rates = recent.groupby("unique_id")["y"].mean()
    info = recent.drop_duplicates("unique_id").set_index("unique_id")[["sku", "location"]]
    info["category"] = info["sku"].map(cat_map)
    info["rate"] = rates
    est = info.drop(index=new.index, errors="ignore")
    by_cat_loc = est.groupby(["category", "location"])["rate"].mean()
    by_cat = est.groupby("category")["rate"].mean()
    overall = float(est["rate"].median()) if len(est) else 0.0
    dow_share = _weekday_share(hist, ~hist["unique_id"].isin(new.index).to_numpy())

    rows = []
    for uid, r in new.iterrows():
        cat = cat_map.get(r["sku"])
        own = rates.get(uid, np.nan)
        if r["days"] >= config.recent_days_for_own_average and r["total"] > 0 and not np.isnan(own):
            rate, model = own, RECENT
        else:
            rate = by_cat_loc.get((cat, r["location"]), np.nan)
            if np.isnan(rate):
                rate = by_cat.get(cat, np.nan)
            if np.isnan(rate):
                rate = overall
            model = PROFILE
        rows.append((uid, rate, model))
    base = pd.DataFrame(rows, columns=["unique_id", "rate", "model"])
    fc = base.loc[base.index.repeat(h)].reset_index(drop=True)
    fc["ds"] = np.tile(days.to_numpy(), len(base))
    fc["forecast"] = (fc["rate"] * fc["ds"].dt.dayofweek.map(dow_share).fillna(1.0)).clip(lower=0)
    unc = pd.DataFrame({"unique_id": base["unique_id"], "series_class": NEW,
                        "sigma": np.sqrt(base["rate"] + base["rate"] ** 2 / 2).clip(lower=0.1), "rho": 1.0, "bias": 0.0, **NORMAL_Z})
    return fc[["unique_id", "ds", "forecast", "model"]], unc


def _weekday_share(hist: pd.DataFrame, rows: np.ndarray) -> pd.Series:
    """Each weekday's mean demand over `rows` of the history relative to the average weekday."""
    y = hist["y"][rows]
    if y.empty or y.sum() <= 0:
        return pd.Series(1.0, index=range(7))
    by = y.groupby(hist["ds"][rows].dt.dayofweek).mean()
    return (by / by.mean()).reindex(range(7)).fillna(1.0)


# --- SKU totals -----------------------------------------------------------------------------------


def _bottom_up(fc: pd.DataFrame, resid: pd.DataFrame, unc: pd.DataFrame, per: pd.DataFrame) -> pd.DataFrame:
    """Location `ALL`: the sum of the SKU's location forecasts. Its sigma comes from the backtest errors
    of that same sum (so the correlation between locations is in it), plus the profile series' variance."""
    if fc.empty:
        return fc.iloc[0:0].assign(location=ALL)
    total = fc.groupby(["sku", "ds"], as_index=False)["forecast"].sum()
    resid = resid.assign(sku=resid["unique_id"].map(per["sku"]))
    tr = resid.groupby(["sku", "cutoff", "ds"])[["resid"]].sum()
    tr["censored"] = resid.groupby(["sku", "cutoff", "ds"])["censored"].any()
    tr = tr[~tr["censored"]].reset_index()
    sigma_cv = np.sqrt((tr["resid"] ** 2).groupby(tr["sku"]).mean()) if len(tr) else pd.Series(dtype=float)
    unc_sku = unc.assign(sku=unc["unique_id"].map(per["sku"]))
    new_var = (unc_sku[unc_sku["series_class"] == NEW]["sigma"] ** 2).groupby(unc_sku["sku"]).sum()
    fitted_var = (unc_sku[unc_sku["series_class"] != NEW]["sigma"] ** 2).groupby(unc_sku["sku"]).sum()
    skus = total["sku"].drop_duplicates()
    var = sigma_cv.reindex(skus).pow(2).fillna(fitted_var.reindex(skus)).fillna(0) + new_var.reindex(skus).fillna(0)
    sigma = np.sqrt(var).clip(lower=0.1)
    total["sigma"] = total["sku"].map(sigma)
    if len(tr):
        z = tr["resid"] / tr["sku"].map(sigma)
        quant = {col: (float(z.quantile(q)) if len(z) >= MIN_POOLED else NORMAL_Z[col]) for col, q in QUANTILES.items()}
    else:
        quant = dict(NORMAL_Z)
    for col, v in quant.items():
        total[col] = v
    total = _bands(total)
    total["location"] = ALL
    total["model"] = BOTTOM_UP
    return total


def _bottom_up_backtest(resid: pd.DataFrame, scales: pd.DataFrame | None, per: pd.DataFrame, config: ForecastConfig) -> pd.DataFrame:
    """Backtest rows for the totals: the sum of the chosen models' backtest forecasts ('BottomUp') and the
    sum of the seasonal-naive ones, against the summed actuals of the same (fitted) series; `scales` are
    the naive scales of those sums (`_sku_scales`)."""
    cols = ["sku", "location", "series_class", "model", "selected", "mase", "rmsse", "wape", "bias", "windows"]
    if resid.empty or scales is None:
        return pd.DataFrame(columns=cols)
    r = resid.assign(sku=resid["unique_id"].map(per["sku"]))
    keys = ["sku", "cutoff", "ds"]
    tot = r.groupby(keys)[["y", "yhat", "naive"]].sum().join(r.groupby(keys)["censored"].any()).reset_index()
    tot = tot[~tot["censored"]]
    long = pd.concat([tot.assign(model=BOTTOM_UP, f=tot["yhat"]), tot.assign(model=BASELINE, f=tot["naive"])], ignore_index=True)
    out = accuracy(long["y"], long["f"], [long["sku"].rename("unique_id"), long["model"]], scales)
    out = out.rename(columns={"unique_id": "sku"}).drop(columns=["points"])
    out["location"] = ALL
    out["series_class"] = "total"
    out["selected"] = out["model"] == BOTTOM_UP
    out["windows"] = config.cv_windows
    return out[cols]
