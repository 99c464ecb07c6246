"""Per-customer top-N with the business rules.

The list starts with consumables that are due (kind `replenish`, at most `max_replenish`), then SKUs new to
the customer (kind `new`): the store's bestsellers (the same recent popularity as the evaluation's baseline)
plus the customer's item-item score and ALS factor score, each scaled to the customer's best, at weights
tuned on a validation split (`evaluate.tune_weights`); SKUs first sold lately (no co-purchases yet) enter
through the customer's share of buying in their category.
Customers without history get the popular items of their segment and channel. Rules: only active SKUs
available to promise in the customer's channel, never a SKU the customer returned as unwanted, no SKU
twice, at most `max_per_category` SKUs of one category. Customers are scored in blocks (dense block x
SKUs, float32), so memory does not grow with the customer count. Weights and why: docs/recommendations.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from forecasting.recommend.model import ItemItemModel, anchors, factor_anchors

COLUMNS = ["customer_id", "sku", "rank", "score", "reason", "kind"]
ANY_CHANNEL = "*"
NEW_SEGMENT = "new"
ANCHOR_CHUNK = 50_000
MIN_REASON_SHARE = 0.05


def _top_candidates(score: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of at least the k best finite scores per row. A threshold from a 1-in-8 sample of the
    columns keeps ~2k per row cheaply; rows it leaves short get an exact partition."""
    n_rows, n_cols = score.shape
    if n_cols <= 4 * k:
        r = np.repeat(np.arange(n_rows), n_cols)
        return r, np.tile(np.arange(n_cols), n_rows)
    sample = score[:, ::8]
    kth = min(max(2 * k // 8, 1), sample.shape[1])
    threshold = np.partition(sample, sample.shape[1] - kth, axis=1)[:, sample.shape[1] - kth]
    threshold = np.where(np.isneginf(threshold), np.finfo(score.dtype).min, threshold)
    mask = score >= threshold[:, None]
    counts = mask.sum(axis=1)
    finite = np.isfinite(score).sum(axis=1)
    short = np.flatnonzero((counts < k) & (counts < finite))
    if len(short):
        top = np.argpartition(-score[short], k - 1, axis=1)[:, :k]
        mask[short] = False
        mask[short[:, None], top] = True
    return np.nonzero(mask)


@dataclass(frozen=True)
class Rules:
    n: int = 10
    max_per_category: int = 3
    max_replenish: int = 4
    exclude_bought: bool = True
    """False: SKUs bought before may come back, scored by how much and how lately (`repurchase_weight`)."""
    repurchase_weight: float = 1.0
    new_item_days: int = 28
    """SKUs first sold less than this many days ago (or never) are 'new': they enter through the customer's category."""
    new_item_weight: float = 0.1
    similarity_weight: float = 0.3
    """Item-item score (scaled to the customer's best) added to popularity (scaled to the best SKU)."""
    factor_weight: float = 0.3
    """ALS score (scaled to the customer's best) added likewise. Both weights: `evaluate.tune_weights`."""
    popularity_weight: float = 1.0
    smoothing: float = 200.0
    block: int = 1024


def empty_recommendations() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": pd.Series(dtype="int64"), "sku": pd.Series(dtype="object"), "rank": pd.Series(dtype="int64"),
                         "score": pd.Series(dtype="float64"), "reason": pd.Series(dtype="object"), "kind": pd.Series(dtype="object")})


def group_popularity(model: ItemItemModel, segments: np.ndarray, channels: np.ndarray, smoothing: float = 20.0
                     ) -> tuple[dict[tuple[str, str], int], np.ndarray]:
    """Popularity per (segment, channel) of the model's customers, shrunk towards the segment's and then the
    store's (recency-decayed history weights, shares of the group's total). Returns the group index and a
    groups x SKUs matrix; (segment, '*') and ('*', '*') rows are the fall-backs."""
    h = model.history
    n_items = h.shape[1]
    total = np.asarray(h.sum(axis=0)).ravel()
    global_share = total / max(total.sum(), 1e-12)
    keys: dict[tuple[str, str], int] = {(ANY_CHANNEL, ANY_CHANNEL): 0}
    rows = [global_share]

    def shares(mask: np.ndarray, prior: np.ndarray) -> np.ndarray:
        w = np.asarray(h[mask].sum(axis=0)).ravel() if mask.any() else np.zeros(n_items)
        customers = float(mask.sum())
        return (w / max(w.sum(), 1e-12) * customers + smoothing * prior) / (customers + smoothing)

    for seg in pd.unique(segments):
        if seg == ANY_CHANNEL:
            continue
        seg_mask = segments == seg
        seg_share = shares(seg_mask, global_share)
        keys[(str(seg), ANY_CHANNEL)] = len(rows)
        rows.append(seg_share)
        for ch in pd.unique(channels[seg_mask]):
            keys[(str(seg), str(ch))] = len(rows)
            rows.append(shares(seg_mask & (channels == ch), seg_share))
    matrix = np.vstack(rows)
    matrix /= np.maximum(matrix.max(axis=1, keepdims=True), 1e-12)
    return keys, matrix


def eligible_matrix(skus: np.ndarray, catalog: pd.DataFrame | None, availability: pd.DataFrame | None
                    ) -> tuple[dict[str, int], np.ndarray]:
    """channels x SKUs: active and available to promise (> 0) in the channel. Row '*' = available in any channel.
    Without a catalog every SKU is active; without availability every active SKU is in stock."""
    idx = pd.Index(skus)
    active = np.ones(len(skus), dtype=bool)
    if catalog is not None:
        flag = catalog.drop_duplicates("sku").set_index("sku")["active"].astype(bool)
        active = flag.reindex(idx).eq(True).to_numpy()
    if availability is None:
        return {ANY_CHANNEL: 0}, active[None, :]
    avail = availability[availability["available"] > 0]
    channels = sorted(avail["channel"].astype(str).unique())
    keys = {ANY_CHANNEL: 0, **{c: i + 1 for i, c in enumerate(channels)}}
    matrix = np.zeros((len(keys), len(skus)), dtype=bool)
    cols = idx.get_indexer(avail["sku"].astype(str))
    rows = avail["channel"].astype(str).map(keys).to_numpy()
    ok = cols >= 0
    matrix[rows[ok], cols[ok]] = True
    matrix[0] = matrix[1:].any(axis=0) if len(channels) else False
    return keys, matrix & active[None, :]


def _pair_keys(customer_rows: np.ndarray, cols: np.ndarray, n_items: int) -> np.ndarray:
    return customer_rows.astype("int64") * n_items + cols.astype("int64")


def recommend(model: ItemItemModel, customers: pd.DataFrame, *, catalog: pd.DataFrame | None = None,
              availability: pd.DataFrame | None = None, unwanted: pd.DataFrame | None = None,
              replenish: pd.DataFrame | None = None, rules: Rules = Rules()) -> pd.DataFrame:
    """Top-N per customer. `customers`: customer_id, segment, channel (preferred; null when unknown).
    `catalog`: sku, name, category, active. `availability`: sku, channel, available (units).
    `unwanted`: customer_id, sku pairs returned as unwanted. `replenish`: the output of `replenishment`.
    Returns customer_id, sku, rank, score, reason, kind."""
    skus = model.skus
    n_items = len(skus)
    cust = customers.drop_duplicates("customer_id").reset_index(drop=True)
    if n_items == 0 or cust.empty:
        return empty_recommendations()
    cust_ids = cust["customer_id"].astype("int64").to_numpy()
    segments = cust["segment"].fillna(NEW_SEGMENT).astype(str).to_numpy() if "segment" in cust else np.full(len(cust), ANY_CHANNEL)
    channels = cust["channel"].fillna(ANY_CHANNEL).astype(str).to_numpy() if "channel" in cust else np.full(len(cust), ANY_CHANNEL)
    hist_row = model.customer_index.reindex(cust_ids).fillna(-1).to_numpy(dtype="int64")

    # popularity per (segment, channel), fitted on the customers with history
    warm_all = hist_row >= 0
    seg_by_row = np.full(len(model.customers), NEW_SEGMENT, dtype=object)
    ch_by_row = np.full(len(model.customers), ANY_CHANNEL, dtype=object)
    seg_by_row[hist_row[warm_all]] = segments[warm_all]
    ch_by_row[hist_row[warm_all]] = channels[warm_all]
    pop_keys, pop = group_popularity(model, seg_by_row, ch_by_row, rules.smoothing)
    pop_group = np.array([pop_keys.get((s, c), pop_keys.get((s, ANY_CHANNEL), 0)) for s, c in zip(segments, channels)])
    pop_group[warm_all] = 0  # with a history of their own, the store-wide bestsellers; segment/channel groups are for cold starts
    pop_level = np.array([2 if (s, c) in pop_keys else (1 if (s, ANY_CHANNEL) in pop_keys else 0) for s, c in zip(segments, channels)])

    elig_keys, elig = eligible_matrix(skus, catalog, availability)
    elig_row = np.array([elig_keys.get(c, 0) for c in channels], dtype="int64")

    cats = (catalog.drop_duplicates("sku").set_index("sku")["category"].reindex(pd.Index(skus)).fillna("").astype(str).to_numpy()
            if catalog is not None else skus.astype(str))
    cat_codes, cat_of_item = np.unique(cats, return_inverse=True)
    item_cat = sp.csr_matrix((np.ones(n_items, dtype="float32"), (np.arange(n_items), cat_of_item)), shape=(n_items, len(cat_codes)))
    since_first = (model.as_of.to_datetime64() - model.first_sold) / np.timedelta64(1, "D")
    is_new_item = np.isnan(since_first) | (since_first < rules.new_item_days)
    factors = model.item_factors if model.item_factors is not None and model.item_factors.shape[1] and rules.factor_weight else None

    blocked = np.zeros(0, dtype="int64")
    if unwanted is not None and len(unwanted):
        u_rows = pd.Index(cust_ids).get_indexer(unwanted["customer_id"].astype("int64"))
        u_cols = pd.Index(skus).get_indexer(unwanted["sku"].astype(str))
        ok = (u_rows >= 0) & (u_cols >= 0)
        blocked = np.unique(_pair_keys(u_rows[ok], u_cols[ok], n_items))

    cand = max(rules.n * 3, rules.n + rules.max_per_category)
    pop32 = pop.astype("float32")
    new_cols = np.flatnonzero(is_new_item)
    parts = []
    for start in range(0, len(cust), rules.block):
        stop = min(start + rules.block, len(cust))
        rows = np.arange(start, stop)
        hr = hist_row[rows]
        widx = np.flatnonzero(hr >= 0)
        score = pop32[pop_group[rows]]
        score[widx] *= rules.popularity_weight
        s = cat_share = fac = None
        if len(widx):
            xb = model.history[hr[widx]]
            all_warm = len(widx) == len(rows)
            s = (xb @ model.similarity).toarray()
            s *= rules.similarity_weight / np.maximum(s.max(axis=1, keepdims=True), 1e-12)
            if all_warm:
                score += s
            else:
                score[widx] += s
            if factors is not None:
                fac = model.user_factors[hr[widx]] @ factors.T
                fac *= rules.factor_weight / np.maximum(np.maximum(fac.max(axis=1), -fac.min(axis=1)), 1e-12)[:, None]
                if all_warm:
                    score += fac
                else:
                    score[widx] += fac
            if len(new_cols):
                cat_w = (xb @ item_cat).toarray()
                cat_share = cat_w / np.maximum(cat_w.sum(axis=1, keepdims=True), 1e-12)
                score[np.ix_(widx, new_cols)] += rules.new_item_weight * cat_share[:, cat_of_item[new_cols]]
            xc = xb.tocoo()
            if rules.exclude_bought:
                score[widx[xc.row], xc.col] = -np.inf
            else:
                top_w = np.asarray(xb.max(axis=1).todense()).ravel()
                score[widx[xc.row], xc.col] += rules.repurchase_weight * xc.data / np.maximum(top_w[xc.row], 1e-12)
        channel_rows = elig_row[rows]
        for c in np.unique(channel_rows):
            bad = np.flatnonzero(~elig[c])
            if len(bad):
                score[np.ix_(np.flatnonzero(channel_rows == c), bad)] = -np.inf
        if len(blocked):
            lo, hi = np.searchsorted(blocked, [start * n_items, stop * n_items])
            b = blocked[lo:hi]
            score[b // n_items - start, b % n_items] = -np.inf
        r_local, cols = _top_candidates(score, cand)
        vals = score[r_local, cols]
        keep = np.isfinite(vals)
        r_local, cols, vals = r_local[keep], cols[keep], vals[keep]
        order = np.lexsort((-vals, r_local))
        r_local, cols, vals = r_local[order], cols[order], vals[order]
        first = np.r_[0, np.flatnonzero(np.diff(r_local)) + 1] if len(r_local) else np.zeros(0, dtype="int64")
        position = np.arange(len(r_local)) - np.repeat(first, np.diff(np.r_[first, len(r_local)]))
        keep = position < cand
        r_local, cols, vals = r_local[keep], cols[keep], vals[keep]
        wpos = np.full(len(rows), -1)
        wpos[widx] = np.arange(len(widx))
        wp = wpos[r_local]
        warm_c = wp >= 0
        sim_v = np.zeros(len(cols), dtype="float32")
        new_v = np.zeros(len(cols), dtype="float32")
        fac_v = np.zeros(len(cols), dtype="float32")
        if s is not None:
            sim_v[warm_c] = s[wp[warm_c], cols[warm_c]]
            if len(new_cols):
                new_v[warm_c] = rules.new_item_weight * cat_share[wp[warm_c], cat_of_item[cols[warm_c]]] * is_new_item[cols[warm_c]]
            if fac is not None:
                fac_v[warm_c] = fac[wp[warm_c], cols[warm_c]]
        parts.append(pd.DataFrame({"row": rows[r_local], "col": cols, "score": vals.astype("float64"), "sim": sim_v, "newsku": new_v,
                                   "fac": fac_v}))
    new_df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["row", "col", "score", "sim", "newsku", "fac"])
    new_df["kind"] = "new"

    frames = [new_df]
    if replenish is not None and len(replenish):
        due = replenish[replenish["due"]]
        r_rows = pd.Index(cust_ids).get_indexer(due["customer_id"].astype("int64"))
        r_cols = pd.Index(skus).get_indexer(due["sku"].astype(str))
        ok = (r_rows >= 0) & (r_cols >= 0)
        r_rows, r_cols, due = r_rows[ok], r_cols[ok], due[ok]
        ok = elig[elig_row[r_rows], r_cols]
        if len(blocked):
            ok &= ~np.isin(_pair_keys(r_rows, r_cols, n_items), blocked)
        frames.append(pd.DataFrame({"row": r_rows[ok], "col": r_cols[ok], "score": due["score"].to_numpy(dtype="float64")[ok],
                                    "kind": "replenish", "interval": due["interval_days"].to_numpy(dtype="float64")[ok],
                                    "since": due["days_since"].to_numpy(dtype="float64")[ok],
                                    "typical": (due["typical"].to_numpy(dtype=bool) if "typical" in due else np.zeros(len(due), dtype=bool))[ok]}))
    df = pd.concat(frames, ignore_index=True)
    df["kind_order"] = (df["kind"] == "new").astype("int8")
    df = df.sort_values(["row", "kind_order", "score"], ascending=[True, True, False], kind="stable")
    df = df.drop_duplicates(["row", "col"])
    df["category"] = cat_of_item[df["col"].to_numpy()]
    df = df[~((df["kind"] == "replenish") & (df.groupby(["row", "kind"]).cumcount() >= rules.max_replenish))]
    df = df[df.groupby(["row", "category"]).cumcount() < rules.max_per_category]
    df["rank"] = df.groupby("row").cumcount() + 1
    df = df[df["rank"] <= rules.n].reset_index(drop=True)
    sim_pick = ((df["kind"] == "new") & (df["sim"] > 0) & (df["sim"] >= df["newsku"]) & (df["sim"] >= df["fac"])).to_numpy()
    df["anchor"], df["share"] = -1, np.nan
    pick_rows = df["row"].to_numpy()[sim_pick]
    pick_cols = df["col"].to_numpy()[sim_pick]
    anchor, share = np.full(len(pick_rows), -1), np.full(len(pick_rows), np.nan)
    for lo in range(0, len(pick_rows), ANCHOR_CHUNK):
        anchor[lo:lo + ANCHOR_CHUNK], share[lo:lo + ANCHOR_CHUNK] = anchors(model, hist_row[pick_rows[lo:lo + ANCHOR_CHUNK]],
                                                                            pick_cols[lo:lo + ANCHOR_CHUNK])
    weak = ~(share >= MIN_REASON_SHARE)  # a co-purchase this rare does not explain the pick: the bestseller reason does
    anchor[weak], share[weak] = -1, np.nan
    df.loc[sim_pick, "anchor"] = anchor
    df.loc[sim_pick, "share"] = share
    rest_of_score = df["score"] - df["sim"] - df["newsku"] - df["fac"]  # popularity (and a repurchase's own weight)
    fac_pick = ((df["kind"] == "new") & (df["fac"] > 0) & (df["fac"] > df["newsku"]) & (df["fac"] > rest_of_score)
                & (df["anchor"] < 0)).to_numpy()  # the factor term, not popularity, put it there
    df["fac_anchor"] = -1
    if fac_pick.any():
        f_rows, f_cols = hist_row[df["row"].to_numpy()[fac_pick]], df["col"].to_numpy()[fac_pick]
        df.loc[fac_pick, "fac_anchor"] = np.concatenate([factor_anchors(model, f_rows[lo:lo + ANCHOR_CHUNK], f_cols[lo:lo + ANCHOR_CHUNK])
                                                         for lo in range(0, len(f_rows), ANCHOR_CHUNK)])
    df["fac_category"] = np.where(df["fac_anchor"] >= 0, cat_of_item[np.maximum(df["fac_anchor"].to_numpy(), 0)], -1)

    names = (catalog.drop_duplicates("sku").set_index("sku")["name"].reindex(pd.Index(skus)).fillna(pd.Series(skus, index=skus)).astype(str).to_numpy()
             if catalog is not None and "name" in catalog else skus.astype(str))
    df["customer_id"] = cust_ids[df["row"].to_numpy()]
    df["sku"] = skus[df["col"].to_numpy()].astype(str)
    df["reason"] = _reasons(df, names, cat_codes, segments, channels, pop_level)
    df["rank"] = df["rank"].astype("int64")
    return df[COLUMNS]


def _reasons(df: pd.DataFrame, names: np.ndarray, cat_codes: np.ndarray, segments: np.ndarray, channels: np.ndarray,
             pop_level: np.ndarray) -> np.ndarray:
    out = np.empty(len(df), dtype=object)
    kind = df["kind"].to_numpy()
    rep = kind == "replenish"
    if rep.any():
        typical = df["typical"].eq(True).to_numpy() if "typical" in df else np.zeros(len(df), dtype=bool)
        out[rep] = [(f"customers buy it again about every {round(i)} days; you bought it {int(s)} days ago" if t else
                     f"you buy it about every {round(i)} days; last bought {int(s)} days ago")
                    for i, s, t in zip(df.loc[rep, "interval"], df.loc[rep, "since"], typical[rep])]
    anchor = df["anchor"].fillna(-1).to_numpy(dtype="int64") if "anchor" in df else np.full(len(df), -1)
    sim = (~rep) & (anchor >= 0)
    if sim.any():
        out[sim] = [f"bought with {names[a]} by {max(1, round(100 * s))}% of its buyers"
                    for a, s in zip(anchor[sim], df.loc[sim, "share"])]
    newsku = (~rep) & (~sim) & (df["newsku"].fillna(0).to_numpy() > 0) & (df["newsku"].fillna(0).to_numpy() >= df["fac"].fillna(0).to_numpy())
    if newsku.any():
        out[newsku] = [f"new in {cat_codes[c]}, a category you buy" for c in df.loc[newsku, "category"]]
    fac_cat = df["fac_category"].fillna(-1).to_numpy(dtype="int64") if "fac_category" in df else np.full(len(df), -1)
    fac = (~rep) & (~sim) & (~newsku) & (fac_cat >= 0)
    if fac.any():
        out[fac] = [f"popular with customers who buy {cat_codes[c]}" for c in fac_cat[fac]]
    rest = ~(rep | sim | newsku | fac)
    if rest.any():
        r = df.loc[rest, "row"].to_numpy()
        out[rest] = ["a bestseller right now" if segments[i] == ANY_CHANNEL or pop_level[i] == 0 else
                     (f"popular with {segments[i]} customers in {channels[i]}" if pop_level[i] == 2 and channels[i] != ANY_CHANNEL
                      else f"popular with {segments[i]} customers") for i in r]
    return out
