"""deploy/dagster.yaml: the Dagster instance on PostgreSQL with a run queue; runs of the pipelines are
stored there and seen by another process's instance (the webserver's, the daemon's)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import PG_SKIP_REASON, PG_URL, scratch_pg_database

REPO = Path(__file__).resolve().parents[2]


def test_the_example_instance_queues_runs_with_limits() -> None:
    config = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    runs = config["concurrency"]["runs"]
    assert runs["max_concurrent_runs"] >= 1
    limits = {(t["key"], t.get("value")): t["limit"] for t in runs["tag_concurrency_limits"]}
    assert limits[("dagster/schedule_name", "storeom_daily")] == 1
    assert "postgres" in config["storage"]
    workspace = yaml.safe_load((REPO / "deploy" / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"]["port"] == 4266


@pytest.fixture
def dagster_database() -> Iterator[str]:
    """A scratch database for the Dagster instance's storage (its name)."""
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    from sqlalchemy.engine import make_url

    with scratch_pg_database(f"{make_url(PG_URL).database}_dagster_{os.getpid()}") as url:
        yield make_url(url).database


def test_runs_go_to_postgresql_and_the_queue_has_the_example_limits(dagster_database, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import dagster as dg
    from sqlalchemy.engine import make_url

    from om_core.config import get_settings
    from om_core.demo import build_demo_store
    from pipelines.definitions import defs
    from pipelines.resources import default_resources

    url = make_url(PG_URL)
    for key, value in {"DAGSTER_PG_HOST": url.host, "DAGSTER_PG_PORT": str(url.port or 5432), "DAGSTER_PG_DB": dagster_database,
                       "DAGSTER_PG_USER": url.username, "DAGSTER_PG_PASSWORD": url.password or ""}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("STOREOM_HOME", str(tmp_path / "home"))
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    build_demo_store(get_settings(), order_count=40, days=10)

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 4
        assert {(t["key"], t.get("value")): t["limit"] for t in queue.tag_concurrency_limits}[("dagster/schedule_name", "storeom_daily")] == 1
        result = dg.materialize(list(defs().assets), resources=default_resources(), instance=instance, selection=["stg_orders"])
        assert result.success
    with dg.DagsterInstance.from_config(str(home)) as other:  # another process's view of the same instance
        runs = other.get_runs()
        assert [r.run_id for r in runs] == [result.run_id]
        assert other.get_latest_materialization_event(dg.AssetKey("stg_orders")) is not None
