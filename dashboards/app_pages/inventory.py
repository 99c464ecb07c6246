"""Manager — Inventory: is the stock working (turnover, days of supply) and where are stockouts, lost sales and dead stock?"""

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboards import layout as L

f = L.page("Inventory", "Is the stock working — where are the stockouts, lost sales and stock that does not sell?",
           asset="kpi_inventory", day_column="period_start", day_asset="kpi_sales")
mart = L.need("kpi_inventory", "inventory figures")
if mart is None:
    st.stop()


def pick(grain: str, chosen: tuple[str, ...]) -> pd.DataFrame:
    rows = mart[mart["grain"] == grain]
    return rows[rows["key"].isin(chosen)] if chosen else rows


def summary(rows: pd.DataFrame) -> dict[str, float]:
    s = rows.sum(numeric_only=True)
    days = rows["days_tracked"].max() if len(rows) else 0
    return {"turnover": L.ratio(s["cogs"], s["avg_inventory_value"]),
            "days_of_supply": L.ratio(s["closing_on_hand"], L.ratio(s["units_sold"], days)),
            "stockout_rate": L.ratio(s["stockout_days"], s["tracked_days"]),
            "lost_sales_value": s["lost_sales_value"], "overstock_value": s["overstock_value"],
            "aged_inventory_value": s["aged_inventory_value"], "closing_inventory_value": s["closing_inventory_value"]}


# Totals from one grain: the chosen categories, else the chosen locations, else every location.
basis = pick("category", f.categories) if f.categories else pick("location", f.locations)
t = summary(basis)
L.tiles([
    L.Tile("Stock value", L.money(t["closing_inventory_value"], 0)),
    L.Tile("Turnover", L.num(t["turnover"], 2), help="COGS / average inventory value over the days tracked"),
    L.Tile("Days of supply", L.num(t["days_of_supply"], 0)),
    L.Tile("Stockout rate", L.pct(t["stockout_rate"])),
    L.Tile("Lost sales", L.money(t["lost_sales_value"], 0)),
    L.Tile("Overstock", L.money(t["overstock_value"], 0), help="Stock beyond 90 days of supply, at cost"),
    L.Tile("Aged stock", L.money(t["aged_inventory_value"], 0), help="Stock with no sale in 60 days, at cost"),
])
L.filters_note(f, "Tiles: the chosen categories, else the chosen locations, else the whole store, over the history the "
                  "mart covers; the weekly trend follows the date range.")

weeks = mart[mart["grain"] == "week"].copy()
weeks["week"] = pd.to_datetime(weeks["period_start"]).dt.date
weeks = weeks[(weeks["week"] >= f.start - pd.Timedelta(days=6)) & (weeks["week"] <= f.end)]
left, right = st.columns(2)
with left:
    L.chart(px.bar(weeks, x="week", y="lost_sales_value", title="Lost sales per week (value)",
                   labels={"week": "Week of", "lost_sales_value": ""}))
with right:
    L.chart(px.line(weeks, x="week", y="stockout_rate", markers=True, title="Stockout rate per week",
                    labels={"week": "Week of", "stockout_rate": ""}).update_yaxes(tickformat=".0%"))

COLUMNS = {"turnover": st.column_config.NumberColumn("Turnover", format="%.2f"),
           "days_of_supply": st.column_config.NumberColumn("Days of supply", format="%.0f"),
           "stockout_rate": st.column_config.NumberColumn("Stockout rate", format="percent"),
           "lost_sales_value": st.column_config.NumberColumn("Lost sales", format="dollar"),
           "overstock_value": st.column_config.NumberColumn("Overstock", format="dollar"),
           "aged_inventory_value": st.column_config.NumberColumn("Aged", format="dollar"),
           "closing_inventory_value": st.column_config.NumberColumn("Stock value", format="dollar")}
for grain, chosen in (("category", f.categories), ("location", f.locations)):
    rows = pick(grain, chosen)
    st.subheader(f"By {grain}")
    chart_col, table_col = st.columns([1, 2])
    with chart_col:
        melted = rows.melt(id_vars="key", value_vars=["lost_sales_value", "overstock_value", "aged_inventory_value"])
        L.chart(px.bar(melted, x="key", y="value", color="variable", labels={"key": "", "value": "", "variable": ""}))
    with table_col:
        L.table(rows[["key", *COLUMNS]].rename(columns={"key": grain.title()}), column_config=COLUMNS)

st.subheader("SKUs to act on")
skus = mart[mart["grain"] == "sku"]
worst = skus.assign(at_stake=skus["lost_sales_value"] + skus["overstock_value"] + skus["aged_inventory_value"])
L.table(worst.sort_values("at_stake", ascending=False).head(20)[["key", *COLUMNS]].rename(columns={"key": "SKU"}),
        column_config=COLUMNS)
