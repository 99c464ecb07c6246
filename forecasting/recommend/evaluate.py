"""Offline evaluation on a time split: fit on purchases up to the cut-off (as-of less `test_days`), compare
the top-10 with what each customer bought in the following `test_days`.

Customers evaluated: those with history before the cut-off and a purchase after it. Scenarios:
`new_items` (relevant = SKUs bought in the test window that the customer had not bought before; the lists
exclude what they bought before) and `with_repurchase` (relevant = every SKU bought in the test window;
the model's list includes due replenishments, the baseline may repeat). Metrics: precision@k, recall@k
(hits / relevant SKUs), nDCG@k (binary gains) and catalogue coverage (distinct SKUs recommended / SKUs
bought before the cut-off). The baseline is popularity: the SKUs most customers bought lately (the same
recency decay as the model, and the same popularity the model starts from).

The model's blend weights (item-item, ALS) are tuned by `tune_weights` on a validation split cut from the
training period only: fit on purchases up to `test_days` before the cut-off, score the following
`test_days` (still before the cut-off). Test purchases never reach the fit nor the choice of weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd

import scipy.sparse as sp

from forecasting.recommend.model import ALPHA, HALF_LIFE_DAYS, NEIGHBOURS, SHRINK, ItemItemModel, fit, purchases
from forecasting.recommend.recommend import Rules, _top_candidates, recommend
from forecasting.recommend.replenish import replenishment

TEST_DAYS = 28
K = 10
SIMILARITY_GRID = (0.0, 0.3, 1.0, 3.0, 10.0)
FACTOR_GRID = (0.0, 0.3, 1.0, 3.0)
TUNE_CUSTOMERS = 2000
TUNE_TOLERANCE = 0.01
"""The simplest weights within this share of the best validation recall win (a smaller gain is noise)."""
MIN_TUNE_CUSTOMERS = 50
"""Fewer validation customers than this: the weights stay at their defaults (the choice would be noise)."""
COLUMNS = ["model", "scenario", "precision_at_10", "recall_at_10", "ndcg_at_10", "coverage", "customers", "cutoff", "test_days"]


def time_split(lines: pd.DataFrame, as_of: date | pd.Timestamp, test_days: int = TEST_DAYS
               ) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """(train: purchases on or before the cut-off, test: purchases in the `test_days` after it, cut-off)."""
    p = purchases(lines, as_of)
    cutoff = pd.Timestamp(as_of).normalize() - pd.Timedelta(days=test_days)
    return p[p["order_date"] <= cutoff].copy(), p[p["order_date"] > cutoff].copy(), cutoff


def preferred_channel(lines: pd.DataFrame) -> pd.Series:
    """The channel of most of a customer's orders (latest wins a tie); empty without a channel column."""
    if "channel" not in lines or lines.empty:
        return pd.Series(dtype="object")
    orders = lines.drop_duplicates("order_id") if "order_id" in lines else lines
    n = orders.groupby(["customer_id", "channel"]).agg(n=("order_date", "size"), last=("order_date", "max")).reset_index()
    n = n.sort_values(["customer_id", "n", "last"], ascending=[True, False, False]).drop_duplicates("customer_id")
    return n.set_index("customer_id")["channel"]


def ranking_metrics(recs: pd.DataFrame, relevant: pd.DataFrame, k: int = K) -> dict[str, float]:
    """Mean precision@k, recall@k, nDCG@k over the customers in `relevant` (customer_id, sku); `recs` has
    customer_id, sku, rank. A customer without recommendations scores 0."""
    rel = relevant[["customer_id", "sku"]].drop_duplicates()
    n_rel = rel.groupby("customer_id").size()
    if n_rel.empty:
        return {"precision": 0.0, "recall": 0.0, "ndcg": 0.0, "customers": 0}
    top = recs[recs["rank"] <= k][["customer_id", "sku", "rank"]]
    hits = top.merge(rel, on=["customer_id", "sku"])
    hits = hits[hits["customer_id"].isin(n_rel.index)]
    per = pd.DataFrame(index=n_rel.index)
    per["hits"] = hits.groupby("customer_id").size().reindex(per.index).fillna(0)
    per["dcg"] = (1 / np.log2(hits["rank"] + 1)).groupby(hits["customer_id"]).sum().reindex(per.index).fillna(0)
    discounts = np.cumsum(1 / np.log2(np.arange(2, k + 2)))
    per["idcg"] = discounts[np.minimum(n_rel.to_numpy(), k) - 1]
    return {"precision": float((per["hits"] / k).mean()), "recall": float((per["hits"] / n_rel).mean()),
            "ndcg": float((per["dcg"] / per["idcg"]).mean()), "customers": len(per)}


def popularity_lists(model, customer_ids: np.ndarray, k: int = K, exclude_bought: bool = True) -> pd.DataFrame:
    """The bestsellers (Σ over customers of their recency-decayed, log-scaled history: how many bought it
    lately, not how many units -- fuel by the litre would top a units ranking), less what each customer
    already bought when `exclude_bought`."""
    order = np.argsort(-np.asarray(model.history.sum(axis=0)).ravel(), kind="stable")
    extra = 0
    if exclude_bought:
        rows = model.customer_index.reindex(customer_ids).fillna(-1).to_numpy(dtype="int64")
        bought = np.diff(model.history.indptr)[rows[rows >= 0]]
        extra = int(bought.max()) if len(bought) else 0
    head = order[: k + extra]
    cust = np.repeat(customer_ids, len(head))
    sku = np.tile(model.skus[head], len(customer_ids))
    df = pd.DataFrame({"customer_id": cust, "sku": sku.astype(str)})
    if exclude_bought:
        rows = model.customer_index.reindex(customer_ids).fillna(-1).to_numpy(dtype="int64")
        h = model.history.tocoo()
        known = pd.DataFrame({"customer_id": model.customers[h.row], "sku": model.skus[h.col].astype(str)})
        known = known[known["customer_id"].isin(customer_ids[rows >= 0])]
        df = df.merge(known.assign(_b=1), on=["customer_id", "sku"], how="left")
        df = df[df["_b"].isna()].drop(columns="_b")
    df["rank"] = df.groupby("customer_id").cumcount() + 1
    return df[df["rank"] <= k]


def blend_scores(model: ItemItemModel, rows: np.ndarray, weights: list[tuple[float, float]], popularity_weight: float = 1.0
                 ) -> Iterator[np.ndarray]:
    """For customer rows of `model`, one dense customers x SKUs score per (similarity_weight, factor_weight):
    popularity scaled to the best SKU + weight x item-item score scaled to the customer's best + weight x
    ALS score scaled likewise (the `new` score of `recommend` without the new-SKU term and the rules),
    with what each customer already bought at -inf."""
    h = model.history[rows]
    pop = np.asarray(model.history.sum(axis=0)).ravel()
    base = np.broadcast_to((popularity_weight * pop / max(pop.max(), 1e-12)).astype("float32"), (len(rows), len(pop)))
    sim = (h @ model.similarity).toarray()
    sim /= np.maximum(sim.max(axis=1, keepdims=True), 1e-12)
    fac = np.zeros_like(sim)
    if model.user_factors is not None and model.user_factors.shape[1]:
        fac = model.user_factors[rows] @ model.item_factors.T
        fac /= np.maximum(np.abs(fac).max(axis=1, keepdims=True), 1e-12)
    bought = h.tocoo()
    for ws, wf in weights:
        score = base + ws * sim + wf * fac
        score[bought.row, bought.col] = -np.inf
        yield score


def top_k_hits(score: np.ndarray, relevant: sp.csr_matrix, k: int = K) -> np.ndarray:
    """Per row: how many of its k best columns are relevant (1 in `relevant`)."""
    rows, cols = _top_candidates(score, k)
    vals = score[rows, cols]
    keep = np.isfinite(vals)
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    order = np.lexsort((cols, -vals, rows))
    rows, cols = rows[order], cols[order]
    first = np.searchsorted(rows, rows, side="left")
    top = (np.arange(len(rows)) - first) < k
    hit = np.asarray(relevant[rows[top], cols[top]]).ravel()
    return np.bincount(rows[top], weights=hit, minlength=len(score))


def tune_weights(lines: pd.DataFrame, as_of: date | pd.Timestamp, *, rules: Rules | None = None, test_days: int = TEST_DAYS,
                 k: int = K, similarity_grid: tuple[float, ...] = SIMILARITY_GRID, factor_grid: tuple[float, ...] = FACTOR_GRID,
                 max_customers: int = TUNE_CUSTOMERS, min_customers: int = MIN_TUNE_CUSTOMERS, seed: int = 0,
                 fit_args: dict | None = None) -> tuple[Rules, pd.DataFrame]:
    """Choose `similarity_weight` and `factor_weight` by recall@k on items new to the customer, on a
    validation split of `lines` up to `as_of`: fit up to `as_of - test_days`, score the last `test_days`.
    The simplest pair (smallest weights) within `TUNE_TOLERANCE` of the best recall wins: popularity alone
    when nothing beats it by more than that.
    Returns the rules with the chosen weights and the grid's recall (similarity_weight, factor_weight,
    recall_at_10, customers)."""
    rules = rules or Rules()
    grid = sorted(((ws, wf) for ws in similarity_grid for wf in factor_grid), key=lambda w: (w[0] + w[1], w[1]))
    table = pd.DataFrame({"similarity_weight": [w[0] for w in grid], "factor_weight": [w[1] for w in grid],
                          "recall_at_10": np.nan, "customers": 0})
    train, val, cutoff = time_split(lines, as_of, test_days)
    if train.empty or val.empty:
        return rules, table
    model = fit(train, cutoff, **(fit_args or {}))
    rows_all = model.customer_index.reindex(val["customer_id"].to_numpy()).to_numpy()
    cols_all = model.sku_index.reindex(val["sku"].astype(str).to_numpy()).to_numpy()
    pairs = pd.DataFrame({"row": rows_all, "col": cols_all}).dropna().astype("int64").drop_duplicates()
    pairs = pairs[np.asarray(model.history[pairs["row"].to_numpy(), pairs["col"].to_numpy()]).ravel() == 0]
    new_val = val[~val.set_index(["customer_id", "sku"]).index.isin(train.set_index(["customer_id", "sku"]).index)]
    n_relevant = new_val.drop_duplicates(["customer_id", "sku"]).groupby("customer_id").size()
    n_relevant = n_relevant[n_relevant.index.isin(model.customers)]
    customers = n_relevant.index.to_numpy()
    if len(customers) > max_customers:
        customers = np.sort(np.random.default_rng(seed).choice(customers, max_customers, replace=False))
    if len(customers) < max(min_customers, 1):
        return rules, table.assign(customers=len(customers))
    rows = model.customer_index.reindex(customers).to_numpy()
    local = pd.Series(np.arange(len(rows)), index=rows)
    pairs = pairs[pairs["row"].isin(rows)]
    relevant = sp.csr_matrix((np.ones(len(pairs), dtype="float32"), (local.reindex(pairs["row"]).to_numpy(), pairs["col"].to_numpy())),
                             shape=(len(rows), len(model.skus)))
    denominator = n_relevant.reindex(customers).to_numpy(dtype="float64")
    recall = [float((top_k_hits(score, relevant, k) / denominator).mean())
              for score in blend_scores(model, rows, grid, rules.popularity_weight)]
    table["recall_at_10"] = recall
    table["customers"] = len(customers)
    best = int(np.flatnonzero(np.asarray(recall) >= (1 - TUNE_TOLERANCE) * max(recall))[0])  # grid: simplest first
    return replace(rules, similarity_weight=grid[best][0], factor_weight=grid[best][1]), table


def evaluate(lines: pd.DataFrame, as_of: date | pd.Timestamp, *, test_days: int = TEST_DAYS, k: int = K,
             half_life_days: float = HALF_LIFE_DAYS, neighbours: int = NEIGHBOURS, shrink: float = SHRINK,
             alpha: float = ALPHA, rules: Rules | None = None, consumables: set[str] | None = None,
             tune: bool = True) -> tuple[pd.DataFrame, dict]:
    """The evaluation table (model x scenario) and the fitted training model's details (for tests/logs).
    Only `lines` on or before the cut-off reach the model and the tuning of its weights (`tune`: on the
    `test_days` before the cut-off); test purchases are only compared against."""
    train, test, cutoff = time_split(lines, as_of, test_days)
    rules = replace(rules or Rules(), n=k)
    tuning = None
    if tune:
        rules, tuning = tune_weights(train, cutoff, rules=rules, test_days=test_days, k=k,
                                     fit_args={"half_life_days": half_life_days, "k": neighbours, "shrink": shrink, "alpha": alpha})
    model = fit(train, cutoff, half_life_days=half_life_days, k=neighbours, shrink=shrink, alpha=alpha)
    known = set(model.customers.tolist())
    test = test[test["customer_id"].isin(known)]
    customers = np.unique(test["customer_id"].to_numpy())
    train_pairs = train[["customer_id", "sku"]].drop_duplicates()
    test_pairs = test[["customer_id", "sku"]].drop_duplicates()
    new_pairs = test_pairs.merge(train_pairs.assign(_b=1), on=["customer_id", "sku"], how="left")
    new_pairs = new_pairs[new_pairs["_b"].isna()].drop(columns="_b")
    frame = pd.DataFrame({"customer_id": customers, "segment": None, "channel": preferred_channel(train).reindex(customers).to_numpy()})
    catalog = train.drop_duplicates("sku")[["sku", "category"]].assign(name=lambda d: d["sku"].astype(str), active=True)
    model_new = recommend(model, frame, catalog=catalog, rules=rules)
    due = replenishment(train, cutoff, categories=consumables)
    model_all = recommend(model, frame, catalog=catalog, replenish=due, rules=replace(rules, exclude_bought=False))
    pop_new = popularity_lists(model, customers, k, exclude_bought=True)
    pop_all = popularity_lists(model, customers, k, exclude_bought=False)
    catalogue = max(len(model.skus), 1)
    rows = []
    for name, recs, scenario, relevant in [("model", model_new, "new_items", new_pairs), ("popularity", pop_new, "new_items", new_pairs),
                                           ("model", model_all, "with_repurchase", test_pairs),
                                           ("popularity", pop_all, "with_repurchase", test_pairs)]:
        m = ranking_metrics(recs, relevant, k)
        rows.append({"model": name, "scenario": scenario, "precision_at_10": m["precision"], "recall_at_10": m["recall"],
                     "ndcg_at_10": m["ndcg"], "coverage": recs[recs["rank"] <= k]["sku"].nunique() / catalogue,
                     "customers": m["customers"], "cutoff": cutoff, "test_days": int(test_days)})
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["customers"] = table["customers"].astype("int64")
    table["cutoff"] = pd.to_datetime(table["cutoff"])
    return table, {"model": model, "train_max_date": train["order_date"].max(), "cutoff": cutoff, "rules": rules, "tuning": tuning,
                   "recommended": {"model_new": model_new, "model_all": model_all}}
