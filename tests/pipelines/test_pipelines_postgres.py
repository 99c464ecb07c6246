"""The pipelines read the core's PostgreSQL database the same way as SQLite (runs in CI)."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import func, select

from om_core.config import get_settings
from om_core.demo import build_demo_store
from om_core.models import OrderLine
from tests.conftest import PG_SKIP_REASON, PG_URL, _truncate_all
from tests.pipelines.conftest import materialize_all


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason=PG_SKIP_REASON)
def test_every_asset_materializes_from_postgresql(pg_database, tmp_path, monkeypatch):
    from om_core.db import Database

    database = Database(pg_database)
    _truncate_all(database)
    monkeypatch.setenv("STOREOM_HOME", str(tmp_path))
    monkeypatch.setenv("STOREOM_DATABASE_URL", pg_database)
    build_demo_store(get_settings(), order_count=80, days=20)
    result = materialize_all()
    assert result.success
    with database.read() as s:
        revenue = s.scalar(select(func.sum(OrderLine.line_total)))
    lines = pd.read_parquet(get_settings().warehouse_dir / "stg_order_lines.parquet")
    assert len(lines) > 0 and revenue is not None
    checks = [e for e in result.get_asset_check_evaluations() if e.blocking]
    assert checks and all(e.passed for e in checks)
    database.dispose()
