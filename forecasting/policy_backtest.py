"""Replaying history with a reorder policy: would it have kept the shelves full, with how much stock?

Day by day over the replay window, per series: receive what arrives, serve the day's demand from stock
(what cannot be served is lost), and on review days decide an order from information available that
morning only. Two policies are compared on the same demand:
- `forecast`: the (R, s, S) policy of `forecasting.reorder` on forecasts made from the history before
  each review day (the caller supplies them: `forecast_at(day)`);
- `min_max`: the classic rule (Odoo-style): when the position falls to min, order up to max, with min =
  k x average daily sales of the last 28 days x (lead time + review) and max = min + a review period of
  sales; k is tuned so min/max reaches the same fill rate as the forecast policy, and the comparison is
  the inventory each needs for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from forecasting.reorder import demand_paths, policy_levels, round_to_pack, row_index


@dataclass
class Replay:
    fill_rate: float
    stockout_days: int
    avg_inventory_value: float
    orders_placed: int
    units_ordered: int


def replay(demand: np.ndarray, start_on_hand: np.ndarray, lead_days: np.ndarray, unit_cost: np.ndarray,
           pack_size: np.ndarray, moq: np.ndarray, review_days: int,
           decide: Callable[[int, np.ndarray], tuple[np.ndarray, np.ndarray]]) -> Replay:
    """Simulate `demand` (series x days). `decide(day, position)` returns (reorder point, order-up-to) per
    series for a review day; orders arrive `lead_days` later (whole days). Lost sales, no backorders."""
    n, days = demand.shape
    on_hand = start_on_hand.astype(float).copy()
    pipeline = np.zeros((n, days + int(lead_days.max(initial=0)) + 2))
    served_total = demand_total = 0.0
    stockout_days = orders = units = 0
    value = 0.0
    rows = np.arange(n)
    for t in range(days):
        on_hand += pipeline[:, t]
        if t % review_days == 0:
            position = on_hand + pipeline[:, t + 1:].sum(axis=1)
            s, big_s = decide(t, position)
            qty = round_to_pack(np.where(position <= s, big_s - position, 0), pack_size, moq)
            arrive = t + np.maximum(lead_days.astype(int), 1)
            np.add.at(pipeline, (rows, arrive), qty)
            orders += int((qty > 0).sum())
            units += int(qty.sum())
        d = demand[:, t]
        served = np.minimum(on_hand, d)
        on_hand -= served
        served_total += served.sum()
        demand_total += d.sum()
        stockout_days += int(((d > served) | ((on_hand <= 0) & (d > 0))).sum())
        value += float((on_hand * unit_cost).sum())
    return Replay(fill_rate=served_total / demand_total if demand_total else 1.0, stockout_days=stockout_days,
                  avg_inventory_value=value / days if days else 0.0, orders_placed=orders, units_ordered=units)


def forecast_policy(forecast_at: Callable[[date], tuple[pd.DataFrame, pd.DataFrame]], keys: pd.DataFrame, start: date,
                    lead: np.ndarray, lead_std: np.ndarray, service: np.ndarray, review_days: int
                    ) -> Callable[[int, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The (R, s, S) decision on forecasts made the evening before each review day."""
    review = np.full(len(keys), float(review_days))

    def decide(t: int, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        as_of = start + timedelta(days=t - 1)
        fc, unc = forecast_at(as_of)
        s, big_s, _ = policy_levels(demand_paths(fc, keys, as_of), keys, unc, lead, lead_std, review, service)
        return s, big_s

    return decide


def min_max_policy(history: np.ndarray, lead: np.ndarray, review_days: int, k: float
                   ) -> Callable[[int, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """min = k x average daily sales of the 28 days before the review x (lead + review); max = min + review x average.
    `history` is (series x (28 + replay days)): the 28 days before the replay, then the replay days."""

    def decide(t: int, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        avg = history[:, t:t + 28].mean(axis=1)
        low = np.ceil(k * avg * (lead + review_days))
        return low, np.ceil(low + avg * review_days)

    return decide


def tune_min_max(target_fill: float, run: Callable[[float], Replay], lo: float = 0.2, hi: float = 12.0, steps: int = 14) -> tuple[float, Replay]:
    """Bisection on k until min/max's fill rate reaches `target_fill` (the smallest k that does)."""
    best_k, best = hi, run(hi)
    for _ in range(steps):
        mid = (lo + hi) / 2
        result = run(mid)
        if result.fill_rate >= target_fill:
            best_k, best, hi = mid, result, mid
        else:
            lo = mid
    return best_k, best


def compare_policies(series: pd.DataFrame, keys: pd.DataFrame, params: pd.DataFrame, start: date, days: int,
                     forecast_at: Callable[[date], tuple[pd.DataFrame, pd.DataFrame]], review_days: int = 7) -> pd.DataFrame:
    """Replay `days` days from `start` for the series in `keys` (sku, location).

    series: sku, location, ds, demand (daily demand estimate, censored days imputed).
    Both policies start from the same stock, a typical cycle's worth (average daily demand of the 28 days
    before x (lead time + review)), not from today's shelves: an overstocked SKU would otherwise
    hide both policies behind its old stock for the whole replay.
    params (aligned with keys): lead_time_days, lead_time_std_days, service_level, unit_cost, pack_size, moq.
    Returns one row per policy: policy, series, days, target_fill_rate, fill_rate, stockout_days,
    avg_inventory_value, orders_placed, units_ordered, min_max_k.
    """
    window = pd.date_range(pd.Timestamp(start) - pd.Timedelta(days=28), periods=28 + days, freq="D")
    idx = row_index(keys)
    s = series.merge(idx, on=["sku", "location"])
    s = s[s["ds"].isin(window)]
    col = (s["ds"] - window[0]).dt.days.to_numpy()
    full = np.zeros((len(keys), len(window)))
    full[s["row"].to_numpy(), col] = s["demand"].to_numpy()
    demand = full[:, 28:]
    lead = params["lead_time_days"].to_numpy(float)
    start_stock = np.ceil(full[:, :28].mean(axis=1) * (lead + review_days))
    lead_days = np.ceil(lead).astype(int)
    cost, pack, moq = params["unit_cost"].to_numpy(float), params["pack_size"].to_numpy(), params["moq"].to_numpy()
    service = params["service_level"].to_numpy(float)
    target = float(np.average(service, weights=np.maximum(demand.sum(axis=1), 1e-9))) if len(keys) else 0.0

    fc = replay(demand, start_stock, lead_days, cost, pack, moq, review_days,
                forecast_policy(forecast_at, keys, start, lead, params["lead_time_std_days"].to_numpy(float), service, review_days))
    k, mm = tune_min_max(fc.fill_rate, lambda k: replay(demand, start_stock, lead_days, cost, pack, moq, review_days,
                                                        min_max_policy(full, lead, review_days, k)))
    rows = []
    for name, r, kk in (("forecast", fc, np.nan), ("min_max", mm, k)):
        rows.append({"policy": name, "series": len(keys), "days": days, "target_fill_rate": round(target, 4),
                     "fill_rate": round(r.fill_rate, 4), "stockout_days": r.stockout_days,
                     "avg_inventory_value": round(r.avg_inventory_value, 2), "orders_placed": r.orders_placed,
                     "units_ordered": r.units_ordered, "min_max_k": kk})
    return pd.DataFrame(rows)
