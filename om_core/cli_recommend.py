"""`storeom recommendations export --format csv|json|parquet [--segment SEG] [--output FILE]`: the marketing feed.

Reads the warehouse (`recommendations.parquet`, and `customer_segments.parquet` for --segment) with pandas
and marketing consent from the database: a customer without consent is never exported. csv and json go to
stdout unless --output is given; parquet needs --output. A missing asset or a bad argument is refused
(`error [code]: message` on stderr, exit 1, nothing written). om_core imports nothing else from this repo.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import pandas as pd
from sqlalchemy import select

from om_core import warehouse
from om_core.cli_common import database, emit, refuse
from om_core.config import get_settings
from om_core.errors import NotFound, ValidationError
from om_core.models import Customer

FEED_COLUMNS = ["customer_id", "sku", "rank", "score", "reason", "kind"]


class MissingAsset(NotFound):
    code = "asset_missing"


def consenting_customers() -> set[int]:
    db = database()
    try:
        with db.read() as session:
            return set(session.scalars(select(Customer.id).where(Customer.marketing_consent.is_(True))).all())
    finally:
        db.dispose()


def feed(segment: str | None = None) -> pd.DataFrame:
    """The consent-filtered recommendations, optionally only for one RFM segment, ordered by customer and rank."""
    if not warehouse.asset_exists("recommendations"):
        raise MissingAsset("no recommendations yet — run `storeom pipeline run`",
                           details={"path": get_settings().warehouse_file("recommendations")})
    df = warehouse.read_frame("recommendations", FEED_COLUMNS)
    if segment is not None:
        if not warehouse.asset_exists("customer_segments"):
            raise MissingAsset("no customer segments yet — run `storeom pipeline run`",
                               details={"path": get_settings().warehouse_file("customer_segments")})
        segments = warehouse.read_frame("customer_segments", ["customer_id", "segment"])
        known = sorted(segments["segment"].dropna().astype(str).unique())
        if segment not in known:
            raise ValidationError(f"unknown segment {segment!r}", errors=[{"field": "segment", "reason": f"one of {known}"}])
        df = df[df["customer_id"].isin(segments.loc[segments["segment"] == segment, "customer_id"])]
    df = df[df["customer_id"].isin(consenting_customers())]
    return df.sort_values(["customer_id", "rank"]).reset_index(drop=True)


@click.group("recommendations")
def recommendations_group() -> None:
    """Personalized recommendations (built by the pipelines): the marketing export."""


@recommendations_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "parquet"]), required=True, help="Output format.")
@click.option("--segment", help="Only customers of this RFM segment (customer_segments), e.g. champions.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file (default: stdout; parquet needs a file).")
def export(fmt: str, segment: str | None, output: Path | None) -> None:
    """Export recommendations of customers with marketing consent: customer_id, sku, rank, score, reason, kind."""
    try:
        if fmt == "parquet" and output is None:
            raise ValidationError("parquet needs --output FILE", errors=[{"field": "output", "reason": "required for parquet"}])
        if output is not None and not output.parent.exists():
            raise ValidationError(f"no such folder: {output.parent}", errors=[{"field": "output", "reason": "folder does not exist"}])
        df = feed(segment)
    except (NotFound, ValidationError) as exc:
        refuse(exc)
    if fmt == "parquet":
        df.to_parquet(output, index=False)
    else:
        text = df.to_csv(index=False) if fmt == "csv" else json.dumps(df.to_dict(orient="records"), indent=2) + "\n"
        if output is None:
            sys.stdout.write(text)
            return
        output.write_text(text)
    emit({"rows": len(df), "customers": int(df["customer_id"].nunique()), "output": str(output)})
