"""Shipping charges: what a delivery service costs the customer and how many days it promises."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from om_core.db import read_rows
from om_core.errors import AlreadyExists, UnknownShippingMethod, ValidationError
from om_core.models import ShippingMethod
from om_core.money import ZERO, to_money
from om_core.validation import Amount, Code, Input, parse


class ShippingMethodIn(Input):
    code: Code
    name: str = Field(min_length=1, max_length=120)
    service_level: Literal["standard", "expedited", "overnight"]
    base_price: Amount
    price_per_kg: Amount = Decimal("0")
    free_over: Amount | None = None
    promised_days: int = Field(ge=0, le=60)
    countries: list[str] | None = None


@dataclass(frozen=True)
class ShippingCharge:
    method: str
    service_level: str
    amount: Decimal
    promised_days: int


PICKUP = ShippingCharge(method="pickup", service_level="pickup", amount=ZERO, promised_days=0)
CARRY_OUT = ShippingCharge(method="carry_out", service_level="pickup", amount=ZERO, promised_days=0)


_METHOD_BY_CODE = select(ShippingMethod.__table__).where(ShippingMethod.code == bindparam("code"), ShippingMethod.active.is_(True))


def create_shipping_method(session: Session, data: ShippingMethodIn | dict[str, Any]) -> ShippingMethod:
    data = parse(ShippingMethodIn, data)
    if session.scalar(select(ShippingMethod.id).where(ShippingMethod.code == data.code)) is not None:
        raise AlreadyExists(f"Shipping method {data.code} already exists", method=data.code)
    method = ShippingMethod(**data.model_dump())
    session.add(method)
    session.flush()
    return method


def get_shipping_method(session: Session, code: str) -> ShippingMethod:
    found = read_rows(session, _METHOD_BY_CODE, {"code": code})
    method = found[0] if found else None
    if method is None:
        raise UnknownShippingMethod(f"Unknown shipping method {code!r}", method=code)
    return method


def list_shipping_methods(session: Session) -> list[ShippingMethod]:
    return list(session.scalars(select(ShippingMethod).where(ShippingMethod.active.is_(True)).order_by(ShippingMethod.promised_days)))


def shipping_charge(method: ShippingMethod, *, merchandise: Decimal, weight_kg: Decimal, country: str) -> ShippingCharge:
    """Free above the method's threshold (after discounts), else base price plus weight."""
    if method.countries and country not in method.countries:
        raise ValidationError(
            f"Shipping method {method.code} does not deliver to {country}",
            errors=[{"field": "shipping_method", "reason": f"not available for {country}"}],
        )
    if method.free_over is not None and merchandise >= method.free_over:
        amount = ZERO
    else:
        amount = to_money(Decimal(method.base_price) + Decimal(method.price_per_kg) * weight_kg)
    return ShippingCharge(method.code, method.service_level, amount, method.promised_days)
