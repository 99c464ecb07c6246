"""Recommendation assets (group `recommendations`): per-customer top-N, related products, offer targets and
the offline evaluation. Methods in `forecasting.recommend` and docs/recommendations.md.

`recommendations` holds every customer's list (consent is applied where marketing reads it: the export
command and the API's marketing feed), so service and on-site uses can read it too. `offer_targets` are
campaign audiences: customers without marketing consent are never in it.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd

from pipelines.common import MART_FRESHNESS, OWNERS, definition_metadata, output
from pipelines.defs.recommendations import logic as L
from pipelines.resources import StoreDatabase

GROUP = "recommendations"

RECOMMENDATIONS_COLUMNS = {
    "customer_id": "Customer id (every known customer; consent is applied by the marketing feed/export)",
    "sku": "Recommended SKU (active, available to promise in the customer's channel)", "rank": "1 = first to show",
    "score": "Model score (replenish: due score 0..1; new: popularity + item-item and ALS scores scaled to the customer's best, weighted)",
    "reason": "Why, in words (e.g. 'bought with Espresso Beans 250g by 31% of its buyers')",
    "kind": "'replenish' (a consumable about to run out) or 'new' (not bought before)",
}
RELATED_COLUMNS = {
    "sku": "SKU", "related_sku": "SKU bought in the same baskets", "rank": "1 = most related (cosine with shrinkage)",
    "support": "Baskets with both / all baskets", "confidence": "Baskets with both / baskets with sku",
    "lift": "confidence / share of baskets with related_sku",
}
OFFER_COLUMNS = {
    "promotion_id": "Running promotion id", "customer_id": "Customer with marketing consent",
    "score": "affinity to the promoted SKUs/category (0..1) x price sensitivity (0..1)",
    "expected_uplift": "score x discount depth: index of extra purchase probability",
}
EVALUATION_COLUMNS = {
    "model": "'model' (popularity + item-item + ALS, weights tuned before the cut-off; + replenishment) or 'popularity' (bestsellers)", "scenario": "'new_items' or 'with_repurchase'",
    "precision_at_10": "Hits in the top 10 / 10", "recall_at_10": "Hits in the top 10 / SKUs bought in the test window",
    "ndcg_at_10": "Discounted cumulative gain / ideal", "coverage": "Distinct SKUs recommended / SKUs sold before the cut-off",
    "customers": "Customers evaluated (history before the cut-off, a purchase after)", "cutoff": "Last day of training data",
    "test_days": "Days after the cut-off compared against",
}


def _asset(name: str, columns: dict[str, str], **kwargs):  # type: ignore[no-untyped-def]
    return dg.asset(name=name, group_name=GROUP, kinds={"python", "scipy", "parquet"}, owners=OWNERS,
                    metadata=definition_metadata(columns), freshness_policy=MART_FRESHNESS,
                    automation_condition=dg.AutomationCondition.eager(), **kwargs)


@_asset("recommendations", RECOMMENDATIONS_COLUMNS)
def recommendations(store_db: StoreDatabase, stg_order_lines: pd.DataFrame, stg_customers: pd.DataFrame,
                    customer_segments: pd.DataFrame, stg_returns: pd.DataFrame, stg_inventory_snapshots: pd.DataFrame) -> dg.Output:
    """Top 10 per customer: due replenishments first, then picks new to them (popularity blended with item-item and ALS), with a reason each."""
    as_of = store_db.as_of_date()
    cutoff = store_db.cutoff()
    df = L.build_recommendations(stg_order_lines, stg_customers, customer_segments, stg_returns, stg_inventory_snapshots,
                                 store_db.query(L.SQL_PRODUCTS, {"cutoff": cutoff}),
                                 store_db.query(L.SQL_CHANNEL_LOCATIONS, L.bools(store_db.is_sqlite)), as_of)
    return output(df, RECOMMENDATIONS_COLUMNS, as_of=as_of, extra={
        "customers": dg.MetadataValue.int(int(df["customer_id"].nunique())),
        "replenish_rows": dg.MetadataValue.int(int((df["kind"] == "replenish").sum()))})


@_asset("related_products", RELATED_COLUMNS)
def related_products(store_db: StoreDatabase, stg_order_lines: pd.DataFrame) -> dg.Output:
    """Frequently bought together: up to 10 SKUs per SKU from shared baskets, with support, confidence and lift."""
    as_of = store_db.as_of_date()
    return output(L.build_related(stg_order_lines, as_of), RELATED_COLUMNS, as_of=as_of)


@_asset("offer_targets", OFFER_COLUMNS)
def offer_targets(store_db: StoreDatabase, stg_order_lines: pd.DataFrame, stg_customers: pd.DataFrame) -> dg.Output:
    """For each running promotion, the consenting customers most likely to respond (limit not used up), with an uplift index."""
    as_of = store_db.as_of_date()
    cutoff = store_db.cutoff()
    promotions = store_db.query(L.SQL_PROMOTIONS, {"cutoff": cutoff, "day_start": L.day_start(as_of), **L.bools(store_db.is_sqlite)})
    redemptions = store_db.query(L.SQL_REDEMPTIONS, {"cutoff": cutoff, **L.bools(store_db.is_sqlite)})
    df = L.build_offer_targets(stg_order_lines, stg_customers, store_db.query(L.SQL_PRODUCTS, {"cutoff": cutoff}), promotions, as_of,
                               redemptions)
    return output(df, OFFER_COLUMNS, as_of=as_of, extra={"promotions": dg.MetadataValue.int(len(promotions))})


@_asset("recommendation_evaluation", EVALUATION_COLUMNS)
def recommendation_evaluation(store_db: StoreDatabase, stg_order_lines: pd.DataFrame) -> dg.Output:
    """Precision, recall, nDCG at 10 and coverage of the model and of popularity on the last 28 days held out."""
    as_of = store_db.as_of_date()
    df, rules = L.build_evaluation(stg_order_lines, as_of)
    extra = {"similarity_weight": dg.MetadataValue.float(float(rules.similarity_weight)),
             "factor_weight": dg.MetadataValue.float(float(rules.factor_weight))}
    for row in df.itertuples(index=False):
        extra[f"recall_at_10/{row.model}/{row.scenario}"] = dg.MetadataValue.float(float(row.recall_at_10))
    return output(df, EVALUATION_COLUMNS, as_of=as_of, extra=extra)
