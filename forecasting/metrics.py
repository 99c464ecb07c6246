"""Forecast accuracy, scale-free so that series of different volumes can be averaged.

MASE and RMSSE divide by the in-sample one-season (7-day) naive error of the training data: a value
below 1 beats "same day last week" on history. WAPE = Σ|error| / Σ actual; bias = Σ(forecast - actual)
/ Σ actual (positive: over-forecast)."""

from __future__ import annotations

import numpy as np
import pandas as pd

SEASON = 7


def naive_scales(train: pd.DataFrame, *, id_col: str = "unique_id", target_col: str = "y", season: int = SEASON) -> pd.DataFrame:
    """Per series: `mae_scale` and `mse_scale`, the mean absolute / squared seasonal difference of the
    training data. A flat series falls back to its mean level (then 1) so the scores stay finite."""
    y = train[target_col].astype(float)
    diff = y - y.groupby(train[id_col], sort=False).shift(season)
    ids = train[id_col]
    level = y.groupby(ids, sort=False).mean()
    mae = diff.abs().groupby(ids, sort=False).mean()
    mse = (diff**2).groupby(ids, sort=False).mean()
    fallback = level.where(level > 0, 1.0)
    mae = mae.where(mae > 0, fallback).fillna(fallback)
    mse = mse.where(mse > 0, fallback**2).fillna(fallback**2)
    return pd.DataFrame({"mae_scale": mae, "mse_scale": mse}).rename_axis(id_col).reset_index()


def accuracy(actual: pd.Series, forecast: pd.Series, by: list[pd.Series] | pd.Series, scales: pd.DataFrame) -> pd.DataFrame:
    """MASE, RMSSE, WAPE and bias per group of `by` (whose first key is the series id matching `scales`)."""
    err = forecast.astype(float) - actual.astype(float)
    frame = pd.DataFrame({"abs": err.abs(), "sq": err**2, "err": err, "y": actual.astype(float), "n": 1})
    keys = by if isinstance(by, list) else [by]
    agg = frame.groupby(keys, sort=False).sum()
    agg.index.names = [k.name for k in keys]
    agg = agg.reset_index()
    id_col = keys[0].name
    agg = agg.merge(scales, left_on=id_col, right_on=scales.columns[0], how="left")
    out = agg[[k.name for k in keys]].copy()
    out["mase"] = agg["abs"] / agg["n"] / agg["mae_scale"]
    out["rmsse"] = np.sqrt(agg["sq"] / agg["n"] / agg["mse_scale"])
    positive = agg["y"] > 0
    denom = agg["y"].where(positive, 1.0)
    out["wape"] = np.where(positive, agg["abs"] / denom, np.where(agg["abs"] > 0, np.inf, 0.0))
    out["bias"] = np.where(positive, agg["err"] / denom, 0.0)
    out["points"] = agg["n"]
    return out
