"""Approving reorder suggestions into draft purchase orders: the service (both backends) and `storeom reorder`.

The store is tests/om_core/store.py: ACME supplies the apparel/kitchen/grocery SKUs, DROP the SOFA;
warehouses WH-EAST/WH-WEST, stores ST-NYC/ST-SF, dropship location DS-DROP.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from om_core.cli import main
from om_core.clock import utcnow
from om_core.db import Database
from om_core.errors import Conflict, UnknownLocation, UnknownProduct, UnknownSupplier, ValidationError
from om_core.models import PurchaseOrder
from om_core.schema import upgrade
from om_core.services.purchasing import create_purchase_order
from om_core.services.reorder import approve_reorder
from tests.om_core.helpers import fields, refused
from tests.om_core.store import build_store


def _orders(db: Database) -> list[dict]:
    from om_core.models import Location, Supplier

    with db.read() as s:
        return sorted(
            ({"supplier": s.get(Supplier, po.supplier_id).code, "location": s.get(Location, po.location_id).code, "status": po.status,
              "created_by": po.created_by, "lines": sorted((l.product.sku, l.quantity_ordered, l.unit_cost) for l in po.lines)}
             for po in s.scalars(select(PurchaseOrder))),
            key=lambda d: (d["supplier"], d["location"]),
        )


def test_approved_rows_become_one_draft_per_supplier_and_location(store: Database) -> None:
    with store.transaction() as s:
        pos = approve_reorder(s, [
            {"sku": "TEE-S", "location": "WH-EAST", "quantity": 24},
            {"sku": "MUG", "location": "WH-EAST", "quantity": 48, "unit_cost": "3.80"},
            {"sku": "MUG", "location": "ST-NYC", "quantity": 12},
            {"sku": "SOFA", "location": "WH-WEST", "quantity": 2},
        ], actor="merch")
        assert len(pos) == 3
    assert _orders(store) == [
        {"supplier": "ACME", "location": "ST-NYC", "status": "draft", "created_by": "merch", "lines": [("MUG", 12, Decimal("4.00"))]},
        {"supplier": "ACME", "location": "WH-EAST", "status": "draft", "created_by": "merch",
         "lines": [("MUG", 48, Decimal("3.80")), ("TEE-S", 24, Decimal("8.00"))]},
        {"supplier": "DROP", "location": "WH-WEST", "status": "draft", "created_by": "merch", "lines": [("SOFA", 2, Decimal("450.00"))]},
    ]


def test_a_named_supplier_overrides_the_skus_own(store: Database) -> None:
    with store.transaction() as s:
        approve_reorder(s, [{"sku": "MUG", "location": "WH-EAST", "quantity": 6, "supplier": "DROP"}])
    assert [(o["supplier"], o["lines"]) for o in _orders(store)] == [("DROP", [("MUG", 6, Decimal("4.00"))])]


@pytest.mark.parametrize(
    ("lines", "error", "named"),
    [
        ([{"sku": "NOPE", "location": "WH-EAST", "quantity": 1}], UnknownProduct, None),
        ([{"sku": "MUG", "location": "NOWHERE", "quantity": 1}], UnknownLocation, None),
        ([{"sku": "MUG", "location": "WH-EAST", "quantity": 1, "supplier": "NOBODY"}], UnknownSupplier, None),
        ([{"sku": "MUG", "location": "WH-EAST", "quantity": 0}], ValidationError, ["lines.0.quantity"]),
        ([{"sku": "MUG", "location": "WH-EAST", "quantity": -4}], ValidationError, ["lines.0.quantity"]),
        ([{"sku": "MUG", "location": "WH-EAST", "quantity": "lots"}], ValidationError, ["lines.0.quantity"]),
        ([{"sku": "MUG", "location": "WH-EAST", "quantity": 1, "colour": "red"}], ValidationError, ["lines.0.colour"]),
        ([], ValidationError, ["lines"]),
        ([{"sku": "MUG", "location": "WH-EAST", "quantity": 1}, {"sku": "MUG", "location": "WH-EAST", "quantity": 2}],
         ValidationError, ["lines"]),
        ([{"sku": "MUG", "location": "WH-EAST", "quantity": 5}, {"sku": "MUG", "location": "DS-DROP", "quantity": 1}],
         ValidationError, ["lines[1].location"]),
    ],
)
def test_bad_approvals_are_refused_and_write_nothing(store: Database, lines: list, error: type, named: list | None) -> None:
    err = refused(store, error, lambda s: approve_reorder(s, lines))
    if named is not None:
        assert fields(err) == named


def test_a_sku_without_supplier_needs_one_named(store: Database) -> None:
    from om_core.models import Product

    with store.transaction() as s:
        s.scalar(select(Product).where(Product.sku == "KETTLE")).supplier_id = None
    err = refused(store, ValidationError, lambda s: approve_reorder(s, [{"sku": "KETTLE", "location": "WH-WEST", "quantity": 2}]))
    assert fields(err) == ["lines[0].supplier"]
    with store.transaction() as s:
        approve_reorder(s, [{"sku": "KETTLE", "location": "WH-WEST", "quantity": 2, "supplier": "ACME"}])
    assert [o["lines"] for o in _orders(store)] == [[("KETTLE", 2, Decimal("25.00"))]]


def test_suggestions_already_ordered_since_their_as_of_day_are_refused(store: Database) -> None:
    yesterday = utcnow().date() - timedelta(days=1)
    with store.transaction() as s:
        create_purchase_order(s, {"supplier": "ACME", "location": "WH-EAST", "lines": [{"sku": "MUG", "quantity": 10}]})
    err = refused(store, Conflict, lambda s: approve_reorder(
        s, [{"sku": "TEE-S", "location": "WH-EAST", "quantity": 5}, {"sku": "MUG", "location": "WH-EAST", "quantity": 5}], as_of=yesterday))
    assert [(r["sku"], r["location"]) for r in err.details["already_ordered"]] == [("MUG", "WH-EAST")]
    with store.transaction() as s:  # the same SKU elsewhere, or suggestions computed after the PO, are fine
        approve_reorder(s, [{"sku": "MUG", "location": "ST-NYC", "quantity": 5}], as_of=yesterday)
        approve_reorder(s, [{"sku": "MUG", "location": "WH-EAST", "quantity": 5}], as_of=utcnow().date())
    assert len(_orders(store)) == 3


# --- storeom reorder --------------------------------------------------------------------------


def _suggestions(as_of: date) -> pd.DataFrame:
    rows = [
        ("MUG", "WH-EAST", "ACME", "urgent", 1, 48), ("TEE-S", "WH-EAST", "ACME", "high", 2, 24),
        ("BEANS", "ST-NYC", "ACME", "medium", 3, 30), ("KETTLE", "WH-WEST", "ACME", "low", 4, 4),
    ]
    df = pd.DataFrame(rows, columns=["sku", "location", "supplier", "priority", "priority_rank", "suggested_qty"])
    df["estimated_cost"] = df["suggested_qty"] * 5.0
    df["expected_stockout_date"] = pd.Timestamp(as_of + timedelta(days=3))
    df["reason"] = "because"
    df["as_of"] = pd.Timestamp(as_of)
    return df


@pytest.fixture
def home(tmp_path: Path) -> Path:
    url = f"sqlite:///{tmp_path}/storeom.db"
    upgrade(url)
    db = Database(url)
    build_store(db)
    db.dispose()
    return tmp_path


def _run(home: Path, *args: str):  # type: ignore[no-untyped-def]
    runner = CliRunner(env={"STOREOM_HOME": str(home), "STOREOM_DATABASE_URL": f"sqlite:///{home}/storeom.db"})
    return runner.invoke(main, ["reorder", *args], catch_exceptions=False)


def _write(home: Path, df: pd.DataFrame) -> None:
    (home / "warehouse").mkdir(exist_ok=True)
    df.to_parquet(home / "warehouse" / "reorder_suggestions.parquet", index=False)


def test_cli_approves_by_priority_and_by_sku(home: Path) -> None:
    _write(home, _suggestions(utcnow().date() - timedelta(days=1)))
    listed = json.loads(_run(home, "list", "--priority", "high").stdout)
    assert [r["sku"] for r in listed] == ["MUG", "TEE-S"]
    result = _run(home, "approve", "--all-priority", "high")
    assert result.exit_code == 0, result.stderr
    created = json.loads(result.stdout)["purchase_orders"]
    assert [(p["supplier"], p["location"], [(l["sku"], l["quantity"]) for l in p["lines"]]) for p in created] == [
        ("ACME", "WH-EAST", [("MUG", 48), ("TEE-S", 24)])]
    again = _run(home, "approve", "--sku", "MUG")  # already on the PO just created
    assert again.exit_code == 1 and again.stderr.startswith("error [conflict]:")
    result = _run(home, "approve", "--sku", "BEANS", "--sku", "KETTLE", "--location", "ST-NYC")
    assert [[(l["sku"], l["quantity"]) for l in p["lines"]] for p in json.loads(result.stdout)["purchase_orders"]] == [[("BEANS", 30)]]


def test_cli_dry_run_writes_nothing(home: Path) -> None:
    _write(home, _suggestions(utcnow().date()))
    result = _run(home, "approve", "--all-priority", "low", "--dry-run")
    assert [l["sku"] for l in json.loads(result.stdout)["lines"]] == ["MUG", "TEE-S", "BEANS", "KETTLE"]
    db = Database(f"sqlite:///{home}/storeom.db")
    assert _orders(db) == []
    db.dispose()


@pytest.mark.parametrize(
    ("args", "code"),
    [(("approve",), "validation_error"), (("approve", "--sku", "NOPE"), "not_found"),
     (("approve", "--sku", "MUG", "--location", "ST-SF"), "not_found")],
)
def test_cli_refuses_bad_selections(home: Path, args: tuple[str, ...], code: str) -> None:
    _write(home, _suggestions(utcnow().date()))
    result = _run(home, *args)
    assert result.exit_code == 1 and result.stderr.startswith(f"error [{code}]:"), result.stderr
    db = Database(f"sqlite:///{home}/storeom.db")
    assert _orders(db) == []
    db.dispose()


def test_cli_reads_suggestions_from_an_object_store_warehouse(home: Path) -> None:
    """STOREOM_WAREHOUSE_URL moves the warehouse off the home folder (here fsspec's in-memory filesystem)."""
    import fsspec

    url = f"memory://reorder-{home.name}"
    with fsspec.open(f"{url}/reorder_suggestions.parquet", "wb") as fh:
        _suggestions(utcnow().date()).to_parquet(fh, index=False)
    runner = CliRunner(env={"STOREOM_HOME": str(home), "STOREOM_DATABASE_URL": f"sqlite:///{home}/storeom.db",
                            "STOREOM_WAREHOUSE_URL": url})
    listed = runner.invoke(main, ["reorder", "list", "--priority", "high"], catch_exceptions=False)
    assert [r["sku"] for r in json.loads(listed.stdout)] == ["MUG", "TEE-S"]
    assert not (home / "warehouse").exists()
    fsspec.filesystem("memory").rm(url, recursive=True)
    missing = runner.invoke(main, ["reorder", "list"], catch_exceptions=False)
    assert missing.exit_code == 1 and "storeom pipeline run" in missing.stderr


@pytest.mark.parametrize("args", [("approve", "--all-priority", "urgent"), ("list",)])
def test_cli_without_suggestions_says_what_to_run(home: Path, args: tuple[str, ...]) -> None:
    result = _run(home, *args)
    assert result.exit_code == 1 and result.stderr.startswith("error [not_found]:") and "storeom pipeline run" in result.stderr


def test_purchase_orders_after_the_suggestions_were_computed_are_refused_even_the_same_day(store: Database) -> None:
    now = utcnow()
    with store.transaction() as s:
        create_purchase_order(s, {"supplier": "ACME", "location": "WH-EAST", "lines": [{"sku": "MUG", "quantity": 10}]})
    line = [{"sku": "MUG", "location": "WH-EAST", "quantity": 5}]
    refused(store, Conflict, lambda s: approve_reorder(s, line, as_of=now.date(), computed_at=now - timedelta(minutes=5)))
    with store.transaction() as s:  # computed after that purchase order: it knew about it
        approve_reorder(s, line, as_of=now.date(), computed_at=utcnow() + timedelta(seconds=1))
