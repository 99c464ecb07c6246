from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from tests.dashboards import warehouse

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "dashboards" / "streamlit_app.py"


@pytest.fixture(scope="session")
def frames() -> dict[str, pd.DataFrame]:
    return warehouse.build()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, frames: dict[str, pd.DataFrame], sqlite_template: Path) -> SimpleNamespace:
    """A STOREOM_HOME with every asset and the test store (plus one web order) in its database."""
    path = tmp_path_factory.mktemp("dashboards_home")
    warehouse.write(path, frames)
    return SimpleNamespace(path=path, order=warehouse.store_database(path, sqlite_template))


def open_page(monkeypatch: pytest.MonkeyPatch, home: Path) -> Callable[..., object]:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("STOREOM_HOME", str(home))
    monkeypatch.delenv("STOREOM_DATABASE_URL", raising=False)

    def _open(page: str, **state: object) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=60)
        for key, value in state.items():
            at.session_state[key] = value
        at.run()
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return _open


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, home: SimpleNamespace) -> Callable[..., object]:
    """`app("overview")`: the app on that page over the full test warehouse (AppTest, after one run)."""
    return open_page(monkeypatch, home.path)


def metric(at, label: str) -> str:  # type: ignore[no-untyped-def]
    found = {m.label: m.value for m in at.metric}
    assert label in found, f"no tile {label!r} in {sorted(found)}"
    return found[label]


def texts(at) -> str:  # type: ignore[no-untyped-def]
    """Every caption, markdown, alert and title of the page, for 'the page says ...' checks."""
    parts = [e.value for kind in ("caption", "markdown", "info", "warning", "error", "success", "title", "subheader")
             for e in at.get(kind)]
    return "\n".join(str(p) for p in parts)


def table_with(at, column: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    for df in at.dataframe:
        if column in df.value.columns:
            return df.value
    raise AssertionError(f"no table with a {column!r} column")
