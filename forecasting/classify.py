"""Demand classes (Syntetos-Boylan): how often a series sells and how much the sizes vary decide which
models can forecast it. ADI = days per selling day; CV² = squared coefficient of variation of the
non-zero daily quantities."""

from __future__ import annotations

import numpy as np
import pandas as pd

ADI_CUTOFF = 1.32
CV2_CUTOFF = 0.49
CLASSES = ("smooth", "erratic", "intermittent", "lumpy")


def demand_class(adi: float, cv2: float) -> str:
    if adi < ADI_CUTOFF:
        return "smooth" if cv2 < CV2_CUTOFF else "erratic"
    return "intermittent" if cv2 < CV2_CUTOFF else "lumpy"


def classify(frame: pd.DataFrame, *, id_col: str = "unique_id", target_col: str = "y", recent_days: int | None = 365) -> pd.DataFrame:
    """Per series: `adi, cv2, nonzero_days, series_class` over its last `recent_days` rows. A series that
    never sold has ADI = inf and is 'intermittent' (it has to be forecast from elsewhere anyway)."""
    df = frame[[id_col, target_col]]
    if recent_days is not None:
        df = df.groupby(id_col, sort=False).tail(recent_days)
    y = df[target_col].clip(lower=0)
    nz = y.where(y > 0)
    g = nz.groupby(df[id_col], sort=False)
    out = pd.DataFrame({
        "days": y.groupby(df[id_col], sort=False).size(),
        "nonzero_days": g.count(),
        "mean_nz": g.mean(),
        "std_nz": g.std(ddof=0),
    })
    out["adi"] = out["days"] / out["nonzero_days"].replace(0, np.nan)
    out["adi"] = out["adi"].fillna(np.inf)
    out["cv2"] = ((out["std_nz"] / out["mean_nz"]) ** 2).fillna(0.0)
    smooth_side = out["adi"] < ADI_CUTOFF
    low_cv = out["cv2"] < CV2_CUTOFF
    out["series_class"] = np.select(
        [smooth_side & low_cv, smooth_side, low_cv], ["smooth", "erratic", "intermittent"], default="lumpy"
    )
    return out[["adi", "cv2", "nonzero_days", "series_class"]].rename_axis(id_col).reset_index()
