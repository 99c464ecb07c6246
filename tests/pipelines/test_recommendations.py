"""The recommendation assets on the demo store: they materialize with their checks, in the documented
schemas (docs/recommendations.md, /tmp/team/schemas.md), and keep the rules against the database itself."""

from __future__ import annotations

import sqlite3

import dagster as dg
import pandas as pd
import pytest

from pipelines.defs.recommendations import checks as RC
from pipelines.defs.recommendations import logic as L
from tests.pipelines.conftest import materialize_all

MINE = ["recommendations", "related_products", "offer_targets", "recommendation_evaluation"]
SCHEMAS = {
    "recommendations": {"customer_id": "int64", "sku": "object", "rank": "int64", "score": "float64", "reason": "object", "kind": "object"},
    "related_products": {"sku": "object", "related_sku": "object", "rank": "int64", "support": "float64", "confidence": "float64",
                         "lift": "float64"},
    "offer_targets": {"promotion_id": "int64", "customer_id": "int64", "score": "float64", "expected_uplift": "float64"},
    "recommendation_evaluation": {"model": "object", "scenario": "object", "precision_at_10": "float64", "recall_at_10": "float64",
                                  "ndcg_at_10": "float64", "coverage": "float64", "customers": "int64", "cutoff": "datetime64[ns]",
                                  "test_days": "int64"},
}


def _warehouse(home, name):
    return pd.read_parquet(home / "warehouse" / f"{name}.parquet")


@pytest.fixture(scope="module")
def materialized(demo_home):
    result = materialize_all(select=dg.AssetSelection.assets(*MINE).upstream())
    return demo_home, result


def test_assets_materialize_with_their_checks_in_the_documented_schemas(materialized):
    home, result = materialized
    assert result.success
    done = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert set(MINE) <= done
    checks = {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}
    for key in [("recommendations", "recommendations_list_shape"), ("recommendations", "recommendations_only_active"),
                ("recommendations", "recommendations_diversity"), ("offer_targets", "offer_targets_consent"),
                ("related_products", "related_products_in_range")]:
        assert checks[key].passed, (key, checks[key].metadata)
    assert ("recommendation_evaluation", "model_beats_popularity") in checks
    for name, schema in SCHEMAS.items():
        df = _warehouse(home, name)
        assert {c: str(t) for c, t in df.dtypes.items()} == schema, name
    recs = _warehouse(home, "recommendations")
    assert len(recs) > 0 and set(recs["kind"]) <= {"new", "replenish"} and recs["reason"].str.len().gt(0).all()
    assert not recs.duplicated(["customer_id", "sku"]).any() and recs["rank"].between(1, 10).all()
    evaluation = _warehouse(home, "recommendation_evaluation")
    assert set(zip(evaluation["model"], evaluation["scenario"])) == {(m, s) for m in ("model", "popularity")
                                                                      for s in ("new_items", "with_repurchase")}
    assert (evaluation["test_days"] == 28).all()


def test_every_customer_gets_a_list_of_active_skus_in_stock_for_their_channel(materialized):
    home, _ = materialized
    con = sqlite3.connect(home / "storeom.db")
    recs = _warehouse(home, "recommendations")
    customers = _warehouse(home, "stg_customers")
    assert set(recs["customer_id"]) == set(customers["customer_id"])  # every customer, consent applied downstream
    inactive = {r[0] for r in con.execute("SELECT sku FROM products WHERE active = 0")}
    assert not (set(recs["sku"]) & inactive)
    snaps = _warehouse(home, "stg_inventory_snapshots")
    channel_locations = pd.DataFrame(con.execute(
        "SELECT c.code, l.code FROM channel_locations cl JOIN channels c ON c.id = cl.channel_id JOIN locations l ON l.id = cl.location_id"
    ).fetchall(), columns=["channel", "location"])
    avail = L.availability(snaps, channel_locations)
    in_stock_anywhere = set(avail["sku"])
    assert set(recs["sku"]) <= in_stock_anywhere
    profiles = L.customer_profiles(customers, _warehouse(home, "customer_segments"), _warehouse(home, "stg_order_lines"))
    with_channel = recs.merge(profiles[["customer_id", "channel"]], on="customer_id").dropna(subset=["channel"])
    ok = with_channel.merge(avail, on=["sku", "channel"], how="left")["available"].fillna(0) > 0
    assert ok.all()


def test_offer_targets_have_consent_and_unwanted_returns_are_never_suggested(materialized):
    home, _ = materialized
    con = sqlite3.connect(home / "storeom.db")
    targets = _warehouse(home, "offer_targets")
    no_consent = {r[0] for r in con.execute("SELECT id FROM customers WHERE marketing_consent = 0")}
    assert not (set(targets["customer_id"]) & no_consent)
    unwanted = L.unwanted_returns(_warehouse(home, "stg_returns"), _warehouse(home, "stg_order_lines"))
    recs = _warehouse(home, "recommendations")
    assert recs.merge(unwanted, on=["customer_id", "sku"]).empty


def test_unwanted_returns_are_the_reasons_that_say_so():
    returns = pd.DataFrame({"order_line_id": [1, 2, 3, 4], "sku": ["A", "B", "C", "D"], "status": ["received"] * 3 + ["cancelled"],
                            "reason_code": ["size_fit", "damaged", "no_longer_needed", "not_as_described"]})
    lines = pd.DataFrame({"line_id": [1, 2, 3, 4], "customer_id": [7, 7, 8, 9]})
    got = L.unwanted_returns(returns, lines)
    assert sorted(zip(got["customer_id"], got["sku"])) == [(7, "A"), (8, "C")]


def test_a_used_up_per_customer_limit_is_not_targeted_again():
    promotions = pd.DataFrame({"promotion_id": [1, 2], "usage_limit_per_customer": [1, None]})
    redemptions = pd.DataFrame({"promotion_id": [1, 1, 2], "customer_id": [7, 8, 7], "redemptions": [1, 0, 5]})
    got = L.used_up(promotions, redemptions)
    assert list(zip(got["promotion_id"], got["customer_id"])) == [(1, 7)]  # promotion 2 has no limit


def test_check_functions_fail_on_bad_rows():
    bad = pd.DataFrame({"customer_id": [1, 1, 2], "sku": ["A", "A", "B"], "rank": [1, 3, 1], "reason": ["x", "", "y"],
                        "kind": ["new", "new", "other"]})
    passed, meta = RC.list_shape(bad)
    assert not passed and meta["actual_duplicate_pairs"] == 1 and meta["actual_unknown_kinds"] == 1
    assert meta["actual_rows_without_reason"] == 1 and meta["actual_ranks_out_of_sequence"] == 1
    assert not RC.only_active(bad, {"B"})[0]
    assert not RC.consent_only(pd.DataFrame({"customer_id": [5]}), {5})[0]
    assert not RC.diversity(bad.drop_duplicates(["customer_id", "sku"]).assign(customer_id=1), pd.Series({"A": "x", "B": "x"}), 1)[0]
    assert not RC.related_in_range(pd.DataFrame({"sku": ["A"], "related_sku": ["A"], "support": [0.1], "confidence": [0.5], "lift": [1.0]}))[0]
    ev = pd.DataFrame({"model": ["model", "popularity"] * 2, "scenario": ["new_items"] * 2 + ["with_repurchase"] * 2,
                       "recall_at_10": [0.1, 0.2, 0.3, 0.2], "customers": 500})
    assert not RC.beats_popularity(ev)[0]  # new items below 90 % of popularity
    assert RC.beats_popularity(ev.assign(recall_at_10=[0.19, 0.2, 0.3, 0.2]))[0]
    assert not RC.beats_popularity(ev.assign(recall_at_10=[0.3, 0.2, 0.2, 0.2]))[0]  # no gain with repurchase
    passed, meta = RC.beats_popularity(ev.assign(customers=3))
    assert passed and "not judged" in meta["note"]
