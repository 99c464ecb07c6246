"""Manager — Fulfilment: are orders leaving complete and on time, and where (location, carrier) do they not?"""

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboards import layout as L

f = L.page("Fulfilment", "Are orders going out complete and on time — and where are they not?", asset="kpi_fulfilment",
           day_column="period_start", day_asset="kpi_sales")
mart = L.need("kpi_fulfilment", "fulfilment figures")
if mart is None:
    st.stop()


def rates(rows: pd.DataFrame) -> dict[str, float]:
    """The mart's rates over several rows: sums of the counts, means weighted by the orders behind them."""
    s = rows.sum(numeric_only=True)
    weighted = lambda col, w: L.ratio((rows[col] * rows[w]).sum(), rows.loc[rows[col].notna(), w].sum())  # noqa: E731
    return {
        "cycle_hours": weighted("order_cycle_hours", "processed_orders"),
        "on_time_rate": L.ratio(s["delivered_on_time"], s["delivered_with_promise"]),
        "fill_rate_units": L.ratio(s["units_fulfilled"], s["units_ordered"]),
        "perfect_order_rate": L.ratio(s["perfect_orders"], s["processed_orders"]),
        "split_shipment_rate": L.ratio(s["split_orders"], s["shipped_orders"]),
        "carrier_delay_rate": L.ratio(s["delayed_shipments"], s["dispatched_shipments"]),
        "pickup_ready_hours": weighted("pickup_ready_hours", "shipments"),
    }


weeks = mart[mart["grain"] == "week"].copy()
weeks["week"] = pd.to_datetime(weeks["period_start"]).dt.date
prev_start, _ = f.previous()
# A week belongs to the period when it starts in it (the mart's weeks run Monday to Sunday).
now = weeks[(weeks["week"] >= f.start) & (weeks["week"] <= f.end)]
before = weeks[(weeks["week"] >= prev_start) & (weeks["week"] < f.start)]
cur, prev = rates(now), rates(before)
L.tiles([
    L.Tile("Order cycle time", L.hours(cur["cycle_hours"]), L.change(cur["cycle_hours"], prev["cycle_hours"]), lower_is_better=True),
    L.Tile("On-time delivery", L.pct(cur["on_time_rate"]), L.change(cur["on_time_rate"], prev["on_time_rate"], points=True)),
    L.Tile("Fill rate (units)", L.pct(cur["fill_rate_units"]), L.change(cur["fill_rate_units"], prev["fill_rate_units"], points=True)),
    L.Tile("Perfect orders", L.pct(cur["perfect_order_rate"]), L.change(cur["perfect_order_rate"], prev["perfect_order_rate"], points=True)),
    L.Tile("Split shipments", L.pct(cur["split_shipment_rate"]),
           L.change(cur["split_shipment_rate"], prev["split_shipment_rate"], points=True), lower_is_better=True),
    L.Tile("Carrier delays", L.pct(cur["carrier_delay_rate"]),
           L.change(cur["carrier_delay_rate"], prev["carrier_delay_rate"], points=True), lower_is_better=True),
    L.Tile("Pickup ready in", L.hours(cur["pickup_ready_hours"]), L.change(cur["pickup_ready_hours"], prev["pickup_ready_hours"]),
           lower_is_better=True),
])
L.filters_note(f, "Tiles and trends: weeks starting in the period. Location, carrier and channel tables cover the "
                  "whole history (the mart has no location x week grain); the location and channel filters pick their rows.")

if not now.empty:
    trend = now.melt(id_vars="week", value_vars=["on_time_rate", "fill_rate_units", "perfect_order_rate", "carrier_delay_rate"],
                     var_name="rate", value_name="value")
    L.chart(px.line(trend, x="week", y="value", color="rate", markers=True, title="Weekly rates",
                    labels={"week": "Week of", "value": ""}).update_yaxes(tickformat=".0%"))

COLUMNS = {"key": None, "orders": st.column_config.NumberColumn("Orders"),
           "order_cycle_hours": st.column_config.NumberColumn("Cycle (h)", format="%.1f"),
           "on_time_rate": st.column_config.NumberColumn("On time", format="percent"),
           "fill_rate_units": st.column_config.NumberColumn("Fill rate", format="percent"),
           "perfect_order_rate": st.column_config.NumberColumn("Perfect", format="percent"),
           "split_shipment_rate": st.column_config.NumberColumn("Split", format="percent"),
           "carrier_delay_rate": st.column_config.NumberColumn("Delayed", format="percent"),
           "pickup_ready_hours": st.column_config.NumberColumn("Pickup ready (h)", format="%.1f"),
           "shipping_cost_per_order": st.column_config.NumberColumn("Ship cost / order", format="dollar")}
by_location, by_carrier = st.columns(2)
for col, grain, chosen in ((by_location, "location", f.locations), (by_carrier, "carrier", ())):
    rows = mart[mart["grain"] == grain]
    if chosen:
        rows = rows[rows["key"].isin(chosen)]
    with col:
        st.subheader(f"By {grain}")
        L.chart(px.bar(rows, x="key", y=["on_time_rate", "carrier_delay_rate"], barmode="group",
                       labels={"key": "", "value": "", "variable": ""}).update_yaxes(tickformat=".0%"))
        L.table(rows[["key", *[c for c in COLUMNS if c != "key"]]].rename(columns={"key": grain.title()}),
                column_config={k: v for k, v in COLUMNS.items() if k != "key"})
channels = mart[mart["grain"] == "channel"]
if f.channels:
    channels = channels[channels["key"].isin(f.channels)]
st.subheader("By channel")
L.table(channels[["key", *[c for c in COLUMNS if c != "key"]]].rename(columns={"key": "Channel"}),
        column_config={k: v for k, v in COLUMNS.items() if k != "key"})
