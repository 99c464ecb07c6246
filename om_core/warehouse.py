"""The analytics warehouse as the core's CLI and API read it: the Parquet files the pipelines write, wherever
`STOREOM_WAREHOUSE_URL` puts them (the home folder by default; s3://, memory:// or anything else fsspec opens).
The core never imports the pipelines, so it finds the files by the same naming rule: `<warehouse>/<asset>.parquet`."""

from __future__ import annotations

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from om_core.config import get_settings


def asset_location(asset: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem holding one asset's file and its path on it."""
    return fsspec.core.url_to_fs(get_settings().warehouse_file(asset))


def asset_exists(asset: str) -> bool:
    fs, path = asset_location(asset)
    return bool(fs.isfile(path))


def read_table(asset: str, columns: list[str] | None = None) -> pa.Table:
    fs, path = asset_location(asset)
    return pq.read_table(path, filesystem=fs, columns=columns)


def read_frame(asset: str, columns: list[str] | None = None) -> pd.DataFrame:
    return read_table(asset, columns).to_pandas()
