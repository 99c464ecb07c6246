"""`storeom reorder list|approve`: the merchandiser's side of the `reorder_suggestions` asset.

Reads the warehouse Parquet file the pipelines wrote (om_core imports nothing from `pipelines`); the
approval itself is `om_core.services.reorder.approve_reorder`, the same service the dashboard calls.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import click
import pandas as pd

from om_core import warehouse
from om_core.cli_common import database, emit, refuse
from om_core.config import get_settings
from om_core.errors import NotFound, StoreOMError, ValidationError

PRIORITIES = ("urgent", "high", "medium", "low")


def load_suggestions() -> pd.DataFrame:
    """The latest `reorder_suggestions` asset; NotFound (with what to run) when the pipelines have not made it."""
    if not warehouse.asset_exists("reorder_suggestions"):
        raise NotFound("No reorder suggestions yet: run `storeom pipeline run`", path=get_settings().warehouse_file("reorder_suggestions"))
    return warehouse.read_frame("reorder_suggestions")


def select_suggestions(df: pd.DataFrame, *, skus: tuple[str, ...] = (), location: str | None = None,
                       all_priority: str | None = None) -> pd.DataFrame:
    """Rows for the named SKUs and/or every row at `all_priority` or more urgent, optionally at one location."""
    if not skus and not all_priority:
        raise ValidationError("Name what to approve: --sku SKU (repeatable) and/or --all-priority PRIORITY",
                              errors=[{"field": "selection", "reason": "empty"}])
    picked = pd.Series(False, index=df.index)
    if skus:
        unknown = sorted(set(skus) - set(df["sku"]))
        if unknown:
            raise NotFound(f"No suggestion for SKU(s): {', '.join(unknown)}", skus=unknown)
        picked |= df["sku"].isin(skus)
    if all_priority:
        picked |= df["priority"].isin(PRIORITIES[: PRIORITIES.index(all_priority) + 1])
    if location:
        picked &= df["location"] == location
    return df[picked].sort_values(["priority_rank", "sku", "location"])


def suggestion_as_of(df: pd.DataFrame) -> date | None:
    return pd.Timestamp(df["as_of"].max()).date() if "as_of" in df.columns and len(df) else None


def suggestion_computed_at(df: pd.DataFrame) -> datetime | None:
    """When the pipeline computed the suggestions (UTC), when the asset says."""
    if "computed_at" not in df.columns or not len(df):
        return None
    return pd.Timestamp(df["computed_at"].max()).tz_localize(None).to_pydatetime().replace(tzinfo=UTC)


@click.group("reorder")
def reorder_group() -> None:
    """Reorder suggestions: list them, approve them into draft purchase orders."""


@reorder_group.command("list")
@click.option("--location", default=None)
@click.option("--priority", type=click.Choice(PRIORITIES), default=None, help="This priority or more urgent.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
def reorder_list(location: str | None, priority: str | None, limit: int) -> None:
    """The suggestions, most urgent first, with their reasons."""
    try:
        df = load_suggestions()
    except StoreOMError as exc:
        refuse(exc)
    if location:
        df = df[df["location"] == location]
    if priority:
        df = df[df["priority"].isin(PRIORITIES[: PRIORITIES.index(priority) + 1])]
    rows = df.sort_values(["priority_rank", "sku"]).head(limit)
    emit([{k: _plain(v) for k, v in r.items()} for r in rows[
        ["sku", "location", "supplier", "priority", "suggested_qty", "estimated_cost", "expected_stockout_date", "reason"]
    ].to_dict("records")])


@reorder_group.command("approve")
@click.option("--sku", "skus", multiple=True, help="Approve this SKU's suggestions (repeatable).")
@click.option("--location", default=None, help="Only suggestions for this location.")
@click.option("--all-priority", type=click.Choice(PRIORITIES), default=None,
              help="Approve every suggestion at this priority or more urgent.")
@click.option("--actor", default="cli")
@click.option("--dry-run", is_flag=True, help="Show what would be ordered; write nothing.")
def reorder_approve(skus: tuple[str, ...], location: str | None, all_priority: str | None, actor: str, dry_run: bool) -> None:
    """Turn suggestions into draft purchase orders, one per supplier and receiving location."""
    from om_core.services.reorder import approve_reorder

    try:
        df = load_suggestions()
        chosen = select_suggestions(df, skus=skus, location=location, all_priority=all_priority)
        if chosen.empty:
            raise NotFound("No suggestion matches that selection", skus=list(skus), location=location, priority=all_priority)
        lines = [{"sku": r.sku, "location": r.location, "quantity": int(r.suggested_qty), "supplier": r.supplier or None}
                 for r in chosen.itertuples()]
        if dry_run:
            emit({"dry_run": True, "lines": lines})
            return
        db = database()
        try:
            with db.transaction() as session:
                pos = approve_reorder(session, lines, actor=actor, as_of=suggestion_as_of(df), computed_at=suggestion_computed_at(df))
                result = [{"number": p.number, "supplier": p.supplier_id and _supplier_code(session, p.supplier_id),
                           "location": _location_code(session, p.location_id), "status": p.status,
                           "lines": [{"sku": l.product.sku, "quantity": l.quantity_ordered, "unit_cost": l.unit_cost} for l in p.lines]}
                          for p in pos]
        finally:
            db.dispose()
    except StoreOMError as exc:
        refuse(exc)
    emit({"purchase_orders": result})


def _supplier_code(session: Any, supplier_id: int) -> str:
    from om_core.models import Supplier

    return session.get(Supplier, supplier_id).code


def _location_code(session: Any, location_id: int) -> str:
    from om_core.models import Location

    return session.get(Location, location_id).code


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value
