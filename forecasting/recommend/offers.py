"""Targeted offers: for each promotion, the customers most likely to respond.

affinity (0..1): the customer's item-item score for the promoted SKUs plus what they bought of them
themselves, scaled by the best customer's (an order-wide promotion uses overall buying). price
sensitivity (0..1): the share of the customer's lines bought with a discount, shrunk towards the store's
share (`prior_lines` pseudo-lines). score = affinity x sensitivity. expected_uplift = score x depth, the
promotion's discount as a fraction of the price: an index of extra purchase probability, not a forecast
of revenue. Only customers with marketing consent are targeted (offers are campaigns), and never one who
has used up the promotion's per-customer limit (a welcome coupon is not sent to someone who used it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from forecasting.recommend.model import ItemItemModel, purchases

COLUMNS = ["promotion_id", "customer_id", "score", "expected_uplift"]
PRIOR_LINES = 5.0


def price_sensitivity(lines: pd.DataFrame, as_of, prior_lines: float = PRIOR_LINES) -> pd.Series:
    """Per customer: smoothed share of lines bought with a discount."""
    p = purchases(lines, as_of)
    if p.empty:
        return pd.Series(dtype="float64")
    discounted = (p["discount_total"].fillna(0) > 0).astype("float64")
    store = float(discounted.mean())
    g = discounted.groupby(p["customer_id"])
    return (g.sum() + prior_lines * store) / (g.size() + prior_lines)


def depth(promotions: pd.DataFrame, catalog: pd.DataFrame) -> pd.Series:
    """Discount as a fraction of the price: percentage value / 100; fixed value / mean price of the targets;
    buy X get Y free: Y / (X + Y)."""
    price = catalog.set_index("sku")["price"].astype("float64") if "price" in catalog else pd.Series(dtype="float64")
    by_cat = catalog.groupby("category")["price"].mean() if "price" in catalog else pd.Series(dtype="float64")
    out = []
    for p in promotions.itertuples(index=False):
        value = float(p.value or 0)
        if p.kind == "percentage":
            d = value / 100
        elif p.kind == "buy_x_get_y":
            buy, get = float(p.buy_quantity or 1), float(p.get_quantity or 1)
            d = get / (buy + get)
        else:
            ref = price.get(p.target) if p.scope == "sku" else (by_cat.get(p.target) if p.scope == "category" else price.mean())
            d = value / float(ref) if ref is not None and pd.notna(ref) and float(ref) > 0 else 0.0
        out.append(min(max(d, 0.0), 1.0))
    return pd.Series(out, index=promotions["promotion_id"].to_numpy(), dtype="float64")


def offer_targets(model: ItemItemModel, promotions: pd.DataFrame, lines: pd.DataFrame, catalog: pd.DataFrame,
                  consenting: np.ndarray, *, used_up: pd.DataFrame | None = None, per_promotion: int = 500) -> pd.DataFrame:
    """`promotions`: promotion_id, kind, scope ('order'|'sku'|'category'), target, value, buy_quantity,
    get_quantity. `catalog`: sku, category, price. `consenting`: customer ids with marketing consent.
    `used_up`: promotion_id, customer_id pairs that may not redeem again (per-customer limit reached).
    Returns the top `per_promotion` customers per promotion with a positive score."""
    empty = pd.DataFrame({"promotion_id": pd.Series(dtype="int64"), "customer_id": pd.Series(dtype="int64"),
                          "score": pd.Series(dtype="float64"), "expected_uplift": pd.Series(dtype="float64")})
    if promotions.empty or len(model.customers) == 0:
        return empty
    h = model.history
    sens = price_sensitivity(lines, model.as_of).reindex(model.customers).fillna(0.0).to_numpy()
    allowed = np.isin(model.customers, np.asarray(consenting, dtype="int64"))
    depths = depth(promotions, catalog)
    sku_idx = model.sku_index
    cats = catalog.drop_duplicates("sku").set_index("sku")["category"].astype(str).reindex(pd.Index(model.skus)).to_numpy()
    overall = np.asarray(h.sum(axis=1)).ravel()
    frames = []
    for p in promotions.itertuples(index=False):
        if p.scope == "sku":
            cols = np.array([sku_idx[p.target]]) if p.target in sku_idx.index else np.zeros(0, dtype="int64")
        elif p.scope == "category":
            cols = np.flatnonzero(cats == str(p.target))
        else:
            cols = None
        if cols is None:
            affinity = overall.copy()
        elif len(cols) == 0:
            continue
        else:
            pick = sp.csr_matrix((np.ones(len(cols), dtype="float32"), (cols, np.zeros(len(cols), dtype="int64"))), shape=(h.shape[1], 1))
            affinity = np.asarray((h @ (model.similarity @ pick)).todense()).ravel() + np.asarray((h @ pick).todense()).ravel()
        top = affinity.max() if len(affinity) else 0.0
        if top <= 0:
            continue
        score = affinity / top * sens
        score[~allowed] = 0.0
        if used_up is not None and len(used_up):
            score[np.isin(model.customers, used_up.loc[used_up["promotion_id"] == p.promotion_id, "customer_id"].to_numpy())] = 0.0
        keep = np.flatnonzero(score > 0)
        keep = keep[np.argsort(-score[keep], kind="stable")[:per_promotion]]
        frames.append(pd.DataFrame({"promotion_id": int(p.promotion_id), "customer_id": model.customers[keep].astype("int64"),
                                    "score": score[keep].astype("float64"),
                                    "expected_uplift": (score[keep] * depths.get(p.promotion_id, 0.0)).astype("float64")}))
    if not frames:
        return empty
    return pd.concat(frames, ignore_index=True)[COLUMNS]
