"""Offline evaluation on a time split: fit on purchases up to the cut-off (as-of less `test_days`), compare
the top-10 with what each customer bought in the following `test_days`.

Customers evaluated: those with history before the cut-off and a purchase after it. Scenarios:
`new_items` (relevant = SKUs bought in the test window that the customer had not bought before; the lists
exclude what they bought before) and `with_repurchase` (relevant = every SKU bought in the test window;
the model's list includes due replenishments, the baseline may repeat). Metrics: precision@k, recall@k
(hits / relevant SKUs), nDCG@k (binary gains) and catalogue coverage (distinct SKUs recommended / SKUs
bought before the cut-off). The baseline is popularity: the SKUs most customers bought lately (the same
recency decay as the model).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd

from forecasting.recommend.model import ALPHA, HALF_LIFE_DAYS, NEIGHBOURS, SHRINK, fit, purchases
from forecasting.recommend.recommend import Rules, recommend
from forecasting.recommend.replenish import replenishment

TEST_DAYS = 28
K = 10
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


def evaluate(lines: pd.DataFrame, as_of: date | pd.Timestamp, *, test_days: int = TEST_DAYS, k: int = K,
             half_life_days: float = HALF_LIFE_DAYS, neighbours: int = NEIGHBOURS, shrink: float = SHRINK,
             alpha: float = ALPHA, rules: Rules | None = None, consumables: set[str] | None = None) -> tuple[pd.DataFrame, dict]:
    """The evaluation table (model x scenario) and the fitted training model's details (for tests/logs).
    Only `lines` on or before the cut-off reach the model; test purchases are only compared against."""
    train, test, cutoff = time_split(lines, as_of, test_days)
    rules = replace(rules or Rules(), n=k)
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
    return table, {"model": model, "train_max_date": train["order_date"].max(), "cutoff": cutoff,
                   "recommended": {"model_new": model_new, "model_all": model_all}}
