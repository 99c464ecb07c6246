"""Sales for the chosen filters, the same formulas as `kpi_sales` (docs/kpis.md).

The sales mart answers date x channel; once a location or category is chosen the figures come from
the order lines (`stg_order_lines`) with the mart's rules: lines with a placement and units sold,
revenue = Σ line revenue, orders = distinct orders, margin = net revenue - cogs.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from dashboards import data
from dashboards.filters import Filters

DAILY_COLUMNS = ["day", "channel", "revenue", "net_revenue", "cogs", "orders", "units"]


def daily(f: Filters, start: date, end: date) -> pd.DataFrame | None:
    """Per day x channel from `start` to `end` (inclusive) within the filters; None when the source is missing."""
    ch, ch_params = data.in_list("channel", f.channels)
    if not f.sliced:
        return data.query("kpi_sales", f"""
            SELECT CAST(period_start AS DATE) AS day, channel, revenue, net_revenue, cogs, orders, units FROM {{src}}
            WHERE grain = 'day' AND channel <> 'ALL' AND {ch} AND CAST(period_start AS DATE) BETWEEN ? AND ?
            ORDER BY day, channel""", [*ch_params, start, end])
    loc, loc_params = data.in_list("location", f.locations)
    cat, cat_params = data.in_list("category", f.categories)
    return data.query("stg_order_lines", f"""
        SELECT CAST(order_date AS DATE) AS day, channel, SUM(revenue) AS revenue, SUM(net_revenue) AS net_revenue,
               SUM(cogs) AS cogs, COUNT(DISTINCT order_id) AS orders, SUM(units) AS units FROM {{src}}
        WHERE placed_at IS NOT NULL AND units > 0 AND {ch} AND {loc} AND {cat} AND CAST(order_date AS DATE) BETWEEN ? AND ?
        GROUP BY 1, 2 ORDER BY 1, 2""", [*ch_params, *loc_params, *cat_params, start, end])


def source(f: Filters) -> str:
    return "stg_order_lines" if f.sliced else "kpi_sales"


def totals(df: pd.DataFrame) -> dict[str, float]:
    s = df[["revenue", "net_revenue", "cogs", "orders", "units"]].sum()
    revenue, orders, net = float(s["revenue"]), float(s["orders"]), float(s["net_revenue"])
    margin = net - float(s["cogs"])
    return {"revenue": revenue, "orders": orders, "aov": revenue / orders if orders else float("nan"),
            "gross_margin": margin, "gross_margin_rate": margin / net if net else float("nan"), "units": float(s["units"])}


def breakdown(f: Filters) -> pd.DataFrame | None:
    """Revenue and units per category and per location (column `by`) in the period and the previous one, from
    daily demand in one scan."""
    prev_start, _ = f.previous()
    conds, params = [], []
    for column, values in (("channel", f.channels), ("location", f.locations), ("category", f.categories)):
        c, p = data.in_list(column, values)
        conds.append(c)
        params += p
    return data.query("daily_demand", f"""
        SELECT CASE WHEN GROUPING(category) = 0 THEN 'category' ELSE 'location' END AS by,
               CASE WHEN GROUPING(category) = 0 THEN category ELSE location END AS name,
               SUM(CASE WHEN CAST(day AS DATE) >= ? THEN revenue ELSE 0 END) AS revenue,
               SUM(CASE WHEN CAST(day AS DATE) >= ? THEN units ELSE 0 END) AS units,
               SUM(CASE WHEN CAST(day AS DATE) < ? THEN revenue ELSE 0 END) AS previous_revenue
        FROM {{src}} WHERE {' AND '.join(conds)} AND CAST(day AS DATE) BETWEEN ? AND ?
        GROUP BY GROUPING SETS ((category), (location)) ORDER BY revenue DESC""", [f.start, f.start, f.start, *params, prev_start, f.end])
