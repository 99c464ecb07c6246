"""Demand forecasts and reorder suggestions (group `forecasting`). The maths lives in `forecasting/`
(docs/forecasting.md); these assets feed it the warehouse tables as of the as-of day."""

# No `from __future__ import annotations` here: Dagster resolves the config class from the annotation.


from datetime import date

import dagster as dg
import pandas as pd

from forecasting.engine import ForecastConfig
from forecasting.reorder import ReorderPolicy
from pipelines.common import MART_FRESHNESS, OWNERS, definition_metadata, output
from pipelines.defs.forecasting import logic as F
from pipelines.resources import DaskCluster, StoreDatabase

GROUP = "forecasting"
KINDS = {"python", "statsforecast", "parquet"}

FORECAST_COLUMNS = {
    "sku": "SKU", "location": "Location code, or ALL for the SKU's network total (the sum of its locations)",
    "ds": "Forecast day (the days after the as-of day)", "forecast": "Expected units that day",
    "lo_80": "Lower end of the 80% interval (units)", "hi_80": "Upper end of the 80% interval (units)",
    "lo_95": "Lower end of the 95% interval (units)", "hi_95": "Upper end of the 95% interval (units)",
    "model": "Model chosen for the series by backtest (BottomUp for totals; CategoryProfile/RecentAverage for new series; +Promotion on promoted days)",
}
BACKTEST_COLUMNS = {
    "sku": "SKU", "location": "Location code or ALL", "category": "Product category",
    "series_class": "smooth, erratic, intermittent, lumpy (ADI/CV²), or total", "model": "Candidate model (SeasonalNaive = the baseline)",
    "selected": "The model chosen for the series", "mase": "Mean absolute scaled error (vs in-sample 7-day naive)",
    "rmsse": "Root mean squared scaled error", "wape": "Σ|error| / Σ actual", "bias": "Σ(forecast - actual) / Σ actual",
    "windows": "Backtest windows (28 days each, the most recent before the as-of day)",
}
UNCERTAINTY_COLUMNS = {
    "sku": "SKU", "location": "Location code", "series_class": "Demand class or new", "model": "Chosen model",
    "sigma": "RMS daily backtest error (units)", "rho": "Variance of 7-day error sums / (7 sigma²)",
    "bias": "Units/day the forecast runs low (+) or high (-): the class's relative backtest error x the series' level",
    "adi": "Days per selling day (last 365 days; null for new series)", "cv2": "Squared CV of the non-zero daily quantities",
}
REORDER_COLUMNS = {
    "sku": "SKU", "location": "Receiving location", "supplier": "Supplier code", "category": "Category", "abc_class": "A, B or C by revenue",
    "service_level": "Target probability of no stockout per replenishment cycle", "on_hand": "Units on hand at the close of the as-of day",
    "reserved": "Units reserved for open orders", "backordered": "Units backordered at the location", "on_order": "Units on open purchase orders",
    "inventory_position": "on_hand - reserved - backordered + on_order", "avg_daily_forecast": "Mean forecast units/day (next 28 days)",
    "lead_time_days": "Supplier lead time (days)", "lead_time_std_days": "Its standard deviation (days)",
    "review_period_days": "Days until the next review", "safety_stock": "reorder_point - expected demand over lead time + review (units)",
    "reorder_point": "Service-level quantile of demand over lead time + review (units)",
    "order_up_to": "reorder_point + a review period of expected demand (units)",
    "suggested_qty": "order_up_to - inventory_position, rounded up to cases and the minimum order (units)",
    "pack_size": "Units per case", "moq": "Minimum order quantity", "unit_cost": "Cost per unit (currency)",
    "estimated_cost": "suggested_qty x unit_cost (currency)", "days_of_cover": "max(inventory_position, 0) / avg_daily_forecast (days)",
    "expected_stockout_date": "First day stock runs out without this order (open POs counted on their expected day)",
    "priority": "urgent (out before an order could arrive), high (within lead time + review), medium, low",
    "priority_rank": "1 = act first", "reason": "The numbers in a sentence", "as_of": "The as-of day the suggestion was computed for",
    "computed_at": "When the suggestion was computed (UTC); approval refuses SKU x locations ordered since",
}
POLICY_COLUMNS = {
    "policy": "forecast (this policy) or min_max (Odoo-style rule tuned to the same fill rate)", "series": "SKU x locations replayed",
    "days": "Days replayed", "target_fill_rate": "Demand-weighted service-level target", "fill_rate": "Units served / units demanded",
    "stockout_days": "SKU x location days with unserved demand or empty shelf", "avg_inventory_value": "Mean daily stock value (currency)",
    "orders_placed": "Purchase order lines placed", "units_ordered": "Units ordered", "min_max_k": "min/max multiplier found (min_max row)",
}


class ForecastSettings(dg.Config):
    """Forecast and reorder knobs (the Dagster launchpad can change them per run)."""

    horizon_days: int = 28
    history_days: int = 730
    service_level_a: float = 0.98
    service_level_b: float = 0.95
    service_level_c: float = 0.90
    review_period_days: float = 7.0
    backtest_days: int = 84
    backtest_series: int = 150

    n_jobs: int = 1
    """Worker processes for statsforecast. More than 1 forks the run's process: only safe when the run has
    its own process (the Dagster multiprocess executor), not in `storeom pipeline run`'s in-process run."""

    def forecast_config(self) -> ForecastConfig:
        return ForecastConfig(horizon=self.horizon_days, n_jobs=self.n_jobs)

    def policy(self) -> ReorderPolicy:
        return ReorderPolicy(service_levels={"A": self.service_level_a, "B": self.service_level_b, "C": self.service_level_c},
                             review_period_days=self.review_period_days)


def _categories(daily_demand: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([products[["sku", "category"]], daily_demand[["sku", "category"]]]).drop_duplicates("sku")


@dg.multi_asset(
    group_name=GROUP, can_subset=True,
    outs={
        "demand_forecast": dg.AssetOut(kinds=KINDS, owners=OWNERS, metadata=definition_metadata(FORECAST_COLUMNS),
                                       freshness_policy=MART_FRESHNESS, automation_condition=dg.AutomationCondition.eager(),
                                       description="Daily demand forecast per SKU x location and SKU total, with 80/95% intervals."),
        "forecast_backtest": dg.AssetOut(kinds=KINDS, owners=OWNERS, metadata=definition_metadata(BACKTEST_COLUMNS), freshness_policy=MART_FRESHNESS,
                                         automation_condition=dg.AutomationCondition.eager(), description="Backtest accuracy per series and candidate model, with the seasonal-naive baseline."),
        "forecast_uncertainty": dg.AssetOut(kinds=KINDS, owners=OWNERS, metadata=definition_metadata(UNCERTAINTY_COLUMNS), freshness_policy=MART_FRESHNESS,
                                            automation_condition=dg.AutomationCondition.eager(), description="Per series error scale, correlation and bias the reorder policy needs."),
    },
)
def demand_forecast(context: dg.AssetExecutionContext, config: ForecastSettings, store_db: StoreDatabase, dask: DaskCluster, daily_demand: pd.DataFrame,
                    stg_inventory_snapshots: pd.DataFrame, stg_purchase_orders: pd.DataFrame, stg_order_lines: pd.DataFrame):
    """Active series (sold in the last 90 days or on an open purchase order), stockout days imputed,
    model per series by rolling-origin backtest, intervals from its backtest errors, totals bottom-up,
    known promotions applied at their category's measured uplift. The fits run on the Dask cluster when
    STOREOM_DASK_ADDRESS is set (same numbers)."""
    as_of = store_db.as_of_date()
    products = store_db.query(F.SQL_PRODUCTS)
    categories = _categories(daily_demand, products)
    history = F.demand_history(daily_demand, stg_inventory_snapshots, stg_purchase_orders, as_of, config.history_days)
    result = F.forecast_demand(history, as_of, categories=categories, config=config.forecast_config(), runner=dask.runner())
    promotions = store_db.query(F.SQL_PROMOTIONS, {"cutoff": store_db.cutoff()})
    result.forecast = F.with_promotions(result.forecast, stg_order_lines, promotions, categories)
    series = result.forecast[result.forecast["location"] != "ALL"][["sku", "location"]].drop_duplicates()
    models = result.forecast.drop_duplicates(["sku", "location"])["model"].value_counts().to_dict()
    selected = result.backtest[result.backtest["selected"] & (result.backtest["location"] != "ALL")]
    naive = result.backtest[(result.backtest["model"] == "SeasonalNaive") & (result.backtest["location"] != "ALL")]
    extra = {"series": dg.MetadataValue.int(len(series)), "skus": dg.MetadataValue.int(series["sku"].nunique()),
             "models": dg.MetadataValue.json({str(k): int(v) for k, v in models.items()}),
             "backtest_mase": dg.MetadataValue.float(float(selected["mase"].mean()) if len(selected) else float("nan")),
             "seasonal_naive_mase": dg.MetadataValue.float(float(naive["mase"].mean()) if len(naive) else float("nan"))}
    for name, df, columns, meta in (("demand_forecast", result.forecast, FORECAST_COLUMNS, extra),
                                    ("forecast_backtest", result.backtest, BACKTEST_COLUMNS, {}),
                                    ("forecast_uncertainty", result.uncertainty, UNCERTAINTY_COLUMNS, {})):
        if name not in context.op_execution_context.selected_output_names:
            continue
        out = output(df, columns, as_of=as_of, extra=meta)
        yield dg.Output(out.value, output_name=name, metadata=out.metadata)


@dg.asset(group_name=GROUP, kinds={"python", "pandas", "parquet"}, owners=OWNERS, metadata=definition_metadata(REORDER_COLUMNS),
          description="What to order now per SKU x location, most urgent first, each with its reason.", freshness_policy=MART_FRESHNESS, automation_condition=dg.AutomationCondition.eager())
def reorder_suggestions(config: ForecastSettings, store_db: StoreDatabase, demand_forecast: pd.DataFrame, forecast_uncertainty: pd.DataFrame,
                        stg_inventory_snapshots: pd.DataFrame, stg_order_lines: pd.DataFrame, stg_purchase_orders: pd.DataFrame) -> dg.Output:
    """What to order now per SKU x location, most urgent first, each with its reason
    (`storeom reorder approve` turns rows into draft purchase orders)."""
    as_of = store_db.as_of_date()
    policy = config.policy()
    pos = F.positions(stg_inventory_snapshots, stg_order_lines, stg_purchase_orders, store_db.query(F.SQL_PRODUCTS),
                      store_db.query(F.SQL_LOCATIONS), forecast_uncertainty, as_of, policy)
    df = F.reorder_suggestions(pos, demand_forecast, forecast_uncertainty, stg_purchase_orders, as_of, policy)
    extra = {"positions_reviewed": dg.MetadataValue.int(len(pos)),
             "by_priority": dg.MetadataValue.json({k: int(v) for k, v in df["priority"].value_counts().items()}),
             "estimated_cost": dg.MetadataValue.float(float(df["estimated_cost"].sum()))}
    return output(df, REORDER_COLUMNS, as_of=as_of, extra=extra)


@dg.asset(group_name=GROUP, kinds={"python", "statsforecast", "parquet"}, owners=OWNERS, metadata=definition_metadata(POLICY_COLUMNS),
          description="The reorder policy replayed on recent history next to a min/max rule tuned to the same fill rate.",
          freshness_policy=MART_FRESHNESS, automation_condition=dg.AutomationCondition.eager())
def reorder_policy_backtest(config: ForecastSettings, store_db: StoreDatabase, daily_demand: pd.DataFrame, stg_inventory_snapshots: pd.DataFrame,
                            stg_order_lines: pd.DataFrame, stg_purchase_orders: pd.DataFrame) -> dg.Output:
    """The last weeks replayed with this policy (re-forecast every review day from the history before it)
    next to a min/max rule tuned to the same fill rate: how much stock each needs for the same service."""
    as_of: date = store_db.as_of_date()
    policy = config.policy()
    products = store_db.query(F.SQL_PRODUCTS)
    history = F.demand_history(daily_demand, stg_inventory_snapshots, stg_purchase_orders, as_of, config.history_days)
    keys = history[["sku", "location"]].drop_duplicates()
    pos = F.positions(stg_inventory_snapshots, stg_order_lines, stg_purchase_orders, products, store_db.query(F.SQL_LOCATIONS),
                      keys, as_of, policy)
    df = F.policy_backtest(history, pos, _categories(daily_demand, products), as_of,
                           config.forecast_config(), policy, days=config.backtest_days, max_series=config.backtest_series)
    extra = {}
    if len(df) == 2:
        f, m = df.set_index("policy").loc["forecast"], df.set_index("policy").loc["min_max"]
        extra = {"fill_rate": dg.MetadataValue.float(float(f["fill_rate"])),
                 "inventory_saving_vs_min_max": dg.MetadataValue.float(
                     float(1 - f["avg_inventory_value"] / m["avg_inventory_value"]) if m["avg_inventory_value"] else 0.0)}
    return output(df, POLICY_COLUMNS, as_of=as_of, extra=extra)
