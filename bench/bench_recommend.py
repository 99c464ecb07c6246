"""Recommendations: train the item-item model and score every customer on synthetic implicit feedback.

Target (issue #7): 100,000 customers x 10,000 SKUs trained (blend weights tuned on a validation split,
then item-item and ALS fitted on everything) and scored (top 10 for every customer, with the
business rules: stock per channel, active SKUs, replenishment, category cap, reasons) in < 2 minutes on
2 cores. Both sizes run the full 100k x 10k ('small' and 'large' are the same workload: the target is
about that size). The generator draws ~15 lines per customer over a year: SKU popularity is Zipf-like,
each customer leans to 3 of 50 categories, a fifth of the categories are consumables bought again on a
cycle. Reported: seconds per step, the total (and its CPU time: on a shared machine the wall time depends
on the load), the weights the validation split chose, and peak memory (the process's ru_maxrss after the run, and
before it: data generation alone). tracemalloc is not used: it slows numpy/pandas allocations twofold.
"""

from __future__ import annotations

import resource
import time

import numpy as np
import pandas as pd

from bench.common import Metric

CUSTOMERS = 100_000
SKUS = 10_000
CATEGORIES = 50
LINES_PER_CUSTOMER = 15
TARGET_SECONDS = 120.0
AS_OF = pd.Timestamp("2026-06-30")


def synthetic_lines(customers: int = CUSTOMERS, skus: int = SKUS, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    cat_of_sku = rng.integers(0, CATEGORIES, size=skus)
    weight = 1.0 / np.arange(1, skus + 1) ** 0.9
    rng.shuffle(weight)
    n = rng.poisson(LINES_PER_CUSTOMER, size=customers) + 1
    cust = np.repeat(np.arange(1, customers + 1), n)
    fav = rng.integers(0, CATEGORIES, size=(customers, 3))
    by_cat = [np.flatnonzero(cat_of_sku == c) for c in range(CATEGORIES)]
    cat_p = [weight[idx] / weight[idx].sum() for idx in by_cat]
    # 70% of lines in one of the customer's three categories, the rest anywhere by popularity
    in_fav = rng.random(len(cust)) < 0.7
    chosen_cat = fav[cust - 1, rng.integers(0, 3, size=len(cust))]
    sku_idx = rng.choice(skus, size=len(cust), p=weight / weight.sum())
    for c in range(CATEGORIES):
        pick = in_fav & (chosen_cat == c)
        if pick.any():
            sku_idx[pick] = rng.choice(by_cat[c], size=int(pick.sum()), p=cat_p[c])
    day = AS_OF - pd.to_timedelta(rng.integers(0, 365, size=len(cust)), unit="D")
    names = np.array([f"SKU-{i:05d}" for i in range(skus)], dtype=object)
    lines = pd.DataFrame({"customer_id": cust, "sku": names[sku_idx], "order_id": cust * 1000 + rng.integers(0, 20, size=len(cust)),
                          "order_date": day, "units": rng.integers(1, 3, size=len(cust)),
                          "category": np.char.add("cat-", cat_of_sku[sku_idx].astype(str)).astype(object),
                          "channel": np.where(cust % 3 == 0, "app", "web")})
    catalog = pd.DataFrame({"sku": names, "name": names, "category": np.char.add("cat-", cat_of_sku.astype(str)).astype(object),
                            "active": rng.random(skus) > 0.02, "price": rng.uniform(2, 80, size=skus)})
    return lines, catalog


def train_and_score(lines: pd.DataFrame, catalog: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float], dict[str, float]]:
    from forecasting.recommend import fit, recommend, replenishment, tune_weights
    from forecasting.recommend.evaluate import preferred_channel

    steps: dict[str, float] = {}
    t = time.perf_counter()
    rules, tuning = tune_weights(lines, AS_OF)
    steps["tune blend weights (validation: last 28 days)"] = time.perf_counter() - t
    t = time.perf_counter()
    model = fit(lines, AS_OF, skus=catalog["sku"].to_numpy(dtype=str))
    steps["train (history + item-item top-50 + ALS 32 factors)"] = time.perf_counter() - t
    t = time.perf_counter()
    due = replenishment(lines, AS_OF, categories={f"cat-{c}" for c in range(0, CATEGORIES, 5)})
    steps["replenishment intervals"] = time.perf_counter() - t
    rng = np.random.default_rng(1)
    stock = pd.DataFrame({"sku": np.tile(catalog["sku"].to_numpy(), 2), "channel": np.repeat(["web", "app"], len(catalog)),
                          "available": rng.integers(0, 20, size=2 * len(catalog))})
    customers = pd.DataFrame({"customer_id": model.customers, "segment": "regular"})
    customers["channel"] = preferred_channel(lines).reindex(model.customers).to_numpy()
    t = time.perf_counter()
    recs = recommend(model, customers, catalog=catalog, availability=stock, replenish=due, rules=rules)
    steps["score all customers (top 10 + rules + reasons)"] = time.perf_counter() - t
    return recs, steps, {"similarity_weight": rules.similarity_weight, "factor_weight": rules.factor_weight}


def run(size: str = "small") -> list[Metric]:
    name = "recommendations 100k x 10k"
    lines, catalog = synthetic_lines()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0, cpu0 = time.perf_counter(), time.process_time()
    recs, steps, weights = train_and_score(lines, catalog)
    total, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    metrics = [Metric(name, "interactions (order lines)", float(len(lines)), "lines")]
    metrics += [Metric(name, step, seconds, "s") for step, seconds in steps.items()]
    metrics += [Metric(name, f"tuned {key}", value, "") for key, value in weights.items()]
    metrics += [
        Metric(name, "train + score all customers", total, "s", f"< {TARGET_SECONDS:.0f}", total < TARGET_SECONDS),
        Metric(name, "train + score, CPU time (all threads)", cpu, "s"),
        Metric(name, "customers scored", float(recs["customer_id"].nunique()), "customers", f"= {CUSTOMERS}",
               recs["customer_id"].nunique() == CUSTOMERS),
        Metric(name, "peak RSS before train (data only)", rss_before, "MiB"),
        Metric(name, "peak RSS (process, after run)", rss_mb, "MiB"),
    ]
    return metrics


if __name__ == "__main__":
    from bench.common import print_table

    print_table(run())
