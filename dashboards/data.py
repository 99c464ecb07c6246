"""Reading the warehouse for the dashboards: whole Parquet files (the IO manager replaces them atomically,
so a read sees the old or the new file), cached per file version (path, mtime, size) with a TTL, so a
rewritten mart shows up on the next rerun and a running pipeline never blocks a page.

Big tables (order lines, daily demand, forecasts, recommendations) are queried with DuckDB straight from
the file and only the small answer is cached. A missing or unreadable file is `None`: pages show an
empty state naming `storeom pipeline run` instead of a traceback.

The warehouse is a folder or an fsspec URL (STOREOM_WAREHOUSE_URL, e.g. s3://bucket/warehouse): a file's
version then comes from the store's modification time, and DuckDB reads it through the same fsspec
filesystem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import fsspec
import pandas as pd
import streamlit as st

from om_core.config import get_settings

TTL = timedelta(minutes=10)
"""Cached answers live this long at most; a new file version is read at once anyway (its key changes)."""


def warehouse_url() -> str:
    return get_settings().warehouse_url


def asset_path(asset: str) -> str:
    """The asset file's local path or URL."""
    return get_settings().warehouse_file(asset)


def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def connect(*urls: str) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that can read the given warehouse files (remote ones through fsspec)."""
    con = duckdb.connect()
    protocols = set()
    for url in urls:
        if not _is_local(url):
            fs, _ = fsspec.core.url_to_fs(url)
            if fs.protocol not in protocols:
                protocols.add(fs.protocol)
                con.register_filesystem(fs)
    return con


@dataclass(frozen=True)
class Version:
    """One version of an asset file: the cache key of everything read from it."""

    path: str
    mtime_ns: int
    size: int

    @property
    def modified(self) -> datetime:
        return datetime.fromtimestamp(self.mtime_ns / 1e9, tz=UTC)


def version(asset: str) -> Version | None:
    url = asset_path(asset)
    if _is_local(url):
        try:
            stat = Path(url.removeprefix("file://")).stat()
        except OSError:
            return None
        return Version(url, stat.st_mtime_ns, stat.st_size)
    try:
        fs, path = fsspec.core.url_to_fs(url)
        info = fs.info(path)
        modified = fs.modified(path)
    except (OSError, NotImplementedError):  # missing (FileNotFoundError), unreachable, or a store without times
        return None
    return Version(url, int(pd.Timestamp(modified).value), int(info.get("size") or 0))


def has(asset: str) -> bool:
    return version(asset) is not None


@st.cache_data(ttl=TTL, max_entries=64, show_spinner=False)
def _read(v: Version, columns: tuple[str, ...] | None) -> pd.DataFrame | None:
    try:
        return pd.read_parquet(v.path, columns=list(columns) if columns else None)
    except Exception:  # noqa: BLE001 - gone or unreadable (pyarrow has its own error types): shown as missing
        return None


def load(asset: str, columns: Sequence[str] | None = None) -> pd.DataFrame | None:
    """The whole asset (or some columns of it), or None when there is no readable file."""
    v = version(asset)
    if v is None:
        return None
    return _read(v, tuple(columns) if columns else None)


@st.cache_data(ttl=TTL, max_entries=256, show_spinner=False)
def _query(versions: tuple[tuple[str, Version], ...], sql: str, params: tuple[Any, ...]) -> pd.DataFrame | None:
    for name, v in versions:
        sql = sql.replace("{" + name + "}", f"read_parquet('{v.path}')")
    con = connect(*(v.path for _, v in versions))
    try:
        con.execute("SET threads TO 2")
        return con.execute(sql, list(params)).df()
    except (duckdb.IOException, duckdb.InvalidInputException):  # replaced under us: the next rerun reads the new file
        return None
    finally:
        con.close()


def query(asset: str, sql: str, params: Sequence[Any] = (), *, also: Sequence[str] = ()) -> pd.DataFrame | None:
    """Run DuckDB `sql` over the asset file (written `{src}` in the SQL; `?` parameters) and the `also` assets
    (written `{name}`); None when any of them is missing."""
    versions = [("src", version(asset)), *((name, version(name)) for name in also)]
    if any(v is None for _, v in versions):
        return None
    return _query(tuple(versions), sql, tuple(params))


def in_list(column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """`column IN (?, ?, ...)` and its parameters; no values is no condition."""
    if not values:
        return "TRUE", []
    return f"{column} IN ({', '.join('?' for _ in values)})", list(values)


# --- freshness --------------------------------------------------------------------------------------


@st.cache_data(ttl=TTL, max_entries=64, show_spinner=False)
def _max_day(v: Version, column: str) -> date | None:
    expr = column if "(" in column else f"MAX(CAST({column} AS DATE))"
    con = connect(v.path)
    try:
        value = con.execute(f"SELECT CAST({expr} AS DATE) FROM read_parquet('{v.path}')").fetchone()[0]
    except duckdb.Error:
        return None
    finally:
        con.close()
    return value


def as_of(asset: str, column: str | None = None) -> tuple[date | None, datetime | None]:
    """(latest day in the asset's `column` -- or the value of an SQL aggregate over it --, when the file was
    written); either may be None."""
    v = version(asset)
    if v is None:
        return None, None
    day = _max_day(v, column) if column else None
    return day, v.modified


# --- the core database (read-only lookups and the reorder approval) ----------------------------------


@st.cache_resource(show_spinner=False)
def _database(url: str):  # type: ignore[no-untyped-def]
    from om_core.db import Database

    return Database(url)


def database():  # type: ignore[no-untyped-def]
    """The core's database from the settings (STOREOM_HOME / STOREOM_DATABASE_URL), or None when there is none."""
    url = get_settings().database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    return _database(url)


@st.cache_data(ttl=timedelta(minutes=1), show_spinner=False)
def _consenting(url: str) -> frozenset[int]:
    from sqlalchemy import select

    from om_core.models import Customer

    with _database(url).read() as s:
        return frozenset(s.scalars(select(Customer.id).where(Customer.marketing_consent.is_(True))))


def consenting_customers() -> frozenset[int] | None:
    """Customers who opted in to marketing, as the core says now (a withdrawal counts at once, whatever the
    warehouse's last run saw); None without a database -- then nothing may be exported."""
    db = database()
    return None if db is None else _consenting(get_settings().database_url)
