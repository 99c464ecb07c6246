"""In-process runs of every asset: the demo store, the --as-of cut-off, the CLI, broken data, Complete Journey."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pandas as pd
import pytest
from click.testing import CliRunner

from tests.pipelines.conftest import COMPLETE_JOURNEY, materialize_all

ASSETS = {"stg_orders", "stg_order_lines", "stg_payments", "stg_shipments", "stg_returns", "stg_inventory_snapshots",
          "stg_purchase_orders", "stg_customers", "stg_feedback", "daily_demand", "kpi_inventory", "kpi_fulfilment", "kpi_sales",
          "kpi_returns", "customer_segments", "customer_cohorts", "kpi_feedback",
          "recommendations", "related_products", "offer_targets", "recommendation_evaluation",
          "demand_forecast", "forecast_backtest", "forecast_uncertainty", "reorder_suggestions", "reorder_policy_backtest"}


def _warehouse(home, name):
    return pd.read_parquet(home / "warehouse" / f"{name}.parquet")


def test_every_asset_materializes_on_the_demo_store(demo_home):
    result = materialize_all()
    assert result.success
    rows = {e.asset_key.to_user_string(): e.materialization.metadata["dagster/row_count"].value
            for e in result.get_asset_materialization_events()}
    assert set(rows) == ASSETS
    for name in ["stg_orders", "stg_order_lines", "stg_inventory_snapshots", "daily_demand", "kpi_sales", "kpi_inventory",
                 "kpi_fulfilment", "customer_segments", "customer_cohorts"]:
        assert rows[name] > 0, name
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks), [(c.asset_key, c.check_name, c.metadata) for c in checks if not c.passed]
    for name in ASSETS:
        assert len(_warehouse(demo_home, name)) == rows[name]
    assert not [p for p in (demo_home / "warehouse").iterdir() if p.name.endswith(".tmp")]
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "kpi_sales")
    assert "preview" in event.materialization.metadata and "dagster/column_schema" in event.materialization.metadata
    # the sales mart reconciles with the database itself, to the cent
    con = sqlite3.connect(demo_home / "storeom.db")
    cents = con.execute("SELECT SUM(CAST(ROUND(line_total * 100) AS INTEGER)) FROM order_lines WHERE quantity > quantity_cancelled").fetchone()[0]
    sales = _warehouse(demo_home, "kpi_sales")
    assert round(sales[(sales.grain == "day") & (sales.channel == "ALL")].revenue.sum() * 100) == cents
    assert round(sales[(sales.grain == "month") & (sales.channel == "ALL")].revenue.sum() * 100) == cents


def test_as_of_cuts_off_everything_after_the_day(demo_home):
    con = sqlite3.connect(demo_home / "storeom.db")
    first, last = (pd.Timestamp(x) for x in con.execute("SELECT MIN(placed_at), MAX(placed_at) FROM orders").fetchone())
    as_of = (first + (last - first) / 2).date()
    end = str(as_of + timedelta(days=1))
    expected_orders = con.execute("SELECT COUNT(*) FROM orders WHERE placed_at < ?", (end,)).fetchone()[0]
    result = materialize_all(as_of=str(as_of))
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations() if c.check_name != "orders_fresh")
    end_ts = pd.Timestamp(end)
    assert len(_warehouse(demo_home, "stg_orders")) == expected_orders
    assert _warehouse(demo_home, "stg_orders").placed_at.max() < end_ts
    assert _warehouse(demo_home, "stg_inventory_snapshots").day.max() == pd.Timestamp(as_of)
    assert _warehouse(demo_home, "daily_demand").day.max() <= pd.Timestamp(as_of)
    for name, cols in {"stg_shipments": ["dispatched_at", "delivered_at", "created_at"], "stg_returns": ["opened_at", "refunded_at"],
                       "stg_payments": ["at"], "stg_feedback": ["created_at"]}.items():
        df = _warehouse(demo_home, name)
        for c in cols:
            assert not (df[c] >= end_ts).any(), (name, c)
    # stock on the as-of day equals the ledger summed up to the cut-off
    ledger = con.execute("SELECT COALESCE(SUM(quantity), 0) FROM stock_movements WHERE at < ?", (end,)).fetchone()[0]
    snaps = _warehouse(demo_home, "stg_inventory_snapshots")
    assert snaps[snaps.day == pd.Timestamp(as_of)].on_hand.sum() == ledger
    materialize_all()  # leave the full warehouse for the other tests


def test_cli_runs_a_selection_and_prints_json(demo_home):
    from om_core.cli_pipeline import pipeline_group

    result = CliRunner().invoke(pipeline_group, ["run", "--select", "stg_orders,stg_order_lines,kpi_sales"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["assets"]) == {"stg_orders", "stg_order_lines", "kpi_sales"}
    assert report["assets"]["kpi_sales"]["rows"] > 0
    assert any(c["check"] == "sales_revenue_reconciles" and c["passed"] and c["blocking"] for c in report["checks"])
    assert (demo_home / "dagster").is_dir()
    bad = CliRunner().invoke(pipeline_group, ["run", "--as-of", "yesterday"])
    assert bad.exit_code == 1


def test_broken_data_fails_the_blocking_checks_and_the_cli(demo_home, tmp_path, monkeypatch):
    """An order line whose order is gone and one pointing to a deleted product: the join check fails and
    stops the marts downstream; the CLI exits 1."""
    import shutil

    home = tmp_path / "broken"
    home.mkdir()
    shutil.copy(demo_home / "storeom.db", home / "storeom.db")
    monkeypatch.setenv("STOREOM_HOME", str(home))
    con = sqlite3.connect(home / "storeom.db")
    con.execute("PRAGMA foreign_keys=OFF")
    con.execute("UPDATE order_lines SET order_id = 999999 WHERE id = (SELECT MAX(id) FROM order_lines)")
    con.execute("UPDATE order_lines SET product_id = 888888 WHERE id = (SELECT MIN(id) FROM order_lines)")
    con.commit()
    con.close()
    from om_core.cli_pipeline import pipeline_group

    result = CliRunner().invoke(pipeline_group, ["run", "--select", "stg_orders,stg_order_lines,kpi_sales"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    join = next(c for c in report["checks"] if c["check"] == "order_lines_join")
    assert not join["passed"] and join["metadata"]["actual_lines_without_order"] == 1
    assert join["metadata"]["actual_lines_without_sku"] == 1 and join["metadata"]["expected"] == 0
    assert "kpi_sales" not in report["assets"] or report["assets"]["kpi_sales"]["status"] != "materialized"


@pytest.mark.slow
@pytest.mark.skipif(not (COMPLETE_JOURNEY / "transactions_sample.csv.gz").is_file(),
                    reason=f"Complete Journey sample not found at {COMPLETE_JOURNEY}")
def test_complete_journey_sample(tmp_path, monkeypatch):
    from om_core.db import Database
    from om_core.schema import upgrade
    from om_core.services.importing import import_file

    monkeypatch.setenv("STOREOM_HOME", str(tmp_path))
    monkeypatch.delenv("STOREOM_DATABASE_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'storeom.db'}"
    upgrade(url)
    db = Database(url)
    import_file(db, "products", COMPLETE_JOURNEY / "products.csv.gz",
                mapping={"sku": "product_id", "category": "product_category", "brand": "brand", "name": "product_type"})
    import_file(db, "orders", COMPLETE_JOURNEY / "transactions_sample.csv.gz", skip_bad_rows=True, rejects_path=tmp_path / "rejects.csv",
                mapping={"order_id": "basket_id", "sku": "product_id", "customer_id": "household_id", "location": "store_id",
                         "ordered_at": "transaction_timestamp", "line_total": "sales_value", "discount": "retail_disc"})
    db.dispose()
    result = materialize_all()
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations())
    lines = _warehouse(tmp_path, "stg_order_lines")
    assert len(lines) == 74_584 and lines.location.notna().all()
    sales = _warehouse(tmp_path, "kpi_sales")
    raw = pd.read_csv(COMPLETE_JOURNEY / "transactions_sample.csv.gz", dtype=str)
    sold = raw[raw.quantity.astype(float) != 0]
    expected = sum(int(round(float(v) * 100)) for v in sold.sales_value[sold.quantity.astype(float) > 0])
    assert round(sales[(sales.grain == "day") & (sales.channel == "ALL")].revenue.sum() * 100) == expected
    assert _warehouse(tmp_path, "customer_segments").customer_id.nunique() > 2000
    assert len(_warehouse(tmp_path, "kpi_returns")) > 0
    demand = _warehouse(tmp_path, "daily_demand")
    assert len(demand) > 0
    # a new user's own history in, forecasts out: every SKU sold in the last 90 days has one, totals included
    as_of = demand.day.max()
    active = set(demand[(demand.day > as_of - pd.Timedelta(days=90)) & (demand.units > 0)].sku)
    forecast = _warehouse(tmp_path, "demand_forecast")
    assert active and active <= set(forecast[forecast.location == "ALL"].sku)
    assert forecast.ds.min() == as_of + pd.Timedelta(days=1)
    backtest = _warehouse(tmp_path, "forecast_backtest")
    fitted = backtest[backtest.location != "ALL"]
    chosen = fitted[fitted.selected].set_index(["sku", "location"])["mase"]
    naive = fitted[fitted.model == "SeasonalNaive"].set_index(["sku", "location"])["mase"].reindex(chosen.index)
    assert len(chosen) > 100 and chosen.mean() < naive.mean()
