"""The forecasting assets on a demo store with 100 days of history, and approving their suggestions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.pipelines.conftest import materialize_all


@pytest.fixture(scope="module")
def home(tmp_path_factory):  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("forecast_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("STOREOM_HOME", str(home))
    mp.delenv("STOREOM_DATABASE_URL", raising=False)
    from om_core.config import get_settings
    from om_core.demo import build_demo_store

    build_demo_store(get_settings(), order_count=300, days=100)
    result = materialize_all()
    assert result.success
    yield home
    mp.undo()


def _read(home, name: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    return pd.read_parquet(home / "warehouse" / f"{name}.parquet")


def test_every_active_series_is_forecast_28_days_ahead_with_totals(home) -> None:  # type: ignore[no-untyped-def]
    demand = _read(home, "daily_demand")
    as_of = demand["day"].max()
    active = demand[(demand["day"] > as_of - pd.Timedelta(days=90)) & (demand["units"] > 0)]
    fc = _read(home, "demand_forecast")
    assert list(fc.columns) == ["sku", "location", "ds", "forecast", "lo_80", "hi_80", "lo_95", "hi_95", "model"]
    series = set(map(tuple, fc[fc.location != "ALL"][["sku", "location"]].drop_duplicates().to_numpy()))
    assert set(map(tuple, active[["sku", "location"]].drop_duplicates().to_numpy())) <= series
    assert set(fc[fc.location == "ALL"]["sku"]) == set(active["sku"])
    assert fc["ds"].min() == as_of + pd.Timedelta(days=1) and fc["ds"].max() == as_of + pd.Timedelta(days=28)
    parts = fc[fc.location != "ALL"].groupby(["sku", "ds"])["forecast"].sum()
    total = fc[fc.location == "ALL"].set_index(["sku", "ds"])["forecast"].reindex(parts.index)
    assert np.allclose(parts.to_numpy(), total.to_numpy())
    backtest = _read(home, "forecast_backtest")
    fitted = backtest[backtest.location != "ALL"]
    assert len(fitted) and (fitted.groupby(["sku", "location"])["selected"].sum() == 1).all()
    assert (fitted.groupby(["sku", "location"])["model"].apply(lambda m: "SeasonalNaive" in set(m))).all()


def test_suggestions_respect_cases_minimums_and_stocked_locations(home) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    s = _read(home, "reorder_suggestions")
    assert len(s) > 0
    assert (s["suggested_qty"] > 0).all()
    assert ((s["suggested_qty"] % s["pack_size"]) == 0).all() and (s["suggested_qty"] >= s["moq"]).all()
    assert (s["inventory_position"] <= s["reorder_point"]).all()
    assert (s["inventory_position"] == s["on_hand"] - s["reserved"] - s["backordered"] + s["on_order"]).all()
    assert s["priority_rank"].tolist() == list(range(1, len(s) + 1))
    assert s["reason"].str.contains("service needs").all()
    con = sqlite3.connect(home / "storeom.db")
    kinds = dict(con.execute("SELECT code, kind FROM locations").fetchall())
    assert {kinds[c] for c in s["location"]} <= {"warehouse", "store"}
    policy = _read(home, "reorder_policy_backtest")
    assert sorted(policy["policy"]) == ["forecast", "min_max"]


def test_storeom_reorder_approve_turns_the_asset_into_draft_purchase_orders(home) -> None:  # type: ignore[no-untyped-def]
    from om_core.cli import main
    from om_core.config import get_settings
    from om_core.db import Database
    from om_core.models import Location, PurchaseOrder, Supplier

    s = _read(home, "reorder_suggestions")
    urgent = s[s["priority"] == s["priority"].iloc[0]]
    db = Database(get_settings().database_url)
    with db.read() as session:
        before = len(session.scalars(select(PurchaseOrder)).all())
    result = CliRunner().invoke(main, ["reorder", "approve", "--all-priority", str(s["priority"].iloc[0])])
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)["purchase_orders"]
    assert sorted((l["sku"], p["location"], l["quantity"]) for p in created for l in p["lines"]) == sorted(
        zip(urgent["sku"], urgent["location"], urgent["suggested_qty"].astype(int)))
    with db.read() as session:
        drafts = session.scalars(select(PurchaseOrder).where(PurchaseOrder.status == "draft")).all()
        assert len(session.scalars(select(PurchaseOrder)).all()) == before + len(created)
        groups = {(session.get(Supplier, p.supplier_id).code, session.get(Location, p.location_id).code) for p in drafts
                  if p.number in {c["number"] for c in created}}
    assert groups == set(zip(urgent["supplier"], urgent["location"]))
    again = CliRunner().invoke(main, ["reorder", "approve", "--sku", str(urgent["sku"].iloc[0]), "--location", str(urgent["location"].iloc[0])])
    assert again.exit_code == 1 and "error [conflict]" in again.stderr
    db.dispose()
