"""The forecast on a Dask cluster (a 2-worker in-process LocalCluster) gives the in-process forecast,
number for number; the forecasting assets use the cluster STOREOM_DASK_ADDRESS names."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

FORECAST_KEYS = ["demand_forecast", "forecast_backtest", "forecast_uncertainty"]


@pytest.fixture(scope="module")
def cluster():  # type: ignore[no-untyped-def]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as c:
        yield c


@pytest.fixture
def client(cluster):  # type: ignore[no-untyped-def]
    with distributed.Client(cluster, set_as_default=False) as c:
        yield c


def _history() -> tuple[pd.DataFrame, date, pd.DataFrame]:
    """36 series of 200 days (smooth, slow, lumpy movers) and 4 new ones of 20 days, with stockout days."""
    from forecasting.synthetic import synthetic_demand

    end = date(2026, 9, 30)
    data = synthetic_demand(36, 200, end, seed=11, stockout_share=0.3)
    new = synthetic_demand(4, 20, end, seed=12).assign(sku=lambda d: "NEW-" + d["sku"].astype(str))
    history = pd.concat([data, new], ignore_index=True)
    categories = history[["sku"]].drop_duplicates().assign(category=lambda d: np.where(d["sku"].str.len() % 2 == 0, "dairy", "bakery"))
    return history[["sku", "location", "ds", "sold", "censored"]], end, categories


def _fit_blocks_run(stream: list[dict]) -> int:
    """How many `fit_block` tasks the cluster ran."""
    return sum(1 for t in stream if "fit_block" in str(t.get("key", "")))


def test_series_blocks_are_whole_series_in_id_order() -> None:
    from forecasting.distributed import series_blocks

    df = pd.DataFrame({"unique_id": list("ccbbbaad"), "ds": [2, 1, 1, 2, 3, 1, 2, 1], "y": range(8)})
    blocks = series_blocks(df, 3)
    assert len(blocks) == 3
    ids = [list(dict.fromkeys(b["unique_id"])) for b in blocks]
    assert sum(ids, []) == ["a", "b", "c", "d"]
    assert not set(ids[0]) & set(ids[1]) and not set(ids[1]) & set(ids[2])
    joined = pd.concat(blocks, ignore_index=True)
    assert len(joined) == len(df)
    assert joined[joined["unique_id"] == "c"]["ds"].tolist() == [2, 1]  # a series keeps its own row order
    assert len(series_blocks(df, 50)) == 4  # never more blocks than series
    assert len(series_blocks(df.iloc[:0], 4)) == 1


def test_forecast_on_a_local_cluster_equals_the_in_process_forecast(client) -> None:  # type: ignore[no-untyped-def]
    from forecasting.distributed import dask_runner
    from forecasting.engine import forecast_demand

    history, as_of, categories = _history()
    here = forecast_demand(history, as_of, categories=categories)
    with distributed.get_task_stream(client=client) as ts:
        there = forecast_demand(history, as_of, categories=categories, runner=dask_runner(client, min_series=1))
    assert _fit_blocks_run(ts.data) >= 4  # the fits ran on the cluster, in several blocks per call
    for name in ("forecast", "backtest", "uncertainty"):
        pd.testing.assert_frame_equal(getattr(here, name), getattr(there, name), check_exact=True, obj=name)
    models = here.forecast.drop_duplicates(["sku", "location"])["model"]
    assert models.nunique() >= 3 and {"CategoryProfile", "RecentAverage"} & set(models)  # fitted, chosen and profile series
    assert here.backtest["selected"].sum() > 30


def test_forecast_blocks_of_one_series_each_give_the_same_numbers(client) -> None:  # type: ignore[no-untyped-def]
    from forecasting.distributed import dask_runner
    from forecasting.engine import forecast_demand

    history, as_of, categories = _history()
    history = history[history["sku"].isin(history["sku"].drop_duplicates().head(8))]
    here = forecast_demand(history, as_of, categories=categories)
    there = forecast_demand(history, as_of, categories=categories, runner=dask_runner(client, blocks=1_000, min_series=1))
    pd.testing.assert_frame_equal(here.forecast, there.forecast, check_exact=True)
    pd.testing.assert_frame_equal(here.backtest, there.backtest, check_exact=True)


def test_calls_with_few_series_stay_in_the_caller(client) -> None:  # type: ignore[no-untyped-def]
    from forecasting.distributed import dask_runner
    from forecasting.engine import forecast_demand

    history, as_of, categories = _history()
    with distributed.get_task_stream(client=client) as ts:
        there = forecast_demand(history, as_of, categories=categories, runner=dask_runner(client, min_series=1_000))
    assert _fit_blocks_run(ts.data) == 0
    pd.testing.assert_frame_equal(there.forecast, forecast_demand(history, as_of, categories=categories).forecast, check_exact=True)


# --- the assets on the cluster STOREOM_DASK_ADDRESS names ------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory):  # type: ignore[no-untyped-def]
    """The demo store with 100 days of history (series long enough to be fitted, not profiled)."""
    home = tmp_path_factory.mktemp("dask_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("STOREOM_HOME", str(home))
    mp.delenv("STOREOM_DATABASE_URL", raising=False)
    mp.delenv("STOREOM_WAREHOUSE_URL", raising=False)
    mp.delenv("STOREOM_DASK_ADDRESS", raising=False)
    from om_core.config import get_settings
    from om_core.demo import build_demo_store

    build_demo_store(get_settings(), order_count=300, days=100)
    yield home
    mp.undo()


def _materialize_forecast(warehouse: str, dask_address: str | None = None, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    import dagster as dg

    from pipelines.definitions import defs
    from pipelines.resources import DaskCluster, default_resources

    d = defs()
    dask = DaskCluster(address=dask_address, connect_timeout_seconds=timeout, min_series_on_cluster=1)  # the demo store's series are few
    resources = default_resources(warehouse_url=warehouse) | {"dask": dask}
    selection = dg.AssetSelection.assets(*FORECAST_KEYS).upstream()
    with dg.instance_for_test() as instance:
        return dg.materialize(list(d.assets), resources=resources, instance=instance, selection=selection, raise_on_error=False)


def test_forecasting_assets_run_on_the_cluster_named_by_the_setting(store, cluster, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    here = _materialize_forecast(str(tmp_path / "here"))
    assert here.success
    monkeypatch.setenv("STOREOM_DASK_ADDRESS", cluster.scheduler_address)
    with distributed.Client(cluster, set_as_default=False) as watcher, distributed.get_task_stream(client=watcher) as ts:
        there = _materialize_forecast(str(tmp_path / "there"))
    assert there.success
    assert _fit_blocks_run(ts.data) > 0
    for name in FORECAST_KEYS:
        a = pd.read_parquet(tmp_path / "here" / f"{name}.parquet")
        b = pd.read_parquet(tmp_path / "there" / f"{name}.parquet")
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=name)
    backtest = pd.read_parquet(tmp_path / "here" / "forecast_backtest.parquet")
    assert backtest[(backtest["location"] != "ALL") & backtest["selected"]]["model"].nunique() >= 2  # series were fitted, not profiled


def test_an_unreachable_scheduler_fails_the_forecast_clearly_and_writes_nothing(store, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import dagster as dg

    monkeypatch.setenv("STOREOM_DASK_ADDRESS", "tcp://127.0.0.1:1")
    result = _materialize_forecast(str(tmp_path / "wh"), timeout=1.0)
    assert not result.success
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failures and "No Dask scheduler answers at 'tcp://127.0.0.1:1'" in str(failures[0].event_specific_data.error)
    written = {p.name for p in (tmp_path / "wh").iterdir()}
    assert "daily_demand.parquet" in written  # the upstream assets ran; the forecast wrote nothing
    assert not {f"{k}.parquet" for k in FORECAST_KEYS} & written
    assert not [n for n in written if n.endswith(".tmp")]


def test_the_dask_resource_is_wired_and_in_process_without_an_address(monkeypatch) -> None:
    from pipelines.definitions import defs
    from pipelines.resources import DaskCluster

    monkeypatch.delenv("STOREOM_DASK_ADDRESS", raising=False)
    resources = defs().resources
    assert isinstance(resources["dask"], DaskCluster)
    assert DaskCluster().runner() is None
    monkeypatch.setenv("STOREOM_DASK_ADDRESS", "tcp://scheduler:8786")
    assert DaskCluster().scheduler_address() == "tcp://scheduler:8786"
    assert DaskCluster(address="tcp://other:8786").scheduler_address() == "tcp://other:8786"


def test_the_distributed_path_stays_free_of_dagster() -> None:
    import ast
    from pathlib import Path

    import forecasting

    for path in Path(forecasting.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {n for n in names if n.split(".")[0] in ("dagster", "pipelines", "streamlit")}, path

