"""Merchandiser — Reorder: what should be bought today and why; approve it into draft purchase orders."""

from decimal import Decimal

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboards import data
from dashboards import layout as L
from om_core.cli_reorder import suggestion_computed_at
from om_core.errors import StoreOMError

PRIORITIES = ["urgent", "high", "medium", "low"]

f = L.page("Reorder", "What should we buy today, and why?", asset="reorder_suggestions", day_column="as_of")
result = st.session_state.pop("ro_result", None)
if result and "error" in result:
    st.error(f"Nothing was ordered: {result['error']}")
    if result.get("details"):
        st.json(result["details"], expanded=False)
elif result:
    created = pd.DataFrame(result["created"])
    st.success(f"Created {len(created)} draft purchase order(s): {', '.join(created['purchase_order'])} — "
               f"{int(created['units'].sum())} units, {L.money(created['value'].sum())}. A buyer reviews and sends them.")
    L.table(created, column_config={"value": st.column_config.NumberColumn("Value", format="dollar")})
sug = L.need("reorder_suggestions", "reorder suggestions")
if sug is None:
    st.stop()

approved: set[tuple[str, str]] = st.session_state.setdefault("ro_approved", set())
pick_supplier, pick_priority = st.columns(2)
suppliers = pick_supplier.multiselect("Supplier", sorted(sug["supplier"].dropna().unique()), key="ro_suppliers", placeholder="All suppliers")
priorities = pick_priority.multiselect("Priority", PRIORITIES, key="ro_priorities", placeholder="All priorities")
view = sug
for column, chosen in (("location", f.locations), ("category", f.categories), ("supplier", suppliers), ("priority", priorities)):
    if chosen:
        view = view[view[column].isin(chosen)]
done = pd.Series([(s, l) in approved for s, l in zip(view["sku"], view["location"], strict=True)], index=view.index, dtype=bool)
view = view[~done].sort_values(["priority_rank", "sku", "location"]).reset_index(drop=True)



def suggestions_as_of():  # type: ignore[no-untyped-def]
    """The day the suggestions were computed for (the service refuses lines ordered since then)."""
    if "as_of" in sug.columns and len(sug):
        return pd.Timestamp(sug["as_of"].max()).date()
    day, _ = data.as_of("daily_demand", "day")
    return day


as_of = suggestions_as_of()
horizon = pd.Timestamp(as_of or pd.Timestamp.now().date()) + pd.Timedelta(days=7)
soon = view["expected_stockout_date"].notna() & (pd.to_datetime(view["expected_stockout_date"]) <= horizon)
L.tiles([
    L.Tile("Suggestions", L.num(len(view))),
    L.Tile("Urgent", L.num((view["priority"] == "urgent").sum())),
    L.Tile("Units to order", L.num(view["suggested_qty"].sum())),
    L.Tile("Estimated cost", L.money(view["estimated_cost"].sum(), 0)),
    L.Tile("Stock out within 7 days", L.num(soon.sum())),
])
if done.any():
    st.caption(f"{int(done.sum())} suggestion(s) approved in this session are hidden until the next pipeline run.")

COLUMNS = ["priority", "sku", "location", "supplier", "suggested_qty", "estimated_cost", "expected_stockout_date", "reason",
           "days_of_cover", "inventory_position", "reorder_point", "order_up_to", "category"]
select_all = st.checkbox("Select every suggestion shown", key="ro_all")
# The key follows the filters and approvals, so a selection never points at rows of another view.
table_key = f"ro_table_{abs(hash((tuple(f.locations), tuple(f.categories), tuple(suppliers), tuple(priorities))))}_{len(approved)}"
event = st.dataframe(view[COLUMNS], width="stretch", hide_index=True, on_select="rerun", selection_mode="multi-row",
                     key=table_key, column_config={
                         "estimated_cost": st.column_config.NumberColumn("Est. cost", format="dollar"),
                         "days_of_cover": st.column_config.NumberColumn("Days of cover", format="%.1f"),
                         "expected_stockout_date": st.column_config.DateColumn("Stockout by"),
                         "suggested_qty": st.column_config.NumberColumn("Order qty"),
                         "reason": st.column_config.TextColumn("Why", width="large")})
chosen = view if select_all else view.iloc[list(event.selection.rows)]


def approve(rows: pd.DataFrame) -> None:
    from om_core.models import Location, Supplier
    from om_core.services.reorder import approve_reorder

    lines = [{"sku": r.sku, "location": r.location, "quantity": int(r.suggested_qty), "supplier": r.supplier or None}
             for r in rows.itertuples()]
    db = data.database()
    if db is None:
        st.session_state["ro_result"] = {"error": "No store database to write purchase orders to."}
        return
    try:
        with db.transaction() as session:
            pos = approve_reorder(session, lines, actor="dashboard", as_of=as_of, computed_at=suggestion_computed_at(sug))
            created = [{"purchase_order": p.number, "supplier": session.get(Supplier, p.supplier_id).code,
                        "location": session.get(Location, p.location_id).code, "status": p.status, "lines": len(p.lines),
                        "units": sum(l.quantity_ordered for l in p.lines),
                        "value": float(sum((l.unit_cost * l.quantity_ordered for l in p.lines), Decimal("0")))}
                       for p in pos]
    except StoreOMError as exc:
        st.session_state["ro_result"] = {"error": exc.message, "details": exc.details}
        return
    approved.update((r.sku, r.location) for r in rows.itertuples())
    st.session_state["ro_result"] = {"created": created}
    st.session_state["ro_all"] = False


st.button(f"Approve {len(chosen)} suggestion(s) as draft purchase orders", type="primary", disabled=chosen.empty,
          key="ro_approve", on_click=approve, args=(chosen,))

st.subheader("Policy backtest")
bt = data.load("reorder_policy_backtest")
if bt is None:
    L.empty("policy backtest", "reorder_policy_backtest")
else:
    left, right = st.columns([1, 2])
    with left:
        L.chart(px.bar(bt, x="policy", y=["fill_rate", "target_fill_rate"], barmode="group", title="Fill rate vs target",
                       labels={"value": "", "policy": "", "variable": ""}).update_yaxes(tickformat=".0%"))
    with right:
        L.table(bt, column_config={"fill_rate": st.column_config.NumberColumn("Fill rate", format="percent"),
                                   "target_fill_rate": st.column_config.NumberColumn("Target", format="percent"),
                                   "avg_inventory_value": st.column_config.NumberColumn("Avg stock value", format="dollar")})
