"""Reorder maths with known answers, and the policy replay against min/max."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecasting.policy_backtest import compare_policies, min_max_policy, replay
from forecasting.reorder import (
    abc_classes,
    compound_poisson_quantile,
    demand_paths,
    demand_quantile,
    lead_time_demand,
    round_to_pack,
    stockout_day,
    suggest_reorders,
)

AS_OF = date(2026, 10, 31)


def test_quantile_of_a_sum_is_taken_from_the_sum_not_by_adding_daily_quantiles() -> None:
    mean, var = np.array([10.0]), np.array([10.0])
    assert demand_quantile(mean, var, 0.95)[0] == pytest.approx(stats.gamma.ppf(0.95, 10.0, scale=1.0))
    daily = np.array([1.0])
    one_day = demand_quantile(daily, daily, 0.95)[0]
    ten_days = demand_quantile(daily * 10, daily * 10, 0.95)[0]
    assert ten_days < 10 * one_day  # 15.7 vs 30: adding daily quantiles would double the safety stock
    assert demand_quantile(np.array([0.0, 5.0]), np.array([3.0, 0.0]), 0.9).tolist() == [0.0, 5.0]


def test_compound_poisson_quantile_matches_simulation_and_keeps_lumps_whole() -> None:
    rng = np.random.default_rng(0)
    events, mean, cv2 = 3.0, 12.0, 0.8
    k, theta = 1 / cv2, mean / (events / cv2)
    n = rng.poisson(events, 100_000)
    totals = np.array([rng.gamma(k * c, theta) if c else 0.0 for c in n])
    ours = compound_poisson_quantile(np.array([mean]), np.array([events]), np.array([cv2]), 0.95)[0]
    assert ours == pytest.approx(np.quantile(totals, 0.95), rel=0.02)
    # one sale a month of about 10 units, over 19 days: P(0 or 1 lump) = 0.867, P(<= 2) = 0.973, P(<= 3) = 0.9955
    lumps = compound_poisson_quantile(np.full(2, 19 / 30 * 10), np.full(2, 19 / 30), np.zeros(2), np.array([0.95, 0.98]))
    assert 19 < lumps[0] <= 24 and 28 < lumps[1] <= 34  # two or three lumps of ~10 (sizes vary a little: CV² floor 0.05)
    assert compound_poisson_quantile(np.array([0.0, 2.0]), np.array([0.5, 0.01]), np.array([1.0, 1.0]), 0.9).tolist() == [0.0, 0.0]


def test_lead_time_demand_counts_fractional_days_bias_and_supplier_variability() -> None:
    paths = np.full((1, 30), 2.0)
    mean, var = lead_time_demand(paths, np.array([9.5]), sigma=np.array([1.5]), rho=np.array([1.2]), lead_std_days=np.array([2.0]))
    assert mean[0] == pytest.approx(19.0)
    assert var[0] == pytest.approx(1.2 * 9.5 * 1.5**2 + (2.0 * 2.0) ** 2)
    biased, _ = lead_time_demand(paths, np.array([10.0]), np.array([1.0]), np.array([1.0]), np.array([0.0]), bias=np.array([0.5]))
    assert biased[0] == pytest.approx(25.0)


@pytest.mark.parametrize(("need", "pack", "moq", "expected"), [
    (37, 24, 1, 48), (48, 24, 1, 48), (5, 1, 10, 10), (5, 6, 10, 12), (0, 24, 10, 0), (-3, 1, 1, 0), (0.2, 1, 1, 1),
])
def test_rounding_to_cases_and_minimum_order(need: float, pack: int, moq: int, expected: int) -> None:
    assert round_to_pack(np.array([need]), np.array([pack]), np.array([moq]))[0] == expected


def test_abc_by_cumulative_revenue() -> None:
    revenue = pd.Series({"X": 15.0, "Y": 80.0, "Z": 5.0, "W": 0.0})
    assert abc_classes(revenue).to_dict() == {"X": "B", "Y": "A", "Z": "C", "W": "C"}


def test_demand_paths_repeat_the_last_week_beyond_the_horizon() -> None:
    days = pd.date_range(pd.Timestamp(AS_OF) + pd.Timedelta(days=1), periods=14)
    fc = pd.DataFrame({"sku": "A", "location": "L", "ds": days, "forecast": np.arange(14, dtype=float)})
    paths = demand_paths(fc, pd.DataFrame({"sku": ["A", "B"], "location": ["L", "L"]}), AS_OF, days=21)
    assert paths[0, :14].tolist() == list(range(14)) and paths[0, 14:].tolist() == list(range(7, 14))
    assert not paths[1].any()


def test_stockout_day_counts_open_purchase_orders_on_their_day() -> None:
    paths = np.full((3, 10), 2.0)
    arrivals = np.zeros((3, 10))
    arrivals[1, 2] = 10  # arrives on day 3
    days = stockout_day(np.array([5.0, 5.0, 0.0]), paths, arrivals)
    assert days[0] == 3 and days[1] == 8 and days[2] == 0


def _position(**overrides: object) -> pd.DataFrame:
    row = {"sku": "BEANS", "location": "ST-1", "supplier": "ACME", "category": "grocery", "abc_class": "B", "on_hand": 14,
           "reserved": 0, "backordered": 0, "on_order": 0, "pack_size": 24, "moq": 1, "unit_cost": 4.5,
           "lead_time_days": 9.0, "lead_time_std_days": 0.0}
    row.update(overrides)
    return pd.DataFrame([row])


def _flat_forecast(rate: float, sku: str = "BEANS", location: str = "ST-1") -> pd.DataFrame:
    return pd.DataFrame({"sku": sku, "location": location, "ds": pd.date_range(pd.Timestamp(AS_OF) + pd.Timedelta(days=1), periods=28),
                         "forecast": rate})


def test_a_suggestion_with_known_numbers_and_its_reason() -> None:
    """2 units/day, no forecast error: demand over lead time 9 + review 7 = 32 units, so s = 32; S = 32 + 14 = 46.
    Position 14 <= 32: order 46 - 14 = 32, i.e. 2 cases of 24 = 48."""
    unc = pd.DataFrame({"sku": ["BEANS"], "location": ["ST-1"], "sigma": [0.0], "rho": [1.0], "bias": [0.0]})
    out = suggest_reorders(_position(), _flat_forecast(2.0), unc, pd.DataFrame(), AS_OF).iloc[0]
    assert (out.reorder_point, out.order_up_to, out.inventory_position, out.suggested_qty) == (32, 46, 14, 48)
    assert out.safety_stock == 0 and out.estimated_cost == pytest.approx(216.0) and out.days_of_cover == 7.0
    assert out.expected_stockout_date == pd.Timestamp(AS_OF) + pd.Timedelta(days=8)
    assert out.priority == "urgent"  # out in 8 days; an order takes 9
    assert out.reason == ("on hand 14 + on order 0 covers 7 days at 2.0/day; lead time 9 days + review 7; "
                          "95% service needs 32 units; order 2 cases of 24 (48 units)")


def test_uncertainty_and_service_level_raise_the_reorder_point() -> None:
    unc = pd.DataFrame({"sku": ["BEANS"], "location": ["ST-1"], "sigma": [2.0], "rho": [1.0], "bias": [0.0]})
    b = suggest_reorders(_position(), _flat_forecast(2.0), unc, pd.DataFrame(), AS_OF).iloc[0]
    a = suggest_reorders(_position(abc_class="A"), _flat_forecast(2.0), unc, pd.DataFrame(), AS_OF).iloc[0]
    expected_b = np.ceil(stats.gamma.ppf(0.95, 32**2 / 64, scale=64 / 32))
    assert b.reorder_point == expected_b and a.reorder_point > b.reorder_point and a.service_level == 0.98


def test_on_order_reserved_and_backorders_are_netted() -> None:
    unc = pd.DataFrame({"sku": ["BEANS"], "location": ["ST-1"], "sigma": [0.0], "rho": [1.0]})
    covered = suggest_reorders(_position(on_order=40), _flat_forecast(2.0), unc,
                               pd.DataFrame({"sku": ["BEANS"], "location": ["ST-1"], "expected": [pd.Timestamp(AS_OF) + pd.Timedelta(days=3)],
                                             "quantity": [40]}), AS_OF).iloc[0]
    assert covered.inventory_position == 54 and covered.suggested_qty == 0 and covered.reason.endswith("no order needed")
    assert covered.expected_stockout_date == pd.Timestamp(AS_OF) + pd.Timedelta(days=28)  # 14 + 40 = 54 units at 2/day
    owed = suggest_reorders(_position(reserved=4, backordered=6, pack_size=1), _flat_forecast(2.0), unc, pd.DataFrame(), AS_OF).iloc[0]
    assert owed.inventory_position == 4 and owed.suggested_qty == 46 - 4
    assert "on hand 14 - reserved 4 - backordered 6" in owed.reason


def test_priority_order_urgent_first_then_a_class_then_sooner_stockout() -> None:
    positions = pd.concat([
        _position(sku="LATE", on_hand=40, abc_class="A"),       # out in 20 days: after lead + review -> medium
        _position(sku="SOON_C", on_hand=4, abc_class="C"),      # out in 2 days: urgent
        _position(sku="SOON_A", on_hand=6, abc_class="A"),      # out in 3 days: urgent, A first
        _position(sku="CYCLE", on_hand=24, abc_class="B"),      # out in 12 days: within lead + review -> high
    ], ignore_index=True)
    fc = pd.concat([_flat_forecast(2.0, sku=s) for s in positions.sku], ignore_index=True)
    out = suggest_reorders(positions, fc, pd.DataFrame(columns=["sku", "location", "sigma", "rho"]), pd.DataFrame(), AS_OF)
    ranked = out.sort_values("priority_rank")[["sku", "priority"]].to_numpy().tolist()
    assert ranked == [["SOON_A", "urgent"], ["SOON_C", "urgent"], ["CYCLE", "high"], ["LATE", "medium"]]


# --- policy replay --------------------------------------------------------------------------------


def test_replay_serves_from_stock_and_receives_after_the_lead_time() -> None:
    demand = np.array([[3.0, 3.0, 3.0, 3.0, 3.0, 3.0]])
    result = replay(demand, np.array([5.0]), np.array([2]), np.array([1.0]), np.array([1]), np.array([1]), 3,
                    lambda t, pos: (np.array([4.0]), np.array([12.0])))
    # day 0: position 5 > 4, no order; serve 3 (2 left). Day 1: serve 2 of 3. Day 2: out.
    # day 3: position 0 <= 4 -> order 12, arrives day 5. Days 3, 4 out; day 5: 12 arrive, serve 3 (9 left).
    assert result.orders_placed == 1 and result.units_ordered == 12
    assert result.fill_rate == pytest.approx((3 + 2 + 3) / 18)
    assert result.stockout_days == 4
    assert result.avg_inventory_value == pytest.approx((2 + 0 + 0 + 0 + 0 + 9) / 6)


def test_min_max_uses_only_sales_before_the_review_day() -> None:
    history = np.r_[np.full(28, 1.0), np.full(10, 100.0)][None, :]
    low, high = min_max_policy(history, np.array([5.0]), 7, k=2.0)(0, np.array([0.0]))
    assert (low[0], high[0]) == (24.0, 31.0)  # 2 x 1/day x (5 + 7); + 7 days


def test_forecast_policy_reaches_the_fill_rate_with_less_stock_than_min_max() -> None:
    """Weekly-seasonal Poisson demand whose level ramps up for half the SKUs and down for the others. The
    forecast policy sees the expected demand of the coming weeks at each review; min/max only the trailing
    average, so it runs short on the rising SKUs and sits on stock of the falling ones. Tuned to the same
    fill rate, min/max needs more stock."""
    rng = np.random.default_rng(9)
    days, n = 84 + 28, 12
    start = AS_OF - timedelta(days=83)
    dates = pd.date_range(pd.Timestamp(start) - pd.Timedelta(days=28), periods=days + 28)
    weekly = np.array([0.5, 0.5, 0.7, 1.0, 1.4, 2.0, 0.9])
    base = np.linspace(2, 8, n)[:, None]
    ramp = np.where(np.arange(n)[:, None] % 2 == 0, np.linspace(0.4, 1.6, days + 28)[None, :], np.linspace(1.6, 0.4, days + 28)[None, :])
    rate = base * ramp * weekly[dates.dayofweek][None, :]
    demand = rng.poisson(rate[:, :days]).astype(float)
    keys = pd.DataFrame({"sku": [f"S{i}" for i in range(n)], "location": "L"})
    series = pd.DataFrame({"sku": np.repeat(keys.sku, days), "location": "L", "ds": np.tile(dates[:days], n), "demand": demand.ravel()})
    params = pd.DataFrame({"lead_time_days": 5.0, "lead_time_std_days": 0.0, "service_level": 0.95, "unit_cost": 2.0,
                           "pack_size": 1, "moq": 1}, index=keys.index)

    def forecast_at(day: date):  # the expected demand of the next 28 days: what a good forecast gets close to
        first = (pd.Timestamp(day) + pd.Timedelta(days=1) - dates[0]).days
        ds = dates[first:first + 28]
        mean = rate[:, first:first + 28]
        fc = pd.DataFrame({"sku": np.repeat(keys.sku, len(ds)), "location": "L", "ds": np.tile(ds, n), "forecast": mean.ravel()})
        return fc, pd.DataFrame({"sku": keys.sku, "location": "L", "sigma": np.sqrt(mean.mean(axis=1)), "rho": 1.0, "bias": 0.0})

    out = compare_policies(series, keys, params, start, 84, forecast_at).set_index("policy")
    assert out.loc["forecast", "fill_rate"] >= 0.95
    assert out.loc["min_max", "fill_rate"] >= out.loc["forecast", "fill_rate"]
    assert out.loc["forecast", "avg_inventory_value"] < out.loc["min_max", "avg_inventory_value"]
    assert list(out.reset_index().columns) == ["policy", "series", "days", "target_fill_rate", "fill_rate", "stockout_days",
                                                "avg_inventory_value", "orders_placed", "units_ordered", "min_max_k"]


def test_slow_lumpy_series_take_their_reorder_point_from_the_compound_distribution() -> None:
    """0.3 units/day sold as lumps of about 9 units every 30 days: over lead time 9 + review 7 that is
    0.53 expected lumps; at 95% two lumps are needed, not the moment-matched gamma's long tail."""
    unc = pd.DataFrame({"sku": ["BEANS"], "location": ["ST-1"], "series_class": ["lumpy"], "sigma": [1.6], "rho": [1.0],
                        "bias": [0.0], "adi": [30.0], "cv2": [0.05]})
    out = suggest_reorders(_position(pack_size=1), _flat_forecast(0.3), unc, pd.DataFrame(), AS_OF).iloc[0]
    expected = np.ceil(compound_poisson_quantile(np.array([0.3 * 16]), np.array([16 / 30]), np.array([0.05]), 0.95)[0])
    gamma = np.ceil(demand_quantile(np.array([0.3 * 16]), np.array([16 * 1.6**2]), 0.95)[0])
    assert out.reorder_point == expected and 14 <= expected <= 24 and expected != gamma
