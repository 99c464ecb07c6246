"""Where StoreOM keeps its state, read from the environment at call time."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    currency: str
    public_url: str
    warehouse_location: str | None = None
    """STOREOM_WAREHOUSE_URL: an fsspec URL (s3://bucket/warehouse, memory://warehouse) instead of the folder."""
    dask_address: str | None = None
    """STOREOM_DASK_ADDRESS: the Dask scheduler the forecast fits run on (none: in process)."""

    @property
    def warehouse_dir(self) -> Path:
        """The local warehouse folder; where the warehouse is, is `warehouse_url`."""
        return self.home / "warehouse"

    @property
    def warehouse_url(self) -> str:
        """Where the warehouse's Parquet files are: STOREOM_WAREHOUSE_URL, else the folder."""
        return (self.warehouse_location or str(self.warehouse_dir)).rstrip("/")

    def warehouse_file(self, asset: str) -> str:
        """The URL (or local path) of one asset's Parquet file; open it with fsspec (pandas does)."""
        return f"{self.warehouse_url}/{asset}.parquet"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"


def get_settings() -> Settings:
    """One home folder (`STOREOM_HOME`, default ./var) holds all state; the database can live elsewhere.
    `STOREOM_PUBLIC_URL` is where customers reach the shop's pages (links in messages); `STOREOM_WAREHOUSE_URL`
    and `STOREOM_DASK_ADDRESS` move the warehouse to an object store and the forecast to a Dask cluster."""
    home = Path(os.environ.get("STOREOM_HOME", "./var")).resolve()
    url = os.environ.get("STOREOM_DATABASE_URL") or f"sqlite:///{home / 'storeom.db'}"
    return Settings(
        home=home, database_url=url, currency=os.environ.get("STOREOM_CURRENCY", "USD"),
        public_url=os.environ.get("STOREOM_PUBLIC_URL", "http://localhost:8000").rstrip("/"),
        warehouse_location=os.environ.get("STOREOM_WAREHOUSE_URL") or None, dask_address=os.environ.get("STOREOM_DASK_ADDRESS") or None,
    )
