"""Helpers the assets share: ownership, metadata (row count, preview, column descriptions), duckdb."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

OWNERS = ["team:analytics"]
MART_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=30), warn_window=timedelta(hours=26))
"""Marts are rebuilt daily (schedule `storeom_daily`); older than 26 h warns, 30 h fails."""


def column_schema(columns: dict[str, str]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, "", description=desc) for name, desc in columns.items()])


def definition_metadata(columns: dict[str, str]) -> dict[str, Any]:
    return {"dagster/column_schema": column_schema(columns)}


def only_columns(*columns: str) -> dg.AssetIn:
    """An input that reads only these columns of the upstream Parquet file (the order lines are millions of rows
    by some thirty columns; a mart needs a handful)."""
    return dg.AssetIn(metadata={"columns": list(columns)})


def preview(df: pd.DataFrame, rows: int = 10) -> str:
    head = df.head(rows)
    if head.empty:
        return "_(no rows)_"
    cells = [[str(v) for v in row] for row in head.itertuples(index=False)]
    lines = ["| " + " | ".join(map(str, head.columns)) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def output(df: pd.DataFrame, columns: dict[str, str], *, as_of: Any = None, extra: dict[str, Any] | None = None) -> dg.Output:
    """The asset's value with its metadata; `df` keeps exactly the documented columns, in order."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"missing columns {missing}")
    if list(df.columns) != list(columns):
        df = df[list(columns)]
    if not df.index.equals(pd.RangeIndex(len(df))):
        df = df.reset_index(drop=True)
    metadata: dict[str, Any] = {
        "dagster/row_count": dg.MetadataValue.int(len(df)),
        "preview": dg.MetadataValue.md(preview(df)),
        "dagster/column_schema": column_schema(columns),
    }
    if as_of is not None:
        metadata["as_of"] = dg.MetadataValue.text(str(as_of))
    metadata.update(extra or {})
    return dg.Output(df, metadata=metadata)


@contextmanager
def duck_connection(**frames: pd.DataFrame) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory duckdb with the given DataFrames registered under their keyword names; for several queries
    over one intermediate table kept inside duckdb instead of a pandas round trip."""
    con = duckdb.connect()
    try:
        for name, df in frames.items():
            con.register(name, df)
        yield con
    finally:
        con.close()


def duck(sql: str, **frames: pd.DataFrame) -> pd.DataFrame:
    """Run `sql` in an in-memory duckdb over the given DataFrames (referenced by their keyword names)."""
    with duck_connection(**frames) as con:
        return con.execute(sql).df()
