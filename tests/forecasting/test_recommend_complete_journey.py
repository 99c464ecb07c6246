"""The model against popularity on the Complete Journey sample (84.51): households as customers, products as
SKUs, baskets as orders, the product category as category; time split 28 days before the last day.

Measured when written (docs/recommendations.md): with repurchases allowed the model's recall@10 is ~0.053
against popularity's ~0.041; on items new to the household ~0.034 against ~0.033 (nDCG ~0.027 against
~0.023): the validation split picks the ALS term (weight 0.3), which re-ranks the bestsellers per household.
The sample holds ~30 lines per household over the year: little signal beyond the bestsellers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from forecasting.recommend import evaluate

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "complete_journey"


@pytest.fixture(scope="module")
def cj_lines() -> pd.DataFrame:
    transactions = DATA / "transactions_sample.csv.gz"
    if not transactions.exists():
        pytest.skip(f"Complete Journey sample not found at {transactions}")
    t = pd.read_csv(transactions)
    products = pd.read_csv(DATA / "products.csv.gz", usecols=["product_id", "product_category"])
    category = products.set_index("product_id")["product_category"]
    return pd.DataFrame({
        "customer_id": t["household_id"].astype("int64"), "sku": t["product_id"].astype(str), "order_id": t["basket_id"],
        "units": t["quantity"].clip(lower=0), "order_date": pd.to_datetime(t["transaction_timestamp"]).dt.normalize(),
        "category": t["product_id"].map(category).fillna("UNKNOWN").astype(str), "discount_total": t["retail_disc"].abs(),
    })


def test_model_beats_popularity_with_repurchases_on_complete_journey(cj_lines: pd.DataFrame) -> None:
    table, info = evaluate(cj_lines, cj_lines["order_date"].max())
    print("\n" + table.drop(columns=["cutoff"]).to_string(index=False))
    recall = table.set_index(["model", "scenario"])["recall_at_10"]
    assert table["customers"].min() > 1000
    assert recall[("model", "with_repurchase")] > 1.1 * recall[("popularity", "with_repurchase")]
    assert recall[("model", "new_items")] >= recall[("popularity", "new_items")]  # on a par or better, never worse
    ndcg = table.set_index(["model", "scenario"])["ndcg_at_10"]
    assert ndcg[("model", "new_items")] > ndcg[("popularity", "new_items")]
    coverage = table.set_index(["model", "scenario"])["coverage"]
    assert coverage[("model", "new_items")] > coverage[("popularity", "new_items")]
    assert coverage[("model", "with_repurchase")] > 100 * coverage[("popularity", "with_repurchase")]
    assert info["train_max_date"] <= info["cutoff"]
    assert info["tuning"]["customers"].min() > 1000  # weights chosen on a real validation split before the cut-off
