"""The demand mart (group `demand`): what sold where, by which channel, each day."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from pipelines.common import MART_FRESHNESS, OWNERS, definition_metadata, only_columns, output
from pipelines.defs.demand.logic import daily_demand as build_daily_demand
from pipelines.resources import StoreDatabase

DEMAND_COLUMNS = {
    "day": "Day (UTC)", "sku": "SKU", "category": "Category", "location": "Serving location ('(unknown)' when not recorded)",
    "channel": "Channel code", "units": "Units sold = Σ (quantity - cancelled) (units)", "revenue": "Σ line revenue (currency)",
    "orders": "Orders with the SKU", "closing_on_hand": "Closing stock of the SKU x location that day (units; null: not tracked)",
    "stockout": "closing_on_hand <= 0",
}


@dg.asset(group_name="demand", kinds={"python", "duckdb", "parquet"}, owners=OWNERS, metadata=definition_metadata(DEMAND_COLUMNS),
          freshness_policy=MART_FRESHNESS, automation_condition=dg.AutomationCondition.eager(),
          ins={"stg_order_lines": only_columns("sku", "category", "location", "channel", "order_date", "placed_at", "units", "revenue",
                                               "order_id"),
               "stg_inventory_snapshots": only_columns("sku", "location", "day", "on_hand")})
def daily_demand(store_db: StoreDatabase, stg_order_lines: pd.DataFrame, stg_inventory_snapshots: pd.DataFrame) -> dg.Output:
    """Units and revenue per SKU x location x channel x day, with the day's closing stock and a stockout flag."""
    return output(build_daily_demand(stg_order_lines, stg_inventory_snapshots), DEMAND_COLUMNS, as_of=store_db.as_of_date())
