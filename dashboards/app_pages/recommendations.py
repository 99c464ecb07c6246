"""Marketing — Recommendations: what do we suggest to a customer and why, does it beat 'most popular', and the feed."""

import plotly.express as px
import streamlit as st

from dashboards import data
from dashboards import layout as L

f = L.page("Recommendations", "What should we show each customer, why, and is it better than the best-sellers?",
           asset="recommendations")
if not data.has("recommendations"):
    L.empty("recommendations", "recommendations")
    st.stop()

st.subheader("Customer")
first = data.query("recommendations", "SELECT MIN(customer_id) AS c FROM {src}")["c"].iloc[0]
customer = st.number_input("Customer id", min_value=1, step=1, value=int(first) if first == first and first else 1, key="rc_customer")
profile = data.query("customer_segments", "SELECT segment, rfm, recency_days, frequency, monetary FROM {src} WHERE customer_id = ?",
                     [customer])
if profile is not None and len(profile):
    p = profile.iloc[0]
    L.tiles([L.Tile("Segment", str(p["segment"])), L.Tile("Last order", f"{int(p['recency_days'])} days ago"),
             L.Tile("Orders", L.num(p["frequency"])), L.Tile("Spent", L.money(p["monetary"]))])
history_col, recs_col = st.columns(2)
with history_col:
    st.caption("Purchase history (latest first)")
    history = data.query("stg_order_lines", "SELECT CAST(order_date AS DATE) AS day, order_id, sku, category, units, revenue "
                         "FROM {src} WHERE customer_id = ? ORDER BY order_date DESC, order_id DESC LIMIT 50",
                         [customer])
    if history is None:
        L.empty("order lines", "stg_order_lines")
    elif history.empty:
        st.caption("No purchases.")
    else:
        L.table(history, column_config={"revenue": st.column_config.NumberColumn("Revenue", format="dollar"),
                                        "day": st.column_config.DateColumn("Day")})
with recs_col:
    st.caption("Recommendations")
    recs = data.query("recommendations", "SELECT rank, sku, kind, score, reason FROM {src} WHERE customer_id = ? ORDER BY rank",
                      [customer])
    if recs.empty:
        st.info("No recommendations for this customer (unknown id, or nothing new to suggest).")
    else:
        L.table(recs, column_config={"score": st.column_config.NumberColumn("Score", format="%.3f"),
                                     "reason": st.column_config.TextColumn("Why", width="large")})

st.subheader("Related products")
if not data.has("related_products"):
    L.empty("related products", "related_products")
else:
    skus = data.query("related_products", "SELECT DISTINCT sku FROM {src} ORDER BY sku")["sku"].tolist()
    sku = st.selectbox("SKU (type to search)", skus, key="rc_sku")
    related = data.query("related_products", "SELECT rank, related_sku, support, confidence, lift FROM {src} WHERE sku = ? ORDER BY rank",
                         [sku])
    L.table(related, column_config={"support": st.column_config.NumberColumn(format="%.4f"),
                                    "confidence": st.column_config.NumberColumn(format="percent"),
                                    "lift": st.column_config.NumberColumn(format="%.2f")})

left, right = st.columns(2)
with left:
    st.subheader("Model vs popularity")
    ev = L.need("recommendation_evaluation", "evaluation")
    if ev is not None:
        long = ev.melt(id_vars=["model", "scenario"], value_vars=["precision_at_10", "recall_at_10", "ndcg_at_10", "coverage"],
                       var_name="metric")
        L.chart(px.bar(long, x="metric", y="value", color="model", barmode="group", facet_col="scenario",
                       labels={"metric": "", "value": ""}))
        L.table(ev)
with right:
    st.subheader("Segment sizes")
    seg = data.query("customer_segments", "SELECT segment, COUNT(*) AS customers FROM {src} GROUP BY 1 ORDER BY 2 DESC")
    if seg is None:
        L.empty("customer segments", "customer_segments")
    else:
        L.chart(px.bar(seg, x="segment", y="customers", labels={"segment": ""}))

st.subheader("Recommendation feed")
consent = data.consenting_customers()
if consent is None:
    st.info("No store database here — marketing consent comes from the core, so there is no feed to download.")
else:
    per_customer = data.query("recommendations", "SELECT customer_id, COUNT(*) AS n FROM {src} GROUP BY 1")
    opted = per_customer[per_customer["customer_id"].isin(consent)]
    st.caption(f"Only customers who opted in to marketing (as the store database says now): {len(opted):,} customers, "
               f"{int(opted['n'].sum()):,} rows.")

    def feed() -> str:
        recs = data.load("recommendations", ["customer_id", "sku", "rank", "score", "reason", "kind"])
        return recs[recs["customer_id"].isin(consent)].sort_values(["customer_id", "rank"]).to_csv(index=False)

    st.download_button("Download the consent-filtered feed (CSV)", file_name="recommendations_feed.csv", mime="text/csv",
                       data=feed, key="rc_feed", icon=":material/download:")
