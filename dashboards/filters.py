"""The global filters (date range, locations, channels, categories): drawn in the sidebar by the app's
entry script on every run, kept in `st.session_state`, so they persist from page to page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
import streamlit as st

from dashboards import data

DEFAULT_DAYS = 28
KEYS = {"dates": "f_dates", "locations": "f_locations", "channels": "f_channels", "categories": "f_categories"}


@dataclass(frozen=True)
class Dimensions:
    """What the filters can choose from: the warehouse's days, locations, channels and categories."""

    first: date
    last: date
    locations: tuple[str, ...]
    channels: tuple[str, ...]
    categories: tuple[str, ...]


@dataclass(frozen=True)
class Filters:
    start: date
    end: date
    locations: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> tuple[date, date]:
        """The period of the same length just before (for 'vs previous period')."""
        return self.start - timedelta(days=self.days), self.start - timedelta(days=1)

    @property
    def sliced(self) -> bool:
        """A location or category is chosen (the all-store marts no longer answer alone)."""
        return bool(self.locations or self.categories)


def _values(df: pd.DataFrame | None, column: str) -> tuple[str, ...]:
    if df is None or column not in df:
        return ()
    return tuple(sorted(str(v) for v in df[column].dropna().unique()))


DIMENSIONS_SQL = ("SELECT 'location' AS dim, location AS value FROM {src} GROUP BY location "
                  "UNION ALL SELECT 'channel', channel FROM {src} GROUP BY channel "
                  "UNION ALL SELECT 'category', category FROM {src} GROUP BY category "
                  "UNION ALL SELECT 'day', CAST(MIN(CAST(day AS DATE)) AS VARCHAR) FROM {src} "
                  "UNION ALL SELECT 'day', CAST(MAX(CAST(day AS DATE)) AS VARCHAR) FROM {src}")
"""From daily demand (one row per SKU x location x channel x day) when the small marts cannot say."""
MARTS_SQL = ("SELECT grain AS dim, key AS value FROM {src} WHERE grain IN ('location', 'category') GROUP BY ALL")


def dimensions() -> Dimensions:
    today = date.today()
    # The inventory mart names every location and category in a few rows; daily demand (large) is the fallback.
    dd = data.query("kpi_inventory", MARTS_SQL)
    if dd is None or dd.empty:
        dd = data.query("daily_demand", DIMENSIONS_SQL)
    sales = data.query("kpi_sales", "SELECT channel, MIN(CAST(period_start AS DATE)) AS first, MAX(CAST(period_start AS DATE)) AS last "
                       "FROM {src} WHERE grain = 'day' GROUP BY channel")
    days: list[date] = []
    locations = channels = categories = ()
    if dd is not None and len(dd):
        pick = lambda dim: tuple(sorted({str(v) for v in dd.loc[dd["dim"] == dim, "value"].dropna()}))  # noqa: E731
        locations, channels, categories = pick("location"), pick("channel"), pick("category")
        days += [date.fromisoformat(v) for v in pick("day")]
    if sales is not None and len(sales):
        channels = tuple(sorted(set(channels) | {c for c in _values(sales, "channel") if c != "ALL"}))
        days += [pd.Timestamp(v).date() for v in [*sales["first"], *sales["last"]] if not pd.isna(v)]
    first, last = (min(days), max(days)) if days else (today - timedelta(days=DEFAULT_DAYS - 1), today)
    return Dimensions(first, last, locations, channels, categories)


def _dates_state(dims: Dimensions) -> tuple[date, date]:
    value = st.session_state.get(KEYS["dates"])
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, date) for v in value):
        start, end = value
    elif isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], date):
        start = end = value[0]  # a range half picked in the browser
    else:
        start, end = max(dims.first, dims.last - timedelta(days=DEFAULT_DAYS - 1)), dims.last
    start, end = min(max(start, dims.first), dims.last), min(max(end, dims.first), dims.last)
    return (start, end) if start <= end else (end, start)


def _keep(key: str, options: tuple[str, ...]) -> None:
    """Drop chosen values that no longer exist (a rebuilt warehouse), so the widget never refuses its state."""
    chosen = st.session_state.get(key)
    if chosen and any(v not in options for v in chosen):
        st.session_state[key] = [v for v in chosen if v in options]


def sidebar() -> Filters:
    """Draw the filters in the sidebar and return them."""
    dims = dimensions()
    chosen = st.session_state.get(KEYS["dates"])
    in_range = (isinstance(chosen, (list, tuple)) and 1 <= len(chosen) <= 2
                and all(isinstance(d, date) and dims.first <= d <= dims.last for d in chosen))
    if not in_range:  # first visit, or a rebuilt warehouse moved the bounds (a half-picked range stays as it is)
        st.session_state[KEYS["dates"]] = _dates_state(dims)
    for name in ("locations", "channels", "categories"):
        _keep(KEYS[name], getattr(dims, name))
    with st.sidebar:
        st.subheader("Filters")
        st.date_input("Date range", key=KEYS["dates"], min_value=dims.first, max_value=dims.last, format="YYYY-MM-DD")
        st.multiselect("Locations", dims.locations, key=KEYS["locations"], placeholder="All locations")
        st.multiselect("Channels", dims.channels, key=KEYS["channels"], placeholder="All channels")
        st.multiselect("Categories", dims.categories, key=KEYS["categories"], placeholder="All categories")
    return current()


def current() -> Filters:
    """The filters as chosen (the defaults when the sidebar has not been drawn yet)."""
    start, end = _dates_state(dimensions())
    get = lambda name: tuple(st.session_state.get(KEYS[name]) or ())  # noqa: E731
    return Filters(start, end, get("locations"), get("channels"), get("categories"))
