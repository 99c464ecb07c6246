"""Daily demand: units and revenue per SKU x location x channel x day, with the day's closing stock."""

from __future__ import annotations

import pandas as pd

from pipelines.common import duck


def daily_demand(lines: pd.DataFrame, snapshots: pd.DataFrame) -> pd.DataFrame:
    """units = Σ (quantity - quantity_cancelled); revenue = Σ revenue (currency); closing_on_hand from the
    ledger snapshot of that SKU x location x day (null when the location's stock is not tracked);
    stockout = closing_on_hand <= 0."""
    df = duck("""
        WITH d AS (
            SELECT sku, category, COALESCE(location, '(unknown)') AS location, channel, CAST(order_date AS DATE) AS day,
                   CAST(SUM(units) AS BIGINT) AS units, ROUND(SUM(revenue), 2) AS revenue, COUNT(DISTINCT order_id) AS orders
            FROM lines WHERE placed_at IS NOT NULL GROUP BY ALL
        )
        SELECT d.day, d.sku, d.category, d.location, d.channel, d.units, d.revenue, d.orders,
               s.on_hand AS closing_on_hand, s.on_hand <= 0 AS stockout
        FROM d LEFT JOIN snapshots s ON s.sku = d.sku AND s.location = d.location AND CAST(s.day AS DATE) = d.day
        ORDER BY d.day, d.sku, d.location, d.channel
    """, lines=lines[["sku", "category", "location", "channel", "order_date", "placed_at", "units", "revenue", "order_id"]],
        snapshots=snapshots[["sku", "location", "day", "on_hand"]])
    df["day"] = pd.to_datetime(df["day"]).astype("datetime64[ns]")
    df["closing_on_hand"] = df["closing_on_hand"].astype("Int64")
    df["stockout"] = df["stockout"].astype("boolean")
    return df
