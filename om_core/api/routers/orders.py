"""Orders: quote, place (Idempotency-Key required), read with timeline and tracking, list, modify,
cancel, hold/release, route. A channel key works on its own channel's orders only."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import AwareDatetime, Field
from sqlalchemy import select

from om_core.api.routers._common import (
    MAX_ID,
    write,
    in_writer,
    ApiProblem,
    Limit,
    Offset,
    allow,
    database,
    ok,
    order_for,
    page,
    require_channel,
    strip_payment,
)
from om_core.db import Database
from om_core.models import Channel, Order
from om_core.services import fulfilment, orders, payments
from om_core.services.apikeys import Principal
from om_core.validation import Input

router = APIRouter(tags=["orders"])

SELLERS = allow("channel", "manager")
READERS = allow("channel", "store_ops", "manager", "marketing")
MANAGERS = allow("manager")

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=100,
                                              description="Retrying with the same key returns the first result and writes nothing.")]


class ReasonIn(Input):
    reason: str = Field(min_length=1, max_length=300)


class RouteIn(Input):
    strategy: Literal["nearest_with_stock", "fewest_shipments", "lowest_cost"] | None = None


def scoped_key(who: Principal, key: str | None) -> str | None:
    """Idempotency keys are the caller's own: two keys' requests never collide."""
    return f"{who.prefix}:{key}" if key else None


def full_view(session: Any, who: Principal, order: Order) -> dict[str, Any]:
    view = orders.order_view(session, order)
    view["shipments"] = [fulfilment.shipment_view(session, s) for s in fulfilment.shipments_for(session, order)]
    return strip_payment(who, view)


def placed_view(session: Any, order: Order, channel: str) -> dict[str, Any]:
    """What placing answers: the order's number, status, totals and lines (as placed: no second read when
    this request placed it); the full view with timeline, payment and tracking is GET /v1/orders/{number}."""
    return {
        "number": order.number, "status": order.status, "channel": channel, "customer_id": order.customer_id,
        "placed_at": order.placed_at, "delivery": order.delivery_method, "currency": order.currency,
        "subtotal": order.subtotal, "discount_total": order.discount_total, "shipping_total": order.shipping_total,
        "tax_total": order.tax_total, "total": order.total, "promised_delivery_days": order.promised_delivery_days,
        "lines": orders.placed_lines(session, order),
    }


@router.post("/orders/quote", summary="Price and allocate an order without placing it")
def quote(body: orders.OrderIn, request: Request, who: Principal = Depends(SELLERS)):
    require_channel(who, body.channel)
    with request.app.state.db.read() as s:
        return ok(orders.quote(s, body).to_dict())


@router.post("/orders", status_code=201, summary="Place an order (Idempotency-Key header required)")
async def place(body: orders.OrderIn, request: Request, idempotency_key: IdempotencyKey = None, who: Principal = Depends(SELLERS)):
    # The busiest route: the database comes from the app's state, not from one more dependency to solve.
    require_channel(who, body.channel)
    if not idempotency_key or not idempotency_key.strip():
        raise ApiProblem(400, "idempotency_key_required", "POST /v1/orders needs an Idempotency-Key header (1-100 characters)",
                         errors=[{"field": "header.Idempotency-Key", "reason": "required"}])
    db = request.app.state.db

    def placed() -> dict[str, Any]:
        with write(db) as s:
            order = orders.place_order(s, body, idempotency_key=scoped_key(who, idempotency_key.strip()), actor=who.actor)
            return placed_view(s, order, body.channel)

    view = await in_writer(db, placed)
    return ok(view, 201, headers={"Location": f"/v1/orders/{view['number']}"})


@router.get("/orders/{number}", summary="Read an order with its status timeline, shipments and tracking")
def get_order(number: str, db: Database = Depends(database), who: Principal = Depends(READERS)):
    with db.read() as s:
        return ok(full_view(s, who, order_for(s, who, number)))


@router.get("/orders", summary="List orders (newest first)")
def list_orders(limit: Limit = 50, offset: Offset = 0, channel: str | None = Query(None, max_length=64),
                status: str | None = Query(None, max_length=24), customer_id: int | None = Query(None, ge=1, le=MAX_ID),
                placed_from: AwareDatetime | None = None, placed_to: AwareDatetime | None = None,
                db: Database = Depends(database), who: Principal = Depends(allow("channel", "manager", "marketing"))):
    if who.role == "channel":
        require_channel(who, channel or who.channel)
        channel = who.channel
    with db.read() as s:
        stmt = (select(Order.number, Order.status, Channel.code, Order.customer_id, Order.placed_at, Order.total, Order.currency)
                .join(Channel, Channel.id == Order.channel_id).order_by(Order.placed_at.desc(), Order.id.desc()).limit(limit).offset(offset))
        if channel is not None:
            stmt = stmt.where(Channel.code == channel)
        if status is not None:
            stmt = stmt.where(Order.status == status)
        if customer_id is not None:
            stmt = stmt.where(Order.customer_id == customer_id)
        if placed_from is not None:
            stmt = stmt.where(Order.placed_at >= placed_from)
        if placed_to is not None:
            stmt = stmt.where(Order.placed_at < placed_to)
        items = [{"number": r[0], "status": r[1], "channel": r[2], "customer_id": r[3], "placed_at": r[4], "total": r[5], "currency": r[6]}
                 for r in s.execute(stmt)]
    return ok(page(items, limit, offset))


@router.patch("/orders/{number}", summary="Modify an order (quantities, lines, delivery)")
def modify(number: str, body: orders.ModifyOrderIn, idempotency_key: IdempotencyKey = None, db: Database = Depends(database),
           who: Principal = Depends(SELLERS)):
    with write(db) as s:
        order_for(s, who, number)
        order = orders.modify_order(s, number, body, idempotency_key=scoped_key(who, idempotency_key), actor=who.actor)
        view = full_view(s, who, order)
    return ok(view)


@router.post("/orders/{number}/cancel", summary="Cancel an order")
def cancel(number: str, body: ReasonIn, db: Database = Depends(database), who: Principal = Depends(SELLERS)):
    with write(db) as s:
        order_for(s, who, number)
        view = full_view(s, who, orders.cancel_order(s, number, reason=body.reason, actor=who.actor))
    return ok(view)


@router.post("/orders/{number}/hold", summary="Put an order on hold")
def hold(number: str, body: ReasonIn, db: Database = Depends(database), who: Principal = Depends(MANAGERS)):
    with write(db) as s:
        o = orders.hold_order(s, number, reason=body.reason, actor=who.actor)
        view = {"number": o.number, "status": o.status}
    return ok(view)


@router.post("/orders/{number}/release", summary="Release an order from hold")
def release(number: str, db: Database = Depends(database), who: Principal = Depends(MANAGERS)):
    with write(db) as s:
        o = orders.release_order(s, number, actor=who.actor)
        view = {"number": o.number, "status": o.status}
    return ok(view)


@router.post("/orders/{number}/route", summary="Choose (again) the locations that fulfil an order")
def route(number: str, body: RouteIn, db: Database = Depends(database), who: Principal = Depends(MANAGERS)):
    with write(db) as s:
        order = orders.route_order(s, number, strategy=body.strategy, actor=who.actor)
        view = {"routing_reason": order.routing_reason, **full_view(s, who, order)}
    return ok(view)


@router.get("/orders/{number}/payment", summary="The order's payment: balances and gateway transactions")
def payment(number: str, db: Database = Depends(database), who: Principal = Depends(SELLERS)):
    with db.read() as s:
        order_for(s, who, number)
        _, p = payments.order_payment(s, number)
        b = payments.balance(p)
        return ok({
            "order": number, "gateway": p.gateway, "currency": p.currency,
            "authorized": b.authorized, "captured": b.captured, "voided": b.voided, "refunded": b.refunded,
            "open_authorization": b.open_authorization,
            "transactions": [{"kind": t.kind, "amount": t.amount, "status": t.status, "gateway_reference": t.gateway_reference,
                              "at": t.at} for t in p.transactions],
        })

