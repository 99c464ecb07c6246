"""StoreOM dashboards: `storeom dashboards` (or `streamlit run dashboards/streamlit_app.py`).

The entry script runs on every page view: it draws the global filters in the sidebar (kept in
session state, so they follow the user from page to page) and hands over to the chosen page.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run` puts only this folder on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboards.filters import sidebar  # noqa: E402

PAGES = Path(__file__).parent / "app_pages"

st.set_page_config(page_title="StoreOM", page_icon=":material/storefront:", layout="wide")

navigation = st.navigation({
    "Manager": [
        st.Page(PAGES / "overview.py", title="Overview", icon=":material/monitoring:", url_path="overview", default=True),
        st.Page(PAGES / "fulfilment.py", title="Fulfilment", icon=":material/local_shipping:", url_path="fulfilment"),
        st.Page(PAGES / "inventory.py", title="Inventory", icon=":material/inventory_2:", url_path="inventory"),
        st.Page(PAGES / "returns.py", title="Returns & feedback", icon=":material/assignment_return:", url_path="returns"),
    ],
    "Merchandiser": [
        st.Page(PAGES / "forecasts.py", title="Forecasts", icon=":material/query_stats:", url_path="forecasts"),
        st.Page(PAGES / "reorder.py", title="Reorder", icon=":material/add_shopping_cart:", url_path="reorder"),
    ],
    "Marketing": [
        st.Page(PAGES / "recommendations.py", title="Recommendations", icon=":material/recommend:", url_path="recommendations"),
        st.Page(PAGES / "segments.py", title="Segments & offers", icon=":material/groups:", url_path="segments"),
    ],
    "Operations": [
        st.Page(PAGES / "order_lookup.py", title="Order lookup", icon=":material/search:", url_path="orders"),
    ],
})
sidebar()
navigation.run()
