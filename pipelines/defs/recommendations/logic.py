"""Glue between the warehouse/database and `forecasting.recommend`: what a customer's channel and segment
are, what is available to promise per channel, which returns say "I did not want this", which promotions
are running. Plain functions on DataFrames; the SQL reads only what existed by the as-of cut-off."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd

from forecasting.recommend import Rules, evaluate, fit, offer_targets, recommend, related_products, replenishment, tune_weights

UNWANTED_REASONS = frozenset({"no_longer_needed", "not_as_described", "size_fit"})
"""Return reasons that say the customer does not want the item itself (not: damaged, defective, wrong item,
late delivery -- the retailer's fault -- nor 'other')."""

SQL_PRODUCTS = "SELECT sku, name, category, price, active FROM products WHERE created_at < :cutoff"

SQL_CHANNEL_LOCATIONS = """
SELECT c.code AS channel, l.code AS location
FROM channel_locations cl
JOIN channels c ON c.id = cl.channel_id
JOIN locations l ON l.id = cl.location_id
WHERE c.active = :yes AND l.active = :yes
"""

SQL_PROMOTIONS = """
SELECT id AS promotion_id, name, kind, scope, target, value, buy_quantity, get_quantity, usage_limit_per_customer,
       starts_at, ends_at
FROM promotions
WHERE active = :yes AND created_at < :cutoff AND (starts_at IS NULL OR starts_at < :cutoff) AND (ends_at IS NULL OR ends_at >= :day_start)
"""


SQL_REDEMPTIONS = """
SELECT r.promotion_id, r.customer_id, COUNT(*) AS redemptions
FROM promotion_redemptions r
WHERE r.voided = :no AND r.customer_id IS NOT NULL AND r.at < :cutoff
GROUP BY r.promotion_id, r.customer_id
"""


def used_up(promotions: pd.DataFrame, redemptions: pd.DataFrame) -> pd.DataFrame:
    """promotion_id, customer_id pairs that reached the promotion's per-customer usage limit."""
    if promotions.empty or redemptions.empty:
        return pd.DataFrame({"promotion_id": pd.Series(dtype="int64"), "customer_id": pd.Series(dtype="int64")})
    limits = promotions[["promotion_id", "usage_limit_per_customer"]].dropna()
    r = redemptions.merge(limits, on="promotion_id")
    r = r[r["redemptions"] >= r["usage_limit_per_customer"]]
    return r[["promotion_id", "customer_id"]].astype("int64").reset_index(drop=True)


def products(raw: pd.DataFrame) -> pd.DataFrame:
    df = raw.copy()
    df["sku"] = df["sku"].astype(str)
    df["active"] = df["active"].astype(bool)
    df["price"] = pd.to_numeric(df["price"], errors="coerce").astype("float64")
    return df


def availability(snapshots: pd.DataFrame, channel_locations: pd.DataFrame) -> pd.DataFrame:
    """Units available to promise (on hand less reserved, latest day) per SKU x channel, over the active
    locations that serve the channel."""
    if snapshots.empty or channel_locations.empty:
        return pd.DataFrame({"sku": pd.Series(dtype="object"), "channel": pd.Series(dtype="object"), "available": pd.Series(dtype="int64")})
    last = snapshots[snapshots["day"] == snapshots["day"].max()]
    stock = last.groupby(["sku", "location"], as_index=False)["available"].sum()
    stock = stock[stock["available"] > 0]
    out = stock.merge(channel_locations, on="location").groupby(["sku", "channel"], as_index=False)["available"].sum()
    out["sku"] = out["sku"].astype(str)
    return out


def customer_profiles(customers: pd.DataFrame, segments: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """customer_id, segment (RFM segment, else the core's segment, else 'new'), channel (where they place
    most orders; null without orders), marketing_consent."""
    prof = customers[["customer_id", "core_segment", "marketing_consent"]].copy()
    prof["customer_id"] = prof["customer_id"].astype("int64")
    rfm = segments.set_index("customer_id")["segment"] if len(segments) else pd.Series(dtype="object")
    prof["segment"] = prof["customer_id"].map(rfm).fillna(prof["core_segment"]).fillna("new").astype(str)
    l = lines[lines["customer_id"].notna()]
    orders = l.drop_duplicates("order_id")[["customer_id", "channel", "placed_at"]]
    if len(orders):
        counts = orders.groupby(["customer_id", "channel"]).agg(n=("placed_at", "size"), last=("placed_at", "max")).reset_index()
        counts = counts.sort_values(["customer_id", "n", "last"], ascending=[True, False, False]).drop_duplicates("customer_id")
        prof["channel"] = prof["customer_id"].map(counts.set_index(counts["customer_id"].astype("int64"))["channel"])
    else:
        prof["channel"] = None
    return prof[["customer_id", "segment", "channel", "marketing_consent"]]


def unwanted_returns(returns: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """customer_id, sku the customer returned for a reason that says they did not want it."""
    if returns.empty:
        return pd.DataFrame({"customer_id": pd.Series(dtype="int64"), "sku": pd.Series(dtype="object")})
    r = returns[returns["reason_code"].isin(UNWANTED_REASONS) & (returns["status"] != "cancelled")]
    who = lines[["line_id", "customer_id"]].dropna()
    out = r.merge(who, left_on="order_line_id", right_on="line_id")[["customer_id", "sku"]].dropna().drop_duplicates()
    out["customer_id"] = out["customer_id"].astype("int64")
    out["sku"] = out["sku"].astype(str)
    return out.reset_index(drop=True)


def build_recommendations(lines: pd.DataFrame, customers: pd.DataFrame, segments: pd.DataFrame, returns: pd.DataFrame,
                          snapshots: pd.DataFrame, product_rows: pd.DataFrame, channel_locations: pd.DataFrame,
                          as_of: date, rules: Rules | None = None) -> pd.DataFrame:
    """Blend weights tuned on the last 28 days (fit before them, score them), then the model fitted on everything."""
    catalog = products(product_rows)
    rules, _ = tune_weights(lines, as_of, rules=rules)
    sold = lines["sku"].dropna().astype(str).unique()
    model = fit(lines, as_of, skus=np.union1d(sold, catalog.loc[catalog["active"], "sku"].to_numpy(dtype=str)))
    return recommend(model, customer_profiles(customers, segments, lines), catalog=catalog,
                     availability=availability(snapshots, channel_locations), unwanted=unwanted_returns(returns, lines),
                     replenish=replenishment(lines, as_of), rules=rules)


def build_related(lines: pd.DataFrame, as_of: date) -> pd.DataFrame:
    return related_products(lines, as_of)


def build_offer_targets(lines: pd.DataFrame, customers: pd.DataFrame, product_rows: pd.DataFrame, promotions: pd.DataFrame,
                        as_of: date, redemptions: pd.DataFrame | None = None) -> pd.DataFrame:
    consenting = customers.loc[customers["marketing_consent"].astype(bool), "customer_id"].astype("int64").to_numpy()
    exhausted = used_up(promotions, redemptions) if redemptions is not None else None
    return offer_targets(fit(lines, as_of, factors=0), promotions, lines, products(product_rows), consenting, used_up=exhausted)


def build_evaluation(lines: pd.DataFrame, as_of: date) -> tuple[pd.DataFrame, Rules]:
    """The evaluation table and the rules it ran with (blend weights tuned before the cut-off)."""
    table, info = evaluate(lines, as_of)
    return table, info["rules"]


def day_start(as_of: date) -> datetime:
    return datetime(as_of.year, as_of.month, as_of.day)


def bools(store_is_sqlite: bool) -> dict[str, object]:
    return {"yes": 1, "no": 0} if store_is_sqlite else {"yes": True, "no": False}

