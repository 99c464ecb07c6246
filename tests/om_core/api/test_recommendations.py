"""Recommendations for marketing from the warehouse Parquet: consent-filtered, paginated, marketing only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.om_core.api.conftest import Api, problem_of
from tests.om_core.store import ADA, BOB


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STOREOM_HOME", str(tmp_path))
    folder = tmp_path / "warehouse"
    folder.mkdir()
    return folder


def write_recommendations(folder: Path) -> None:
    rows = [(ADA, "KETTLE", 2, 0.4, "bought with MUG", "new"), (ADA, "MUG", 1, 0.9, "you buy it every month", "replenish"),
            (ADA, "BEANS", 3, 0.1, "popular in kitchen", "new"), (BOB, "TEE-S", 1, 0.8, "popular", "new")]
    pd.DataFrame(rows, columns=["customer_id", "sku", "rank", "score", "reason", "kind"]).astype({"customer_id": "int64", "rank": "int64"}) \
        .to_parquet(folder / "recommendations.parquet", index=False)


def test_absent_file_is_a_problem_telling_what_to_run(api: Api, warehouse: Path):
    body = problem_of(api.as_("marketing").get(f"/v1/recommendations/{ADA}"), 404, "no_recommendations")
    assert "storeom pipeline run" in body["detail"]
    problem_of(api.as_("marketing").get("/v1/feeds/recommendations"), 404, "no_recommendations")


def test_customer_recommendations_and_feed(api: Api, warehouse: Path):
    write_recommendations(warehouse)
    mk = api.as_("marketing")
    mine = mk.get(f"/v1/recommendations/{ADA}").json()
    assert [(i["sku"], i["rank"], i["kind"]) for i in mine["items"]] == [("MUG", 1, "replenish"), ("KETTLE", 2, "new"), ("BEANS", 3, "new")]
    assert [i["sku"] for i in mk.get(f"/v1/recommendations/{ADA}", params={"limit": 1}).json()["items"]] == ["MUG"]
    problem_of(mk.get(f"/v1/recommendations/{BOB}"), 404, "no_marketing_consent")  # Bob did not consent
    problem_of(mk.get("/v1/recommendations/999"), 404, "unknown_customer")
    feed = mk.get("/v1/feeds/recommendations", params={"limit": 2}).json()
    assert [(i["customer_id"], i["sku"]) for i in feed["items"]] == [(ADA, "MUG"), (ADA, "KETTLE")] and feed["next_offset"] == 2
    rest = mk.get("/v1/feeds/recommendations", params={"limit": 2, "offset": 2}).json()
    assert [(i["customer_id"], i["sku"]) for i in rest["items"]] == [(ADA, "BEANS")] and rest["next_offset"] is None
    assert [i["sku"] for i in mk.get("/v1/feeds/recommendations", params={"kind": "replenish"}).json()["items"]] == ["MUG"]
    assert api.as_("admin").get("/v1/feeds/recommendations").status_code == 200
    for who in ("manager", "web", "merchandiser", "nyc"):
        problem_of(api.as_(who).get(f"/v1/recommendations/{ADA}"), 403)
        problem_of(api.as_(who).get("/v1/feeds/recommendations"), 403)
    problem_of(api.anon.get("/v1/feeds/recommendations"), 401)
