"""Glue between the warehouse tables and `forecasting/`: the demand history the forecast sees, and the
stock position per SKU x location the reorder policy starts from. Every frame is as of the as-of day."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from forecasting.engine import ForecastConfig, forecast_demand
from forecasting.policy_backtest import compare_policies
from forecasting.promotions import apply_promotions, promoted_days, promotion_uplift
from forecasting.reorder import ReorderPolicy, abc_classes, suggest_reorders
from forecasting.series import active_series, daily_series, impute_censored

OPEN_PO = ("draft", "sent", "partially_received")
UNKNOWN_LOCATION = "(unknown)"

SQL_PRODUCTS = """
SELECT p.sku, p.category, p.cost AS unit_cost, p.price AS unit_price, p.pack_size, p.min_order_qty AS moq, p.active,
       COALESCE(p.lead_time_days, s.lead_time_days, 7) AS lead_time_days,
       COALESCE(p.lead_time_std_days, s.lead_time_std_days, 0) AS lead_time_std_days, s.code AS supplier
FROM products p LEFT JOIN suppliers s ON s.id = p.supplier_id
"""
SQL_LOCATIONS = "SELECT code AS location, kind FROM locations"
SQL_PROMOTIONS = "SELECT scope, target, starts_at, ends_at, active, coupon_code FROM promotions WHERE created_at < :cutoff"


def open_purchase_lines(purchase_orders: pd.DataFrame) -> pd.DataFrame:
    """Units still to arrive per open PO line: sku, location, supplier, expected, quantity."""
    po = purchase_orders[purchase_orders["status"].isin(OPEN_PO)]
    out = po.assign(quantity=(po["quantity_ordered"] - po["quantity_received"]).clip(lower=0), expected=po["expected_at"])
    return out[out["quantity"] > 0][["sku", "location", "supplier", "expected", "quantity"]].reset_index(drop=True)


def demand_history(daily_demand: pd.DataFrame, snapshots: pd.DataFrame, purchase_orders: pd.DataFrame, as_of: date,
                   history_days: int = 730) -> pd.DataFrame:
    """Active series (sold in the last 90 days or on an open PO), dense daily, censored on stockout days."""
    open_lines = open_purchase_lines(purchase_orders)
    series = daily_series(daily_demand[["day", "sku", "location", "units"]], snapshots, as_of, history_days=history_days, extra_series=open_lines)
    active = active_series(series, as_of, open_po=open_lines)
    return series.merge(active, on=["sku", "location"])


def with_promotions(forecast: pd.DataFrame, order_lines: pd.DataFrame, promotions: pd.DataFrame, categories: pd.DataFrame) -> pd.DataFrame:
    """The forecast with known future promotions applied at their category's measured uplift."""
    days = pd.DatetimeIndex(forecast["ds"].drop_duplicates().sort_values())
    if promotions.empty or days.empty:
        return forecast
    uplift = promotion_uplift(order_lines[["sku", "category", "order_date", "units", "discount_total"]])
    return apply_promotions(forecast, promoted_days(promotions, categories, days), categories, uplift)


def positions(snapshots: pd.DataFrame, order_lines: pd.DataFrame, purchase_orders: pd.DataFrame, products: pd.DataFrame,
              locations: pd.DataFrame, series_keys: pd.DataFrame, as_of: date, policy: ReorderPolicy) -> pd.DataFrame:
    """What the reorder policy needs per stocked SKU x location with a forecast: on hand and reserved at the
    close of the as-of day, backordered units waiting at that location, units on open purchase orders,
    the SKU's supplier, case size, minimum order, lead time, cost and ABC class (by network revenue over
    the last 90 days). Dropship locations and inactive SKUs are left out: nobody stocks them."""
    snap = snapshots[pd.to_datetime(snapshots["day"]) == pd.Timestamp(as_of)][["sku", "location", "on_hand", "reserved"]]
    keys = series_keys[["sku", "location"]].drop_duplicates()
    keys = keys[keys["location"] != UNKNOWN_LOCATION]
    stocked = locations[locations["kind"] != "dropship"]["location"]
    keys = keys[keys["location"].isin(stocked)]
    p = keys.merge(snap, on=["sku", "location"], how="left")
    p[["on_hand", "reserved"]] = p[["on_hand", "reserved"]].fillna(0).astype(int)

    back = order_lines[(order_lines["quantity_backordered"] > 0) & order_lines["location"].notna()]
    back = back.groupby(["sku", "location"], as_index=False)["quantity_backordered"].sum().rename(columns={"quantity_backordered": "backordered"})
    p = p.merge(back, on=["sku", "location"], how="left")
    incoming = open_purchase_lines(purchase_orders)
    on_order = incoming.groupby(["sku", "location"], as_index=False)["quantity"].sum().rename(columns={"quantity": "on_order"})
    p = p.merge(on_order, on=["sku", "location"], how="left")
    p[["backordered", "on_order"]] = p[["backordered", "on_order"]].fillna(0).astype(int)

    prod = products.copy()
    prod = prod[prod["active"].astype(bool)]
    p = p.merge(prod.drop(columns=["active"]), on="sku")
    since = pd.Timestamp(as_of - timedelta(days=89))
    recent = order_lines[pd.to_datetime(order_lines["order_date"]) >= since]
    revenue = recent.groupby("sku")["revenue"].sum().reindex(prod["sku"]).fillna(0.0)
    abc = abc_classes(revenue, policy.abc_shares)
    p["abc_class"] = p["sku"].map(abc).fillna("C")
    for col in ("unit_cost", "lead_time_days", "lead_time_std_days"):
        p[col] = p[col].astype(float)
    p[["pack_size", "moq"]] = p[["pack_size", "moq"]].fillna(1).astype(int)
    p["supplier"] = p["supplier"].fillna("")
    return p.reset_index(drop=True)


def reorder_suggestions(pos: pd.DataFrame, forecast: pd.DataFrame, uncertainty: pd.DataFrame, purchase_orders: pd.DataFrame,
                        as_of: date, policy: ReorderPolicy) -> pd.DataFrame:
    """The policy's numbers for every position; only rows with something to order are suggestions."""
    incoming = open_purchase_lines(purchase_orders)
    fc = forecast[forecast["location"] != "ALL"]
    out = suggest_reorders(pos, fc, uncertainty, incoming, as_of, policy)
    out = out[out["suggested_qty"] > 0].sort_values("priority_rank")
    out["priority_rank"] = np.arange(1, len(out) + 1)
    out["as_of"] = pd.Timestamp(as_of)
    out["computed_at"] = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    return out.reset_index(drop=True)


def policy_backtest(history: pd.DataFrame, pos: pd.DataFrame, categories: pd.DataFrame, as_of: date,
                    config: ForecastConfig, policy: ReorderPolicy, *, days: int = 84, max_series: int = 150) -> pd.DataFrame:
    """Replay the last `days` days on up to `max_series` series (the busiest positions: where inventory
    money is), re-forecasting on each weekly review day from the history before it."""
    start = as_of - timedelta(days=days - 1)
    hist = history.assign(demand=impute_censored(history))
    volume = hist[hist["ds"] >= pd.Timestamp(start)].groupby(["sku", "location"])["demand"].sum()
    pos = pos.merge(volume.rename("volume").reset_index(), on=["sku", "location"])
    pos = pos[pos["volume"] > 0].sort_values(["volume", "sku", "location"], ascending=[False, True, True]).head(max_series)
    if pos.empty:
        return pd.DataFrame(columns=["policy", "series", "days", "target_fill_rate", "fill_rate", "stockout_days",
                                     "avg_inventory_value", "orders_placed", "units_ordered", "min_max_k"])
    keys = pos[["sku", "location"]].reset_index(drop=True)
    sample = history.merge(keys, on=["sku", "location"])
    series = hist.merge(keys, on=["sku", "location"])
    params = pos.assign(service_level=pos["abc_class"].map(policy.service_levels).fillna(0.9)).reset_index(drop=True)

    def forecast_at(day: date):  # type: ignore[no-untyped-def]
        r = forecast_demand(sample[sample["ds"] <= pd.Timestamp(day)], day, categories=categories, config=config)
        return r.forecast[r.forecast["location"] != "ALL"], r.uncertainty

    return compare_policies(series, keys, params, start, days, forecast_at, review_days=int(policy.review_period_days))
