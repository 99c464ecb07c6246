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

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"


def get_settings() -> Settings:
    """One home folder (`STOREOM_HOME`, default ./var) holds all state; the database can live elsewhere.
    `STOREOM_PUBLIC_URL` is where customers reach the shop's pages (links in messages)."""
    home = Path(os.environ.get("STOREOM_HOME", "./var")).resolve()
    url = os.environ.get("STOREOM_DATABASE_URL") or f"sqlite:///{home / 'storeom.db'}"
    return Settings(
        home=home, database_url=url, currency=os.environ.get("STOREOM_CURRENCY", "USD"),
        public_url=os.environ.get("STOREOM_PUBLIC_URL", "http://localhost:8000").rstrip("/"),
    )
