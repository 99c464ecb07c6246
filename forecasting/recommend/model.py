"""Collaborative filtering on implicit feedback: item-item neighbours and an ALS factor model.

A customer's history is a row of recency-decayed, log-scaled quantities. Item-item: two SKUs are similar
when the same customers buy both (the share of a SKU's buyers who bought the other, shrunk towards zero
when few customers back it); a customer's score for a SKU is their history times the similarity, computed
in blocks of SKUs so memory stays bounded whatever the catalogue size. Factors: alternating least squares
(`implicit`) on the BM25-weighted who-bought-what matrix, strongly regularised: on sparse retail data it
learns mostly which bestsellers suit which customers (docs/recommendations.md has the measurements).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

HALF_LIFE_DAYS = 120.0
NEIGHBOURS = 50
SHRINK = 5.0
ITEM_BLOCK = 1024
ALPHA = 1.0
FACTORS = 32
REGULARIZATION = 100.0
ALS_ITERATIONS = 8
BM25_K1 = 1.2
BM25_B = 0.75


@dataclass
class ItemItemModel:
    """A fitted model: row/column indexes, the customer x SKU history, and the top-k SKU neighbours."""

    customers: np.ndarray  # customer id per row of `history`
    skus: np.ndarray  # SKU per column
    history: sp.csr_matrix  # customers x SKUs, log1p(Σ units x recency decay), float32
    similarity: sp.csr_matrix  # SKU x SKU, top-k neighbours per row (row = the SKU bought, column = the SKU suggested)
    co_buyers: sp.csr_matrix  # same pattern: customers who bought both
    buyers: np.ndarray  # customers who bought each SKU
    popularity: np.ndarray  # Σ decayed units per SKU
    first_sold: np.ndarray  # datetime64 of each SKU's first sale (NaT: never sold)
    as_of: pd.Timestamp
    user_factors: np.ndarray | None = None  # customers x factors (ALS), None: not fitted
    item_factors: np.ndarray | None = None  # SKUs x factors

    @property
    def customer_index(self) -> pd.Series:
        return pd.Series(np.arange(len(self.customers)), index=self.customers)

    @property
    def sku_index(self) -> pd.Series:
        return pd.Series(np.arange(len(self.skus)), index=self.skus)


def purchases(lines: pd.DataFrame, as_of: date | pd.Timestamp) -> pd.DataFrame:
    """Lines that count as a purchase by the end of `as_of`: a known customer, a SKU, units > 0."""
    end = pd.Timestamp(as_of).normalize()
    keep = lines["customer_id"].notna() & lines["sku"].notna() & (lines["units"] > 0) & (pd.to_datetime(lines["order_date"]) <= end)
    out = lines.loc[keep].copy()
    out["customer_id"] = out["customer_id"].astype("int64")
    out["order_date"] = pd.to_datetime(out["order_date"]).dt.normalize()
    return out


def history_matrix(lines: pd.DataFrame, as_of: date | pd.Timestamp, half_life_days: float = HALF_LIFE_DAYS,
                   skus: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """customers x SKUs: log1p of units weighted by 0.5 ** (age / half-life); lines after `as_of` are ignored."""
    p = purchases(lines, as_of)
    end = pd.Timestamp(as_of).normalize()
    age = (end - p["order_date"]).dt.days.to_numpy(dtype="float64")
    p["w"] = p["units"].to_numpy(dtype="float64") * np.power(0.5, age / half_life_days)
    agg = p.groupby(["customer_id", "sku"], sort=False)["w"].sum().reset_index()
    customers, rows = np.unique(agg["customer_id"].to_numpy(), return_inverse=True)
    if skus is None:
        skus = np.unique(agg["sku"].astype(str).to_numpy())
    cols = pd.Index(skus).get_indexer(agg["sku"].astype(str))
    ok = cols >= 0
    matrix = sp.csr_matrix((np.log1p(agg["w"].to_numpy()[ok]).astype("float32"), (rows[ok], cols[ok])),
                           shape=(len(customers), len(skus)), dtype="float32")
    matrix.sum_duplicates()
    return customers, np.asarray(skus, dtype=object), matrix


def top_k_neighbours(bought: sp.csr_matrix, k: int = NEIGHBOURS, shrink: float = SHRINK,
                     block: int = ITEM_BLOCK, alpha: float = 0.5) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Cosine similarity of SKU columns of a 0/1 customers x SKUs matrix with shrinkage,
    co / (sqrt(n_i n_j) + shrink), keeping the k best neighbours per SKU. Returns (similarity, co-buyers)."""
    b = bought.astype("float32").tocsc()
    n_items = b.shape[1]
    counts = np.asarray(b.sum(axis=0)).ravel().astype("float32")
    bt = b.T.tocsr()
    sim_parts, co_parts = [], []
    for start in range(0, n_items, block):
        stop = min(start + block, n_items)
        co = (bt[start:stop] @ b).tocoo()
        r, c, v = co.row.astype("int64") + start, co.col.astype("int64"), co.data
        off = r != c
        r, c, v = r[off], c[off], v[off]
        sim = v / (np.power(counts[r], alpha) * np.power(counts[c], 1.0 - alpha) + shrink)
        order = np.lexsort((-sim, r))
        r, c, v, sim = r[order], c[order], v[order], sim[order]
        first = np.r_[0, np.flatnonzero(np.diff(r)) + 1] if len(r) else np.zeros(0, dtype="int64")
        position = np.arange(len(r)) - np.repeat(first, np.diff(np.r_[first, len(r)]))
        keep = (position < k) & (sim > 0)
        sim_parts.append((sim[keep], r[keep], c[keep]))
        co_parts.append(v[keep])
    if sim_parts:
        vals = np.concatenate([p[0] for p in sim_parts])
        r = np.concatenate([p[1] for p in sim_parts])
        c = np.concatenate([p[2] for p in sim_parts])
        co = np.concatenate(co_parts)
    else:
        vals = co = np.zeros(0, dtype="float32")
        r = c = np.zeros(0, dtype="int64")
    shape = (n_items, n_items)
    return (sp.csr_matrix((vals.astype("float32"), (r, c)), shape=shape),
            sp.csr_matrix((co.astype("float32"), (r, c)), shape=shape))


def bm25(bought: sp.csr_matrix, k1: float = BM25_K1, b: float = BM25_B) -> sp.csr_matrix:
    """BM25 weights of a 0/1 customers x SKUs matrix: a SKU few customers buy says more about a customer
    (idf = log(customers) - log(1 + its buyers)); a customer who bought many SKUs says less per SKU."""
    x = sp.coo_matrix(bought, dtype="float64")
    n = float(max(x.shape[0], 1))
    idf = np.log(n) - np.log1p(np.bincount(x.col, minlength=x.shape[1]))
    length = np.bincount(x.row, weights=x.data, minlength=x.shape[0])
    norm = (1.0 - b) + b * length / max(float(length.mean()), 1e-12)
    data = x.data * (k1 + 1.0) / (k1 * norm[x.row] + x.data) * idf[x.col]
    return sp.csr_matrix((data.astype("float32"), (x.row, x.col)), shape=x.shape)


def factorise(bought: sp.csr_matrix, factors: int = FACTORS, regularization: float = REGULARIZATION,
              iterations: int = ALS_ITERATIONS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(customer factors, SKU factors) of ALS (`implicit`, conjugate gradient) on the BM25 weights.
    BLAS is held to one thread: implicit parallelises over customers itself."""
    from implicit.cpu.als import AlternatingLeastSquares

    n_users, n_items = bought.shape
    if factors <= 0 or bought.nnz == 0:
        return np.zeros((n_users, 0), dtype="float32"), np.zeros((n_items, 0), dtype="float32")
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(factors=factors, regularization=regularization, iterations=iterations,
                                      calculate_training_loss=False, random_state=seed)
        als.fit(bm25(bought), show_progress=False)
    return np.asarray(als.user_factors, dtype="float32"), np.asarray(als.item_factors, dtype="float32")


def fit(lines: pd.DataFrame, as_of: date | pd.Timestamp, *, half_life_days: float = HALF_LIFE_DAYS, k: int = NEIGHBOURS,
        shrink: float = SHRINK, alpha: float = ALPHA, skus: np.ndarray | None = None, factors: int = FACTORS,
        regularization: float = REGULARIZATION) -> ItemItemModel:
    """Fit on every purchase up to the end of `as_of` (nothing later is read). `factors=0`: no ALS."""
    customers, sku_ids, history = history_matrix(lines, as_of, half_life_days, skus)
    bought = history.copy()
    bought.data[:] = 1.0
    similarity, co_buyers = top_k_neighbours(bought, k=k, shrink=shrink, alpha=alpha)
    user_factors, item_factors = factorise(bought, factors, regularization)
    p = purchases(lines, as_of)
    age = (pd.Timestamp(as_of).normalize() - p["order_date"]).dt.days.to_numpy(dtype="float64")
    weights = p["units"].to_numpy(dtype="float64") * np.power(0.5, age / half_life_days)
    pop = pd.Series(weights, index=p["sku"].astype(str).to_numpy()).groupby(level=0).sum()
    first = p.groupby(p["sku"].astype(str))["order_date"].min()
    return ItemItemModel(customers=customers, skus=sku_ids, history=history, similarity=similarity, co_buyers=co_buyers,
                         buyers=np.asarray(bought.sum(axis=0)).ravel().astype("int64"),
                         popularity=pop.reindex(sku_ids).fillna(0.0).to_numpy(dtype="float64"),
                         first_sold=first.reindex(sku_ids).to_numpy(dtype="datetime64[ns]"),
                         as_of=pd.Timestamp(as_of).normalize(), user_factors=user_factors, item_factors=item_factors)


def anchors(model: ItemItemModel, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each recommended (customer row, SKU column): the SKU in the customer's history that contributes
    most to the score (history weight x similarity), and the share of its buyers who also bought the
    recommended SKU (-1 / nan: none). Looks up only the picks' history x pick pairs."""
    n_items = len(model.skus)
    result_anchor = np.full(len(rows), -1, dtype="int64")
    result_share = np.full(len(rows), np.nan)
    if len(rows) == 0 or model.similarity.nnz == 0:
        return result_anchor, result_share
    h = model.history
    rows = np.asarray(rows, dtype="int64")
    lengths = np.diff(h.indptr)[rows]
    total = int(lengths.sum())
    if total == 0:
        return result_anchor, result_share
    rep = np.repeat(np.arange(len(rows)), lengths)
    pos = np.repeat(h.indptr[rows], lengths) + (np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths))
    i = h.indices[pos].astype("int64")
    key = i * n_items + np.asarray(cols, dtype="int64")[rep]
    s = model.similarity.tocoo()
    s_keys = s.row.astype("int64") * n_items + s.col.astype("int64")
    order = np.argsort(s_keys, kind="stable")
    s_keys = s_keys[order]
    loc = np.minimum(np.searchsorted(s_keys, key), len(s_keys) - 1)
    hit = s_keys[loc] == key
    rep, i, loc, x = rep[hit], i[hit], order[loc[hit]], h.data[pos[hit]]
    contrib = x * s.data[loc]
    best = np.lexsort((contrib, rep))
    last = np.r_[rep[best][1:] != rep[best][:-1], True]
    chosen = best[last]
    co = model.co_buyers.tocoo()
    result_anchor[rep[chosen]] = i[chosen]
    result_share[rep[chosen]] = co.data[loc[chosen]] / np.maximum(model.buyers[i[chosen]], 1)
    return result_anchor, result_share


def factor_anchors(model: ItemItemModel, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """For each (customer row, SKU column): the SKU in the customer's history closest to it in the factor
    space (history weight x dot product of the SKU factors), -1 when none. Names the category the
    customer buys that a factor-model pick goes with."""
    out = np.full(len(rows), -1, dtype="int64")
    if len(rows) == 0 or model.item_factors is None or model.item_factors.shape[1] == 0:
        return out
    h = model.history
    rows = np.asarray(rows, dtype="int64")
    lengths = np.diff(h.indptr)[rows]
    total = int(lengths.sum())
    if total == 0:
        return out
    rep = np.repeat(np.arange(len(rows)), lengths)
    pos = np.repeat(h.indptr[rows], lengths) + (np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths))
    j = h.indices[pos].astype("int64")
    y = model.item_factors
    contrib = h.data[pos] * np.einsum("ij,ij->i", y[j], y[np.asarray(cols, dtype="int64")[rep]])
    best = np.lexsort((contrib, rep))
    last = np.r_[rep[best][1:] != rep[best][:-1], True]
    chosen = best[last]
    good = contrib[chosen] > 0
    out[rep[chosen][good]] = j[chosen][good]
    return out
