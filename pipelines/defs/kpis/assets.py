"""KPI marts (group `kpis`): inventory, fulfilment, sales, returns, customers, feedback. Formulas live in
`pipelines.defs.kpis.logic` and docs/kpis.md."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from pipelines.common import MART_FRESHNESS, OWNERS, definition_metadata, only_columns, output
from pipelines.defs.kpis import logic as K
from pipelines.resources import StoreDatabase

GROUP = "kpis"

_COMMON = {"grain": "What a row is per (see `key`)", "key": "The SKU, category, location, channel, carrier, reason or period start",
           "period_start": "First day of the period for time grains (null otherwise)"}
INVENTORY_COLUMNS = {
    **_COMMON, "days_tracked": "Days with stock tracked", "units_sold": "Units sold (units)", "net_revenue": "Revenue less tax (currency)",
    "cogs": "Units sold x unit cost (currency)", "avg_inventory_value": "Σ daily closing value / days (currency)",
    "closing_on_hand": "On hand at the last day (units)", "closing_inventory_value": "Value at the last day (currency)",
    "stockout_days": "SKU x location days closing <= 0", "tracked_days": "SKU x location days tracked",
    "lost_sales_units": "Estimated units lost to stockouts", "lost_sales_value": "Lost units x price (currency)",
    "overstock_value": "Stock beyond 90 days of supply x cost (currency)", "aged_inventory_value": "Value with no sale in 60 days (currency)",
    "turnover": "cogs / avg_inventory_value (times per period)", "days_of_supply": "closing_on_hand / average daily units (days)",
    "sell_through": "units_sold / (units_sold + closing_on_hand) (fraction)", "stockout_rate": "stockout_days / tracked_days (fraction)",
    "gmroi": "(net_revenue - cogs) / avg_inventory_value (currency per currency)",
}
FULFILMENT_COLUMNS = {
    **_COMMON, "orders": "Orders", "processed_orders": "Orders with something fulfilled, not cancelled",
    "order_cycle_hours": "Mean placed -> last delivery of fully delivered orders (hours)",
    "click_to_ship_hours": "Mean placed -> first dispatch (hours)", "lines": "Active lines of processed orders",
    "lines_filled": "Lines fulfilled in full", "units_ordered": "Active units of processed orders", "units_fulfilled": "Units fulfilled",
    "perfect_orders": "Complete, on time, not delayed, not returned", "shipped_orders": "Orders with a shipment",
    "split_orders": "Orders with 2+ shipments", "shipments": "Shipments", "delivered_with_promise": "Delivered shipments with a promise",
    "delivered_on_time": "Of those, delivered by the promise", "dispatched_shipments": "Shipments dispatched or ready",
    "delayed_shipments": "Dispatched shipments delayed", "shipping_cost": "Carrier cost (currency)",
    "pickup_ready_hours": "Mean placed -> ready for pickup (hours)", "on_time_rate": "delivered_on_time / delivered_with_promise",
    "fill_rate_lines": "lines_filled / lines", "fill_rate_units": "units_fulfilled / units_ordered",
    "perfect_order_rate": "perfect_orders / processed_orders", "split_shipment_rate": "split_orders / shipped_orders",
    "shipping_cost_per_order": "shipping_cost / shipped_orders (currency)", "carrier_delay_rate": "delayed_shipments / dispatched_shipments",
}
SALES_COLUMNS = {
    "grain": "day, week or month", "key": "Period start (YYYY-MM-DD)", "period_start": "Period start", "channel": "Channel code or ALL",
    "revenue": "Σ line totals, lines not fully cancelled (currency)", "net_revenue": "revenue - tax (currency)", "orders": "Orders",
    "units": "Units sold", "cogs": "Units x cost (currency)", "discounts": "Σ line discounts (currency)", "aov": "revenue / orders (currency)",
    "units_per_order": "units / orders", "gross_margin": "net_revenue - cogs (currency)", "gross_margin_rate": "gross_margin / net_revenue",
    "discount_share": "discounts / (revenue + discounts)", "promo_uplift": "Units on discounted SKU-days / baseline - 1 (ALL rows)",
    "channel_share": "Channel revenue / all-channel revenue",
}
RETURNS_COLUMNS = {
    "grain": "category, sku or reason", "key": "The category, SKU or reason code", "returned_units": "Units returned",
    "returns": "Return requests", "refund_amount": "Refunds (currency)", "restock_units": "Units resellable (restocked)",
    "write_off_units": "Units damaged or wrong item", "pending_units": "Units not inspected", "write_off_value": "Write-off units x cost (currency)",
    "units_fulfilled": "Units fulfilled (reason rows: all)", "return_rate": "returned_units / units_fulfilled",
    "restock_rate": "restock_units / returned_units",
}
SEGMENTS_COLUMNS = {
    "customer_id": "Customer id", "last_order_date": "Day of the latest order", "recency_days": "As-of day - last order day (days)",
    "frequency": "Orders", "monetary": "Σ order totals (currency)", "r_score": "Recency quintile 1-5 (5 = most recent)",
    "f_score": "Frequency quintile 1-5", "m_score": "Monetary quintile 1-5", "rfm": "The three scores", "segment": "Segment from the scores",
}
COHORTS_COLUMNS = {
    "cohort_month": "First-purchase month", "months_since": "Months since the first purchase", "period_start": "The calendar month",
    "cohort_size": "Customers in the cohort", "active_customers": "Cohort customers ordering that month", "orders": "Orders",
    "revenue": "Σ order totals (currency)", "new_repeaters": "Customers whose 2nd order fell in that month",
    "retention": "active_customers / cohort_size", "repeat_rate": "Customers with 2+ orders by then / cohort_size",
    "ltv_to_date": "Cumulative revenue / cohort_size (currency)", "est_ltv_12m": "Estimated 12-month value per customer (currency)",
}
FEEDBACK_COLUMNS = {
    **_COMMON, "responses": "Ratings", "avg_rating": "Mean rating (1-5)", "satisfied": "Ratings 4-5", "nps_responses": "Recommend answers",
    "promoters": "Answers 9-10", "detractors": "Answers 0-6", "csat": "satisfied / responses", "nps": "% promoters - % detractors (points)",
}


def _mart(name: str, columns: dict[str, str], kinds: set[str] | None = None, ins: dict[str, dg.AssetIn] | None = None):  # type: ignore[no-untyped-def]
    return dg.asset(name=name, group_name=GROUP, kinds=kinds or {"python", "pandas", "parquet"}, owners=OWNERS,
                    metadata=definition_metadata(columns), freshness_policy=MART_FRESHNESS,
                    automation_condition=dg.AutomationCondition.eager(), ins=ins)


@_mart("kpi_inventory", INVENTORY_COLUMNS, {"python", "duckdb", "parquet"},
       ins={"stg_order_lines": only_columns("sku", "category", "location", "order_date", "placed_at", "units", "net_revenue", "cogs",
                                          "unit_cost", "unit_price")})
def kpi_inventory(store_db: StoreDatabase, stg_inventory_snapshots: pd.DataFrame, stg_order_lines: pd.DataFrame) -> dg.Output:
    """Turnover, days of supply, sell-through, stockouts and lost sales, overstock, aged stock and GMROI per SKU, category, location, week."""
    as_of = store_db.as_of_date()
    return output(K.kpi_inventory(stg_inventory_snapshots, stg_order_lines, as_of), INVENTORY_COLUMNS, as_of=as_of)


@_mart("kpi_fulfilment", FULFILMENT_COLUMNS, ins={"stg_order_lines": only_columns(
    "order_id", "channel", "location", "placed_at", "quantity", "quantity_fulfilled", "quantity_returned", "units")})
def kpi_fulfilment(store_db: StoreDatabase, stg_orders: pd.DataFrame, stg_order_lines: pd.DataFrame, stg_shipments: pd.DataFrame) -> dg.Output:
    """Cycle time, click-to-ship, on-time, fill rates, perfect orders, split shipments, shipping cost, pickup readiness and carrier delays."""
    return output(K.kpi_fulfilment(stg_orders, stg_order_lines, stg_shipments), FULFILMENT_COLUMNS, as_of=store_db.as_of_date())


@_mart("kpi_sales", SALES_COLUMNS, ins={"stg_order_lines": only_columns(
    "order_id", "sku", "channel", "placed_at", "order_date", "units", "discount_total", "revenue", "net_revenue", "cogs")})
def kpi_sales(store_db: StoreDatabase, stg_order_lines: pd.DataFrame) -> dg.Output:
    """Revenue, orders, AOV, units per order, gross margin, discount share, promotion uplift and channel mix per day, week and month."""
    return output(K.kpi_sales(stg_order_lines), SALES_COLUMNS, as_of=store_db.as_of_date())


@_mart("kpi_returns", RETURNS_COLUMNS, ins={"stg_order_lines": only_columns(
    "sku", "category", "placed_at", "quantity", "quantity_fulfilled", "unit_cost")})
def kpi_returns(store_db: StoreDatabase, stg_returns: pd.DataFrame, stg_order_lines: pd.DataFrame) -> dg.Output:
    """Return rates, refunds and restock vs write-off by category, SKU and reason."""
    return output(K.kpi_returns(stg_returns, stg_order_lines), RETURNS_COLUMNS, as_of=store_db.as_of_date())


@_mart("customer_segments", SEGMENTS_COLUMNS)
def customer_segments(store_db: StoreDatabase, stg_customers: pd.DataFrame) -> dg.Output:
    """Every customer with an order scored on recency, frequency and monetary value (RFM) and given a segment."""
    as_of = store_db.as_of_date()
    return output(K.customer_segments(stg_customers, as_of), SEGMENTS_COLUMNS, as_of=as_of)


@_mart("customer_cohorts", COHORTS_COLUMNS)
def customer_cohorts(store_db: StoreDatabase, stg_orders: pd.DataFrame) -> dg.Output:
    """Retention, repeat rate and lifetime value of customers grouped by the month of their first purchase."""
    return output(K.customer_cohorts(stg_orders), COHORTS_COLUMNS, as_of=store_db.as_of_date())


@_mart("kpi_feedback", FEEDBACK_COLUMNS)
def kpi_feedback(store_db: StoreDatabase, stg_feedback: pd.DataFrame) -> dg.Output:
    """Customer satisfaction (CSAT) and Net Promoter Score per week and channel."""
    return output(K.kpi_feedback(stg_feedback), FEEDBACK_COLUMNS, as_of=store_db.as_of_date())
