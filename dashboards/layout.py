"""What every page shares: the title with its data-freshness line, the empty state, KPI tiles with
deltas vs the previous period, number formats and the plotly look. Pages stay small and alike."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from dashboards import data
from dashboards.filters import Filters, current

RUN_HINT = "run `storeom pipeline run`"


# --- formats ------------------------------------------------------------------------------------------


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT


def money(v: Any, decimals: int = 2) -> str:
    return "–" if _missing(v) else f"${float(v):,.{decimals}f}"


def pct(v: Any, decimals: int = 1) -> str:
    return "–" if _missing(v) else f"{100 * float(v):.{decimals}f}%"


def num(v: Any, decimals: int = 0) -> str:
    return "–" if _missing(v) else f"{float(v):,.{decimals}f}"


def hours(v: Any) -> str:
    return "–" if _missing(v) else f"{float(v):,.1f} h"


def ratio(a: Any, b: Any) -> float:
    """a / b, NaN when b is 0 or missing (a rate over nothing is not 0%)."""
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return float("nan")
    return a / b if b and not math.isnan(b) else float("nan")


# --- page parts ---------------------------------------------------------------------------------------


def page(title: str, question: str, *, asset: str, day_column: str | None = None, day_asset: str | None = None) -> Filters:
    """Title, the daily question the page answers, and 'as of': the latest day in `asset`'s `day_column` (or in
    `day_asset`'s, for a mart whose own days are week starts) and when `asset` was written."""
    st.title(title)
    day, written = data.as_of(asset, None if day_asset else day_column)
    if day_asset and written is not None:
        day = data.as_of(day_asset, day_column)[0]
    if day is None and written is None:
        fresh = f"No data yet — {RUN_HINT}."
    else:
        shown = day.isoformat() if day else written.strftime("%Y-%m-%d")
        fresh = f"Data as of {shown}" + (f" · refreshed {written:%Y-%m-%d %H:%M} UTC" if written else "")
    st.caption(f"{question}  \n{fresh}")
    return current()


def empty(what: str, asset: str) -> None:
    st.info(f"No {what} yet — {RUN_HINT} (builds `{asset}`).", icon=":material/hourglass_empty:")


def need(asset: str, what: str, columns: Sequence[str] | None = None) -> pd.DataFrame | None:
    """The asset, or the empty state (and None) when it has not been built."""
    df = data.load(asset, columns)
    if df is None:
        empty(what, asset)
    return df


@dataclass
class Tile:
    label: str
    value: str
    delta: str | None = None
    lower_is_better: bool = False
    help: str | None = None


def change(cur: float, prev: float, *, points: bool = False) -> str | None:
    """'+12.3%' vs the previous period (or '+1.2 pts' for a rate); None when there is nothing to compare."""
    if _missing(cur) or _missing(prev):
        return None
    if points:
        return f"{100 * (cur - prev):+.1f} pts"
    return f"{(cur - prev) / abs(prev):+.1%}" if prev else None


def tiles(items: Sequence[Tile], per_row: int = 4) -> None:
    """KPI tiles in balanced rows of at most `per_row`."""
    rows = math.ceil(len(items) / per_row) if items else 0
    per_row = math.ceil(len(items) / rows) if rows else per_row
    for start in range(0, len(items), per_row):
        row = items[start:start + per_row]
        for col, t in zip(st.columns(per_row), row, strict=False):
            col.metric(t.label, t.value, t.delta, delta_color="inverse" if t.lower_is_better else "normal", help=t.help,
                       border=True)


def chart(fig: Any) -> None:
    fig.update_layout(margin=dict(l=10, r=10, t=40, b=10), legend_title_text="", height=340)
    st.plotly_chart(fig, width="stretch")


def table(df: pd.DataFrame, **kwargs: Any) -> None:
    st.dataframe(df, width="stretch", hide_index=True, **kwargs)


def filters_note(f: Filters, applies: str) -> None:
    st.caption(f"Filters: {f.start} → {f.end}. {applies}")
