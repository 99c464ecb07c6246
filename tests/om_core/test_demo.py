"""`storeom demo`: the sample store built through the services, on private SQLite files.

Kept small (60 orders over 20 days, about a second per build); the store built once per module is
copied for tests that change it.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

import om_core.demo
from om_core.cli import main
from om_core.config import Settings
from om_core.db import Database
from om_core.demo import build_demo_store
from om_core.models import Order, Product
from om_core.services.inventory import verify_ledger

SMALL = {"order_count": 60, "days": 20}


def settings_for(home: Path) -> Settings:
    return Settings(home=home, database_url=f"sqlite:///{home / 'storeom.db'}", currency="USD", public_url="http://localhost:8000")


def counts(summary: dict[str, Any]) -> dict[str, Any]:
    """What a build holds: products, customers, purchase orders and orders by status."""
    return {k: summary[k] for k in ("products", "customers", "orders", "purchase_orders")}


def order_numbers(settings: Settings) -> set[str]:
    database = Database(settings.database_url)
    try:
        with database.read() as s:
            return set(s.scalars(select(Order.number)))
    finally:
        database.dispose()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, Any]]:
    """The demo store with the default seed, built once; tests must not change it (copy it with `own_copy`)."""
    settings = settings_for(tmp_path_factory.mktemp("demo"))
    return settings, build_demo_store(settings, **SMALL)


@pytest.fixture
def own_copy(built: tuple[Settings, dict[str, Any]], tmp_path: Path) -> Settings:
    shutil.copy(built[0].home / "storeom.db", tmp_path / "storeom.db")
    return settings_for(tmp_path)


def test_builds_a_store_with_a_consistent_ledger(built: tuple[Settings, dict[str, Any]]) -> None:
    settings, summary = built
    assert summary["reused_existing_store"] is False
    assert summary["ledger_consistent"] is True
    assert summary["database"] == settings.database_url
    assert summary["products"] == 19
    assert summary["customers"] == 200
    assert summary["purchase_orders"] == 1
    placed = sum(summary["orders"].values())
    assert 0 < placed <= SMALL["order_count"]
    assert set(summary["orders"]) <= {"placed", "backordered", "fulfilled", "delivered", "partially_returned", "returned", "cancelled"}
    assert summary["orders"].get("delivered", 0) > 0

    database = Database(settings.database_url)
    try:
        with database.read() as s:
            assert s.scalar(select(func.count()).select_from(Order)) == placed
            assert s.scalar(select(func.count()).select_from(Product)) == summary["products"]
            assert verify_ledger(s) == []
    finally:
        database.dispose()


def test_second_call_reuses_the_store(built: tuple[Settings, dict[str, Any]]) -> None:
    settings, first = built
    before = order_numbers(settings)
    again = build_demo_store(settings, **SMALL)
    assert again["reused_existing_store"] is True
    assert again["ledger_consistent"] is True
    assert counts(again) == counts(first)
    assert order_numbers(settings) == before


def test_fresh_rebuilds_from_an_empty_database(built: tuple[Settings, dict[str, Any]], own_copy: Settings) -> None:
    old = order_numbers(own_copy)
    rebuilt = build_demo_store(own_copy, fresh=True, **SMALL)
    assert rebuilt["reused_existing_store"] is False
    assert rebuilt["ledger_consistent"] is True
    assert counts(rebuilt) == counts(built[1]), "same seed, same store"
    assert order_numbers(own_copy).isdisjoint(old), "the old orders are gone"


def test_same_seed_gives_the_same_counts(built: tuple[Settings, dict[str, Any]], tmp_path: Path) -> None:
    again = build_demo_store(settings_for(tmp_path), seed=7, **SMALL)
    assert counts(again) == counts(built[1])


def test_demo_command_builds_runs_the_pipelines_and_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`storeom demo --sample --no-serve` builds the store, materializes the warehouse; a second run reuses the store."""
    monkeypatch.setattr(om_core.demo, "build_demo_store", functools.partial(build_demo_store, **SMALL))
    runner = CliRunner(env={"STOREOM_HOME": str(tmp_path), "STOREOM_DATABASE_URL": f"sqlite:///{tmp_path}/storeom.db"})

    result = runner.invoke(main, ["demo", "--sample", "--no-serve", "--seed", "3"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    first = json.loads(result.stdout)
    assert (first["reused_existing_store"], first["ledger_consistent"]) == (False, True)
    assert (tmp_path / "warehouse" / "kpi_sales.parquet").exists()
    assert "assets materialized" in result.stderr

    result = runner.invoke(main, ["demo", "--sample", "--no-serve"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert "Reusing the store" in result.stderr
