"""The demand forecast: series building, censoring, classification, model selection, intervals, totals,
and what it does with pathological series. Data are synthetic with a known truth (forecasting.synthetic)
or built by hand here."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from forecasting.classify import classify, demand_class
from forecasting.engine import BASELINE, ForecastConfig, forecast_demand
from forecasting.series import ALL, active_series, daily_series, impute_censored
from forecasting.synthetic import WEEKLY, synthetic_demand

AS_OF = date(2026, 10, 31)
CONFIG = ForecastConfig(n_jobs=1)


def _series(values: list[float] | np.ndarray, *, sku: str = "A", location: str = "L1", end: date = AS_OF,
            censored: list[bool] | np.ndarray | None = None) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame({"sku": sku, "location": location, "ds": pd.date_range(end=pd.Timestamp(end), periods=n, freq="D"),
                         "sold": np.asarray(values, dtype=float),
                         "censored": np.zeros(n, bool) if censored is None else np.asarray(censored, bool)})


def _bands_ordered(fc: pd.DataFrame) -> bool:
    return bool(((fc.lo_95 <= fc.lo_80 + 1e-9) & (fc.lo_80 <= fc.forecast + 1e-9) & (fc.forecast <= fc.hi_80 + 1e-9)
                 & (fc.hi_80 <= fc.hi_95 + 1e-9) & (fc.lo_95 >= 0)).all())


# --- classification -------------------------------------------------------------------------------


@pytest.mark.parametrize(("adi", "cv2", "expected"), [
    (1.0, 0.1, "smooth"), (1.2, 0.6, "erratic"), (2.0, 0.2, "intermittent"), (3.0, 1.0, "lumpy"),
    (1.32, 0.2, "intermittent"), (1.31, 0.49, "erratic"),
])
def test_demand_class_cutoffs(adi: float, cv2: float, expected: str) -> None:
    assert demand_class(adi, cv2) == expected


def test_classify_measures_adi_and_cv2() -> None:
    n = 84
    frames = {
        "smooth": [5.0] * n,
        "erratic": [1.0, 20.0] * (n // 2),
        "intermittent": [2.0, 0.0, 0.0] * (n // 3),
        "lumpy": [1.0, 0.0, 0.0, 30.0, 0.0, 0.0] * (n // 6),
        "never": [0.0] * n,
    }
    df = pd.concat([pd.DataFrame({"unique_id": k, "y": v}) for k, v in frames.items()])
    out = classify(df).set_index("unique_id")
    assert out.loc["smooth", "adi"] == 1.0 and out.loc["smooth", "cv2"] == 0.0
    assert out.loc["intermittent", "adi"] == 3.0
    expected_cv2 = (np.std([1.0, 20.0]) / np.mean([1.0, 20.0])) ** 2
    assert out.loc["erratic", "cv2"] == pytest.approx(expected_cv2)
    assert out["series_class"].to_dict() == {"smooth": "smooth", "erratic": "erratic", "intermittent": "intermittent",
                                             "lumpy": "lumpy", "never": "intermittent"}


# --- series ---------------------------------------------------------------------------------------


def test_daily_series_fills_days_and_flags_stockouts() -> None:
    demand = pd.DataFrame({"day": ["2026-10-25", "2026-10-25", "2026-10-28", "2026-11-02"], "sku": "A", "location": "L1",
                           "channel": ["web", "pos", "web", "web"], "units": [2, 1, -1, 9]})
    snaps = pd.DataFrame({"day": ["2026-10-24", "2026-10-27", "2026-10-29"], "sku": "A", "location": "L1", "on_hand": [5, 0, 3]})
    s = daily_series(demand, snaps, AS_OF)
    assert s["ds"].min() == pd.Timestamp("2026-10-24") and s["ds"].max() == pd.Timestamp(AS_OF)  # 2026-11-02 is after as-of
    assert len(s) == 8
    by_day = s.set_index(s["ds"].dt.strftime("%m-%d"))
    assert by_day.loc["10-25", "sold"] == 3 and by_day.loc["10-28", "sold"] == 0  # channels summed, returns clipped
    assert by_day["censored"].to_dict() == {"10-24": False, "10-25": False, "10-26": False, "10-27": True, "10-28": True,
                                            "10-29": False, "10-30": False, "10-31": False}


def test_series_without_stock_tracking_are_never_censored_and_new_ones_come_from_open_orders() -> None:
    demand = pd.DataFrame({"day": ["2026-10-30"], "sku": "A", "location": "L1", "units": [4]})
    s = daily_series(demand, None, AS_OF, extra_series=pd.DataFrame({"sku": ["NEW"], "location": ["L1"]}))
    assert not s["censored"].any()
    assert s[s.sku == "NEW"][["sold"]].to_dict("list") == {"sold": [0.0]}
    active = active_series(s, AS_OF, open_po=pd.DataFrame({"sku": ["NEW"], "location": ["L1"]}))
    assert sorted(map(tuple, active.to_numpy())) == [("A", "L1"), ("NEW", "L1")]


def test_impute_censored_uses_the_in_stock_rate_and_keeps_higher_sales() -> None:
    values = [4.0] * 56 + [1.0, 0.0, 6.0]
    s = _series(values, censored=[False] * 56 + [True] * 3)
    y = impute_censored(s)
    assert y.iloc[:56].tolist() == values[:56]
    assert y.iloc[56:].tolist() == pytest.approx([4.0, 4.0, 6.0])


# --- stockouts ------------------------------------------------------------------------------------


def test_stockout_days_do_not_drag_the_forecast_down() -> None:
    """Demand runs at a known weekly-seasonal rate; a third of the days are stockouts selling (almost)
    nothing. The stockout-aware forecast stays near the true rate; the same model trained on what sold is
    biased low."""
    rng = np.random.default_rng(3)
    days, truth_rate = 364, 6.0
    frames, truth = [], []
    for i in range(12):
        ds = pd.date_range(end=pd.Timestamp(AS_OF), periods=days, freq="D")
        mean = truth_rate * WEEKLY[ds.dayofweek]
        sold = rng.poisson(mean).astype(float)
        out = np.zeros(days, bool)
        for start in rng.choice(days - 14, 10, replace=False):
            out[start:start + 12] = True
        out[-40:-30] = True
        out[-18:-6] = True
        sold[out] = np.floor(sold[out] * 0.1)
        frames.append(_series(sold, sku=f"S{i}", censored=out))
        truth.append(truth_rate * WEEKLY[pd.date_range(pd.Timestamp(AS_OF) + pd.Timedelta(days=1), periods=28).dayofweek].mean())
    history = pd.concat(frames, ignore_index=True)
    assert history["censored"].mean() > 0.3
    aware = forecast_demand(history, AS_OF, config=CONFIG).forecast
    naive = forecast_demand(history.assign(censored=False), AS_OF, config=CONFIG).forecast
    true_mean = float(np.mean(truth))
    aware_mean = aware[aware.location != ALL].groupby("sku")["forecast"].mean().mean()
    naive_mean = naive[naive.location != ALL].groupby("sku")["forecast"].mean().mean()
    assert abs(aware_mean / true_mean - 1) < 0.10, (aware_mean, true_mean)
    assert naive_mean / true_mean - 1 < -0.20, (naive_mean, true_mean)


# --- the forecast ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    return synthetic_demand(48, 400, AS_OF + timedelta(days=28), seed=11, stockout_share=0.2)


@pytest.fixture(scope="module")
def result(synthetic: pd.DataFrame):  # type: ignore[no-untyped-def]
    history = synthetic[synthetic.ds <= pd.Timestamp(AS_OF)][["sku", "location", "ds", "sold", "censored"]]
    categories = pd.DataFrame({"sku": synthetic.sku.unique(), "category": "grocery"})
    return forecast_demand(history, AS_OF, categories=categories, config=CONFIG)


def test_forecast_schema_horizon_and_bands(result) -> None:  # type: ignore[no-untyped-def]
    fc = result.forecast
    assert list(fc.columns) == ["sku", "location", "ds", "forecast", "lo_80", "hi_80", "lo_95", "hi_95", "model"]
    assert fc.groupby(["sku", "location"]).size().eq(28).all()
    assert fc["ds"].min() == pd.Timestamp(AS_OF) + pd.Timedelta(days=1) and fc["ds"].max() == pd.Timestamp(AS_OF) + pd.Timedelta(days=28)
    assert np.isfinite(fc[["forecast", "lo_80", "hi_80", "lo_95", "hi_95"]].to_numpy()).all()
    assert _bands_ordered(fc)


def test_locations_add_up_to_the_sku_total(result) -> None:  # type: ignore[no-untyped-def]
    fc = result.forecast
    parts = fc[fc.location != ALL].groupby(["sku", "ds"])["forecast"].sum()
    total = fc[fc.location == ALL].set_index(["sku", "ds"])["forecast"]
    assert len(total) == len(parts) == 12 * 28
    assert np.allclose(total.reindex(parts.index).to_numpy(), parts.to_numpy())
    assert (fc[fc.location == ALL]["model"] == "BottomUp").all()


def test_backtest_has_the_baseline_for_every_series_and_one_selected_model(result) -> None:  # type: ignore[no-untyped-def]
    bt = result.backtest
    assert list(bt.columns) == ["sku", "location", "category", "series_class", "model", "selected", "mase", "rmsse", "wape", "bias", "windows"]
    per_series = bt.groupby(["sku", "location"])
    assert per_series["selected"].sum().eq(1).all()
    assert per_series["model"].apply(lambda m: BASELINE in set(m)).all()
    chosen = bt[bt.selected].set_index(["sku", "location"])
    fc_model = result.forecast.drop_duplicates(["sku", "location"]).set_index(["sku", "location"])["model"]
    assert (chosen["model"] == fc_model.reindex(chosen.index)).all()
    assert (bt["category"] == "grocery").all()


def test_holdout_accuracy_beats_seasonal_naive_and_bands_cover(synthetic: pd.DataFrame, result) -> None:  # type: ignore[no-untyped-def]
    future = synthetic[synthetic.ds > pd.Timestamp(AS_OF)]
    fc = result.forecast[result.forecast.location != ALL].merge(future, on=["sku", "location", "ds"])
    history = synthetic[synthetic.ds <= pd.Timestamp(AS_OF)]
    naive = history[history.ds > pd.Timestamp(AS_OF) - pd.Timedelta(days=7)].assign(dow=lambda d: d.ds.dt.dayofweek)
    fc = fc.assign(dow=fc.ds.dt.dayofweek).merge(naive[["sku", "location", "dow", "sold"]].rename(columns={"sold": "naive"}),
                                                 on=["sku", "location", "dow"])
    ours = (fc.forecast - fc.sold).abs().mean()
    baseline = (fc.naive - fc.sold).abs().mean()
    assert ours < 0.9 * baseline, (ours, baseline)
    inside80 = ((fc.sold >= fc.lo_80) & (fc.sold <= fc.hi_80)).mean()
    inside95 = ((fc.sold >= fc.lo_95) & (fc.sold <= fc.hi_95)).mean()
    assert 0.70 <= inside80 <= 0.92 and 0.88 <= inside95 <= 0.995, (inside80, inside95)


def test_nothing_after_the_as_of_day_reaches_the_forecast(synthetic: pd.DataFrame, result) -> None:  # type: ignore[no-untyped-def]
    leaked = synthetic[["sku", "location", "ds", "sold", "censored"]].copy()
    leaked.loc[leaked.ds > pd.Timestamp(AS_OF), "sold"] = 10_000.0
    categories = pd.DataFrame({"sku": synthetic.sku.unique(), "category": "grocery"})
    again = forecast_demand(leaked, AS_OF, categories=categories, config=CONFIG)
    pd.testing.assert_frame_equal(again.forecast, result.forecast)
    pd.testing.assert_frame_equal(again.backtest, result.backtest)


def test_pathological_series_get_a_forecast_and_never_fail_the_run() -> None:
    ok = synthetic_demand(4, 200, AS_OF, seed=5)[["sku", "location", "ds", "sold", "censored"]]
    spike = np.zeros(200)
    spike[120] = 500.0
    returns = np.r_[np.zeros(150), np.full(50, 2.0)]
    returns[160] = -30.0
    history = pd.concat([
        ok,
        _series(np.zeros(200), sku="ZERO"),  # on an open PO, never sold
        _series(spike, sku="SPIKE"),
        _series(returns, sku="RETURNS"),
        _series([3.0, 0.0, 5.0], sku="SHORT"),
        _series([0.0], sku="BRANDNEW"),
    ], ignore_index=True)
    history["sold"] = history["sold"].clip(lower=0)  # daily_series clips net returns; the engine is given what it would get
    categories = pd.DataFrame({"sku": history.sku.unique(), "category": "grocery"})
    out = forecast_demand(history, AS_OF, categories=categories, config=CONFIG)
    fc = out.forecast[out.forecast.location != ALL]
    assert set(fc.sku) == set(history.sku)
    assert np.isfinite(fc.forecast).all() and _bands_ordered(out.forecast)
    models = fc.drop_duplicates("sku").set_index("sku")["model"]
    assert models["SHORT"] == "CategoryProfile" and models["BRANDNEW"] == "CategoryProfile" and models["ZERO"] == "CategoryProfile"
    assert fc[fc.sku == "SPIKE"]["forecast"].max() < 50  # one spike is not a new level
    assert fc[fc.sku == "BRANDNEW"]["forecast"].mean() > 0  # a new SKU borrows its category's rate


def test_recent_launch_with_some_history_uses_its_own_average() -> None:
    ok = synthetic_demand(4, 200, AS_OF, seed=5)[["sku", "location", "ds", "sold", "censored"]]
    launch = _series([8.0] * 20, sku="LAUNCH")
    out = forecast_demand(pd.concat([ok, launch], ignore_index=True), AS_OF, config=CONFIG).forecast
    mine = out[(out.sku == "LAUNCH") & (out.location != ALL)]
    assert (mine["model"] == "RecentAverage").all()
    assert mine["forecast"].mean() == pytest.approx(8.0, rel=0.15)


def test_empty_history_gives_empty_frames() -> None:
    out = forecast_demand(_series([]).iloc[0:0], AS_OF, config=CONFIG)
    assert out.forecast.empty and out.backtest.empty and out.uncertainty.empty
    assert list(out.forecast.columns) == ["sku", "location", "ds", "forecast", "lo_80", "hi_80", "lo_95", "hi_95", "model"]


def test_the_combination_is_the_mean_of_its_members() -> None:
    from forecasting.engine import COMBO, _final_forecast, combination_members

    history = _series(np.tile([0.0, 2.0, 0.0, 5.0, 1.0, 0.0, 3.0], 20))
    frame = history.assign(y=history["sold"], unique_id="A@L1")
    selected = pd.Series({"A@L1": COMBO})
    combo = _final_forecast(frame, selected, "intermittent", 7, CONFIG)
    members = [_final_forecast(frame, pd.Series({"A@L1": m}), "intermittent", 7, CONFIG)["forecast"].to_numpy()
               for m in combination_members("intermittent")]
    assert (combo["model"] == COMBO).all() and combo["forecast"].min() > 0
    assert np.allclose(combo["forecast"].to_numpy(), np.mean(members, axis=0))


# --- memory: blocks of series, shared strings -----------------------------------------------------


def _counting(calls: list[str]):  # type: ignore[no-untyped-def]
    from forecasting.engine import run_here

    def run(sf, method, df, kwargs):  # type: ignore[no-untyped-def]
        calls.append(method)
        return run_here(sf, method, df, kwargs)
    return run


def test_small_blocks_of_series_give_the_one_block_result(synthetic: pd.DataFrame, result) -> None:  # type: ignore[no-untyped-def]
    """The catalogue is cross-validated and fitted a few series at a time; the model choice (pooled over each
    class) and every number must be those of the one-block run."""
    history = synthetic[synthetic.ds <= pd.Timestamp(AS_OF)][["sku", "location", "ds", "sold", "censored"]]
    categories = pd.DataFrame({"sku": synthetic.sku.unique(), "category": "grocery"})
    calls: list[str] = []
    blocked = forecast_demand(history, AS_OF, categories=categories, config=ForecastConfig(n_jobs=1, block_series=5),
                              runner=_counting(calls))
    classes = result.backtest[result.backtest.location != ALL].series_class.nunique()
    assert calls.count("cross_validation") >= 48 // 5 > classes  # really in blocks
    for frame in ("forecast", "backtest", "uncertainty"):
        pd.testing.assert_frame_equal(getattr(blocked, frame), getattr(result, frame), check_exact=True)


def test_blocks_with_new_series_unsorted_rows_and_series_ending_early() -> None:
    base = synthetic_demand(30, 300, AS_OF, seed=9, stockout_share=0.3)
    base = base[~(base.sku.isin(["SKU-00002", "SKU-00005"]) & (base.ds > pd.Timestamp(AS_OF) - pd.Timedelta(days=9)))]
    history = pd.concat([base, _series([8.0] * 20, sku="LAUNCH"), _series([0.0], sku="BRANDNEW")], ignore_index=True)
    history["category"] = "grocery"
    categories = history[["sku", "category"]].drop_duplicates()
    shuffled = history.sample(frac=1.0, random_state=3).set_axis(np.arange(len(history))[::-1] * 2)
    before = shuffled.copy()
    one = forecast_demand(history, AS_OF, categories=categories, config=CONFIG)
    blocked = forecast_demand(shuffled, AS_OF, categories=categories, config=ForecastConfig(n_jobs=1, block_series=3))
    pd.testing.assert_frame_equal(shuffled, before)  # the caller's frame is shared, never written
    assert set(one.forecast.model) >= {"RecentAverage", "CategoryProfile", "BottomUp"}
    for frame in ("forecast", "backtest", "uncertainty"):
        pd.testing.assert_frame_equal(getattr(blocked, frame), getattr(one, frame), check_exact=True)


def test_series_id_rows_share_one_string_per_series() -> None:
    from forecasting.series import series_id

    sku = pd.Series(["A", "A-1", "A", "B", "A-1"], index=[4, 3, 2, 1, 0], name="sku")
    location = pd.Series(["L1", "L1", "L1", "L2", "L1"], index=sku.index, name="location")
    ids = series_id(sku, location)
    pd.testing.assert_series_equal(ids, sku + "@" + location)
    assert ids.iloc[0] is ids.iloc[2] and ids.iloc[1] is ids.iloc[4]
    with_missing = pd.Series(["A", None], name="sku")
    assert series_id(with_missing, pd.Series(["L1", "L2"])).tolist() == ["A@L1", "None@L2"]


def test_synthetic_demand_is_the_same_at_any_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    import forecasting.synthetic as synthetic_module

    whole = synthetic_demand(9, 150, AS_OF, seed=4, stockout_share=0.5)
    monkeypatch.setattr(synthetic_module, "BLOCK_CELLS", 2 * 150)
    pd.testing.assert_frame_equal(synthetic_demand(9, 150, AS_OF, seed=4, stockout_share=0.5), whole, check_exact=True)
    assert whole["sku"].iloc[0] is whole["sku"].iloc[149]  # one string per series, not per row
