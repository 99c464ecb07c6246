"""Manager — Overview: how is the store selling, against the previous period of the same length?"""

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboards import layout as L
from dashboards import sales

f = L.page("Overview", "How is the store selling — and is it better than the period before?", asset="kpi_sales",
           day_column="period_start")
prev_start, prev_end = f.previous()
df = sales.daily(f, prev_start, f.end)
if df is None:
    L.empty("sales figures", sales.source(f))
    st.stop()

df["day"] = pd.to_datetime(df["day"])
now, before = df[df["day"] >= pd.Timestamp(f.start)], df[df["day"] < pd.Timestamp(f.start)]
cur, prev = sales.totals(now), sales.totals(before)
L.tiles([
    L.Tile("Revenue", L.money(cur["revenue"], 0), L.change(cur["revenue"], prev["revenue"])),
    L.Tile("Orders", L.num(cur["orders"]), L.change(cur["orders"], prev["orders"])),
    L.Tile("Average order value", L.money(cur["aov"]), L.change(cur["aov"], prev["aov"])),
    L.Tile("Gross margin", L.money(cur["gross_margin"], 0), L.change(cur["gross_margin"], prev["gross_margin"])),
    L.Tile("Margin rate", L.pct(cur["gross_margin_rate"]), L.change(cur["gross_margin_rate"], prev["gross_margin_rate"], points=True)),
    L.Tile("Units", L.num(cur["units"]), L.change(cur["units"], prev["units"])),
])
L.filters_note(f, f"Compared with {prev_start} → {prev_end}. Source: `{sales.source(f)}`.")
if now.empty:
    st.info("No sales in this period for the chosen filters.")
    st.stop()

left, right = st.columns([2, 1])
with left:
    fig = px.area(now, x="day", y="revenue", color="channel", title="Revenue per day by channel (dotted: previous period, total)",
                  labels={"day": "", "revenue": "Revenue"})
    earlier = before.groupby("day", as_index=False)["revenue"].sum()
    fig.add_scatter(x=earlier["day"] + pd.Timedelta(days=f.days), y=earlier["revenue"], name="previous period",
                    line=dict(color="#444", dash="dot"), hovertext=earlier["day"].dt.strftime("%Y-%m-%d"))
    L.chart(fig)
with right:
    mix = now.groupby("channel", as_index=False)["revenue"].sum()
    L.chart(px.pie(mix, names="channel", values="revenue", hole=0.5, title="Channel mix (revenue)"))

both = sales.breakdown(f)
for by, label in (("category", "Categories"), ("location", "Locations")):
    st.subheader(f"{label}: top and bottom by revenue")
    if both is None:
        L.empty("daily demand", "daily_demand")
        continue
    b = both[(both["by"] == by) & (both["revenue"] > 0)].drop(columns="by").assign(vs_previous=lambda d: d["revenue"] / d["previous_revenue"].where(d["previous_revenue"] > 0) - 1)
    chart_col, table_col = st.columns([2, 1])
    with chart_col:
        L.chart(px.bar(b.sort_values("revenue"), x="revenue", y="name", orientation="h", labels={"name": "", "revenue": "Revenue"}))
    with table_col:
        config = {"revenue": st.column_config.NumberColumn("Revenue", format="dollar"),
                  "vs_previous": st.column_config.NumberColumn("vs previous", format="percent"),
                  "previous_revenue": None, "name": st.column_config.TextColumn(by.title())}
        st.caption("Top 5")
        L.table(b.head(5), column_config=config)
        st.caption("Bottom 5")
        L.table(b.tail(5).iloc[::-1], column_config=config)
