"""Check functions (plain, testable): each returns (passed, metadata with actual vs expected)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd


def no_negative_stock(df: pd.DataFrame, column: str) -> tuple[bool, dict[str, Any]]:
    negative = df[df[column] < 0]
    return negative.empty, {"actual_negative_rows": len(negative), "expected_negative_rows": 0,
                            "min_value": float(df[column].min()) if len(df) else 0.0,
                            "examples": negative.head(5).astype(str).to_dict("records").__repr__()}


def lines_join(lines: pd.DataFrame, orders: pd.DataFrame) -> tuple[bool, dict[str, Any]]:
    no_order = ~lines["order_id"].isin(orders["order_id"]) & lines["placed_at"].isna()
    no_sku = ~lines["sku_known"].astype(bool)
    return not (no_order.any() or no_sku.any()), {
        "actual_lines_without_order": int(no_order.sum()), "actual_lines_without_sku": int(no_sku.sum()),
        "expected": 0, "lines": len(lines),
        "example_line_ids": repr(lines.loc[no_order | no_sku, "line_id"].head(10).tolist()),
    }


def no_rows_after(df: pd.DataFrame, columns: list[str], as_of: date) -> tuple[bool, dict[str, Any]]:
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    latest = max((pd.to_datetime(df[c]).max() for c in columns if len(df)), default=pd.NaT)
    late = sum(int((pd.to_datetime(df[c]) >= end).sum()) for c in columns)
    return late == 0, {"actual_rows_after_as_of": late, "expected_rows_after_as_of": 0,
                       "actual_latest": str(latest), "expected_latest_at_most": str(as_of)}


def volume(df: pd.DataFrame, minimum: int = 1) -> tuple[bool, dict[str, Any]]:
    return len(df) >= minimum, {"actual_rows": len(df), "expected_rows_at_least": minimum}


def data_freshness(orders: pd.DataFrame, as_of: date, max_lag_days: int = 2) -> tuple[bool, dict[str, Any]]:
    latest = orders["placed_at"].max() if len(orders) else pd.NaT
    lag = (pd.Timestamp(as_of) - latest.normalize()).days if not pd.isna(latest) else None
    return lag is not None and lag <= max_lag_days, {"actual_latest_order": str(latest), "actual_lag_days": -1 if lag is None else lag,
                                                      "expected_lag_days_at_most": max_lag_days}
