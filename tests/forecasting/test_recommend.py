"""forecasting.recommend on a tiny hand-built basket set: similarity and reasons by hand, the business rules
(stock per channel, active, returned as unwanted, no SKU twice, category cap), cold start, new SKUs,
replenishment due dates, related products, offers, metrics, the time split, the factor term of the blend
and the tuning of the blend weights on a validation split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from forecasting.recommend import (
    Rules,
    consumable_categories,
    evaluate,
    fit,
    offer_targets,
    ranking_metrics,
    recommend,
    related_products,
    replenishment,
    time_split,
    tune_weights,
)
from forecasting.recommend.evaluate import blend_scores
from forecasting.recommend.model import bm25, top_k_neighbours

AS_OF = pd.Timestamp("2026-03-31")
ITEM_ITEM = Rules(popularity_weight=0.01, similarity_weight=1.0, factor_weight=0.0)  # the item-item part on its own


def line(customer, sku, day, units=1, order=None, category=None, discount=0.0, channel="web"):
    return {"customer_id": customer, "sku": sku, "order_date": pd.Timestamp(day), "units": units,
            "order_id": order if order is not None else f"{customer}-{day}", "category": category or sku[0].lower(),
            "discount_total": discount, "channel": channel}


def baskets() -> pd.DataFrame:
    """Customers 1-3 bought A (Espresso Beans) and B (Milk Frother); 4 bought A only; 5 bought C, 6 bought C and D."""
    rows = [line(c, s, "2026-03-01") for c in (1, 2, 3) for s in ("A1", "B1")]
    rows += [line(4, "A1", "2026-03-02"), line(5, "C1", "2026-03-03"), line(6, "C1", "2026-03-03"), line(6, "D1", "2026-03-03")]
    return pd.DataFrame(rows)


def catalog(extra: list[dict] | None = None) -> pd.DataFrame:
    rows = [{"sku": "A1", "name": "Espresso Beans 250g", "category": "a", "active": True, "price": 10.0},
            {"sku": "B1", "name": "Milk Frother", "category": "b", "active": True, "price": 30.0},
            {"sku": "C1", "name": "Tea Sampler", "category": "c", "active": True, "price": 12.0},
            {"sku": "D1", "name": "Teapot", "category": "d", "active": True, "price": 25.0}]
    return pd.DataFrame(rows + (extra or []))


def test_similarity_is_cosine_with_shrinkage_by_hand() -> None:
    b = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [1, 1, 0], [1, 0, 0], [0, 0, 1]], dtype="float32"))
    sim, co = top_k_neighbours(b, k=5, shrink=1.0)
    assert sim[0, 1] == pytest.approx(3 / (np.sqrt(4 * 3) + 1.0))
    assert sim[1, 0] == pytest.approx(3 / (np.sqrt(3 * 4) + 1.0))
    assert co[0, 1] == 3 and co[1, 0] == 3
    assert sim[0, 0] == 0 and sim[0, 2] == 0 and sim[2].nnz == 0  # never itself, nothing never bought together


def test_top_k_keeps_the_best_neighbours_only() -> None:
    # SKU 0 is bought with 1 by three customers, with 2 by one
    b = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [1, 1, 0], [1, 0, 1]], dtype="float32"))
    sim, _ = top_k_neighbours(b, k=1, shrink=0.0)
    assert sim[0].indices.tolist() == [1]


def test_item_item_recommends_what_similar_customers_bought_with_a_reason() -> None:
    lines = baskets()
    model = fit(lines, AS_OF)
    recs = recommend(model, pd.DataFrame({"customer_id": [4]}), catalog=catalog(), rules=ITEM_ITEM)
    first = recs.iloc[0]
    assert (first.sku, first["rank"], first.kind) == ("B1", 1, "new")
    assert first.reason == "bought with Espresso Beans 250g by 75% of its buyers"  # 3 of A's 4 buyers bought B
    assert "A1" not in set(recs.sku)  # already bought
    assert list(recs.columns) == ["customer_id", "sku", "rank", "score", "reason", "kind"]


def test_no_duplicates_ranks_in_order_and_n_respected() -> None:
    lines = baskets()
    recs = recommend(fit(lines, AS_OF), pd.DataFrame({"customer_id": [1, 2, 3, 4, 5, 6, 4]}), catalog=catalog(), rules=Rules(n=3))
    assert not recs.duplicated(["customer_id", "sku"]).any()
    assert recs.groupby("customer_id")["rank"].apply(lambda r: list(r) == list(range(1, len(r) + 1))).all()
    assert recs.groupby("customer_id").size().max() <= 3


def test_only_active_skus_available_in_the_customers_channel() -> None:
    lines = baskets()
    model = fit(lines, AS_OF)
    customers = pd.DataFrame({"customer_id": [4, 5], "segment": "x", "channel": ["web", "app"]})
    stock = pd.DataFrame({"sku": ["B1", "C1", "D1"], "channel": ["app", "web", "app"], "available": [5, 5, 5]})
    recs = recommend(model, customers, catalog=catalog(), availability=stock, rules=ITEM_ITEM)
    assert set(recs[recs.customer_id == 4].sku) == {"C1"}  # B1 is only in stock for the app
    assert set(recs[recs.customer_id == 5].sku) == {"B1", "D1"}
    inactive = catalog()
    inactive.loc[inactive.sku == "D1", "active"] = False
    recs = recommend(model, customers, catalog=inactive, availability=stock, rules=ITEM_ITEM)
    assert "D1" not in set(recs.sku)


def test_never_an_item_the_customer_returned_as_unwanted() -> None:
    model = fit(baskets(), AS_OF)
    unwanted = pd.DataFrame({"customer_id": [4], "sku": ["B1"]})
    recs = recommend(model, pd.DataFrame({"customer_id": [4]}), catalog=catalog(), unwanted=unwanted, rules=ITEM_ITEM)
    assert "B1" not in set(recs.sku) and len(recs) > 0
    # a due replenishment is not suggested again either
    due = pd.DataFrame({"customer_id": [4], "sku": ["B1"], "due": [True], "score": [1.0], "interval_days": [10.0],
                        "days_since": [10], "typical": [False]})
    recs = recommend(model, pd.DataFrame({"customer_id": [4]}), catalog=catalog(), unwanted=unwanted, replenish=due, rules=ITEM_ITEM)
    assert "B1" not in set(recs.sku)


def test_category_diversity_cap() -> None:
    rows = [line(c, f"X{i}", "2026-03-01", category="x") for c in range(1, 6) for i in range(6)]
    rows += [line(c, f"Y{i}", "2026-03-01", category="y") for c in range(1, 6) for i in range(3)]
    rows += [line(9, "Z0", "2026-03-01", category="z")]
    lines = pd.DataFrame(rows)
    cat = lines.drop_duplicates("sku")[["sku", "category"]].assign(name=lambda d: d.sku, active=True)
    recs = recommend(fit(lines, AS_OF), pd.DataFrame({"customer_id": [9]}), catalog=cat, rules=Rules(n=10, max_per_category=2))
    per = recs.merge(cat, on="sku").groupby("category").size()
    assert per.max() == 2 and set(per.index) == {"x", "y"}


def test_cold_start_gets_what_its_segment_and_channel_buy() -> None:
    rows = [line(c, "P1", "2026-03-01", channel="app") for c in range(1, 6)]  # the app's bestseller
    rows += [line(c, "Q1", "2026-03-01", channel="web") for c in range(6, 9)]
    lines = pd.DataFrame(rows)
    model = fit(lines, AS_OF)
    customers = pd.DataFrame({"customer_id": [*range(1, 9), 100, 101],
                              "segment": ["s"] * 8 + ["s", "s"], "channel": ["app"] * 5 + ["web"] * 3 + ["web", None]})
    recs = recommend(model, customers, rules=Rules(smoothing=1.0))
    new_web = recs[recs.customer_id == 100]
    assert new_web.iloc[0].sku == "Q1" and new_web.iloc[0].reason == "popular with s customers in web"
    no_channel = recs[recs.customer_id == 101]
    assert no_channel.iloc[0].sku == "P1" and no_channel.iloc[0].reason == "popular with s customers"
    unknown = recommend(model, pd.DataFrame({"customer_id": [102]}))
    assert unknown.iloc[0].sku == "P1" and unknown.iloc[0].reason == "a bestseller right now"


def test_a_new_sku_enters_through_its_category() -> None:
    rows = [line(1, "A1", "2026-01-10", category="coffee"), line(2, "A1", "2026-01-10", category="coffee"),
            line(2, "T1", "2026-01-10", category="tea"), line(3, "T1", "2026-01-11", category="tea")]
    lines = pd.DataFrame(rows)
    cat = pd.DataFrame([{"sku": "A1", "name": "Beans", "category": "coffee", "active": True},
                        {"sku": "T1", "name": "Tea", "category": "tea", "active": True},
                        {"sku": "A2", "name": "New Roast", "category": "coffee", "active": True}])
    model = fit(lines, AS_OF, skus=np.array(["A1", "A2", "T1"]))
    recs = recommend(model, pd.DataFrame({"customer_id": [1, 3]}), catalog=cat).set_index(["customer_id", "sku"])
    assert recs.loc[(1, "A2"), "reason"] == "new in coffee, a category you buy"  # never sold, found through coffee
    assert recs.loc[(1, "A2"), "score"] > recs.loc[(3, "A2"), "score"]  # not through tea
    assert recs.loc[(3, "A2"), "reason"] != "new in coffee, a category you buy"


def test_replenishment_is_due_around_the_interval_not_the_day_after() -> None:
    days = ["2026-01-01", "2026-01-11", "2026-01-21", "2026-01-31"]  # every 10 days
    lines = pd.DataFrame([line(1, "COF1", d, category="coffee") for d in days] + [line(2, "JKT1", "2026-01-01", category="jackets")])
    def due_on(as_of: str) -> bool:
        r = replenishment(lines, pd.Timestamp(as_of), categories={"coffee"})
        return bool(r.loc[r.sku == "COF1", "due"].iloc[0])
    r = replenishment(lines, pd.Timestamp("2026-01-31"), categories={"coffee"})
    assert r.iloc[0].interval_days == 10 and r.iloc[0].purchases == 4 and r.iloc[0].days_since == 1
    assert not due_on("2026-01-31")  # bought today: tomorrow is not the day to suggest it
    assert not due_on("2026-02-02")
    assert due_on("2026-02-04") and due_on("2026-02-09")  # 5 days before (lead 0.5 x 10) .. the due day
    r = replenishment(lines, pd.Timestamp("2026-02-09"), categories={"coffee"})
    assert r.iloc[0].score == pytest.approx(1.0)  # tomorrow is the 10th day
    assert due_on("2026-03-01") and not due_on("2026-03-02")  # until 3 x the interval
    assert "JKT1" not in set(r.sku)


def test_replenishment_needs_two_purchases_or_the_category_interval() -> None:
    lines = pd.DataFrame([line(1, "COF1", d, category="coffee") for d in ["2026-01-01", "2026-01-21"]]
                         + [line(2, "COF1", "2026-01-21", category="coffee")])
    r = replenishment(lines, pd.Timestamp("2026-02-05"), categories={"coffee"}).set_index("customer_id")
    assert not r.loc[1, "typical"] and r.loc[1, "interval_days"] == 20
    assert r.loc[2, "typical"] and r.loc[2, "interval_days"] == 20 and r.loc[2, "score"] <= 0.5
    strict = replenishment(lines, pd.Timestamp("2026-02-05"), categories={"coffee"}, single_purchase_weight=0)
    assert set(strict.customer_id) == {1}


def test_due_replenishment_leads_the_list_with_its_reason() -> None:
    lines = pd.concat([baskets(), pd.DataFrame([line(4, "C1", d, category="c") for d in ["2026-02-01", "2026-02-21", "2026-03-13"]])])
    model = fit(lines, pd.Timestamp("2026-03-31"))
    due = replenishment(lines, pd.Timestamp("2026-03-31"), categories={"c"})
    recs = recommend(model, pd.DataFrame({"customer_id": [4]}), catalog=catalog(), replenish=due, rules=ITEM_ITEM)
    first = recs.iloc[0]
    assert (first.sku, first.kind, first["rank"]) == ("C1", "replenish", 1)
    assert first.reason == "you buy it about every 20 days; last bought 19 days ago"
    assert recs.iloc[1].sku == "B1" and recs.iloc[1].kind == "new"


def test_consumable_categories_are_the_ones_bought_again() -> None:
    rows = [line(c, "COF1", d, category="coffee") for c in (1, 2) for d in ["2026-01-01", "2026-02-01"]]
    rows += [line(c, f"J{c}", "2026-01-01", category="jackets") for c in range(1, 10)]
    assert consumable_categories(pd.DataFrame(rows), AS_OF) == {"coffee"}


def test_related_products_support_confidence_lift_by_hand() -> None:
    # 4 baskets: {A,B}, {A,B}, {A}, {C}
    lines = pd.DataFrame([line(1, "A1", "2026-03-01", order=1), line(1, "B1", "2026-03-01", order=1),
                          line(2, "A1", "2026-03-01", order=2), line(2, "B1", "2026-03-01", order=2),
                          line(3, "A1", "2026-03-01", order=3), line(4, "C1", "2026-03-01", order=4)])
    rel = related_products(lines, AS_OF).set_index(["sku", "related_sku"])
    a_b = rel.loc[("A1", "B1")]
    assert a_b.support == pytest.approx(2 / 4) and a_b.confidence == pytest.approx(2 / 3)
    assert a_b.lift == pytest.approx((2 / 3) / (2 / 4)) and a_b["rank"] == 1
    assert rel.loc[("B1", "A1")].confidence == pytest.approx(1.0)
    assert ("A1", "C1") not in rel.index and ("A1", "A1") not in rel.index


def test_offer_targets_only_consenting_customers_ranked_by_affinity_and_price_sensitivity() -> None:
    lines = pd.concat([baskets(), pd.DataFrame([line(7, "B1", "2026-03-05", discount=3.0), line(7, "B1", "2026-03-06", discount=3.0)])])
    model = fit(lines, AS_OF)
    promos = pd.DataFrame([{"promotion_id": 11, "kind": "percentage", "scope": "sku", "target": "B1", "value": 20,
                            "buy_quantity": None, "get_quantity": None}])
    targets = offer_targets(model, promos, lines, catalog(), consenting=np.array([1, 4, 5, 7]))
    assert set(targets.customer_id) <= {1, 4, 5, 7} and 2 not in set(targets.customer_id)
    assert targets.iloc[0].customer_id == 7  # bought B on promotion twice
    assert 5 not in set(targets.customer_id)  # no affinity to B at all
    row = targets.iloc[0]
    assert row.expected_uplift == pytest.approx(row.score * 0.20)
    assert list(targets.columns) == ["promotion_id", "customer_id", "score", "expected_uplift"]
    used = offer_targets(model, promos, lines, catalog(), consenting=np.array([1, 4, 5, 7]),
                         used_up=pd.DataFrame({"promotion_id": [11], "customer_id": [7]}))
    assert 7 not in set(used.customer_id) and len(used) == len(targets) - 1  # used up the per-customer limit


def test_ranking_metrics_by_hand() -> None:
    recs = pd.DataFrame({"customer_id": [1, 1, 1, 2], "sku": ["a", "b", "c", "x"], "rank": [1, 2, 3, 1]})
    relevant = pd.DataFrame({"customer_id": [1, 1, 2], "sku": ["b", "z", "y"]})
    m = ranking_metrics(recs, relevant, k=10)
    assert m["customers"] == 2
    assert m["precision"] == pytest.approx((1 / 10 + 0) / 2)
    assert m["recall"] == pytest.approx((1 / 2 + 0) / 2)
    idcg = 1 + 1 / np.log2(3)
    assert m["ndcg"] == pytest.approx(((1 / np.log2(3)) / idcg) / 2)


def test_time_split_never_leaks_test_purchases_into_training() -> None:
    rows = [line(c, "A1", "2026-02-01") for c in range(1, 6)] + [line(c, "B1", "2026-02-01") for c in range(1, 4)]
    # after the cut-off (as of 03-31 less 28 days = 03-03): customers 4 and 5 buy B1, everyone buys a brand-new SKU
    rows += [line(c, "B1", "2026-03-10") for c in (4, 5)] + [line(c, "NEW1", "2026-03-20") for c in range(1, 6)]
    lines = pd.DataFrame(rows)
    train, test, cutoff = time_split(lines, AS_OF)
    assert cutoff == pd.Timestamp("2026-03-03") and train.order_date.max() <= cutoff and test.order_date.min() > cutoff
    table, info = evaluate(lines, AS_OF)
    model = info["model"]
    assert "NEW1" not in set(model.skus) and info["train_max_date"] <= cutoff
    assert model.history.sum() == pytest.approx(fit(train, cutoff).history.sum())
    for recs in info["recommended"].values():
        assert "NEW1" not in set(recs.sku)
    # the blend weights were tuned on the training period only (validation: the 28 days before the cut-off)
    _, tuning = tune_weights(train, cutoff)
    pd.testing.assert_frame_equal(info["tuning"], tuning)
    new_items = table[(table.model == "model") & (table.scenario == "new_items")].iloc[0]
    # everyone bought NEW1 (unknowable at the cut-off), 4 and 5 also B1: recall 1/2 for them, 0 for the others
    assert new_items.customers == 5 and new_items.recall_at_10 == pytest.approx((0.5 + 0.5) / 5)
    assert set(table.columns) == {"model", "scenario", "precision_at_10", "recall_at_10", "ndcg_at_10", "coverage", "customers",
                                  "cutoff", "test_days"}
    assert (table.test_days == 28).all() and ((table.coverage >= 0) & (table.coverage <= 1)).all()


def test_a_rare_co_purchase_is_not_given_as_the_reason() -> None:
    rows = [line(c, "A1", "2026-03-01") for c in range(1, 41)] + [line(1, "B1", "2026-03-01")]  # 1 of A's 40 buyers bought B
    recs = recommend(fit(pd.DataFrame(rows), AS_OF), pd.DataFrame({"customer_id": [2]}), catalog=catalog(), rules=ITEM_ITEM)
    row = recs.set_index("sku").loc["B1"]
    assert row.reason == "a bestseller right now"  # 2.5% of A's buyers: below the 5% that makes a reason


def test_nothing_before_the_cut_off_gives_an_empty_evaluation_not_an_error() -> None:
    lines = pd.DataFrame([line(c, "A1", "2026-03-20") for c in range(1, 4)])  # all after the cut-off (03-03)
    table, _ = evaluate(lines, AS_OF)
    assert len(table) == 4 and (table.customers == 0).all() and (table.recall_at_10 == 0).all()
    empty = recommend(fit(lines.iloc[:0], AS_OF), pd.DataFrame({"customer_id": [1]}))
    assert empty.empty and list(empty.columns) == ["customer_id", "sku", "rank", "score", "reason", "kind"]


def test_bm25_weights_by_hand() -> None:
    # customer 0 bought SKUs 0 and 1, customer 1 bought SKU 0: SKU 1 (one buyer of two) says more than SKU 0 (both)
    w = bm25(sp.csr_matrix(np.array([[1, 1], [1, 0]], dtype="float32")), k1=1.2, b=0.75).toarray()
    norm = np.array([0.25 + 0.75 * 2 / 1.5, 0.25 + 0.75 * 1 / 1.5])  # lengths 2 and 1, mean 1.5
    idf = np.log(2) - np.log1p(np.array([2, 1]))
    assert w[0, 0] == pytest.approx(2.2 / (1.2 * norm[0] + 1) * idf[0], rel=1e-6)
    assert w[0, 1] == pytest.approx(2.2 / (1.2 * norm[0] + 1) * idf[1], rel=1e-6)
    assert w[1, 0] == pytest.approx(2.2 / (1.2 * norm[1] + 1) * idf[0], rel=1e-6) and w[1, 1] == 0


def factor_model():
    """baskets() without ALS, then factors set by hand: customer 5 (bought C1, Tea Sampler) points the way of
    B1 and C1; A1 and D1 point elsewhere."""
    model = fit(baskets(), AS_OF, factors=0)
    model.user_factors = np.zeros((len(model.customers), 2), dtype="float32")
    model.user_factors[model.customer_index[5]] = [0.0, 2.0]
    y = {"A1": [1.0, 0.0], "B1": [0.0, 1.0], "C1": [0.0, 1.0], "D1": [1.0, 0.0]}
    model.item_factors = np.array([y[s] for s in model.skus], dtype="float32")
    return model


def test_factor_term_is_scaled_to_the_customers_best_and_says_which_category_it_goes_with() -> None:
    model = factor_model()
    rules = Rules(popularity_weight=0.01, similarity_weight=0.0, factor_weight=1.0, max_per_category=3)
    recs = recommend(model, pd.DataFrame({"customer_id": [5]}), catalog=catalog(), rules=rules).set_index("sku")
    pop = np.asarray(model.history.sum(axis=0)).ravel()
    pop_share = dict(zip(model.skus, pop / pop.max()))
    # factor scores of customer 5: A1 0, B1 2, D1 0 -> scaled to its best: B1 1.0
    assert recs.loc["B1", "rank"] == 1
    assert recs.loc["B1", "score"] == pytest.approx(0.01 * pop_share["B1"] + 1.0, rel=1e-6)
    assert recs.loc["A1", "score"] == pytest.approx(0.01 * pop_share["A1"], rel=1e-6)
    assert recs.loc["B1", "reason"] == "popular with customers who buy c"  # C1 (category c) is the history SKU nearest B1
    assert recs.loc["A1", "reason"] == "a bestseller right now"
    assert "C1" not in recs.index
    blend = next(blend_scores(model, np.array([model.customer_index[5]]), [(0.0, 1.0)], popularity_weight=0.01))[0]
    assert blend[model.sku_index["B1"]] == pytest.approx(recs.loc["B1", "score"], rel=1e-6)
    assert np.isneginf(blend[model.sku_index["C1"]])  # bought: never "new"


def tuning_lines() -> pd.DataFrame:
    """Before 03-03: P bought by 1-20, Q (the bestseller) by 16-40, A1 by 1-15, B1 by 1-10 (with A1). In the
    validation window (03-03, 03-31]: 11-15, who bought A1 but not B1, buy B1."""
    rows = [line(c, "P1", "2026-02-01", category="p") for c in range(1, 21)]
    rows += [line(c, "Q1", "2026-02-01", category="q") for c in range(16, 41)]
    rows += [line(c, "A1", "2026-02-01", category="a") for c in range(1, 16)]
    rows += [line(c, "B1", "2026-02-01", category="b") for c in range(1, 11)]
    rows += [line(c, "B1", "2026-03-20", category="b") for c in range(11, 16)]
    return pd.DataFrame(rows)


def test_tuning_picks_the_item_item_weight_that_beats_popularity_by_hand() -> None:
    # customer 11 (P1, A1): popularity scaled to Q1 = 1 (25 buyers): Q1 1.0, B1 10/25 = 0.4;
    # item-item P1->B1 10/(20+5) + A1->B1 10/(15+5) = 0.9 (their best), P1->Q1 5/25 = 0.2, A1->Q1 0:
    # B1 0.4 + w, Q1 1 + w x 0.2/0.9: B1 first once w > 0.6 / (1 - 0.222) = 0.77 -> 1.0, the smallest such in the grid
    rules, table = tune_weights(tuning_lines(), AS_OF, k=1, min_customers=1, factor_grid=(0.0,), fit_args={"factors": 0})
    assert (rules.similarity_weight, rules.factor_weight) == (1.0, 0.0)
    recall = table.set_index("similarity_weight")["recall_at_10"]
    assert recall.to_dict() == {0.0: 0.0, 0.3: 0.0, 1.0: 1.0, 3.0: 1.0, 10.0: 1.0}
    assert (table["customers"] == 5).all()


def test_tuning_keeps_popularity_when_nothing_beats_it_and_never_reads_after_as_of() -> None:
    lines = tuning_lines()
    # in the validation window 11-15 buy the bestseller Q1 instead: popularity alone is right
    lines.loc[lines.order_date == pd.Timestamp("2026-03-20"), "sku"] = "Q1"
    rules, table = tune_weights(lines, AS_OF, k=1, min_customers=1, factor_grid=(0.0,), fit_args={"factors": 0})
    assert (rules.similarity_weight, rules.factor_weight) == (0.0, 0.0)  # recall 1 up to w = 0.3 (0 from 1.0 on): the simplest
    assert table.set_index("similarity_weight")["recall_at_10"].to_dict() == {0.0: 1.0, 0.3: 1.0, 1.0: 0.0, 3.0: 0.0, 10.0: 0.0}
    later = pd.concat([lines, pd.DataFrame([line(c, "B1", "2026-04-02", category="b") for c in range(11, 16)])])
    _, again = tune_weights(later, AS_OF, k=1, min_customers=1, factor_grid=(0.0,), fit_args={"factors": 0})
    pd.testing.assert_frame_equal(table, again)  # purchases after as_of are not read
    default = Rules()
    few, _ = tune_weights(lines, AS_OF, k=1, fit_args={"factors": 0})  # 5 validation customers < 50: defaults kept
    assert (few.similarity_weight, few.factor_weight) == (default.similarity_weight, default.factor_weight)
