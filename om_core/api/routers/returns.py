"""Returns and exchanges: open (channel or manager), receive at a location (store_ops there, or manager),
refund (manager), exchange."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Depends
from pydantic import Field

from om_core.api.routers._common import allow, database, ok, order_for, require_location, write
from om_core.api.routers.orders import IdempotencyKey, scoped_key
from om_core.db import Database
from om_core.models import Order
from om_core.services import returns
from om_core.services.apikeys import Principal
from om_core.services.orders import order_view
from om_core.validation import Code, Input

router = APIRouter(tags=["returns"])


class ReceiveIn(Input):
    location: Code
    inspections: list[returns.InspectionIn] = Field(default_factory=list, max_length=200)


class RefundIn(Input):
    restocking_fee_rate: Decimal = Field(default=Decimal("0"), ge=0, le=1, decimal_places=4)


class ExchangeIn(Input):
    lines: list[returns.ExchangeLineIn] = Field(min_length=1, max_length=200)


def _own_return(session, who: Principal, number: str):  # type: ignore[no-untyped-def]
    rma = returns.get_return(session, number)
    if who.role == "channel":
        order_for(session, who, session.get_one(Order, rma.order_id).number)
    return rma


@router.post("/orders/{number}/returns", status_code=201, summary="Open a return (RMA) for delivered lines")
def open_return(number: str, body: returns.ReturnIn, db: Database = Depends(database), who: Principal = Depends(allow("channel", "manager"))):
    with write(db) as s:
        order_for(s, who, number)
        view = returns.return_view(s, returns.open_return(s, number, body, actor=who.actor))
    return ok(view, 201)


@router.get("/returns/{number}", summary="Read a return")
def get_return(number: str, db: Database = Depends(database), who: Principal = Depends(allow("channel", "store_ops", "manager"))):
    with db.read() as s:
        return ok(returns.return_view(s, _own_return(s, who, number)))


@router.post("/returns/{number}/receive", summary="Goods are back: inspect, restock or write off")
def receive(number: str, body: ReceiveIn, db: Database = Depends(database), who: Principal = Depends(allow("store_ops", "manager"))):
    require_location(who, body.location)
    with write(db) as s:
        view = returns.return_view(s, returns.receive_return(s, number, body.location, list(body.inspections), actor=who.actor))
    return ok(view)


@router.post("/returns/{number}/refund", summary="Refund a return to the original payment")
def refund(number: str, body: RefundIn, idempotency_key: IdempotencyKey = None, db: Database = Depends(database),
           who: Principal = Depends(allow("manager"))):
    with write(db) as s:
        rma = returns.refund_return(s, number, restocking_fee_rate=body.restocking_fee_rate,
                                    idempotency_key=scoped_key(who, idempotency_key), actor=who.actor)
        view = returns.return_view(s, rma)
    return ok(view)


@router.post("/returns/{number}/exchange", status_code=201, summary="A no-charge replacement order for a return")
def exchange(number: str, body: ExchangeIn, db: Database = Depends(database), who: Principal = Depends(allow("channel", "manager"))):
    with write(db) as s:
        _own_return(s, who, number)
        view = order_view(s, returns.create_exchange(s, number, list(body.lines), actor=who.actor))
    return ok(view, 201)
