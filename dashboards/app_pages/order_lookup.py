"""Operations — Order lookup: where is this order, and what happened to it (events, shipments, tracking, returns)?"""

import pandas as pd
import plotly.express as px
import streamlit as st
from sqlalchemy import or_, select

from dashboards import data
from dashboards import layout as L
from om_core.models import (
    Channel,
    Customer,
    Location,
    Order,
    OrderEvent,
    OrderLine,
    ReturnLine,
    ReturnRequest,
    Shipment,
    TrackingEvent,
)

st.title("Order lookup")
st.caption("Where is this order, and what happened to it?  \nLive from the store database (read only).")
db = data.database()
if db is None:
    st.info("No store database yet — create one with `storeom demo --sample` or import your history (`storeom import`).")
    st.stop()

by_col, query_col = st.columns([1, 3])
by = by_col.radio("Find", ["Order", "Customer"], key="ol_by", horizontal=True)
query = query_col.text_input("Order number, customer id or customer email", key="ol_query",
                             placeholder="SO-…, an external reference or an order id" if by == "Order" else "customer id or email")
if not query.strip():
    st.stop()
q = query.strip()

with db.read() as s:
    order = None
    if by == "Order":
        matches = [Order.number == q, Order.external_ref == q] + ([Order.id == int(q)] if q.isdigit() and len(q) < 16 else [])
        order = s.scalar(select(Order).where(or_(*matches)).order_by(Order.number != q).limit(1))
        if order is None:
            st.warning(f"No order matches {q!r}.")
            st.stop()
    else:
        customer = (s.get(Customer, int(q)) if q.isdigit() and len(q) < 16
                    else s.scalar(select(Customer).where(Customer.email == q.lower())))
        if customer is None:
            st.warning(f"No customer matches {q!r}.")
            st.stop()
        orders = s.execute(select(Order.number, Order.placed_at, Order.status, Order.total).where(Order.customer_id == customer.id)
                           .order_by(Order.placed_at.desc()).limit(200)).all()
        name = " ".join(p for p in (customer.first_name, customer.last_name) if p) or customer.email or f"#{customer.id}"
        st.subheader(f"Customer {customer.id}: {name}")
        if not orders:
            st.info("This customer has no orders.")
            st.stop()
        L.table(pd.DataFrame(orders, columns=["order", "placed_at", "status", "total"]))
        number = st.selectbox("Order", [o.number for o in orders], key="ol_order")
        order = s.scalar(select(Order).where(Order.number == number))

    channel = s.get(Channel, order.channel_id).code
    lines = s.scalars(select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.line_no)).all()
    events = s.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.at, OrderEvent.id)).all()
    shipments = s.scalars(select(Shipment).where(Shipment.order_id == order.id).order_by(Shipment.id)).all()
    locations = {l.id: l.code for l in s.scalars(select(Location).where(Location.id.in_({sh.location_id for sh in shipments})))}
    tracking = s.scalars(select(TrackingEvent).where(TrackingEvent.shipment_id.in_([sh.id for sh in shipments]))
                         .order_by(TrackingEvent.at)).all()
    returns = s.scalars(select(ReturnRequest).where(ReturnRequest.order_id == order.id).order_by(ReturnRequest.id)).all()
    return_units = {r.id: sum(l.quantity for l in s.scalars(select(ReturnLine).where(ReturnLine.return_id == r.id))) for r in returns}
    s.expunge_all()  # keep the loaded rows readable after the read-only session ends

st.subheader(f"Order {order.number}")
L.tiles([L.Tile("Status", order.status.replace("_", " ")), L.Tile("Channel", channel), L.Tile("Total", L.money(order.total)),
         L.Tile("Placed", f"{order.placed_at:%Y-%m-%d}"), L.Tile("Delivery", order.delivery_method)], per_row=5)
st.caption(f"Placed {order.placed_at:%Y-%m-%d %H:%M} UTC · customer {order.customer_id or 'anonymous'} · {order.currency}"
           + (" · on hold" if order.hold else ""))
L.table(pd.DataFrame([{"line": l.line_no, "sku": l.sku, "name": l.name, "ordered": l.quantity, "cancelled": l.quantity_cancelled,
                       "fulfilled": l.quantity_fulfilled, "delivered": l.quantity_delivered, "returned": l.quantity_returned,
                       "backordered": l.quantity_backordered, "line_total": float(l.line_total)} for l in lines]),
        column_config={"line_total": st.column_config.NumberColumn("Line total", format="dollar")})

timeline = [{"at": e.at, "source": "order", "what": e.kind.replace("_", " "), "detail": e.actor or e.channel or ""} for e in events]
for sh in shipments:
    where = f"{sh.number} from {locations.get(sh.location_id, '?')}" + (f" via {sh.carrier}" if sh.carrier else "")
    for step, at in (("shipment created", sh.created_at), ("packed", sh.packed_at), ("dispatched", sh.dispatched_at),
                     ("ready for pickup", sh.ready_at), ("delivered", sh.delivered_at)):
        if at is not None:
            timeline.append({"at": at, "source": "shipment", "what": step, "detail": where})
timeline += [{"at": t.at, "source": "tracking", "what": t.kind.replace("_", " "),
              "detail": " · ".join(p for p in (t.description, t.location_text) if p)} for t in tracking]
for r in returns:
    for step, at in (("return opened", r.opened_at), ("return received", r.received_at), ("refunded", r.refunded_at)):
        if at is not None:
            detail = f"{r.number}: {return_units[r.id]} unit(s), {r.reason_code}" + (f", refund {L.money(r.refund_amount)}" if step == "refunded" else "")
            timeline.append({"at": at, "source": "return", "what": step, "detail": detail})

st.subheader("Timeline")
if timeline:
    tl = pd.DataFrame(timeline).sort_values("at", kind="stable")
    tl["at"] = pd.to_datetime(tl["at"], utc=True)
    L.chart(px.scatter(tl, x="at", y="source", color="source", hover_data=["what", "detail"], symbol="source",
                       labels={"at": "", "source": ""}).update_traces(marker_size=12).update_layout(showlegend=False, height=260))
    L.table(tl.assign(at=tl["at"].dt.strftime("%Y-%m-%d %H:%M")))
else:
    st.caption("Nothing recorded yet.")
if shipments:
    st.caption("Shipments: " + "; ".join(f"{sh.number} {sh.status.replace('_', ' ')}"
                                         + (f", tracking {sh.tracking_number}" if sh.tracking_number else "")
                                         + (" (delayed)" if sh.delayed else "") for sh in shipments))
