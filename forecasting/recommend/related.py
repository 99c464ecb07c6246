"""Related products per SKU ("frequently bought together"): SKUs in the same baskets (orders).

support = baskets with both / all baskets; confidence = baskets with both / baskets with the SKU;
lift = confidence / share of baskets with the related SKU. Neighbours are ranked by cosine with shrinkage
(co / (sqrt(n_sku n_related) + shrink)), which favours pairs that are both frequent and specific; pairs
seen in fewer than `min_baskets` baskets are dropped.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import scipy.sparse as sp

from forecasting.recommend.model import purchases, top_k_neighbours

COLUMNS = ["sku", "related_sku", "rank", "support", "confidence", "lift"]


def related_products(lines: pd.DataFrame, as_of: date | pd.Timestamp, *, k: int = 10, min_baskets: int = 2,
                     shrink: float = 2.0, basket: str = "order_id") -> pd.DataFrame:
    p = purchases(lines, as_of)
    if p.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(COLUMNS, ["object", "object", "int64", "float64", "float64", "float64"])})
    baskets, rows = np.unique(p[basket].to_numpy(), return_inverse=True)
    skus, cols = np.unique(p["sku"].astype(str).to_numpy(), return_inverse=True)
    b = sp.csr_matrix((np.ones(len(rows), dtype="float32"), (rows, cols)), shape=(len(baskets), len(skus)))
    b.sum_duplicates()
    b.data[:] = 1.0
    sim, co = top_k_neighbours(b, k=k, shrink=shrink)
    s, c = sim.tocoo(), co.tocoo()
    n = np.asarray(b.sum(axis=0)).ravel()
    df = pd.DataFrame({"i": s.row, "j": s.col, "sim": s.data, "co": c.data})
    df = df[df["co"] >= min_baskets]
    total = float(len(baskets))
    df["support"] = df["co"] / total
    df["confidence"] = df["co"] / n[df["i"].to_numpy()]
    df["lift"] = df["confidence"] / (n[df["j"].to_numpy()] / total)
    df = df.sort_values(["i", "sim", "co"], ascending=[True, False, False], kind="stable")
    df["rank"] = (df.groupby("i").cumcount() + 1).astype("int64")
    df["sku"] = skus[df["i"].to_numpy()]
    df["related_sku"] = skus[df["j"].to_numpy()]
    for col in ["support", "confidence", "lift"]:
        df[col] = df[col].astype("float64")
    return df[COLUMNS].reset_index(drop=True)
