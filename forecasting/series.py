"""Demand series: what sold per SKU x location per day, on a dense daily grid, with stockout days
flagged as censored and their demand imputed.

A day that closes out of stock only shows what the shelf could give: the true demand was at least
that, usually more. Training on it as if it were demand teaches the model that the SKU sells less
exactly when it runs out, so forecasts (and the reorders built on them) spiral down. Censored days
get max(sold, the in-stock rate of the recent past x the weekday's share).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

ALL = "ALL"
"""The location code of a SKU's network total."""

SERIES_KEYS = ["sku", "location"]
RATE_WINDOW_DAYS = 56
"""Trailing window of in-stock days the censored-day rate is measured on."""


def series_id(sku: pd.Series, location: pd.Series) -> pd.Series:
    """`sku@location` per row. Rows of one series share one string object: a catalogue's history has
    hundreds of rows per series, and a string per row cost more memory than the rest of the frame."""
    if not sku.index.equals(location.index) or sku.hasnans or location.hasnans:
        return sku.astype(str) + "@" + location.astype(str)
    sku_codes, skus = pd.factorize(sku)
    loc_codes, locs = pd.factorize(location)
    pair_codes, pairs = pd.factorize(sku_codes.astype(np.int64) * max(len(locs), 1) + loc_codes)
    names = (pd.Series(skus).take(pairs // max(len(locs), 1)).astype(str).to_numpy(object)
             + "@" + pd.Series(locs).take(pairs % max(len(locs), 1)).astype(str).to_numpy(object))
    name = sku.name if sku.name == location.name else None
    return pd.Series(names.take(pair_codes), index=sku.index, name=name, dtype=object)


def daily_series(
    demand: pd.DataFrame, snapshots: pd.DataFrame | None, as_of: date, *, history_days: int = 730,
    extra_series: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per SKU x location x day up to `as_of`: `sku, location, ds, sold, censored`.

    `demand` has `day, sku, location, units` (any other columns, e.g. channel, are summed over);
    `snapshots` (optional) `day, sku, location, on_hand`: a day closing at on_hand <= 0 is censored.
    A series starts at its first sale or stock movement (but at most `history_days` back); days with
    no sale are zeros. `extra_series` (`sku, location`) adds series that have not sold yet (e.g. on an
    open purchase order): they get a single zero day at `as_of`.
    """
    start = pd.Timestamp(as_of - timedelta(days=history_days - 1))
    end = pd.Timestamp(as_of)
    d = demand[["day", "sku", "location", "units"]].copy()
    d["day"] = pd.to_datetime(d["day"]).dt.normalize()
    d = d[(d["day"] >= start) & (d["day"] <= end)]
    sold = d.groupby(["sku", "location", "day"], as_index=False, observed=True)["units"].sum()
    sold["units"] = sold["units"].clip(lower=0)

    firsts = [sold.groupby(SERIES_KEYS, as_index=False)["day"].min()]
    if snapshots is not None and len(snapshots):
        s = snapshots[["day", "sku", "location", "on_hand"]].copy()
        s["day"] = pd.to_datetime(s["day"]).dt.normalize()
        s = s[(s["day"] >= start) & (s["day"] <= end)]
        s = s.merge(sold[SERIES_KEYS].drop_duplicates(), on=SERIES_KEYS)  # only stock rows that ever sold
        firsts.append(s.groupby(SERIES_KEYS, as_index=False)["day"].min())
    else:
        s = pd.DataFrame(columns=["day", "sku", "location", "on_hand"])
    if extra_series is not None and len(extra_series):
        e = extra_series[SERIES_KEYS].drop_duplicates().assign(day=end)
        firsts.append(e)
    first = pd.concat(firsts).groupby(SERIES_KEYS, as_index=False)["day"].min()
    if first.empty:
        return pd.DataFrame({"sku": pd.Series(dtype=str), "location": pd.Series(dtype=str), "ds": pd.Series(dtype="datetime64[ns]"),
                             "sold": pd.Series(dtype=float), "censored": pd.Series(dtype=bool)})

    lengths = ((end - first["day"]).dt.days + 1).to_numpy()
    idx = np.repeat(np.arange(len(first)), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    grid = pd.DataFrame({
        "sku": first["sku"].to_numpy()[idx], "location": first["location"].to_numpy()[idx],
        "ds": first["day"].to_numpy()[idx] + pd.to_timedelta(offsets, unit="D"),
    })
    grid = grid.merge(sold.rename(columns={"day": "ds", "units": "sold"}), on=["sku", "location", "ds"], how="left")
    grid = grid.merge(s.rename(columns={"day": "ds"}), on=["sku", "location", "ds"], how="left")
    grid["sold"] = grid["sold"].fillna(0).astype(float)
    # Days between snapshot rows carry the balance; untracked stock (no snapshot at all) is never censored.
    grid["on_hand"] = grid.groupby(SERIES_KEYS, sort=False)["on_hand"].ffill()
    grid["censored"] = (grid["on_hand"] <= 0).fillna(False).astype(bool)
    return grid[["sku", "location", "ds", "sold", "censored"]].sort_values(["sku", "location", "ds"], ignore_index=True)


def impute_censored(series: pd.DataFrame, *, window: int = RATE_WINDOW_DAYS) -> pd.Series:
    """Demand estimate per row: `sold` on in-stock days; on censored days max(sold, rate x weekday share),
    where the rate is the mean of the last `window` in-stock days before it (the next in-stock days
    when there is no earlier one) and the weekday share comes from the series' in-stock days.
    Rows must be sorted by sku, location, ds (as `daily_series` returns them)."""
    df = series[["sku", "location", "ds", "sold", "censored"]]
    if not df["censored"].any():
        return df["sold"].astype(float)
    censored = df["censored"].to_numpy(bool)
    keys = [df["sku"], df["location"]]
    starts = _group_starts(df)
    y_in = np.where(censored, 0.0, df["sold"].to_numpy(float))
    days_in = trailing_sum((~censored).astype(float), starts, window)
    rate = np.divide(trailing_sum(y_in, starts, window), days_in, out=np.full(len(df), np.nan), where=days_in > 0)
    rate = pd.Series(rate, index=df.index)
    rate = rate.groupby(keys, sort=False).ffill().groupby(keys, sort=False).bfill()
    y = pd.Series(np.where(censored, np.nan, df["sold"].to_numpy(float)), index=df.index)
    overall = y.groupby(keys, sort=False).transform("mean")
    rate = rate.fillna(overall).fillna(0.0)

    dow = df["ds"].dt.dayofweek
    by_dow = y.groupby([*keys, dow], sort=False).transform("mean")
    share = (by_dow / overall.where(overall > 0)).fillna(1.0)
    counts = y.notna().groupby([*keys, dow], sort=False).transform("sum")
    share = 1.0 + (share - 1.0) * counts / (counts + 4.0)  # thin weekdays shrink towards 1
    return df["sold"].where(~df["censored"], np.maximum(df["sold"], rate * share)).astype(float)


def _group_starts(df: pd.DataFrame) -> np.ndarray:
    """For each row, the position of its series' first row (rows sorted by series)."""
    new = (df["sku"].ne(df["sku"].shift()) | df["location"].ne(df["location"].shift())).to_numpy()
    pos = np.where(new, np.arange(len(df)), 0)
    return np.maximum.accumulate(pos)


def trailing_sum(values: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """Sum of the `window` values before each row within its series (the row itself excluded)."""
    cs = np.concatenate([[0.0], np.cumsum(values)])
    i = np.arange(len(values))
    return cs[i] - cs[np.maximum(starts, i - window)]


def active_series(series: pd.DataFrame, as_of: date, *, days: int = 90, open_po: pd.DataFrame | None = None) -> pd.DataFrame:
    """SKU x location pairs that sold in the last `days` days or are on an open purchase order."""
    since = pd.Timestamp(as_of - timedelta(days=days - 1))
    recent = series[(series["ds"] >= since) & (series["sold"] > 0)][SERIES_KEYS].drop_duplicates()
    parts = [recent]
    if open_po is not None and len(open_po):
        parts.append(open_po[SERIES_KEYS].drop_duplicates())
    return pd.concat(parts).drop_duplicates(ignore_index=True)
