"""Manager — Returns & feedback: what comes back and why, what it costs, and how customers feel about it."""

from datetime import UTC, datetime, time, timedelta

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboards import data
from dashboards import layout as L

f = L.page("Returns & feedback", "What comes back and why, what does it cost, and are customers happy?", asset="kpi_feedback",
           day_column="period_start", day_asset="kpi_sales")
returns = L.need("kpi_returns", "return figures")
feedback = L.need("kpi_feedback", "feedback figures")
if returns is None and feedback is None:
    st.stop()

tiles: list[L.Tile] = []
if returns is not None:
    cats = returns[returns["grain"] == "category"]
    if f.categories:
        cats = cats[cats["key"].isin(f.categories)]
    s = cats.sum(numeric_only=True)
    tiles += [L.Tile("Return rate", L.pct(L.ratio(s["returned_units"], s["units_fulfilled"])), lower_is_better=True),
              L.Tile("Refunds", L.money(s["refund_amount"])),
              L.Tile("Restocked", L.pct(L.ratio(s["restock_units"], s["returned_units"]))),
              L.Tile("Written off", L.money(s["write_off_value"]))]


def satisfaction(rows: pd.DataFrame) -> tuple[float, float]:
    s = rows.sum(numeric_only=True)
    return L.ratio(s["satisfied"], s["responses"]), 100 * L.ratio(s["promoters"] - s["detractors"], s["nps_responses"])


if feedback is not None:
    weeks = feedback[feedback["grain"] == "week"].assign(week=lambda d: pd.to_datetime(d["period_start"]).dt.date)
    prev_start, _ = f.previous()
    csat, nps = satisfaction(weeks[(weeks["week"] >= f.start) & (weeks["week"] <= f.end)])
    csat0, nps0 = satisfaction(weeks[(weeks["week"] >= prev_start) & (weeks["week"] < f.start)])
    tiles += [L.Tile("CSAT", L.pct(csat), L.change(csat, csat0, points=True)),
              L.Tile("NPS", L.num(nps, 1), None if pd.isna(nps) or pd.isna(nps0) else f"{nps - nps0:+.1f}")]
L.tiles(tiles)
L.filters_note(f, "Returns: the chosen categories over the history the mart covers. CSAT/NPS: weeks starting in the period.")

if returns is not None:
    left, right = st.columns(2)
    with left:
        reasons = returns[returns["grain"] == "reason"].sort_values("returned_units")
        L.chart(px.bar(reasons, x="returned_units", y="key", orientation="h", title="Units returned by reason",
                       labels={"key": "", "returned_units": "Units"}))
    with right:
        L.chart(px.bar(cats.sort_values("return_rate"), x="return_rate", y="key", orientation="h", title="Return rate by category",
                       labels={"key": "", "return_rate": ""}).update_xaxes(tickformat=".1%"))
    L.table(cats[["key", "returns", "returned_units", "units_fulfilled", "return_rate", "refund_amount", "restock_rate",
                  "write_off_value"]].rename(columns={"key": "Category"}),
            column_config={"return_rate": st.column_config.NumberColumn("Return rate", format="percent"),
                           "restock_rate": st.column_config.NumberColumn("Restock rate", format="percent"),
                           "refund_amount": st.column_config.NumberColumn("Refunds", format="dollar"),
                           "write_off_value": st.column_config.NumberColumn("Write-off", format="dollar")})

if feedback is not None:
    trend = weeks[(weeks["week"] >= f.start - timedelta(days=6)) & (weeks["week"] <= f.end)]
    left, right = st.columns(2)
    with left:
        L.chart(px.line(trend, x="week", y="csat", markers=True, title="CSAT per week",
                        labels={"week": "Week of", "csat": ""}).update_yaxes(tickformat=".0%"))
    with right:
        L.chart(px.line(trend, x="week", y="nps", markers=True, title="NPS per week", labels={"week": "Week of", "nps": ""}))


@st.cache_data(ttl=timedelta(minutes=2), show_spinner=False)
def comments(url: str, start: datetime, end: datetime, channels: tuple[str, ...]) -> pd.DataFrame:
    from sqlalchemy import select

    from om_core.models import Channel, Feedback, Order

    stmt = (select(Feedback.created_at.label("given"), Order.number.label("order"), Channel.code.label("channel"),
                   Feedback.rating, Feedback.would_recommend, Feedback.comment)
            .join(Order, Order.id == Feedback.order_id).join(Channel, Channel.id == Order.channel_id)
            .where(Feedback.comment.is_not(None), Feedback.created_at >= start, Feedback.created_at < end)
            .order_by(Feedback.created_at.desc()).limit(100))
    if channels:
        stmt = stmt.where(Channel.code.in_(channels))
    with data.database().read() as s:
        return pd.DataFrame(s.execute(stmt).mappings().all(), columns=["given", "order", "channel", "rating", "would_recommend", "comment"])


st.subheader("Latest comments")
db = data.database()
if db is None:
    st.info("No store database here — comments come from the core database.")
else:
    start = datetime.combine(f.start, time(), tzinfo=UTC)
    found = comments(db.url, start, start + timedelta(days=f.days), f.channels)
    if found.empty:
        st.caption("No comments in this period.")
    else:
        L.table(found, column_config={"rating": st.column_config.NumberColumn("Rating", format="%d ★")})
