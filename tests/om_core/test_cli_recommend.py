"""`storeom recommendations export`: csv/json to stdout or a file, parquet to a file; only customers with
marketing consent; --segment from customer_segments; a missing asset or bad argument is refused (exit 1,
`error [code]: message`) and writes nothing."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from om_core.cli import main
from om_core.db import Database
from om_core.models import Customer

RECS = pd.DataFrame({
    "customer_id": [1, 1, 2, 2, 3, 3],
    "sku": ["A", "B", "A", "C", "B", "C"],
    "rank": [1, 2, 1, 2, 1, 2],
    "score": [0.9, 0.5, 0.8, 0.4, 1.0, 0.7],
    "reason": ["bought with Beans by 31% of its buyers", "a bestseller right now", "x", "y",
               "you buy it about every 14 days; last bought 12 days ago", "z"],
    "kind": ["new", "new", "new", "new", "replenish", "new"],
})
SEGMENTS = pd.DataFrame({"customer_id": [1, 2, 3], "segment": ["champions", "at_risk", "champions"]})


@pytest.fixture
def home(tmp_path: Path, sqlite_template: Path) -> Path:
    """Customers 1 and 3 opted in to marketing, 2 did not; the warehouse holds recommendations and segments."""
    shutil.copy(sqlite_template, tmp_path / "storeom.db")
    db = Database(f"sqlite:///{tmp_path}/storeom.db")
    with db.transaction() as s:
        for cid, consent in [(1, True), (2, False), (3, True)]:
            s.add(Customer(id=cid, email=f"c{cid}@example.com", marketing_consent=consent))
    db.dispose()
    (tmp_path / "warehouse").mkdir()
    RECS.to_parquet(tmp_path / "warehouse" / "recommendations.parquet", index=False)
    SEGMENTS.to_parquet(tmp_path / "warehouse" / "customer_segments.parquet", index=False)
    return tmp_path


def run(home: Path, *args: str):
    runner = CliRunner(env={"STOREOM_HOME": str(home), "STOREOM_DATABASE_URL": f"sqlite:///{home}/storeom.db"})
    return runner.invoke(main, ["recommendations", "export", *args], catch_exceptions=False)


def refused(home: Path, *args: str, code: str) -> str:
    result = run(home, *args)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"error [{code}]: "), result.stderr
    return first


def test_csv_to_stdout_only_customers_with_consent(home: Path) -> None:
    result = run(home, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    df = pd.read_csv(io.StringIO(result.stdout))
    assert list(df.columns) == ["customer_id", "sku", "rank", "score", "reason", "kind"]
    assert set(df["customer_id"]) == {1, 3} and len(df) == 4
    assert df.iloc[0].reason == "bought with Beans by 31% of its buyers"


def test_json_and_segment_filter(home: Path) -> None:
    result = run(home, "--format", "json", "--segment", "champions")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {r["customer_id"] for r in rows} == {1, 3}
    assert rows[2] == {"customer_id": 3, "sku": "B", "rank": 1, "score": 1.0,
                       "reason": "you buy it about every 14 days; last bought 12 days ago", "kind": "replenish"}
    result = run(home, "--format", "json", "--segment", "at_risk")
    assert json.loads(result.stdout) == []  # customer 2 is at risk but did not consent


def test_parquet_and_csv_to_a_file(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "feed.parquet"
    result = run(home, "--format", "parquet", "--output", str(out))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"rows": 4, "customers": 2, "output": str(out)}
    df = pd.read_parquet(out)
    assert set(df["customer_id"]) == {1, 3} and str(df["rank"].dtype) == "int64"
    csv = tmp_path / "feed.csv"
    assert run(home, "--format", "csv", "--output", str(csv)).exit_code == 0
    assert len(pd.read_csv(csv)) == 4


def test_missing_asset_is_refused(home: Path, tmp_path: Path) -> None:
    (home / "warehouse" / "recommendations.parquet").unlink()
    out = tmp_path / "never.csv"
    first = refused(home, "--format", "csv", "--output", str(out), code="asset_missing")
    assert "no recommendations yet" in first and "storeom pipeline run" in first
    assert not out.exists()


def test_bad_arguments_are_refused_and_write_nothing(home: Path, tmp_path: Path) -> None:
    first = refused(home, "--format", "csv", "--segment", "nobody", code="validation_error")
    assert "unknown segment 'nobody'" in first
    refused(home, "--format", "parquet", code="validation_error")  # parquet needs a file
    out = tmp_path / "missing-folder" / "feed.csv"
    refused(home, "--format", "csv", "--output", str(out), code="validation_error")
    assert not out.parent.exists()
    (home / "warehouse" / "customer_segments.parquet").unlink()
    refused(home, "--format", "json", "--segment", "champions", code="asset_missing")
    result = run(home, "--format", "xml")
    assert result.exit_code == 2  # click usage error


def test_export_reads_an_object_store_warehouse(home: Path) -> None:
    """With STOREOM_WAREHOUSE_URL (here fsspec's in-memory filesystem) the files in the home folder are not used."""
    import fsspec

    url = f"memory://recs-{home.name}"
    for name, df in [("recommendations", RECS[RECS["customer_id"] == 3]), ("customer_segments", SEGMENTS)]:
        with fsspec.open(f"{url}/{name}.parquet", "wb") as fh:
            df.to_parquet(fh, index=False)
    runner = CliRunner(env={"STOREOM_HOME": str(home), "STOREOM_DATABASE_URL": f"sqlite:///{home}/storeom.db",
                            "STOREOM_WAREHOUSE_URL": url})
    try:
        result = runner.invoke(main, ["recommendations", "export", "--format", "json", "--segment", "champions"], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        assert sorted({r["customer_id"] for r in json.loads(result.stdout)}) == [3]
    finally:
        fsspec.filesystem("memory").rm(url, recursive=True)
