"""The API under test: the real app over the real test store (SQLite file, and PostgreSQL when configured),
called through FastAPI's TestClient with one key per role."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from om_core.api import ApiSettings, create_app
from om_core.db import Database
from om_core.services.apikeys import create_api_key

#: name -> key spec; a channel key for web and one for app, store_ops keys for the NYC store and the east DC.
KEY_SPECS: dict[str, dict[str, Any]] = {
    "admin": {"role": "admin"},
    "manager": {"role": "manager"},
    "merchandiser": {"role": "merchandiser"},
    "marketing": {"role": "marketing"},
    "web": {"role": "channel", "channel": "web"},
    "app": {"role": "channel", "channel": "app"},
    "pos": {"role": "channel", "channel": "pos-nyc"},
    "nyc": {"role": "store_ops", "locations": ["ST-NYC"]},
    "east": {"role": "store_ops", "locations": ["WH-EAST"]},
    "west": {"role": "store_ops", "locations": ["WH-WEST"]},
}
NO_LIMITS = ApiSettings(rate_per_second=0, key_cache_seconds=0)


class Api:
    """`api.as_("web").post(...)`: a TestClient sending that role's key; `api.anon` sends none."""

    def __init__(self, app: Any, keys: dict[str, str]) -> None:
        self.app, self.keys = app, keys
        self.anon = TestClient(app, raise_server_exceptions=False)
        self._clients: dict[str, TestClient] = {}

    def as_(self, name: str) -> TestClient:
        if name not in self._clients:
            self._clients[name] = TestClient(self.app, headers={"X-API-Key": self.keys[name]}, raise_server_exceptions=False)
        return self._clients[name]

    @property
    def db(self) -> Database:
        return self.app.state.db


def make_keys(db: Database) -> dict[str, str]:
    keys = {}
    with db.transaction() as s:
        for name, spec in KEY_SPECS.items():
            keys[name] = create_api_key(s, {"name": name, **spec})[1]
    return keys


@pytest.fixture
def api(store: Database) -> Iterator[Api]:
    yield Api(create_app(store, NO_LIMITS), make_keys(store))


def problem_of(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The response's problem details, checked for the one shape every refusal has."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail", "errors"} <= set(body)
    assert body["status"] == status and body["type"].startswith("urn:storeom:problem:") and body["detail"]
    if code is not None:
        assert body["code"] == code, body
    return body
