"""Staging: one wide read per source table (rows stamped before the as-of cut-off only), typed and
joined into clean tables. Timestamps naive UTC; timestamps after the cut-off are blanked."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd

from pipelines.common import duck

TS_ORDERS = ["placed_at"]


def ts(df: pd.DataFrame, columns: list[str], cutoff: datetime | None = None) -> pd.DataFrame:
    """Parse timestamp columns to naive UTC; values at/after `cutoff` become NaT (not known yet)."""
    for c in columns:
        s = pd.to_datetime(df[c], format="ISO8601", utc=True, errors="coerce").dt.tz_convert(None) if len(df) else pd.to_datetime(df[c])
        s = s.astype("datetime64[ns]")
        if cutoff is not None:
            s = s.where(s < pd.Timestamp(cutoff))
        df[c] = s
    return df


def money(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    for c in columns:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64").round(2)
    return df


def ints(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    for c in columns:
        df[c] = pd.to_numeric(df[c], errors="coerce").fillna(0).astype("int64")
    return df


# --- extraction ---------------------------------------------------------------------------------------

SQL_ORDERS = """
SELECT o.id AS order_id, o.number AS order_number, c.code AS channel, c.kind AS channel_kind, o.customer_id,
       o.status, o.delivery_method, pl.code AS pickup_location, sm.code AS shipping_method, o.promised_delivery_days,
       o.subtotal, o.discount_total, o.shipping_total, o.tax_total, o.total, o.placed_at
FROM orders o
LEFT JOIN channels c ON c.id = o.channel_id
LEFT JOIN locations pl ON pl.id = o.pickup_location_id
LEFT JOIN shipping_methods sm ON sm.id = o.shipping_method_id
WHERE o.placed_at < :cutoff
"""

SQL_LINES = """
SELECT ol.id AS line_id, ol.order_id, ol.line_no, ol.product_id, ol.sku, p.sku AS product_sku, p.category,
       p.cost AS unit_cost, ol.quantity, ol.quantity_cancelled, ol.quantity_fulfilled, ol.quantity_backordered,
       ol.unit_price, ol.discount_total, ol.tax_amount, ol.line_total,
       o.placed_at, o.customer_id, o.pickup_location_id, c.code AS channel
FROM order_lines ol
LEFT JOIN orders o ON o.id = ol.order_id
LEFT JOIN channels c ON c.id = o.channel_id
LEFT JOIN products p ON p.id = ol.product_id
WHERE o.id IS NULL OR o.placed_at < :cutoff
"""

SQL_SHIPMENT_LINES = """
SELECT sl.order_line_id, sl.shipment_id, sl.quantity, s.location_id, s.dispatched_at, s.ready_at, s.delivered_at, s.created_at
FROM shipment_lines sl JOIN shipments s ON s.id = sl.shipment_id
WHERE s.created_at < :cutoff
"""

SQL_RETURN_LINES = """
SELECT rl.id AS return_line_id, rl.return_id, r.number AS return_number, r.order_id, rl.order_line_id, ol.sku,
       p.category, rl.quantity, rl.reason_code, r.reason_code AS return_reason, rl.condition, rl.refund_amount,
       r.refund_amount AS return_refund_amount, r.status, r.opened_at, r.received_at, r.refunded_at,
       loc.code AS received_location, ol.unit_price, p.cost AS unit_cost
FROM return_lines rl
JOIN returns r ON r.id = rl.return_id
LEFT JOIN order_lines ol ON ol.id = rl.order_line_id
LEFT JOIN products p ON p.id = ol.product_id
LEFT JOIN locations loc ON loc.id = r.received_location_id
WHERE r.opened_at < :cutoff
"""

SQL_LOCATIONS = "SELECT id AS location_id, code AS location, kind AS location_kind FROM locations"

SQL_PAYMENTS = """
SELECT t.id AS transaction_id, t.payment_id, p.order_id, p.gateway, p.currency, t.kind, t.status, t.amount, t.at
FROM payment_transactions t JOIN payments p ON p.id = t.payment_id
WHERE t.at < :cutoff
"""

SQL_SHIPMENTS = """
SELECT s.id AS shipment_id, s.number AS shipment_number, s.order_id, loc.code AS location, s.kind, s.carrier,
       s.service_level, s.shipping_cost, s.promised_at, s.estimated_at, s.created_at, s.packed_at, s.dispatched_at,
       s.delivered_at, s.ready_at, s.expires_at, s.status AS status_now
FROM shipments s LEFT JOIN locations loc ON loc.id = s.location_id
WHERE s.created_at < :cutoff
"""

SQL_TRACKING = "SELECT shipment_id, kind, at FROM tracking_events WHERE at < :cutoff"

SQL_MOVEMENTS = """
SELECT m.stock_id, st.product_id, p.sku, p.category, p.cost AS unit_cost, p.price AS unit_price, loc.code AS location,
       m.kind, m.quantity, m.reserved_change, m.at
FROM stock_movements m
JOIN stock st ON st.id = m.stock_id
JOIN products p ON p.id = st.product_id
JOIN locations loc ON loc.id = st.location_id
WHERE m.at < :cutoff
"""

SQL_PURCHASE_ORDERS = """
SELECT po.id AS po_id, po.number AS po_number, sup.code AS supplier, loc.code AS location, po.status AS status_now,
       po.created_at, po.sent_at, po.expected_at, po.closed_at, p.sku, pol.quantity_ordered, pol.quantity_received,
       pol.unit_cost
FROM purchase_order_lines pol
JOIN purchase_orders po ON po.id = pol.purchase_order_id
JOIN products p ON p.id = pol.product_id
LEFT JOIN suppliers sup ON sup.id = po.supplier_id
LEFT JOIN locations loc ON loc.id = po.location_id
WHERE po.created_at < :cutoff
"""

SQL_CUSTOMERS = """
SELECT id AS customer_id, external_ref, segment AS core_segment, marketing_consent, created_at FROM customers
"""

SQL_FEEDBACK = """
SELECT f.id AS feedback_id, f.order_id, f.customer_id, c.code AS channel, f.rating, f.would_recommend, f.created_at
FROM feedback f LEFT JOIN orders o ON o.id = f.order_id LEFT JOIN channels c ON c.id = o.channel_id
WHERE f.created_at < :cutoff
"""


# --- transformations (plain functions on DataFrames) ---------------------------------------------------

def clean_orders(raw: pd.DataFrame) -> pd.DataFrame:
    df = money(ts(raw.copy(), ["placed_at"]), ["subtotal", "discount_total", "shipping_total", "tax_total", "total"])
    df["order_date"] = df["placed_at"].dt.normalize()
    df["customer_id"] = df["customer_id"].astype("Int64")
    df["promised_delivery_days"] = df["promised_delivery_days"].astype("Int64")
    return df


def clean_order_lines(raw: pd.DataFrame, shipment_lines: pd.DataFrame, return_lines: pd.DataFrame,
                      locations: pd.DataFrame, cutoff: datetime) -> pd.DataFrame:
    """Order lines with their order's date/channel/customer, product category and cost, the location that
    serves them (first shipment's location, else the order's pickup store), units fulfilled and returned
    as of the cut-off, and revenue (0 for fully cancelled lines)."""
    df = ts(raw.copy(deep=False), ["placed_at"])  # columns are replaced, never written in place: no need to copy millions of rows
    df = money(df, ["unit_cost", "unit_price", "discount_total", "tax_amount", "line_total"])
    df = ints(df, ["quantity", "quantity_cancelled", "quantity_fulfilled", "quantity_backordered"])
    df["order_date"] = df["placed_at"].dt.normalize()
    df["customer_id"] = df["customer_id"].astype("Int64")
    df["sku_known"] = df["product_sku"].notna()
    sl = ts(shipment_lines.copy(), ["dispatched_at", "ready_at", "delivered_at", "created_at"], cutoff)
    if len(sl):
        sl["quantity"] = sl["quantity"].astype("int64")
        sl["done"] = sl["dispatched_at"].notna() | sl["ready_at"].notna() | sl["delivered_at"].notna()
        sl["done_qty"] = np.where(sl["done"], sl["quantity"], 0)
        sl["delivered_qty"] = np.where(sl["delivered_at"].notna(), sl["quantity"], 0)
        agg = sl.groupby("order_line_id").agg(ship_location_id=("location_id", "min"), shipped=("done_qty", "sum"),
                                              delivered=("delivered_qty", "sum"), shipments=("shipment_id", "nunique"))
        aligned = agg.reindex(df["line_id"].to_numpy())
        for c in agg.columns:
            df[c] = aligned[c].to_numpy()
    else:
        df["ship_location_id"], df["shipped"], df["delivered"], df["shipments"] = np.nan, np.nan, np.nan, np.nan
    has_shipments = df["shipments"].notna()
    # history without shipments (imports) keeps the core's fulfilled count; otherwise what shipped by the cut-off
    df["quantity_fulfilled"] = np.where(has_shipments, df["shipped"].fillna(0), df["quantity_fulfilled"]).astype("int64")
    loc_id = df["ship_location_id"].fillna(df["pickup_location_id"].astype("float64"))
    df["location"] = loc_id.map(pd.Series(locations["location"].to_numpy(), index=locations["location_id"].astype("float64")))
    rl = return_lines[return_lines["status"] != "cancelled"] if len(return_lines) else return_lines
    returned = rl.groupby("order_line_id")["quantity"].sum() if len(rl) else pd.Series(dtype="int64")
    df["quantity_returned"] = df["line_id"].map(returned).fillna(0).astype("int64")
    df["units"] = df["quantity"] - df["quantity_cancelled"]
    df["revenue"] = np.where(df["units"] > 0, df["line_total"], 0.0)
    df["net_revenue"] = np.where(df["units"] > 0, (df["line_total"] - df["tax_amount"]).round(2), 0.0)
    df["cogs"] = (df["units"] * df["unit_cost"].fillna(0)).round(2)
    return df


def clean_payments(raw: pd.DataFrame) -> pd.DataFrame:
    return money(ts(raw.copy(), ["at"]), ["amount"])


def clean_shipments(raw: pd.DataFrame, tracking: pd.DataFrame, shipment_units: pd.DataFrame, cutoff: datetime) -> pd.DataFrame:
    """Shipments as of the cut-off with their tracking events summarised: event count, first scan,
    exception, and a status derived from the timestamps known by then."""
    df = ts(raw.copy(), ["promised_at", "estimated_at", "created_at", "packed_at", "dispatched_at", "delivered_at",
                         "ready_at", "expires_at"], None)
    for c in ["packed_at", "dispatched_at", "delivered_at", "ready_at"]:
        df[c] = df[c].where(df[c] < pd.Timestamp(cutoff))
    df = money(df, ["shipping_cost"])
    tr = ts(tracking.copy(), ["at"])
    if len(tr):
        g = tr.groupby("shipment_id")
        summary = pd.DataFrame({
            "tracking_events": g.size(),
            "first_scan_at": g["at"].min(),
            "exceptions": tr.assign(e=tr["kind"].eq("exception")).groupby("shipment_id")["e"].sum(),
        })
        df = df.merge(summary, how="left", left_on="shipment_id", right_index=True)
    else:
        df["tracking_events"], df["first_scan_at"], df["exceptions"] = 0, pd.NaT, 0
    df["tracking_events"] = df["tracking_events"].fillna(0).astype("int64")
    df["exceptions"] = df["exceptions"].fillna(0).astype("int64")
    df["first_scan_at"] = pd.to_datetime(df["first_scan_at"]).astype("datetime64[ns]")
    units = shipment_units.groupby("shipment_id")["quantity"].sum() if len(shipment_units) else pd.Series(dtype="int64")
    df["units"] = df["shipment_id"].map(units).fillna(0).astype("int64")
    status = np.select(
        [df["status_now"].eq("cancelled"), df["delivered_at"].notna() & df["kind"].eq("pickup"), df["delivered_at"].notna(),
         df["ready_at"].notna(), df["dispatched_at"].notna(), df["packed_at"].notna()],
        ["cancelled", "collected", "delivered", "ready_for_pickup", "dispatched", "packed"], "pending")
    df["status"] = status
    cut = pd.Timestamp(cutoff)
    late_delivered = df["delivered_at"].notna() & df["promised_at"].notna() & (df["delivered_at"] > df["promised_at"])
    late_open = df["delivered_at"].isna() & df["dispatched_at"].notna() & df["promised_at"].notna() & (df["promised_at"] < cut)
    df["on_time"] = np.where(df["delivered_at"].notna() & df["promised_at"].notna(), ~late_delivered, np.nan)
    df["delayed"] = (df["exceptions"] > 0) | late_delivered | late_open
    return df


def inventory_snapshots(movements: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Closing stock per day per SKU x location, re-derived from the movement ledger: every day from the
    first movement of the stock row to the as-of day (days without movements carry the balance)."""
    mv = ts(movements.copy(), ["at"])
    if mv.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in SNAPSHOT_DTYPES.items()})
    mv = money(ints(mv, ["quantity", "reserved_change"]), ["unit_cost", "unit_price"])
    mv["day"] = mv["at"].dt.normalize()
    end = pd.Timestamp(as_of)
    return duck(f"""
        WITH daily AS (
            SELECT stock_id, sku, category, location, unit_cost, unit_price, CAST(day AS DATE) AS day,
                   SUM(quantity) AS change, SUM(reserved_change) AS reserved_change,
                   SUM(CASE WHEN kind IN ('receipt', 'transfer_in', 'return') OR (kind = 'adjustment' AND quantity > 0) THEN quantity ELSE 0 END) AS units_in,
                   SUM(CASE WHEN kind = 'sale' THEN -quantity ELSE 0 END) AS units_sold,
                   SUM(CASE WHEN kind NOT IN ('receipt', 'transfer_in', 'return', 'sale') AND quantity < 0 THEN -quantity ELSE 0 END) AS units_other_out
            FROM mv GROUP BY ALL
        ), rows AS (
            SELECT stock_id, any_value(sku) AS sku, any_value(category) AS category, any_value(location) AS location,
                   any_value(unit_cost) AS unit_cost, any_value(unit_price) AS unit_price, MIN(day) AS first_day
            FROM daily GROUP BY stock_id
        ), grid AS (
            SELECT r.*, CAST(g.d AS DATE) AS day
            FROM rows r, LATERAL generate_series(CAST(r.first_day AS TIMESTAMP), TIMESTAMP '{end:%Y-%m-%d}', INTERVAL 1 DAY) AS g(d)
        )
        SELECT g.day, g.sku, g.category, g.location,
               CAST(SUM(COALESCE(d.change, 0)) OVER w AS BIGINT) AS on_hand,
               CAST(SUM(COALESCE(d.reserved_change, 0)) OVER w AS BIGINT) AS reserved,
               CAST(COALESCE(d.units_in, 0) AS BIGINT) AS units_in,
               CAST(COALESCE(d.units_sold, 0) AS BIGINT) AS units_shipped,
               CAST(COALESCE(d.units_other_out, 0) AS BIGINT) AS units_other_out,
               g.unit_cost, g.unit_price
        FROM grid g LEFT JOIN daily d ON d.stock_id = g.stock_id AND d.day = g.day
        WINDOW w AS (PARTITION BY g.stock_id ORDER BY g.day ROWS UNBOUNDED PRECEDING)
    """, mv=mv).pipe(_finish_snapshots)


SNAPSHOT_DTYPES = {"day": "datetime64[ns]", "sku": "object", "category": "object", "location": "object", "on_hand": "int64",
                   "reserved": "int64", "available": "int64", "units_in": "int64", "units_shipped": "int64",
                   "units_other_out": "int64", "unit_cost": "float64", "unit_price": "float64", "inventory_value": "float64",
                   "stockout": "bool"}


def _finish_snapshots(df: pd.DataFrame) -> pd.DataFrame:
    df["day"] = pd.to_datetime(df["day"]).astype("datetime64[ns]")
    df["available"] = df["on_hand"] - df["reserved"]
    df["inventory_value"] = (df["on_hand"].clip(lower=0) * df["unit_cost"]).round(2)
    df["stockout"] = df["on_hand"] <= 0
    return df.sort_values(["sku", "location", "day"]).reset_index(drop=True)


def clean_purchase_orders(raw: pd.DataFrame, cutoff: datetime) -> pd.DataFrame:
    df = ts(raw.copy(), ["created_at", "expected_at"])
    df = ts(df, ["sent_at", "closed_at"], cutoff)
    df = money(ints(df, ["quantity_ordered", "quantity_received"]), ["unit_cost"])
    df["status"] = np.select([df["status_now"].eq("cancelled") & df["closed_at"].notna(), df["closed_at"].notna(), df["sent_at"].notna()],
                             ["cancelled", "closed", "sent"], "draft")
    return df


def clean_customers(raw: pd.DataFrame, orders: pd.DataFrame, cutoff: datetime) -> pd.DataFrame:
    """Customers known by the cut-off (created before it, or with an order before it) and their order history."""
    df = ts(raw.copy(), ["created_at"])
    o = orders[orders["status"] != "cancelled"]
    agg = o.groupby("customer_id").agg(first_order_at=("placed_at", "min"), last_order_at=("placed_at", "max"),
                                       orders=("order_id", "count"), revenue=("total", "sum"))
    df = df.merge(agg, how="left", left_on="customer_id", right_index=True)
    df = df[df["created_at"].notna() | df["first_order_at"].notna()].copy()
    df["orders"] = df["orders"].fillna(0).astype("int64")
    df["revenue"] = df["revenue"].fillna(0).round(2)
    df["marketing_consent"] = df["marketing_consent"].astype(bool)
    df["customer_id"] = df["customer_id"].astype("int64")
    return df


def clean_feedback(raw: pd.DataFrame) -> pd.DataFrame:
    df = ts(raw.copy(), ["created_at"])
    df["rating"] = df["rating"].astype("int64")
    df["would_recommend"] = pd.to_numeric(df["would_recommend"]).astype("Int64")
    df["customer_id"] = df["customer_id"].astype("Int64")
    return df


def clean_returns(raw: pd.DataFrame, cutoff: datetime) -> pd.DataFrame:
    """Return lines as of the cut-off; a line's refund falls back to its share (by units) of the return's refund."""
    df = ts(raw.copy(), ["opened_at"])
    df = ts(df, ["received_at", "refunded_at"], cutoff)
    df = money(ints(df, ["quantity"]), ["refund_amount", "return_refund_amount", "unit_price", "unit_cost"])
    units = df.groupby("return_id")["quantity"].transform("sum").replace(0, np.nan)
    share = (df["return_refund_amount"] * df["quantity"] / units).round(2)
    df["refund_amount"] = df["refund_amount"].fillna(share)
    df["reason_code"] = df["reason_code"].fillna(df["return_reason"])
    df["disposition"] = np.select([df["condition"].eq("resellable"), df["condition"].isin(["damaged", "wrong_item"])],
                                  ["restock", "write_off"], "pending")
    df["status"] = np.select([df["status"].eq("cancelled"), df["refunded_at"].notna(), df["received_at"].notna()],
                             ["cancelled", "refunded", "received"], "open")
    return df
