"""Dashboards: each page's first render and one filter change, through Streamlit's AppTest (the server side of
a page view: the script run, the Parquet/DuckDB reads and the charts built), on a synthetic warehouse shaped
like a 5,000,000-line store's.

Target (issue #8): every page's first render < 2 s and a filter change < 1 s at 5M lines, 2 cores.
'large' writes marts with the row counts of a 5M-line store (2 years, 5,000 SKUs, 20 locations, 5 channels,
300,000 customers): 5M order lines, ~2.5M daily demand rows, 7.3M inventory snapshot rows, 1.5M forecast
rows, 3M recommendations; 'small' is a tenth of that. The database for the order lookup is the small demo
store (the lookup is indexed point reads, independent of the warehouse size).
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import Metric

SCALES = {"small": 0.1, "large": 1.0}
FIRST_RENDER_S, FILTER_CHANGE_S = 2.0, 1.0
AS_OF = date(2026, 11, 25)
DAYS = 730


def _write(warehouse: Path, name: str, df: pd.DataFrame) -> None:
    df.to_parquet(warehouse / f"{name}.parquet", index=False, row_group_size=1_000_000)


def build_warehouse(warehouse: Path, scale: float, seed: int = 5) -> dict[str, int]:
    """Synthetic marts with the documented columns the pages read, at the row counts of a 5M-line store x scale."""
    rng = np.random.default_rng(seed)
    warehouse.mkdir(parents=True, exist_ok=True)
    n_skus, n_locations, n_customers = int(5_000 * max(scale, 0.2)), 20, int(300_000 * scale)
    skus = np.array([f"SKU{i:05d}" for i in range(n_skus)])
    categories = np.array([f"cat{i:02d}" for i in range(50)])
    sku_category = categories[np.arange(n_skus) % len(categories)]
    locations = np.array([f"ST{i:02d}" for i in range(1, n_locations + 1)])
    channels = np.array(["web", "app", "pos", "marketplace", "phone"])
    first = pd.Timestamp(AS_OF) - pd.Timedelta(days=DAYS - 1)
    day_index = pd.date_range(first, periods=DAYS, freq="D")
    counts = {}

    n_lines = int(5_000_000 * scale)
    orders = n_lines // 3
    order_of_line = np.sort(rng.integers(0, orders, n_lines))
    order_day = np.sort(rng.integers(0, DAYS, orders))
    sku_i = rng.zipf(1.3, n_lines) % n_skus
    units = rng.integers(1, 4, n_lines)
    price = (5 + (np.arange(n_skus) % 97)).astype("float64")
    order_channel = rng.integers(0, len(channels), orders)
    order_location = rng.integers(0, n_locations, orders)
    order_customer = rng.integers(1, n_customers + 1, orders)
    lines = pd.DataFrame({
        "line_id": np.arange(1, n_lines + 1), "order_id": order_of_line + 1, "sku": skus[sku_i], "category": sku_category[sku_i],
        "location": locations[order_location[order_of_line]], "channel": channels[order_channel[order_of_line]],
        "customer_id": order_customer[order_of_line], "placed_at": day_index[order_day[order_of_line]] + pd.Timedelta(hours=12),
        "order_date": day_index[order_day[order_of_line]], "units": units, "quantity": units,
        "revenue": np.round(units * price[sku_i], 2), "net_revenue": np.round(units * price[sku_i] * 0.92, 2),
        "cogs": np.round(units * price[sku_i] * 0.45, 2)})
    _write(warehouse, "stg_order_lines", lines)
    counts["stg_order_lines"] = len(lines)

    demand = (lines.groupby(["order_date", "sku", "category", "location", "channel"], observed=True)
              .agg(units=("units", "sum"), revenue=("revenue", "sum"), orders=("order_id", "nunique")).reset_index()
              .rename(columns={"order_date": "day"}))
    demand["closing_on_hand"] = pd.array(rng.integers(0, 50, len(demand)), dtype="Int64")
    demand["stockout"] = pd.array(demand["closing_on_hand"] <= 0, dtype="boolean")
    _write(warehouse, "daily_demand", demand)
    counts["daily_demand"] = len(demand)

    day_rows = lines.groupby(["order_date", "channel"]).agg(revenue=("revenue", "sum"), net_revenue=("net_revenue", "sum"),
                                                            orders=("order_id", "nunique"), units=("units", "sum"),
                                                            cogs=("cogs", "sum")).reset_index()
    all_rows = day_rows.groupby("order_date", as_index=False)[["revenue", "net_revenue", "orders", "units", "cogs"]].sum()
    all_rows["channel"] = "ALL"
    sales = pd.concat([day_rows, all_rows]).rename(columns={"order_date": "period_start"})
    sales["grain"] = "day"
    sales["key"] = sales["period_start"].dt.strftime("%Y-%m-%d")
    for c in ["discounts", "aov", "units_per_order", "gross_margin", "gross_margin_rate", "discount_share", "promo_uplift",
              "channel_share"]:
        sales[c] = 0.0
    _write(warehouse, "kpi_sales", sales)
    counts["kpi_sales"] = len(sales)

    snap_skus = min(n_skus, int(2_000 * max(scale, 0.25)))
    snap_locs, snap_days = 10, 365
    s_idx = np.repeat(np.arange(snap_skus), snap_locs * snap_days)
    snaps = pd.DataFrame({"day": np.tile(np.repeat(day_index[-snap_days:], 1), snap_skus * snap_locs),
                          "sku": skus[s_idx], "location": np.tile(np.repeat(locations[:snap_locs], snap_days), snap_skus),
                          "on_hand": rng.integers(-2, 40, len(s_idx))})
    snaps["stockout"] = snaps["on_hand"] <= 0
    _write(warehouse, "stg_inventory_snapshots", snaps)
    counts["stg_inventory_snapshots"] = len(snaps)

    weeks = pd.date_range(first - pd.Timedelta(days=first.weekday()), pd.Timestamp(AS_OF), freq="W-MON")

    def mart(keys: dict[str, list], numeric: list[str], ints: list[str]) -> pd.DataFrame:
        parts = []
        for grain, values in keys.items():
            part = pd.DataFrame({"grain": grain, "key": [str(v.date()) if isinstance(v, pd.Timestamp) else v for v in values]})
            part["period_start"] = pd.to_datetime(part["key"].where(part["grain"] == "week"), errors="coerce")
            parts.append(part)
        df = pd.concat(parts, ignore_index=True)
        for c in numeric:
            df[c] = rng.random(len(df))
        for c in ints:
            df[c] = rng.integers(10, 10_000, len(df))
        return df

    _write(warehouse, "kpi_fulfilment", mart(
        {"location": list(locations), "channel": list(channels), "carrier": ["ups", "usps", "fedex", "dhl", "(none)"], "week": list(weeks)},
        ["order_cycle_hours", "click_to_ship_hours", "shipping_cost", "pickup_ready_hours", "on_time_rate", "fill_rate_lines",
         "fill_rate_units", "perfect_order_rate", "split_shipment_rate", "shipping_cost_per_order", "carrier_delay_rate"],
        ["orders", "processed_orders", "lines", "lines_filled", "units_ordered", "units_fulfilled", "perfect_orders", "shipped_orders",
         "split_orders", "shipments", "delivered_with_promise", "delivered_on_time", "dispatched_shipments", "delayed_shipments"]))
    _write(warehouse, "kpi_inventory", mart(
        {"sku": list(skus), "category": list(categories), "location": list(locations), "week": list(weeks)},
        ["net_revenue", "cogs", "avg_inventory_value", "closing_inventory_value", "lost_sales_units", "lost_sales_value",
         "overstock_value", "aged_inventory_value", "turnover", "days_of_supply", "sell_through", "stockout_rate", "gmroi"],
        ["days_tracked", "units_sold", "closing_on_hand", "stockout_days", "tracked_days"]))
    returns = mart({"category": list(categories), "sku": list(skus), "reason": ["damaged", "size_fit", "late", "no_longer_needed"]},
                   ["refund_amount", "write_off_value", "return_rate", "restock_rate"],
                   ["returned_units", "returns", "restock_units", "write_off_units", "pending_units", "units_fulfilled"])
    _write(warehouse, "kpi_returns", returns.drop(columns="period_start"))
    _write(warehouse, "kpi_feedback", mart({"all": ["all"], "week": list(weeks), "channel": list(channels)}, ["avg_rating", "csat", "nps"],
                                           ["responses", "satisfied", "nps_responses", "promoters", "detractors"]))

    customers = np.arange(1, n_customers + 1)
    segments = pd.DataFrame({"customer_id": customers, "last_order_date": pd.Timestamp(AS_OF) - pd.to_timedelta(
        rng.integers(0, DAYS, n_customers), unit="D"), "recency_days": rng.integers(0, DAYS, n_customers),
        "frequency": rng.integers(1, 30, n_customers), "monetary": rng.random(n_customers) * 2_000,
        "r_score": rng.integers(1, 6, n_customers), "f_score": rng.integers(1, 6, n_customers), "m_score": rng.integers(1, 6, n_customers)})
    segments["rfm"] = segments["r_score"].astype(str) + segments["f_score"].astype(str) + segments["m_score"].astype(str)
    segments["segment"] = np.array(["champions", "loyal", "new", "potential_loyalist", "at_risk", "hibernating", "needs_attention"])[
        rng.integers(0, 7, n_customers)]
    _write(warehouse, "customer_segments", segments)
    _write(warehouse, "stg_customers", pd.DataFrame({"customer_id": customers, "marketing_consent": rng.random(n_customers) < 0.6,
                                                     "orders": segments["frequency"], "revenue": segments["monetary"]}))
    months = pd.date_range(first, periods=24, freq="MS")
    cohorts = pd.DataFrame([{"cohort_month": m, "months_since": k, "period_start": m + pd.DateOffset(months=k), "cohort_size": 10_000,
                             "active_customers": int(10_000 * 0.8 ** k), "orders": 12_000, "revenue": 1e6, "new_repeaters": 100,
                             "retention": 0.8 ** k, "repeat_rate": 0.3, "ltv_to_date": 120.0, "est_ltv_12m": 300.0}
                            for i, m in enumerate(months) for k in range(24 - i)])
    _write(warehouse, "customer_cohorts", cohorts)

    fc_locs = np.concatenate([["ALL"], locations[:10]])
    n_series = n_skus * len(fc_locs)
    horizon = pd.date_range(pd.Timestamp(AS_OF) + pd.Timedelta(days=1), periods=28, freq="D")
    level = np.repeat(rng.random(n_series) * 5, 28)
    forecast = pd.DataFrame({"sku": np.repeat(np.repeat(skus, len(fc_locs)), 28), "location": np.tile(np.repeat(fc_locs, 28), n_skus),
                             "ds": np.tile(horizon, n_series), "forecast": level})
    for name, k in (("lo_80", 0.7), ("hi_80", 1.3), ("lo_95", 0.5), ("hi_95", 1.5)):
        forecast[name] = level * k
    forecast["model"] = "AutoETS"
    _write(warehouse, "demand_forecast", forecast)
    counts["demand_forecast"] = len(forecast)
    bt_skus, bt_locs = np.repeat(skus, len(fc_locs)), np.tile(fc_locs, n_skus)
    backtest = pd.concat([pd.DataFrame({"sku": bt_skus, "location": bt_locs, "category": np.repeat(sku_category, len(fc_locs)),
                                        "series_class": np.array(["smooth", "erratic", "intermittent", "lumpy"])[np.arange(n_series) % 4],
                                        "model": model, "selected": model == "AutoETS", "mase": rng.random(n_series) + 0.5,
                                        "rmsse": rng.random(n_series), "wape": rng.random(n_series), "bias": rng.random(n_series) - 0.5,
                                        "windows": 3}) for model in ("AutoETS", "SeasonalNaive")], ignore_index=True)
    _write(warehouse, "forecast_backtest", backtest)

    n_sug = min(5_000, n_series)
    pick = rng.choice(n_series, n_sug, replace=False)
    priorities = np.array(["urgent", "high", "medium", "low"])[rng.integers(0, 4, n_sug)]
    sug = pd.DataFrame({"sku": bt_skus[pick], "location": np.where(bt_locs[pick] == "ALL", locations[0], bt_locs[pick]),
                        "supplier": np.array([f"SUP{i:02d}" for i in range(30)])[rng.integers(0, 30, n_sug)],
                        "category": np.repeat(sku_category, len(fc_locs))[pick], "suggested_qty": rng.integers(1, 200, n_sug),
                        "estimated_cost": rng.random(n_sug) * 1_000, "days_of_cover": rng.random(n_sug) * 20,
                        "expected_stockout_date": pd.Timestamp(AS_OF) + pd.to_timedelta(rng.integers(1, 30, n_sug), unit="D"),
                        "inventory_position": rng.integers(0, 50, n_sug), "reorder_point": 40, "order_up_to": 120,
                        "priority": priorities, "priority_rank": 0, "reason": "Position below the reorder point"})
    sug = sug.drop_duplicates(["sku", "location"])
    sug["priority_rank"] = np.arange(1, len(sug) + 1)
    _write(warehouse, "reorder_suggestions", sug)
    _write(warehouse, "reorder_policy_backtest", pd.DataFrame({
        "policy": ["forecast", "min_max"], "series": n_series, "days": 90, "target_fill_rate": 0.95, "fill_rate": [0.96, 0.9],
        "stockout_days": [120, 480], "avg_inventory_value": [1e6, 1.3e6], "orders_placed": [9000, 7000], "units_ordered": [4e5, 4.2e5]}))

    n_recs = n_customers * 10
    recs = pd.DataFrame({"customer_id": np.repeat(customers, 10), "sku": skus[rng.integers(0, n_skus, n_recs)],
                         "rank": np.tile(np.arange(1, 11), n_customers), "score": rng.random(n_recs), "reason": "Often bought together",
                         "kind": "new"})
    _write(warehouse, "recommendations", recs)
    counts["recommendations"] = len(recs)
    _write(warehouse, "related_products", pd.DataFrame({"sku": np.repeat(skus, 10), "related_sku": skus[rng.integers(0, n_skus, n_skus * 10)],
                                                        "rank": np.tile(np.arange(1, 11), n_skus), "support": 0.01, "confidence": 0.2,
                                                        "lift": 1.5}))
    n_offers = 10 * min(20_000, n_customers)
    _write(warehouse, "offer_targets", pd.DataFrame({"promotion_id": np.repeat(np.arange(1, 11), n_offers // 10),
                                                     "customer_id": rng.integers(1, n_customers + 1, n_offers),
                                                     "score": rng.random(n_offers), "expected_uplift": rng.random(n_offers)}))
    _write(warehouse, "recommendation_evaluation", pd.DataFrame(
        [{"model": m, "scenario": s, "precision_at_10": 0.1, "recall_at_10": 0.2, "ndcg_at_10": 0.15, "coverage": 0.5,
          "customers": 5000, "cutoff": pd.Timestamp(AS_OF - timedelta(days=28)), "test_days": 28}
         for m in ("model", "popularity") for s in ("new_items", "with_repurchase")]))
    return counts


# Per page: a filter change a user makes there (widget key, new value).
CHANGES = {
    "overview": ("f_locations", ["ST01", "ST02"]),
    "fulfilment": ("f_dates", (AS_OF - timedelta(days=90), AS_OF)),
    "inventory": ("f_categories", ["cat01"]),
    "returns": ("f_categories", ["cat02"]),
    "forecasts": ("fc_location", "ST01"),
    "reorder": ("ro_priorities", ["urgent"]),
    "recommendations": ("rc_customer", 4242),
    "segments": ("of_promotion", 3),
    "order_lookup": ("ol_query", None),  # the order number, known once the store exists
}


def _set(at, key: str, value) -> None:  # type: ignore[no-untyped-def]
    for kind in ("multiselect", "selectbox", "date_input", "number_input", "text_input"):
        widgets = [w for w in getattr(at, kind) if w.key == key]
        if widgets:
            widgets[0].set_value(value)
            return
    raise KeyError(key)


def measure(home: Path, name: str = "dashboards", *, judged: bool = True) -> list[Metric]:
    """Per page: the first render (server up, data caches cold), then one filter change, in one AppTest session
    (as a user clicks through)."""
    from sqlalchemy import select
    from streamlit.testing.v1 import AppTest

    from om_core.config import get_settings
    from om_core.db import Database
    from om_core.demo import build_demo_store
    from om_core.models import Order

    app = Path(__file__).resolve().parents[1] / "dashboards" / "streamlit_app.py"
    metrics = []
    os.environ.pop("STOREOM_DATABASE_URL", None)
    with tempfile.TemporaryDirectory() as empty:  # the server process's one-off start-up, apart from any page's data
        os.environ["STOREOM_HOME"] = empty
        started = time.perf_counter()
        AppTest.from_file(str(app), default_timeout=120).run()
        import plotly.express as px  # plotly builds its figure machinery on the first figure of a process

        px.bar(pd.DataFrame({"x": ["a"], "y": [1]}), x="x", y="y").to_plotly_json()
        metrics.append(Metric(name, "app start (imports, first figure)", time.perf_counter() - started, "s"))
    os.environ["STOREOM_HOME"] = str(home)
    build_demo_store(get_settings(), order_count=40, days=14)
    db = Database(get_settings().database_url)
    with db.read() as s:
        number = s.scalar(select(Order.number).order_by(Order.id.desc()).limit(1))
    db.dispose()
    changes = {**CHANGES, "order_lookup": ("ol_query", number)}
    at = AppTest.from_file(str(app), default_timeout=120)
    for page, (key, value) in changes.items():
        started = time.perf_counter()
        if page == "overview":
            at.run()  # the default page: the app's first run renders it (and the sidebar)
        else:
            at.switch_page(f"app_pages/{page}.py").run()
        first = time.perf_counter() - started
        failed = bool(at.exception)
        _set(at, key, value)
        started = time.perf_counter()
        at.run()
        change = time.perf_counter() - started
        failed = failed or bool(at.exception)
        metrics.append(Metric(name, f"{page} first render", first, "s", f"< {FIRST_RENDER_S:g}",
                              passed=(first < FIRST_RENDER_S and not failed) if judged else None))
        metrics.append(Metric(name, f"{page} filter change ({key})", change, "s", f"< {FILTER_CHANGE_S:g}",
                              passed=(change < FILTER_CHANGE_S and not failed) if judged else None))
        if page == "forecasts":  # picking another SKU re-reads its history, stock and forecast
            _set(at, "fc_sku", "SKU00007")
            started = time.perf_counter()
            at.run()
            other = time.perf_counter() - started
            metrics.append(Metric(name, "forecasts another SKU (fc_sku)", other, "s", f"< {FILTER_CHANGE_S:g}",
                                  passed=(other < FILTER_CHANGE_S and not at.exception) if judged else None))
        if failed:
            metrics.append(Metric(name, f"{page} raised", 1, "error", "0", passed=False))
        for k in ("f_locations", "f_categories"):  # later pages start from the unfiltered view again
            if k in at.session_state:
                at.session_state[k] = []
    return metrics


def run(size: str = "small") -> list[Metric]:
    scale = SCALES.get(size, SCALES["small"])
    name = "dashboards"
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        started = time.perf_counter()
        counts = build_warehouse(home / "warehouse", scale)
        metrics = [Metric(name, f"build synthetic warehouse (x{scale:g} of 5M lines)", time.perf_counter() - started, "s")]
        metrics += [Metric(name, f"  rows: {asset}", rows, "rows") for asset, rows in counts.items()]
        metrics += measure(home, name, judged=scale >= 1)
    return metrics


if __name__ == "__main__":
    import sys

    from bench.common import print_table

    print_table(run(sys.argv[1] if len(sys.argv) > 1 else "small"))
