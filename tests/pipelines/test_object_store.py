"""The warehouse on an object store: the staging, demand, KPI and forecasting assets of the demo store
materialised with STOREOM_WAREHOUSE_URL on fsspec's in-memory filesystem, read back by the IO manager and
the dashboards' loader, and not one file written to the local warehouse folder. (The recommendation assets
go through the same IO manager; they are left out to keep this test about the warehouse.)"""

from __future__ import annotations

import uuid

import fsspec
import pandas as pd
import pytest

from tests.pipelines.conftest import materialize_all

GROUPS = ("staging", "demand", "kpis", "forecasting")
STAGING_KPI_FORECAST = {"stg_orders", "stg_order_lines", "stg_inventory_snapshots", "daily_demand", "kpi_sales", "kpi_inventory",
                        "kpi_fulfilment", "demand_forecast", "forecast_backtest", "forecast_uncertainty", "reorder_suggestions"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):  # type: ignore[no-untyped-def]
    """The demo store, and its staging, demand, KPI and forecasting assets materialised into memory://<random>/warehouse."""
    import dagster as dg

    home = tmp_path_factory.mktemp("object_store_home")
    url = f"memory://storeom-{uuid.uuid4().hex[:8]}/warehouse"
    mp = pytest.MonkeyPatch()
    mp.setenv("STOREOM_HOME", str(home))
    mp.setenv("STOREOM_WAREHOUSE_URL", url)
    mp.delenv("STOREOM_DATABASE_URL", raising=False)
    mp.delenv("STOREOM_DASK_ADDRESS", raising=False)
    from om_core.config import get_settings
    from om_core.demo import build_demo_store

    build_demo_store(get_settings(), order_count=120, days=30)
    result = materialize_all(select=dg.AssetSelection.groups(*GROUPS))
    yield home, url, result
    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)
    mp.undo()


def _rows(result) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {e.asset_key.to_user_string(): e.materialization.metadata["dagster/row_count"].value
            for e in result.get_asset_materialization_events()}


def test_every_asset_lands_in_the_object_store_and_none_in_the_folder(run) -> None:  # type: ignore[no-untyped-def]
    home, url, result = run
    assert result.success
    rows = _rows(result)
    assert STAGING_KPI_FORECAST <= set(rows)
    fs, root = fsspec.core.url_to_fs(url)
    stored = {p.rsplit("/", 1)[1] for p in fs.ls(root, detail=False)}
    assert stored == {f"{name}.parquet" for name in rows}  # and no temporary file left behind
    for name, count in rows.items():
        assert len(pd.read_parquet(f"{url}/{name}.parquet")) == count, name
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "kpi_sales")
    assert event.materialization.metadata["path"].value == f"{url}/kpi_sales.parquet"
    assert not (home / "warehouse").exists()
    assert not list(home.rglob("*.parquet"))
    assert rows["stg_order_lines"] > 0 and rows["kpi_sales"] > 0 and rows["demand_forecast"] > 0


def test_downstream_assets_read_their_inputs_from_the_object_store(run) -> None:  # type: ignore[no-untyped-def]
    """A second run of the forecast alone loads daily_demand and the staging tables from memory:// (nothing else has them)."""
    home, url, _ = run
    before = pd.read_parquet(f"{url}/demand_forecast.parquet")
    result = materialize_all(select=["demand_forecast", "forecast_backtest", "forecast_uncertainty"])
    assert result.success
    assert set(_rows(result)) == {"demand_forecast", "forecast_backtest", "forecast_uncertainty"}
    pd.testing.assert_frame_equal(pd.read_parquet(f"{url}/demand_forecast.parquet"), before)
    assert not (home / "warehouse").exists()


def test_the_dashboards_read_the_object_store(run) -> None:  # type: ignore[no-untyped-def]
    from dashboards import data

    _, url, _ = run
    assert data.asset_path("kpi_sales") == f"{url}/kpi_sales.parquet"
    sales = data.load("kpi_sales")
    assert sales is not None
    pd.testing.assert_frame_equal(sales, pd.read_parquet(f"{url}/kpi_sales.parquet"))
    counted = data.query("kpi_sales", "SELECT COUNT(*) AS n FROM {src} WHERE grain = ?", ["day"], also=["daily_demand"])
    assert counted is not None and int(counted["n"].iloc[0]) == int((sales["grain"] == "day").sum())
    day, written = data.as_of("daily_demand", "day")
    assert day == pd.read_parquet(f"{url}/daily_demand.parquet")["day"].max().date() and written is not None
    assert data.load("no_such_asset") is None and not data.has("no_such_asset")


def test_a_warehouse_url_nothing_can_open_fails_clearly_and_writes_nothing(run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import dagster as dg

    home, _, _ = run
    monkeypatch.setenv("STOREOM_WAREHOUSE_URL", "nosuch://bucket/warehouse")
    result = materialize_all(select=["stg_orders"])
    assert not result.success
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = str(failures[0].event_specific_data.error)
    assert "The warehouse URL 'nosuch://bucket/warehouse/stg_orders.parquet' (STOREOM_WAREHOUSE_URL) cannot be opened" in message
    assert not (home / "warehouse").exists() and not list(home.rglob("*.parquet"))
