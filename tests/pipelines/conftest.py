from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMPLETE_JOURNEY = REPO.parent / "shared" / "data" / "complete_journey"


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    """A small demo store (120 orders over 30 days) in a fresh STOREOM_HOME."""
    home = tmp_path_factory.mktemp("storeom_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("STOREOM_HOME", str(home))
    mp.delenv("STOREOM_DATABASE_URL", raising=False)
    from om_core.config import get_settings
    from om_core.demo import build_demo_store

    build_demo_store(get_settings(), order_count=120, days=30)
    yield home
    mp.undo()


def materialize_all(as_of=None, select=None):
    import dagster as dg

    from pipelines.definitions import defs
    from pipelines.resources import default_resources

    d = defs()
    with dg.instance_for_test() as instance:
        return dg.materialize(list(d.assets) + list(d.asset_checks), resources=default_resources(as_of=as_of), instance=instance,
                              raise_on_error=False, selection=select)
