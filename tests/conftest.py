"""Shared fixtures: a real database per test (SQLite file, and PostgreSQL when configured)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from om_core.db import Database
from om_core.models import Base
from om_core.schema import upgrade

PG_URL = os.environ.get("STOREOM_TEST_POSTGRES_URL")


def pytest_configure(config: pytest.Config) -> None:
    """Tests never write into the developer's ./var: labels, outbox files and the like go to a temp home."""
    os.environ["STOREOM_HOME"] = tempfile.mkdtemp(prefix="storeom-test-home-")
    os.environ.pop("STOREOM_DATABASE_URL", None)
PG_SKIP_REASON = "PostgreSQL not configured: set STOREOM_TEST_POSTGRES_URL (.ci/run starts a server and sets it)"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty database migrated once with Alembic; each test gets a copy of the file."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database(worker_id: str) -> Iterator[str]:
    """A private PostgreSQL database for this xdist worker, migrated once."""
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    with scratch_pg_database(f"{make_url(PG_URL).database}_{worker_id}_{os.getpid()}") as url:
        upgrade(url)
        yield url


@contextmanager
def scratch_pg_database(name: str) -> Iterator[str]:
    """A new, empty database `name` on the test PostgreSQL server (its URL), dropped afterwards."""
    assert PG_URL, PG_SKIP_REASON
    base = make_url(PG_URL)
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield base.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _truncate_all(db: Database) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "storeom.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        database = Database(f"sqlite:///{path}")
    else:
        database = Database(request.getfixturevalue("pg_database"))
        _truncate_all(database)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path, sqlite_template: Path) -> Iterator[Database]:
    """SQLite only, for tests about the embedded default itself."""
    path = tmp_path / "storeom.db"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()
