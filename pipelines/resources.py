"""The pipelines' resources: read-only access to the core's database (with the as-of date every asset
sees), the Parquet warehouse IO manager (a folder or any fsspec URL: STOREOM_WAREHOUSE_URL) and the Dask
cluster the forecast fits run on (STOREOM_DASK_ADDRESS; in process without one).

Timestamps leave the database as naive UTC (`datetime64[ns]`); money as float rounded to the cent.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import dagster as dg
import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import PrivateAttr


def _parse_as_of(value: str | date | None) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


FETCH_ROWS = 200_000
WRITE_ROWS = 500_000


def _frame(fetchmany: Any, columns: list[str]) -> pd.DataFrame:
    """A query's rows as a DataFrame, built a block of rows at a time: the whole result as Python tuples costs
    about a kilobyte a row (gigabytes for millions of order lines), a block of columns a tenth of that. Repeated
    strings (SKUs, categories, channels) share one object per block."""
    parts = []
    while rows := fetchmany(FETCH_ROWS):
        part = pd.DataFrame.from_records(rows, columns=columns)
        for c in part.columns[part.dtypes == object]:
            codes, uniques = pd.factorize(part[c])
            if 0 < len(uniques) < len(part) // 2:
                shared = np.asarray(uniques, dtype=object).take(codes)
                shared[codes < 0] = None
                part[c] = shared
        parts.append(part)
    if not parts:
        return pd.DataFrame.from_records([], columns=columns)
    if len(parts) > 1:
        for c in columns:  # a block where a column is all null is object-typed; elsewhere it may be numeric
            if {p[c].dtype.kind for p in parts} - {"O"}:
                for p in parts:
                    if p[c].dtype.kind == "O" and p[c].isna().all():
                        p[c] = p[c].astype("float64")
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


class StoreDatabase(dg.ConfigurableResource):
    """The core's database, read only (SQLite or PostgreSQL).

    `url` defaults to STOREOM_DATABASE_URL (or STOREOM_HOME/storeom.db); `as_of` (YYYY-MM-DD) is the
    last day the pipelines see -- nothing stamped after the end of that day (UTC) is read. Without it,
    the as-of date is the day of the latest order.
    """

    url: str | None = None
    as_of: str | None = None
    _engine: Any = PrivateAttr(default=None)
    _as_of: date | None = PrivateAttr(default=None)

    # --- connection ---------------------------------------------------------------------------------
    def database_url(self) -> str:
        from om_core.config import get_settings

        return self.url or get_settings().database_url

    def engine(self):  # type: ignore[no-untyped-def]
        if self._engine is None:
            from om_core.db import make_engine

            self._engine = make_engine(self.database_url())
        return self._engine

    @property
    def is_sqlite(self) -> bool:
        return self.database_url().startswith("sqlite")

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """One wide read. SQL uses `:name` parameters (portable between SQLite and PostgreSQL)."""
        params = dict(params or {})
        engine = self.engine()
        if self.is_sqlite:
            params = {k: (v.strftime("%Y-%m-%d %H:%M:%S") if isinstance(v, datetime) else v) for k, v in params.items()}
            raw = engine.raw_connection()
            try:
                cur = raw.driver_connection.execute(sql, params)
                return _frame(cur.fetchmany, [d[0] for d in cur.description])
            finally:
                raw.close()
        from sqlalchemy import text

        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(text(sql), params)
            return _frame(result.fetchmany, list(result.keys()))

    # --- the as-of date -----------------------------------------------------------------------------
    def as_of_date(self) -> date:
        """The configured as-of day, else the day of the latest order (today when there is none)."""
        if self._as_of is None:
            configured = _parse_as_of(self.as_of)
            if configured is None:
                latest = self.query("SELECT MAX(placed_at) AS latest FROM orders")["latest"].iloc[0]
                configured = pd.Timestamp(latest).date() if latest is not None and not pd.isna(latest) else date.today()
            self._as_of = configured
        return self._as_of

    def cutoff(self) -> datetime:
        """The first instant after the as-of day (naive UTC): rows stamped at or after it are not used."""
        d = self.as_of_date() + timedelta(days=1)
        return datetime(d.year, d.month, d.day)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


class WarehouseIOManager(dg.ConfigurableIOManager):
    """Each asset is one Parquet file `<base_url>/<asset_name>.parquet` (local path or any fsspec URL,
    e.g. s3://bucket/warehouse). An input declared with `AssetIn(metadata={"columns": [...]})` reads only those
    columns. A file is written under a temporary name in the same folder/prefix
    and then renamed over the old one, so a reader sees the old or the new file, never half of one."""

    base_url: str | None = None

    def _base(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        from om_core.config import get_settings

        return get_settings().warehouse_url

    def path_for(self, asset_key: dg.AssetKey) -> str:
        return f"{self._base()}/{'__'.join(asset_key.path)}.parquet"

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        if obj is None:
            return
        write_parquet(obj, self.path_for(context.asset_key))
        context.add_output_metadata({"path": dg.MetadataValue.path(self.path_for(context.asset_key))})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        key = context.upstream_output.asset_key if context.upstream_output is not None else context.asset_key
        columns = (context.definition_metadata or {}).get("columns")
        return read_parquet(self.path_for(key), list(columns) if columns else None)


def _filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem and path behind a warehouse file's URL; a clear error for a URL nothing can open."""
    try:
        return fsspec.core.url_to_fs(url)
    except (ValueError, ImportError) as exc:
        raise ValueError(f"The warehouse URL {url!r} (STOREOM_WAREHOUSE_URL) cannot be opened: {exc}. "
                         "s3:// needs `pip install s3fs`, gs:// gcsfs, az:// adlfs.") from exc


def write_parquet(df: pd.DataFrame, url: str) -> None:
    """Write `df` to `url` atomically: temp file in the same folder, then rename over the target."""
    fs, path = _filesystem(url)
    parent = path.rsplit("/", 1)[0]
    fs.makedirs(parent, exist_ok=True)
    tmp = f"{parent}/.{path.rsplit('/', 1)[1]}.{uuid.uuid4().hex}.tmp"
    try:
        with fs.open(tmp, "wb") as fh:
            _write_blocks(df, fh)
        fs.mv(tmp, path)
    finally:
        if fs.exists(tmp):
            fs.rm(tmp)


def _write_blocks(df: pd.DataFrame, fh: Any) -> None:
    """Block by block: pandas' to_parquet converts the whole frame to Arrow first, a second copy of a
    multi-million-row mart; here the copy is one block (one row group) at a time, with the frame's schema."""
    if len(df) <= WRITE_ROWS:
        df.to_parquet(fh, index=False)
        return
    schema = pa.Schema.from_pandas(df, preserve_index=False)
    with pq.ParquetWriter(fh, schema) as writer:
        for start in range(0, len(df), WRITE_ROWS):
            writer.write_table(pa.Table.from_pandas(df.iloc[start:start + WRITE_ROWS], schema=schema, preserve_index=False))


def read_parquet(url: str, columns: list[str] | None = None) -> pd.DataFrame:
    """The file as pandas (only `columns` when given); Arrow's buffers are released as each column converts."""
    fs, path = _filesystem(url)
    with fs.open(path, "rb") as fh:
        return pq.read_table(fh, columns=columns).to_pandas(self_destruct=True, split_blocks=True)


class DaskCluster(dg.ConfigurableResource):
    """The Dask cluster the forecast's statsforecast fits run on: `address` (default STOREOM_DASK_ADDRESS),
    e.g. tcp://scheduler:8786. Without one the fits run in the run's own process. The resource owns the
    client: opened on first use, closed when the step ends. The results are the same either way."""

    address: str | None = None
    connect_timeout_seconds: float = 30.0
    min_series_on_cluster: int = 100
    """A statsforecast call with fewer series runs in the run's process (a round trip costs more than the fits)."""
    _client: Any = PrivateAttr(default=None)

    def scheduler_address(self) -> str | None:
        from om_core.config import get_settings

        return self.address or get_settings().dask_address

    def client(self):  # type: ignore[no-untyped-def]
        """The `distributed.Client`, or None when there is no cluster."""
        address = self.scheduler_address()
        if not address:
            return None
        if self._client is None:
            from distributed import Client

            try:
                self._client = Client(address, set_as_default=False, timeout=self.connect_timeout_seconds)
            except (OSError, TimeoutError, ValueError) as exc:
                raise dg.Failure(f"No Dask scheduler answers at {address!r} (STOREOM_DASK_ADDRESS): {exc}",
                                 metadata={"dask_address": address}) from exc
        return self._client

    def runner(self):  # type: ignore[no-untyped-def]
        """What `forecast_demand(runner=...)` takes: None (in process) or the cluster's runner."""
        client = self.client()
        if client is None:
            return None
        from forecasting.distributed import dask_runner

        return dask_runner(client, min_series=self.min_series_on_cluster)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def default_resources(as_of: str | None = None, database_url: str | None = None, warehouse_url: str | None = None,
                      dask_address: str | None = None) -> dict[str, Any]:
    return {"store_db": StoreDatabase(url=database_url, as_of=as_of), "io_manager": WarehouseIOManager(base_url=warehouse_url),
            "dask": DaskCluster(address=dask_address)}
