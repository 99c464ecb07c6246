"""Known promotions in the forecast: the measured uplift, the days they cover, and their application."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.promotions import SHRINK_DAYS, apply_promotions, promoted_days, promotion_uplift

CATEGORIES = pd.DataFrame({"sku": ["A", "B", "C"], "category": ["coffee", "coffee", "tea"]})
DAYS = pd.date_range("2026-11-01", periods=7, freq="D")


def test_uplift_is_promoted_units_over_the_skus_baseline_shrunk_by_evidence() -> None:
    lines = pd.DataFrame({
        "sku": ["A"] * 6 + ["C"] * 3, "category": ["coffee"] * 6 + ["tea"] * 3,
        "order_date": pd.to_datetime(["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04", "2026-10-05", "2026-10-06",
                                      "2026-10-01", "2026-10-02", "2026-10-03"]),
        "units": [2, 2, 2, 2, 4, 4, 1, 1, 1], "discount_total": [0, 0, 0, 0, 1.5, 1.5, 0, 0, 0],
    })
    uplift = promotion_uplift(lines)
    assert uplift.to_dict() == pytest.approx({"coffee": 1 + (8 / 4 - 1) * 2 / (2 + SHRINK_DAYS)})  # tea never promoted: absent


def test_covered_days_follow_scope_window_coupon_and_active_flag() -> None:
    promotions = pd.DataFrame([
        {"scope": "sku", "target": "A", "starts_at": "2026-11-03 08:00", "ends_at": "2026-11-04 20:00", "active": True, "coupon_code": None},
        {"scope": "category", "target": "tea", "starts_at": pd.Timestamp("2026-11-06 23:30", tz="America/New_York"), "ends_at": None,
         "active": True, "coupon_code": None},
        {"scope": "sku", "target": "B", "starts_at": None, "ends_at": None, "active": True, "coupon_code": "SAVE10"},
        {"scope": "sku", "target": "B", "starts_at": None, "ends_at": None, "active": False, "coupon_code": None},
        {"scope": "order", "target": None, "starts_at": None, "ends_at": None, "active": True, "coupon_code": None},
    ])
    covered = promoted_days(promotions, CATEGORIES, DAYS)
    assert sorted((s, d.strftime("%m-%d")) for s, d in covered.itertuples(index=False)) == [("A", "11-03"), ("A", "11-04"), ("C", "11-07")]


def test_applied_uplift_scales_forecast_and_bands_and_keeps_totals_coherent() -> None:
    fc = pd.DataFrame({"sku": "A", "location": ["L1", "L2", "ALL"] * 2, "ds": np.repeat(DAYS[:2], 3),
                       "forecast": [1.0, 2.0, 3.0] * 2, "lo_80": 0.5, "hi_80": 4.0, "lo_95": 0.0, "hi_95": 6.0, "model": "SES"})
    covered = pd.DataFrame({"sku": ["A"], "ds": [DAYS[1]]})
    out = apply_promotions(fc, covered, CATEGORIES, pd.Series({"coffee": 1.5}))
    day2 = out[out.ds == DAYS[1]].set_index("location")
    assert day2["forecast"].to_dict() == {"L1": 1.5, "L2": 3.0, "ALL": 4.5}
    assert (day2["hi_95"] == 9.0).all() and (day2["model"] == "SES+Promotion").all()
    assert out[out.ds == DAYS[0]]["forecast"].tolist() == [1.0, 2.0, 3.0]
    assert apply_promotions(fc, covered, CATEGORIES, pd.Series(dtype=float)).equals(fc)
