"""Replenishment: consumables a customer buys again and again, suggested when they are about to run out.

Per customer x SKU the repeat interval is the median number of days between distinct purchase days (two
purchases at least); a consumable bought once takes its category's typical interval (the median of the
customers' own intervals there) and half the score. It is due when the days since the last purchase reach the interval less a lead
(`max(lead_days, lead_share x interval)`), and stops being due at `max_overdue x interval` (by then the
customer buys it elsewhere or has stopped). A SKU bought yesterday is never due.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from forecasting.recommend.model import purchases

MIN_PURCHASES = 2
CONSUMABLE_SHARE = 0.10
LEAD_DAYS = 3.0
LEAD_SHARE = 0.5
MAX_OVERDUE = 3.0
SINGLE_PURCHASE_WEIGHT = 0.5

COLUMNS = ["customer_id", "sku", "purchases", "interval_days", "typical", "last_purchase", "days_since", "due_from", "due_until",
           "due", "score"]


def consumable_categories(lines: pd.DataFrame, as_of: date | pd.Timestamp, min_share: float = CONSUMABLE_SHARE) -> set[str]:
    """Categories where at least `min_share` of customer x SKU pairs were bought on two or more days:
    what people buy again rather than once (coffee, pet food; not jackets)."""
    p = purchases(lines, as_of)
    days = p.groupby(["category", "customer_id", "sku"], sort=False)["order_date"].nunique()
    share = (days >= 2).groupby(level=0).mean()
    return set(share[share >= min_share].index.astype(str))


def replenishment(lines: pd.DataFrame, as_of: date | pd.Timestamp, *, categories: set[str] | None = None,
                  min_purchases: int = MIN_PURCHASES, lead_days: float = LEAD_DAYS, lead_share: float = LEAD_SHARE,
                  max_overdue: float = MAX_OVERDUE, single_purchase_weight: float = SINGLE_PURCHASE_WEIGHT) -> pd.DataFrame:
    """Every customer x SKU with a repeat interval, whether it is due on the day after `as_of`, and a
    due score (1 on the expected day, falling to 0 at the ends of the window). `categories`: the
    consumable categories (default: inferred with `consumable_categories`)."""
    p = purchases(lines, as_of)
    if categories is None:
        categories = consumable_categories(lines, as_of)
    p = p[p["category"].astype(str).isin(categories)]
    if p.empty:
        return pd.DataFrame(columns=COLUMNS)
    d = p[["customer_id", "sku", "order_date"]].drop_duplicates().sort_values(["customer_id", "sku", "order_date"])
    same = (d["customer_id"].to_numpy()[1:] == d["customer_id"].to_numpy()[:-1]) & (d["sku"].to_numpy()[1:] == d["sku"].to_numpy()[:-1])
    gaps = np.r_[np.nan, np.where(same, np.diff(d["order_date"].to_numpy()).astype("timedelta64[D]").astype("float64"), np.nan)]
    d["gap"] = gaps
    g = d.groupby(["customer_id", "sku"], sort=False)
    out = pd.DataFrame({"purchases": g.size(), "interval_days": g["gap"].median(), "last_purchase": g["order_date"].max()}).reset_index()
    out["typical"] = False
    if single_purchase_weight > 0:
        cat = p.drop_duplicates("sku").set_index("sku")["category"]
        out["category"] = out["sku"].map(cat)
        typical = out[out["purchases"] >= min_purchases].groupby("category")["interval_days"].median()
        once = (out["purchases"] < min_purchases) & out["category"].isin(typical.index)
        out.loc[once, "interval_days"] = out.loc[once, "category"].map(typical)
        out.loc[once, "typical"] = True
    out = out[((out["purchases"] >= min_purchases) | out["typical"]) & out["interval_days"].notna()]
    next_day = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    out["days_since"] = (next_day - out["last_purchase"]).dt.days.astype("int64")
    interval = out["interval_days"].to_numpy(dtype="float64")
    out["due_from"] = interval - np.maximum(lead_days, lead_share * interval)
    out["due_until"] = max_overdue * interval
    since = out["days_since"].to_numpy(dtype="float64")
    out["due"] = (since >= out["due_from"].to_numpy()) & (since <= out["due_until"].to_numpy())
    early = np.clip((since - out["due_from"].to_numpy()) / np.maximum(interval - out["due_from"].to_numpy(), 1e-9), 0, 1)
    late = np.clip(1 - (since - interval) / np.maximum(out["due_until"].to_numpy() - interval, 1e-9), 0, 1)
    out["score"] = np.where(out["due"], np.where(since <= interval, early, late), 0.0) * np.where(out["typical"], single_purchase_weight, 1.0)
    return out[COLUMNS].reset_index(drop=True)
