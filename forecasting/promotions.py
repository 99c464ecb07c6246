"""Known promotions in the forecast: a SKU or category discounted on a future day sells more that day.

The uplift is measured, not assumed: per category, units on SKU-days sold with a discount over the same
SKUs' average units on days without one, shrunk towards no uplift when there were few promoted days, and
capped. A category that never ran a promotion gets none. The factor depends on SKU and day only, so the
locations still add up to the totals after it is applied.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MAX_UPLIFT = 3.0
SHRINK_DAYS = 20.0
"""Promoted SKU-days at which the measured uplift counts half."""


def promotion_uplift(lines: pd.DataFrame) -> pd.Series:
    """Uplift factor (>= 1) per category from order lines (`sku, category, order_date, units, discount_total`)."""
    if lines.empty:
        return pd.Series(dtype=float)
    l = lines.assign(day=pd.to_datetime(lines["order_date"]).dt.normalize(), promoted=lines["discount_total"].astype(float) > 0)
    sku_day = l.groupby(["sku", "category", "day"], as_index=False).agg(units=("units", "sum"), promoted=("promoted", "max"))
    base = sku_day[~sku_day["promoted"]].groupby("sku")["units"].mean()
    promo = sku_day[sku_day["promoted"]].assign(baseline=lambda d: d["sku"].map(base)).dropna(subset=["baseline"])
    if promo.empty:
        return pd.Series(dtype=float)
    g = promo.groupby("category")
    raw = g["units"].sum() / g["baseline"].sum()
    n = g.size()
    shrunk = 1.0 + (raw - 1.0) * n / (n + SHRINK_DAYS)
    return shrunk.clip(lower=1.0, upper=MAX_UPLIFT)


def promoted_days(promotions: pd.DataFrame, categories: pd.DataFrame, days: pd.DatetimeIndex) -> pd.DataFrame:
    """SKU x day pairs covered by an automatic (no coupon), active SKU- or category-scope promotion.
    `promotions`: scope, target, starts_at, ends_at, active, coupon_code. Returns `sku, ds`."""
    p = promotions[promotions["active"].astype(bool) & promotions["coupon_code"].isna() & promotions["scope"].isin(["sku", "category"])]
    rows = []
    for promo in p.itertuples():
        start = _day(promo.starts_at) if pd.notna(promo.starts_at) else days.min()
        end = _day(promo.ends_at) if pd.notna(promo.ends_at) else days.max()
        covered = days[(days >= start) & (days <= end)]
        skus = [promo.target] if promo.scope == "sku" else categories.loc[categories["category"] == promo.target, "sku"].tolist()
        rows += [(s, d) for s in skus for d in covered]
    return pd.DataFrame(rows, columns=["sku", "ds"]).drop_duplicates()


def _day(value: object) -> pd.Timestamp:
    """The UTC day of a timestamp, naive (as the forecast's `ds`)."""
    ts = pd.Timestamp(value)
    return (ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts).normalize()


def apply_promotions(forecast: pd.DataFrame, covered: pd.DataFrame, categories: pd.DataFrame, uplift: pd.Series) -> pd.DataFrame:
    """Multiply forecast and bands on promoted SKU-days by the SKU category's uplift; the model name says so."""
    if covered.empty or uplift.empty:
        return forecast
    factor = covered.assign(category=covered["sku"].map(categories.drop_duplicates("sku").set_index("sku")["category"]))
    factor["factor"] = factor["category"].map(uplift).fillna(1.0)
    factor = factor[factor["factor"] > 1.0][["sku", "ds", "factor"]]
    if factor.empty:
        return forecast
    out = forecast.merge(factor, on=["sku", "ds"], how="left")
    hit = out["factor"].notna()
    for col in ("forecast", "lo_80", "hi_80", "lo_95", "hi_95"):
        out.loc[hit, col] = out.loc[hit, col] * out.loc[hit, "factor"]
    out.loc[hit, "model"] = out.loc[hit, "model"] + "+Promotion"
    return out.drop(columns=["factor"]).astype({"forecast": float}).pipe(lambda d: d.assign(forecast=np.maximum(d["forecast"], 0.0)))
