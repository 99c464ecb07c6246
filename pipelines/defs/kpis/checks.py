"""Asset checks. Blocking (a failure stops what depends on the asset): no negative stock, every order line
joins to its order and SKU, sales revenue reconciles with the order lines to the cent, no row after the
as-of day. Non-blocking: data freshness and volume. Each reports actual vs expected."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from pipelines import checks as C
from pipelines.defs.kpis.logic import revenue_reconciliation
from pipelines.resources import StoreDatabase


def _result(passed: bool, metadata: dict, severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=bool(passed), metadata=metadata, severity=severity)


@dg.asset_check(asset="stg_inventory_snapshots", blocking=True, description="No SKU x location closes a day with negative stock.")
def no_negative_stock(stg_inventory_snapshots: pd.DataFrame) -> dg.AssetCheckResult:
    return _result(*C.no_negative_stock(stg_inventory_snapshots, "on_hand"))


@dg.asset_check(asset="kpi_inventory", blocking=True, description="No negative closing stock in the inventory mart.")
def kpi_inventory_no_negative_stock(kpi_inventory: pd.DataFrame) -> dg.AssetCheckResult:
    return _result(*C.no_negative_stock(kpi_inventory, "closing_on_hand"))


@dg.asset_check(asset="stg_order_lines", blocking=True, additional_ins={"stg_orders": dg.AssetIn("stg_orders")},
                description="Every order line joins to its order and to a catalog SKU.")
def order_lines_join(stg_order_lines: pd.DataFrame, stg_orders: pd.DataFrame) -> dg.AssetCheckResult:
    return _result(*C.lines_join(stg_order_lines, stg_orders))


@dg.asset_check(asset="kpi_sales", blocking=True, additional_ins={"stg_order_lines": dg.AssetIn("stg_order_lines", metadata={"columns": ["quantity", "quantity_cancelled", "line_total"]})},
                description="Daily all-channel revenue equals Σ line totals of the order lines, to the cent.")
def sales_revenue_reconciles(kpi_sales: pd.DataFrame, stg_order_lines: pd.DataFrame) -> dg.AssetCheckResult:
    r = revenue_reconciliation(kpi_sales, stg_order_lines)
    return _result(r.pop("passed"), {"actual_revenue_cents": r["mart_cents"], "expected_revenue_cents": r["lines_cents"],
                                     "difference_cents": r["difference_cents"]})


MART_DATES = {
    "daily_demand": ["day"], "kpi_inventory": ["period_start"], "kpi_fulfilment": ["period_start"], "kpi_sales": ["period_start"],
    "customer_segments": ["last_order_date"], "customer_cohorts": ["cohort_month", "period_start"], "kpi_feedback": ["period_start"],
    "stg_orders": ["placed_at"], "stg_order_lines": ["placed_at"], "stg_inventory_snapshots": ["day"],
}


def _named(asset: str, body: str, env: dict) -> object:
    """A function whose parameter is named after the asset (how an asset check receives the asset's value)."""
    namespace: dict = {}
    exec(f"def {asset}_check(store_db, {asset}):\n    return _body(store_db, {asset})\n", {"_body": env["body"]}, namespace)
    fn = namespace[f"{asset}_check"]
    fn.__annotations__ = {"store_db": StoreDatabase, asset: pd.DataFrame, "return": dg.AssetCheckResult}
    return fn


def _make_after_as_of(asset: str, columns: list[str]) -> dg.AssetChecksDefinition:
    def body(store_db: StoreDatabase, value: pd.DataFrame) -> dg.AssetCheckResult:
        return _result(*C.no_rows_after(value, columns, store_db.as_of_date()))

    return dg.asset_check(asset=asset, name="no_rows_after_as_of", blocking=True,
                          description=f"No {', '.join(columns)} after the as-of day.")(_named(asset, "", {"body": body}))


as_of_checks = [_make_after_as_of(asset, columns) for asset, columns in MART_DATES.items()]


def _make_volume(asset: str, minimum: int = 1) -> dg.AssetChecksDefinition:
    def body(store_db: StoreDatabase, value: pd.DataFrame) -> dg.AssetCheckResult:
        return _result(*C.volume(value, minimum), severity=dg.AssetCheckSeverity.WARN)

    return dg.asset_check(asset=asset, name="volume", description=f"{asset} has at least {minimum} row(s).")(
        _named(asset, "", {"body": body}))


volume_checks = [_make_volume(a) for a in ["stg_orders", "stg_order_lines", "daily_demand", "kpi_sales", "kpi_fulfilment",
                                           "customer_segments", "customer_cohorts"]]


@dg.asset_check(asset="stg_orders", description="The latest order is at most 2 days before the as-of day (data is flowing).")
def orders_fresh(store_db: StoreDatabase, stg_orders: pd.DataFrame) -> dg.AssetCheckResult:
    return _result(*C.data_freshness(stg_orders, store_db.as_of_date()), severity=dg.AssetCheckSeverity.WARN)
