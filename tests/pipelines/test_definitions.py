"""The Dagster code location loads: `pipelines.definitions.defs` builds a Definitions object from
`pipelines/defs/` (staging, demand and kpis folders plus resources and the daily schedule)."""

from __future__ import annotations

import dagster as dg

from pipelines.definitions import defs


def test_definitions_load() -> None:
    definitions = defs()
    assert isinstance(definitions, dg.Definitions)
    dg.Definitions.validate_loadable(definitions)


def test_definitions_load_every_time() -> None:
    """Loading is repeatable (the webserver and `dg` reload the code location)."""
    assert isinstance(defs(), dg.Definitions)
    assert isinstance(defs(), dg.Definitions)


EXPECTED_ASSETS = {
    "staging": {"stg_orders", "stg_order_lines", "stg_payments", "stg_shipments", "stg_returns", "stg_inventory_snapshots",
                "stg_purchase_orders", "stg_customers", "stg_feedback"},
    "demand": {"daily_demand"},
    "kpis": {"kpi_inventory", "kpi_fulfilment", "kpi_sales", "kpi_returns", "customer_segments", "customer_cohorts", "kpi_feedback"},
    "recommendations": {"recommendations", "related_products", "offer_targets", "recommendation_evaluation"},
    "forecasting": {"demand_forecast", "forecast_backtest", "forecast_uncertainty", "reorder_suggestions", "reorder_policy_backtest"},
}


def test_every_asset_is_described_grouped_owned_and_kinded() -> None:
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    by_group: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        by_group.setdefault(node.group_name, set()).add(key.to_user_string())
        assert node.description and "\n" not in node.description.strip(), key
        assert node.owners == ["team:analytics"], key
        assert node.kinds and "parquet" in node.kinds, key
        assert "dagster/column_schema" in node.metadata, key
        if node.group_name in ("kpis", "demand", "recommendations", "forecasting"):
            assert node.freshness_policy is not None, key
            assert node.automation_condition is not None, key
    assert by_group == EXPECTED_ASSETS


def test_checks_resources_and_schedule() -> None:
    definitions = defs()
    checks = {(spec.asset_key.to_user_string(), spec.name): spec.blocking
              for c in definitions.asset_checks for spec in c.check_specs}
    for blocking in [("stg_inventory_snapshots", "no_negative_stock"), ("stg_order_lines", "order_lines_join"),
                     ("kpi_sales", "sales_revenue_reconciles"), ("kpi_sales", "no_rows_after_as_of"),
                     ("kpi_inventory", "kpi_inventory_no_negative_stock")]:
        assert checks[blocking] is True, blocking
    assert checks[("stg_orders", "orders_fresh")] is False and checks[("kpi_sales", "volume")] is False
    assert {"store_db", "io_manager"} <= set(definitions.resources)
    assert definitions.get_schedule_def("storeom_daily").cron_schedule == "30 2 * * *"


def test_om_core_does_not_import_pipelines() -> None:
    import subprocess
    import sys

    code = "import sys, om_core.cli_pipeline; assert 'pipelines' not in sys.modules and 'dagster' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
