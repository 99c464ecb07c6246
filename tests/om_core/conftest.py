"""Fixtures for the core's tests."""

from __future__ import annotations

import pytest

from om_core.db import Database
from tests.om_core.store import build_store


@pytest.fixture
def store(db: Database) -> Database:
    """The small test store of tests/om_core/store.py, on each backend."""
    build_store(db)
    return db
