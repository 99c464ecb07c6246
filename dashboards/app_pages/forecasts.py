"""Merchandiser — Forecasts: what will this SKU sell, how sure are we, and can the model be trusted?"""

from datetime import timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboards import data
from dashboards import layout as L

HISTORY_DAYS = 120

f = L.page("Forecasts", "What will this SKU sell in the next four weeks, and how far can the forecast be trusted?",
           asset="demand_forecast", day_column="MIN(ds) - INTERVAL 1 DAY")
if not data.has("demand_forecast"):
    L.empty("forecasts", "demand_forecast")
    st.stop()

cat, cat_params = data.in_list("category", f.categories)
skus = data.query("forecast_backtest", f"SELECT DISTINCT sku FROM {{src}} WHERE {cat} ORDER BY sku", cat_params)
if skus is None or (skus.empty and not f.categories):
    skus = data.query("demand_forecast", "SELECT DISTINCT sku FROM {src} ORDER BY sku")
if skus is None or skus.empty:
    st.info("No SKU has a forecast for the chosen categories.")
    st.stop()

pick_sku, pick_location = st.columns([2, 1])
sku = pick_sku.selectbox("SKU (type to search)", skus["sku"].tolist(), key="fc_sku")
# Everything about the SKU is read once, for all its locations: switching the location reads nothing.
every_fc = data.query("demand_forecast", "SELECT * FROM {src} WHERE sku = ? ORDER BY location, ds", [sku])
locations = sorted(every_fc["location"].unique(), key=lambda v: (v != "ALL", v))
location = pick_location.selectbox("Location", locations, key="fc_location",
                                   format_func=lambda v: "All locations" if v == "ALL" else v)
fc = every_fc[every_fc["location"] == location].copy()
if fc.empty:
    st.info("No forecast for this SKU at this location.")
    st.stop()
fc["ds"] = pd.to_datetime(fc["ds"])
start = fc["ds"].min() - timedelta(days=HISTORY_DAYS)
history = data.query("daily_demand", "SELECT CAST(day AS DATE) AS day, location, SUM(units) AS units FROM {src} "
                     "WHERE sku = ? AND CAST(day AS DATE) >= ? GROUP BY 1, 2", [sku, start.date()])
stockouts = data.query("stg_inventory_snapshots", "SELECT DISTINCT CAST(day AS DATE) AS day, location FROM {src} "
                       "WHERE sku = ? AND stockout AND CAST(day AS DATE) >= ?", [sku, start.date()])
if location != "ALL":
    history = None if history is None else history[history["location"] == location]
    stockouts = None if stockouts is None else stockouts[stockouts["location"] == location]
if history is not None:
    history = history.groupby("day", as_index=False)["units"].sum()
if stockouts is not None:
    stockouts = stockouts.drop_duplicates("day").sort_values("day")

fig = go.Figure()
for lo, hi, name, alpha in (("lo_95", "hi_95", "95% band", 0.15), ("lo_80", "hi_80", "80% band", 0.3)):
    fig.add_trace(go.Scatter(x=fc["ds"], y=fc[hi], line=dict(width=0), showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=fc["ds"], y=fc[lo], fill="tonexty", line=dict(width=0), name=name,
                             fillcolor=f"rgba(31,119,180,{alpha})"))
fig.add_trace(go.Scatter(x=fc["ds"], y=fc["forecast"], name="Forecast", line=dict(color="#1f77b4", width=3)))
if history is not None and len(history):
    days = pd.date_range(start, fc["ds"].min() - timedelta(days=1), freq="D")
    h = history.assign(day=pd.to_datetime(history["day"])).set_index("day")["units"].reindex(days, fill_value=0)
    fig.add_trace(go.Bar(x=h.index, y=h.values, name="Units sold", marker_color="#7f7f7f"))
if stockouts is not None and len(stockouts):
    fig.add_trace(go.Scatter(x=pd.to_datetime(stockouts["day"]), y=[0] * len(stockouts), mode="markers",
                             name="Stockout day" if location != "ALL" else "Stockout (a location)",
                             marker=dict(symbol="x", color="#d62728", size=9)))
fig.update_layout(title=f"{sku} at {'all locations' if location == 'ALL' else location}: history and 28-day forecast",
                  yaxis_title="Units per day")
L.chart(fig)

bt = data.query("forecast_backtest", "SELECT * FROM {src} WHERE sku = ?", [sku])
if bt is not None:
    bt = bt[bt["location"] == location]
if bt is None:
    L.empty("backtest", "forecast_backtest")
else:
    chosen = bt[bt["selected"]]
    naive = bt[bt["model"] == "SeasonalNaive"]
    model = chosen["model"].iloc[0] if len(chosen) else fc["model"].iloc[0]
    c = chosen.iloc[0] if len(chosen) else None
    n = naive.iloc[0] if len(naive) else None
    get = lambda row, col: float("nan") if row is None else row[col]  # noqa: E731
    L.tiles([
        L.Tile("Model", model),
        L.Tile("Next 28 days", L.num(fc["forecast"].sum(), 0) + " units"),
        L.Tile("MASE", L.num(get(c, "mase"), 2), None if pd.isna(get(c, "mase") - get(n, "mase"))
               else L.num(get(c, "mase") - get(n, "mase"), 2) + " vs naive", lower_is_better=True,
               help="Mean absolute scaled error in the backtest (below 1 beats the seasonal naive forecast in-sample)"),
        L.Tile("WAPE", L.pct(get(c, "wape")), L.change(get(c, "wape"), get(n, "wape"), points=True), lower_is_better=True),
        L.Tile("Bias", L.pct(get(c, "bias"))),
    ])
    if bt.empty:
        st.caption("No backtest for this series yet (too little history to hold out a window).")
    else:
        st.caption("Backtest of every model tried for this series (the seasonal naive baseline is the yardstick).")
        L.table(bt[["model", "selected", "mase", "rmsse", "wape", "bias", "windows"]].sort_values("mase"))

st.subheader("Portfolio accuracy")
portfolio = data.query("forecast_backtest", f"""
    WITH s AS (SELECT * FROM {{src}} WHERE selected AND {cat}),
         n AS (SELECT sku, location, mase AS naive_mase, wape AS naive_wape FROM {{src}} WHERE model = 'SeasonalNaive')
    SELECT category, series_class, COUNT(*) AS series, AVG(mase) AS mase, AVG(wape) AS wape, AVG(naive_wape) AS naive_wape,
           AVG(CASE WHEN mase < naive_mase THEN 1.0 ELSE 0.0 END) AS beats_naive
    FROM s LEFT JOIN n USING (sku, location) GROUP BY ALL ORDER BY category, series_class""", cat_params)
if portfolio is not None and len(portfolio):
    import plotly.express as px

    L.chart(px.bar(portfolio, x="category", y="wape", color="series_class", barmode="group",
                   title="WAPE of the chosen models by category and series class",
                   labels={"wape": "WAPE", "category": ""}).update_yaxes(tickformat=".0%"))
    L.table(portfolio, column_config={"wape": st.column_config.NumberColumn("WAPE", format="percent"),
                                      "naive_wape": st.column_config.NumberColumn("Naive WAPE", format="percent"),
                                      "beats_naive": st.column_config.NumberColumn("Beats naive", format="percent"),
                                      "mase": st.column_config.NumberColumn("MASE", format="%.2f")})
