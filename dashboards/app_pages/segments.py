"""Marketing — Segments & offers: who are our customers (RFM, cohorts) and who should get which promotion?"""

from datetime import timedelta

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboards import data
from dashboards import layout as L

f = L.page("Segments & offers", "Who are our customers, do they come back, and who should get which offer?",
           asset="customer_segments", day_column="last_order_date")
seg = L.need("customer_segments", "customer segments")
if seg is not None:
    champions = (seg["segment"] == "champions").sum()
    L.tiles([L.Tile("Customers with an order", L.num(len(seg))),
             L.Tile("Champions", L.num(champions), f"{L.ratio(champions, len(seg)):.0%} of customers" if len(seg) else None),
             L.Tile("At risk", L.num((seg["segment"] == "at_risk").sum()), lower_is_better=True),
             L.Tile("Average spend", L.money(seg["monetary"].mean()))])
    sizes = seg.groupby("segment", as_index=False).agg(customers=("customer_id", "count"), revenue=("monetary", "sum"))
    left, right = st.columns(2)
    with left:
        L.chart(px.bar(sizes.sort_values("customers", ascending=False), x="segment", y="customers", hover_data=["revenue"],
                       title="Customers per segment", labels={"segment": ""}))
    with right:
        grid = (seg.pivot_table(index="f_score", columns="r_score", values="customer_id", aggfunc="count", fill_value=0)
                .reindex(index=range(5, 0, -1), columns=range(1, 6), fill_value=0))
        L.chart(px.imshow(grid.values, x=[f"R{r}" for r in grid.columns], y=[f"F{f}" for f in grid.index], text_auto=True,
                          color_continuous_scale="Blues", aspect="auto", title="Customers by recency (R) and frequency (F) score",
                          labels={"color": "customers"}))

st.subheader("Cohorts")
cohorts = L.need("customer_cohorts", "cohorts")
if cohorts is not None and len(cohorts):
    c = cohorts.assign(cohort=pd.to_datetime(cohorts["cohort_month"]).dt.strftime("%Y-%m"))
    grid = c.pivot_table(index="cohort", columns="months_since", values="retention")
    left, right = st.columns([2, 1])
    with left:
        L.chart(px.imshow(grid.values, x=[str(m) for m in grid.columns], y=list(grid.index), text_auto=".0%",
                          color_continuous_scale="Greens", aspect="auto", title="Retention by first-purchase month",
                          labels={"x": "Months since first purchase", "y": "Cohort", "color": ""})
                .update_yaxes(type="category").update_xaxes(type="category"))
    with right:
        ltv = c.groupby("cohort", as_index=False).agg(customers=("cohort_size", "first"), ltv_to_date=("ltv_to_date", "max"),
                                                      est_ltv_12m=("est_ltv_12m", "first"))
        L.table(ltv, column_config={"ltv_to_date": st.column_config.NumberColumn("LTV to date", format="dollar"),
                                    "est_ltv_12m": st.column_config.NumberColumn("Est. 12-month LTV", format="dollar")})


@st.cache_data(ttl=timedelta(minutes=5), show_spinner=False)
def promotion_names(url: str) -> dict[int, str]:
    from sqlalchemy import select

    from om_core.models import Promotion

    with data.database().read() as s:
        return {pid: name for pid, name in s.execute(select(Promotion.id, Promotion.name))}


st.subheader("Offer targets")
if not data.has("offer_targets"):
    L.empty("offer lists", "offer_targets")
    st.stop()
promos = data.query("offer_targets", "SELECT promotion_id, COUNT(*) AS customers, SUM(expected_uplift) AS uplift FROM {src} "
                    "GROUP BY 1 ORDER BY 1")
db = data.database()
names = promotion_names(db.url) if db is not None else {}
if promos.empty:
    st.info("No targeted offers in the latest run.")
    st.stop()
promotion = st.selectbox("Promotion", promos["promotion_id"].tolist(), key="of_promotion",
                         format_func=lambda p: f"{names.get(p, 'Promotion')} (#{p})")
segmented = data.has("customer_segments")
targets = data.query("offer_targets", f"""
    SELECT t.customer_id, t.score, t.expected_uplift{', s.segment' if segmented else ''}
    FROM {{src}} t {'LEFT JOIN {customer_segments} s USING (customer_id)' if segmented else ''}
    WHERE t.promotion_id = ? ORDER BY t.score DESC""", [promotion], also=["customer_segments"] if segmented else [])
consent = data.consenting_customers()
reachable = targets[targets["customer_id"].isin(consent)] if consent is not None else targets.iloc[0:0]
row = promos[promos["promotion_id"] == promotion].iloc[0]
L.tiles([L.Tile("Targeted customers", L.num(row["customers"])),
         L.Tile("Reachable (opted in)", L.num(len(reachable)) if consent is not None else "–"),
         L.Tile("Expected uplift", L.num(row["uplift"], 1))])
L.table(reachable.head(200), column_config={"score": st.column_config.NumberColumn(format="%.3f"),
                                            "expected_uplift": st.column_config.NumberColumn(format="%.3f")})
if consent is None:
    st.info("No store database here — marketing consent comes from the core, so there is no list to download.")
else:
    st.download_button("Download the target list (CSV)", data=lambda: reachable.to_csv(index=False), key="of_download",
                       file_name=f"offer_{promotion}_targets.csv", mime="text/csv", icon=":material/download:")
    st.caption("The list holds only customers who opted in to marketing (as the store database says now).")
