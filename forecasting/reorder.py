"""Reorder suggestions: when to buy and how much, per SKU x location, from the demand forecast.

Policy (periodic review, (R, s, S)): every review period R the buyer looks at the inventory position
IP = on hand - reserved - backordered + on order. Whatever is ordered now arrives after the lead time L,
and the next chance to order is R days later, so the stock must cover demand over L + R:
- reorder point s = the service-level quantile of demand over L + R;
- order-up-to S = s + the expected demand of one review period (the cycle stock);
- if IP <= s, order S - IP, rounded up to whole cases (pack size) and at least the minimum order.

Demand over L + R is a sum of days, so its quantile is taken from the distribution of the sum, not by
adding daily quantiles (which would overstate it): mean = Σ daily forecasts (+ the backtest bias), variance
= rho x days x sigma² (sigma: daily backtest error; rho: how much errors of neighbouring days add up)
plus (mean daily demand x lead-time standard deviation)² for the supplier's variability. The quantile
comes from a gamma distribution with that mean and variance: non-negative and right-skewed like
demand of slow movers, close to normal for fast ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from scipy import stats

PRIORITIES = ("urgent", "high", "medium", "low")
EXTEND_DAYS = 120
"""How far the daily demand path is extended (repeating the forecast's last week) for long lead times."""


@dataclass(frozen=True)
class ReorderPolicy:
    service_levels: dict[str, float] = field(default_factory=lambda: {"A": 0.98, "B": 0.95, "C": 0.90})
    review_period_days: float = 7.0
    abc_shares: tuple[float, float] = (0.80, 0.95)
    """Cumulative revenue share up to which SKUs are A, then B; the rest are C."""


def abc_classes(revenue: pd.Series, shares: tuple[float, float] = (0.80, 0.95)) -> pd.Series:
    """A/B/C per SKU (index) by cumulative share of revenue, largest first. A SKU without revenue is C."""
    if revenue.empty:
        return pd.Series(dtype=str)
    r = revenue.clip(lower=0).sort_values(ascending=False, kind="stable")
    total = r.sum()
    before = (r.cumsum() - r) / total if total > 0 else pd.Series(1.0, index=r.index)
    cls = np.where(before < shares[0], "A", np.where(before < shares[1], "B", "C"))
    out = pd.Series(cls, index=r.index)
    out[r <= 0] = "C"
    return out.reindex(revenue.index)


def row_index(keys: pd.DataFrame) -> pd.DataFrame:
    """`sku, location, row`: the position of each SKU x location in `keys`, to scatter long frames into arrays."""
    return keys[["sku", "location"]].reset_index(drop=True).reset_index().rename(columns={"index": "row"})


def demand_paths(forecast: pd.DataFrame, keys: pd.DataFrame, as_of: date, days: int = EXTEND_DAYS) -> np.ndarray:
    """Daily mean demand for `days` days after `as_of`, one row per row of `keys` (sku, location): the
    forecast, then its last 7 days repeated. Missing series are zeros."""
    start = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    f = forecast.assign(step=(pd.to_datetime(forecast["ds"]) - start).dt.days)
    f = f[(f["step"] >= 0)]
    horizon = int(f["step"].max()) + 1 if len(f) else 0
    idx = row_index(keys)
    f = f.merge(idx, on=["sku", "location"])
    out = np.zeros((len(keys), days))
    if horizon:
        known = min(horizon, days)
        sub = f[f["step"] < known]
        out[sub["row"].to_numpy(), sub["step"].to_numpy()] = sub["forecast"].to_numpy()
        if days > known:
            week = out[:, max(0, known - 7):known]
            reps = int(np.ceil((days - known) / week.shape[1]))
            out[:, known:] = np.tile(week, reps)[:, : days - known]
    return out


def lead_time_demand(paths: np.ndarray, period_days: np.ndarray, sigma: np.ndarray, rho: np.ndarray,
                     lead_std_days: np.ndarray, bias: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of total demand over the next `period_days` (fractional days count pro rata).
    `bias` (daily, actual - forecast on backtest) corrects a model that runs low or high."""
    n, width = paths.shape
    daily = paths + (bias[:, None] if bias is not None else 0.0)
    daily = np.clip(daily, 0.0, None)
    steps = np.arange(width)[None, :]
    weight = np.clip(period_days[:, None] - steps, 0.0, 1.0)
    mean = (daily * weight).sum(axis=1)
    avg_daily = np.divide(mean, period_days, out=np.zeros(n), where=period_days > 0)
    var = rho * period_days * sigma**2 + (avg_daily * lead_std_days) ** 2
    return mean, var


def demand_quantile(mean: np.ndarray, var: np.ndarray, p: np.ndarray | float) -> np.ndarray:
    """The p-quantile of a gamma distribution with that mean and variance (mean itself when var is 0,
    0 when mean is 0)."""
    mean = np.asarray(mean, dtype=float)
    var = np.asarray(var, dtype=float)
    p = np.broadcast_to(np.asarray(p, dtype=float), mean.shape)
    out = mean.copy()
    ok = (mean > 0) & (var > 0)
    shape = mean[ok] ** 2 / var[ok]
    scale = var[ok] / mean[ok]
    out[ok] = stats.gamma.ppf(p[ok], shape, scale=scale)
    out[mean <= 0] = 0.0
    return out


INTERMITTENT = ("intermittent", "lumpy")


def compound_poisson_quantile(mean: np.ndarray, occurrences: np.ndarray, size_cv2: np.ndarray, p: np.ndarray | float,
                              iterations: int = 40) -> np.ndarray:
    """The p-quantile of total demand when selling days arrive as a Poisson process (`occurrences` expected
    selling days in the period) and each selling day's quantity is gamma-distributed with CV² `size_cv2`,
    scaled so the total has mean `mean`.

    For slow and lumpy movers a moment-matched gamma puts a long thin tail where the real distribution has
    a point mass at zero and then whole lumps: an item selling one lump of 10 a month would get a 98%
    quantile of 23 instead of 10. The compound form keeps that shape."""
    mean = np.asarray(mean, dtype=float)
    lam = np.maximum(np.asarray(occurrences, dtype=float), 1e-9)
    p = np.broadcast_to(np.asarray(p, dtype=float), mean.shape)
    k = 1.0 / np.clip(np.asarray(size_cv2, dtype=float), 0.05, None)
    theta = np.divide(mean, lam * k, out=np.zeros_like(mean), where=mean > 0)
    top = int(np.ceil(lam.max(initial=0) + 6 * np.sqrt(lam.max(initial=0)) + 5))
    n = np.arange(1, top + 1)
    pmf = stats.poisson.pmf(n[None, :], lam[:, None])
    p0 = stats.poisson.pmf(0, lam)

    def cdf(x: np.ndarray) -> np.ndarray:
        inner = stats.gamma.cdf(x[:, None], n[None, :] * k[:, None], scale=np.maximum(theta, 1e-12)[:, None])
        return p0 + (pmf * inner).sum(axis=1)

    lo = np.zeros_like(mean)
    hi = np.maximum(mean * 4, theta * k * (lam + 6 * np.sqrt(lam) + 5))
    for _ in range(iterations):
        mid = (lo + hi) / 2
        below = cdf(mid) < p
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    out = np.where(p0 >= p, 0.0, hi)
    return np.where(mean > 0, out, 0.0)


def round_to_pack(quantity: np.ndarray, pack_size: np.ndarray, moq: np.ndarray) -> np.ndarray:
    """Whole cases, at least the minimum order quantity (itself rounded up to cases); 0 stays 0."""
    q = np.asarray(quantity, dtype=float)
    pack = np.maximum(np.asarray(pack_size, dtype=float), 1)
    need = np.where(q > 0, np.maximum(q, moq), 0)
    return (np.ceil(np.round(need / pack, 9)) * pack).astype(int)


def stockout_day(start_available: np.ndarray, paths: np.ndarray, arrivals: np.ndarray) -> np.ndarray:
    """Days after as-of until the stock runs out without a new order (1 = tomorrow; 0 = already out and
    demand waiting; NaN = not within the path). `arrivals` is the open purchase orders' units per day."""
    level = start_available[:, None] + np.cumsum(arrivals - paths, axis=1)
    out_now = (start_available < 0) | ((start_available <= 0) & (paths[:, 0] > 0))
    short = level < 0
    first = np.where(short.any(axis=1), short.argmax(axis=1) + 1, np.nan)
    return np.where(out_now, 0.0, first)


def policy_levels(paths: np.ndarray, keys: pd.DataFrame, uncertainty: pd.DataFrame, lead: np.ndarray, lead_std: np.ndarray,
                  review: np.ndarray, service: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(reorder point s, order-up-to S, expected demand over lead time + review) per row of `keys`.

    `uncertainty` (sku, location, sigma, rho[, bias, series_class, adi, cv2]) describes each series' errors;
    a series without a row gets a negative-binomial-like sigma from its forecast. Intermittent and lumpy
    series with an ADI take the quantile from the compound-Poisson form, the others from the gamma."""
    n = len(keys)
    u = keys[["sku", "location"]].reset_index(drop=True).merge(uncertainty, on=["sku", "location"], how="left")
    rate_guess = paths[:, :28].mean(axis=1) if n else np.zeros(0)
    sigma = pd.to_numeric(u["sigma"]).fillna(pd.Series(np.sqrt(rate_guess + rate_guess**2 / 2))).to_numpy(float)
    rho = pd.to_numeric(u["rho"]).fillna(1.0).to_numpy(float)
    bias = pd.to_numeric(u["bias"]).fillna(0.0).to_numpy(float) if "bias" in u else np.zeros(n)
    protect_mean, protect_var = lead_time_demand(paths, lead + review, sigma, rho, lead_std, bias)
    review_mean, _ = lead_time_demand(paths, review, sigma, rho, np.zeros(n), bias)
    quantile = demand_quantile(protect_mean, protect_var, service)
    if "series_class" in u and "adi" in u:
        adi = pd.to_numeric(u["adi"]).to_numpy(float)
        lumpy = u["series_class"].isin(INTERMITTENT).to_numpy() & (adi > 0)
        if lumpy.any():
            selling_days = (lead + review)[lumpy] / np.where(np.isfinite(adi[lumpy]), adi[lumpy], np.inf)
            cv2 = pd.to_numeric(u["cv2"]).fillna(0.5).to_numpy(float)[lumpy]
            quantile[lumpy] = compound_poisson_quantile(protect_mean[lumpy], selling_days, cv2, service[lumpy])
    s = np.ceil(quantile - 1e-9)
    return s, np.ceil(s + review_mean - 1e-9), protect_mean


def suggest_reorders(positions: pd.DataFrame, forecast: pd.DataFrame, uncertainty: pd.DataFrame, incoming: pd.DataFrame,
                     as_of: date, policy: ReorderPolicy | None = None) -> pd.DataFrame:
    """Every SKU x location of `positions` with its policy numbers, and the quantity to order now.

    positions: sku, location, supplier, category, abc_class, on_hand, reserved, backordered, on_order,
    pack_size, moq, unit_cost, lead_time_days, lead_time_std_days.
    forecast: sku, location, ds, forecast (daily means). uncertainty: sku, location, sigma, rho[, bias].
    incoming: sku, location, expected (date), quantity: open purchase order lines not yet received.
    """
    policy = policy or ReorderPolicy()
    p = positions.reset_index(drop=True).copy()
    n = len(p)
    paths = demand_paths(forecast, p, as_of)
    lead = p["lead_time_days"].astype(float).to_numpy()
    lead_std = p["lead_time_std_days"].astype(float).fillna(0.0).to_numpy()
    review = np.full(n, float(policy.review_period_days))
    service = p["abc_class"].map(policy.service_levels).fillna(min(policy.service_levels.values())).to_numpy(float)
    s, order_up_to, protect_mean = policy_levels(paths, p, uncertainty, lead, lead_std, review, service)

    on_hand, reserved = p["on_hand"].astype(int).to_numpy(), p["reserved"].astype(int).to_numpy()
    backordered, on_order = p["backordered"].astype(int).to_numpy(), p["on_order"].astype(int).to_numpy()
    position = on_hand - reserved - backordered + on_order
    need = np.where(position <= s, order_up_to - position, 0)
    qty = round_to_pack(need, p["pack_size"].to_numpy(), p["moq"].to_numpy())

    arrivals = _arrival_matrix(incoming, p, as_of, paths.shape[1])
    days_out = stockout_day((on_hand - reserved - backordered).astype(float), paths, arrivals)
    avg_daily = paths[:, :28].mean(axis=1) if n else np.zeros(0)
    cover = np.divide(np.maximum(position, 0), avg_daily, out=np.full(n, np.inf), where=avg_daily > 0)

    p["service_level"] = service
    p["inventory_position"] = position
    p["avg_daily_forecast"] = avg_daily
    p["review_period_days"] = review
    p["safety_stock"] = np.maximum(s - np.round(protect_mean), 0).astype(int)
    p["reorder_point"] = s.astype(int)
    p["order_up_to"] = order_up_to.astype(int)
    p["suggested_qty"] = qty
    p["estimated_cost"] = np.round(qty * p["unit_cost"].astype(float).to_numpy(), 2)
    p["days_of_cover"] = np.round(cover, 1)
    p["expected_stockout_date"] = pd.to_datetime([pd.Timestamp(as_of) + pd.Timedelta(days=d) if np.isfinite(d) else pd.NaT for d in days_out])
    level = np.select([days_out <= lead, days_out <= lead + review, position <= s], [0, 1, 2], default=3)
    p["priority"] = np.array(PRIORITIES)[level]
    order = pd.DataFrame({"level": level, "abc": p["abc_class"].fillna("C"), "days": np.nan_to_num(days_out, nan=1e9),
                          "cost": -p["estimated_cost"]}).sort_values(["level", "abc", "days", "cost"], kind="stable")
    p["priority_rank"] = 0
    p.loc[order.index, "priority_rank"] = np.arange(1, n + 1)
    p["reason"] = [_reason(r) for r in p.itertuples()]
    return p


def _arrival_matrix(incoming: pd.DataFrame, keys: pd.DataFrame, as_of: date, days: int) -> np.ndarray:
    out = np.zeros((len(keys), days))
    if incoming is None or incoming.empty:
        return out
    idx = row_index(keys)
    inc = incoming.merge(idx, on=["sku", "location"])
    step = (pd.to_datetime(inc["expected"]).dt.normalize() - pd.Timestamp(as_of)).dt.days.clip(lower=1) - 1
    inc = inc[step < days].assign(step=step[step < days])
    np.add.at(out, (inc["row"].to_numpy(), inc["step"].astype(int).to_numpy()), inc["quantity"].astype(float).to_numpy())
    return out


def _reason(r) -> str:  # type: ignore[no-untyped-def]
    held = f"on hand {r.on_hand}"
    if r.reserved:
        held += f" - reserved {r.reserved}"
    if r.backordered:
        held += f" - backordered {r.backordered}"
    cover = "never runs out at the forecast" if not np.isfinite(r.days_of_cover) else f"covers {r.days_of_cover:.0f} days"
    text = (f"{held} + on order {r.on_order} {cover} at {r.avg_daily_forecast:.1f}/day; "
            f"lead time {r.lead_time_days:g} days + review {r.review_period_days:g}; "
            f"{r.service_level:.0%} service needs {r.reorder_point} units")
    if r.suggested_qty <= 0:
        return text + "; no order needed"
    if r.pack_size > 1:
        cases = r.suggested_qty // r.pack_size
        text += f"; order {cases} case{'s' if cases != 1 else ''} of {r.pack_size} ({r.suggested_qty} units)"
    else:
        text += f"; order {r.suggested_qty} units"
    if r.suggested_qty == max(r.moq, r.pack_size) and r.moq > 1:
        text += f" (minimum order {r.moq})"
    return text
