"""Alembic migrations: they build exactly the schema the models describe, on SQLite and PostgreSQL.

Every test here starts from an empty database of its own (a new SQLite file, or a new PostgreSQL
database created next to STOREOM_TEST_POSTGRES_URL), so upgrading and downgrading never disturbs the
migrated databases the other tests share through `tests/conftest.py`.

The models/migrations comparison runs `alembic.autogenerate.compare_metadata` with the same options
as `om_core/migrations/env.py` (compare_type=True) and ignores nothing: both backends currently
report no differences at all, so any difference, even a type one, fails the test.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from om_core.db import Database, make_engine
from om_core.models import Base, Supplier
from om_core.schema import MIGRATIONS, alembic_config, current_revision, downgrade, upgrade
from tests.conftest import PG_SKIP_REASON, PG_URL, scratch_pg_database

MODEL_TABLES = set(Base.metadata.tables)


def versions_folder_head() -> str:
    """The head revision, read straight from the files in migrations/versions: the one revision no other revises."""
    revisions: dict[str, Any] = {}
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        assigned = {
            node.targets[0].id: ast.literal_eval(node.value)
            for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in ("revision", "down_revision")
        }
        revisions[assigned["revision"]] = assigned.get("down_revision")
    assert revisions, "no migrations in the versions folder"
    revised: set[str] = set()
    for down in revisions.values():
        revised.update(down if isinstance(down, tuple) else [down] if down else [])
    heads = set(revisions) - revised
    assert len(heads) == 1, f"the versions folder has {len(heads)} heads: {sorted(heads)}"
    return heads.pop()


def schema_snapshot(url: str) -> dict[str, Any]:
    """Tables with their columns, indexes, unique and foreign keys, as the database reports them."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            return {
                table: {
                    "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)],
                    "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(table)),
                    "unique": sorted((u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(table)),
                    "foreign_keys": sorted((f["name"] or "", tuple(f["constrained_columns"]), f["referred_table"]) for f in insp.get_foreign_keys(table)),
                }
                for table in sorted(insp.get_table_names())
            }
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def model_differences(url: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database (no tables at all) private to this test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    with scratch_pg_database(f"{make_url(PG_URL).database}_mig_{request.getfixturevalue('worker_id')}_{os.getpid()}") as url:
        yield url


def test_versions_folder_has_one_head_that_alembic_agrees_with() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert script.get_heads() == [versions_folder_head()]


def test_upgrade_head_creates_every_model_table(empty_url: str) -> None:
    assert table_names(empty_url) == set()
    assert current_revision(empty_url) is None

    upgrade(empty_url)

    assert table_names(empty_url) == MODEL_TABLES | {"alembic_version"}
    assert current_revision(empty_url) == versions_folder_head()


def test_models_and_migrations_agree(empty_url: str) -> None:
    upgrade(empty_url)
    assert model_differences(empty_url) == []


def test_migrated_test_databases_match_the_models(db: Database) -> None:
    """The databases every other test runs on (migrated once by conftest) are at head and match the models."""
    assert current_revision(db.url) == versions_folder_head()
    assert model_differences(db.url) == []


def test_downgrade_to_base_removes_every_table(empty_url: str) -> None:
    upgrade(empty_url)
    downgrade(empty_url, "base")

    assert table_names(empty_url) - {"alembic_version"} == set()
    assert current_revision(empty_url) is None
    if empty_url.startswith("postgresql"):
        engine = make_engine(empty_url)
        try:
            with engine.connect() as conn:
                assert inspect(conn).get_sequence_names() == []
                assert conn.scalar(text("select count(*) from pg_type t join pg_namespace n on n.oid = t.typnamespace "
                                        "where n.nspname = 'public' and t.typtype = 'e'")) == 0
        finally:
            engine.dispose()


def test_downgrade_then_upgrade_rebuilds_the_same_schema(empty_url: str) -> None:
    upgrade(empty_url)
    first = schema_snapshot(empty_url)
    downgrade(empty_url, "base")
    upgrade(empty_url)
    assert schema_snapshot(empty_url) == first
    assert model_differences(empty_url) == []


def test_upgrading_twice_is_a_no_op(empty_url: str) -> None:
    upgrade(empty_url)
    before = schema_snapshot(empty_url)
    database = Database(empty_url)
    try:
        with database.transaction() as s:
            s.add(Supplier(code="ACME", name="Acme Supplies"))
    finally:
        database.dispose()

    upgrade(empty_url)
    upgrade(empty_url, "head")

    assert schema_snapshot(empty_url) == before
    assert current_revision(empty_url) == versions_folder_head()
    database = Database(empty_url)
    try:
        with database.read() as s:
            assert [r.code for r in s.query(Supplier).all()] == ["ACME"]
            assert s.execute(text("select version_num from alembic_version")).scalars().all() == [versions_folder_head()]
    finally:
        database.dispose()
