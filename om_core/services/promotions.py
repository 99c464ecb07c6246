"""Promotions: percentage and fixed discounts on a SKU, a category or the whole order, coupon codes,
buy-X-get-Y, validity windows, usage limits, priority and stacking.

Rules, in the order a cashier would apply them:
1. Line promotions (scope `sku`/`category`) by ascending priority, then order promotions.
2. A non-stackable promotion applies only to lines that carry no discount yet, and once it has
   applied, nothing else touches those lines. A non-stackable order promotion needs an undiscounted order.
3. Percentages apply to what is left of the line after earlier discounts; no line goes below zero.
4. An order discount is spread over the lines pro rata to what is left of each, to the cent,
   so every applied discount is recorded per line.
5. `min_subtotal` is checked against the order's merchandise before discounts for line promotions,
   and against what is left after line discounts for order promotions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from om_core.db import read_rows
from om_core.errors import AlreadyExists, CouponError, PromotionLimitReached
from om_core.models import Promotion, PromotionRedemption
from om_core.money import ZERO, allocate_pro_rata, to_money
from om_core.validation import Input, parse


class PromotionIn(Input):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["percentage", "fixed", "buy_x_get_y"]
    scope: Literal["order", "sku", "category"]
    target: str | None = None
    value: Decimal = Field(ge=0, le=1_000_000)
    coupon_code: str | None = Field(default=None, min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    buy_quantity: int | None = Field(default=None, ge=1, le=1000)
    get_quantity: int | None = Field(default=None, ge=1, le=1000)
    min_subtotal: Decimal | None = Field(default=None, ge=0)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit_total: int | None = Field(default=None, ge=1)
    usage_limit_per_customer: int | None = Field(default=None, ge=1)
    priority: int = 100
    stackable: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> PromotionIn:
        if self.scope != "order" and not self.target:
            raise ValueError("a sku or category promotion needs a target")
        if self.kind == "percentage" and self.value > 100:
            raise ValueError("a percentage discount cannot exceed 100")
        if self.kind == "buy_x_get_y":
            if self.scope == "order":
                raise ValueError("buy-X-get-Y applies to a sku or a category")
            if not (self.buy_quantity and self.get_quantity):
                raise ValueError("buy-X-get-Y needs buy_quantity and get_quantity")
            if self.value > 100:
                raise ValueError("value is the percentage off the free items (100 = free)")
        for moment in (self.starts_at, self.ends_at):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("validity window must be timezone-aware")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


def create_promotion(session: Session, data: PromotionIn | dict[str, Any]) -> Promotion:
    data = parse(PromotionIn, data)
    if data.coupon_code:
        data = data.model_copy(update={"coupon_code": data.coupon_code.upper()})
        if session.scalar(select(Promotion.id).where(Promotion.coupon_code == data.coupon_code)):
            raise AlreadyExists(f"Coupon code {data.coupon_code} already exists", coupon=data.coupon_code)
    promotion = Promotion(**data.model_dump())
    session.add(promotion)
    session.flush()
    return promotion


@dataclass
class PricedLine:
    """One line as the promotion engine sees it."""

    key: int
    sku: str
    category: str
    quantity: int
    unit_price: Decimal
    discounts: list[tuple[Promotion, Decimal, str]] = field(default_factory=list)
    exclusive: bool = False

    @property
    def gross(self) -> Decimal:
        return to_money(self.unit_price * self.quantity)

    @property
    def net(self) -> Decimal:
        return self.gross - sum((d[1] for d in self.discounts), ZERO)


_ACTIVE = select(Promotion.__table__).where(Promotion.active.is_(True)).order_by(Promotion.id)
_AUTOMATIC_STMT = _ACTIVE.where(Promotion.coupon_code.is_(None))
_WITH_COUPONS_STMT = _ACTIVE.where(Promotion.coupon_code.is_(None) | Promotion.coupon_code.in_(bindparam("codes", expanding=True)))
_LOCK_LIMITED = select(Promotion.id).where(Promotion.id.in_(bindparam("ids", expanding=True))).order_by(Promotion.id).with_for_update()


def _in_window(promotion: Promotion, at: datetime) -> bool:
    return (promotion.starts_at is None or promotion.starts_at <= at) and (promotion.ends_at is None or at < promotion.ends_at)


def _usage(session: Session, promotion_ids: list[int], customer_id: int | None, exclude_order: int | None) -> tuple[dict[int, int], dict[int, int]]:
    if not promotion_ids:
        return {}, {}
    base = select(PromotionRedemption.promotion_id, func.count()).where(
        PromotionRedemption.promotion_id.in_(promotion_ids), PromotionRedemption.voided.is_(False)
    )
    if exclude_order is not None:
        base = base.where(PromotionRedemption.order_id != exclude_order)
    total = dict(session.execute(base.group_by(PromotionRedemption.promotion_id)).all())
    mine: dict[int, int] = {}
    if customer_id is not None:
        mine = dict(session.execute(base.where(PromotionRedemption.customer_id == customer_id).group_by(PromotionRedemption.promotion_id)).all())
    return total, mine


def eligible_promotions(
    session: Session,
    *,
    coupon_codes: list[str],
    customer_id: int | None,
    at: datetime,
    lock: bool = False,
    exclude_order: int | None = None,
) -> list[Promotion]:
    """Automatic promotions valid at `at` plus the given coupons. A bad coupon is an error, not ignored."""
    codes = normalize_codes(coupon_codes)
    promotions = read_rows(session, _WITH_COUPONS_STMT if codes else _AUTOMATIC_STMT, {"codes": codes} if codes else {})
    limited = [p.id for p in promotions if _in_window(p, at) and (p.usage_limit_total or p.usage_limit_per_customer)]
    if lock and limited:  # only promotions with usage limits are contended; lock them before counting uses
        read_rows(session, _LOCK_LIMITED, {"ids": limited})
    total, mine = _usage(session, limited, customer_id, exclude_order)
    return select_promotions(promotions, codes=codes, customer_id=customer_id, at=at, used_total=total, used_by_customer=mine)


def normalize_codes(coupon_codes: list[str]) -> list[str]:
    return sorted({c.strip().upper() for c in coupon_codes})


def select_promotions(
    promotions: list[Any],
    *,
    codes: list[str],
    customer_id: int | None,
    at: datetime,
    used_total: dict[int, int],
    used_by_customer: dict[int, int],
) -> list[Any]:
    """Of the active promotions, those that apply now, in the order they apply: automatic ones plus the
    customer's coupons, within their window and usage limits. A bad coupon raises (unknown, expired,
    not yet valid, used up); an automatic promotion that is used up simply does not apply."""
    by_code = {p.coupon_code: p for p in promotions if p.coupon_code}
    for code in codes:
        promo = by_code.get(code)
        if promo is None:
            raise CouponError(f"Unknown coupon code {code!r}", coupon=code, reason="unknown")
        if promo.ends_at is not None and at >= promo.ends_at:
            raise CouponError(f"Coupon {code} expired on {promo.ends_at:%Y-%m-%d}", coupon=code, reason="expired")
        if promo.starts_at is not None and at < promo.starts_at:
            raise CouponError(f"Coupon {code} is valid from {promo.starts_at:%Y-%m-%d}", coupon=code, reason="not_yet_valid")
    valid = [p for p in promotions if _in_window(p, at) and (p.coupon_code is None or p.coupon_code in codes)]
    total, mine = used_total, used_by_customer
    usable = []
    for promo in valid:
        over_total = promo.usage_limit_total is not None and total.get(promo.id, 0) >= promo.usage_limit_total
        over_mine = (
            promo.usage_limit_per_customer is not None
            and customer_id is not None
            and mine.get(promo.id, 0) >= promo.usage_limit_per_customer
        )
        if over_total or over_mine:
            if promo.coupon_code:
                who = "in total" if over_total else "for this customer"
                raise PromotionLimitReached(f"Coupon {promo.coupon_code} has reached its usage limit {who}", coupon=promo.coupon_code)
            continue
        if promo.coupon_code and promo.usage_limit_per_customer and customer_id is None:
            raise CouponError(f"Coupon {promo.coupon_code} needs a known customer", coupon=promo.coupon_code, reason="customer_required")
        usable.append(promo)
    return sorted(usable, key=lambda p: (p.priority, p.id))


def _matches(promo: Promotion, line: PricedLine) -> bool:
    return (promo.scope == "sku" and line.sku == promo.target) or (promo.scope == "category" and line.category == promo.target)


def _line_discount(promo: Promotion, line: PricedLine) -> Decimal:
    value = Decimal(promo.value)
    if promo.kind == "percentage":
        amount = line.net * value / 100
    elif promo.kind == "fixed":
        amount = value * line.quantity
    else:
        bundle = promo.buy_quantity + promo.get_quantity  # type: ignore[operator]
        free_units = (line.quantity // bundle) * promo.get_quantity  # type: ignore[operator]
        amount = free_units * line.unit_price * value / 100
    return min(to_money(amount), line.net)


def _describe(promo: Promotion) -> str:
    label = promo.coupon_code or promo.name
    if promo.kind == "percentage":
        return f"{label}: {Decimal(promo.value).normalize():f}% off"  # :f, or 10.0000 prints as 1E+1
    if promo.kind == "fixed":
        return f"{label}: {to_money(promo.value)} off" + ("" if promo.scope == "order" else " each")
    return f"{label}: buy {promo.buy_quantity} get {promo.get_quantity}"


def apply_promotions(lines: list[PricedLine], promotions: list[Promotion]) -> list[Promotion]:
    """Apply promotions in place onto `lines`; returns the promotions that gave a discount."""
    applied: list[Promotion] = []
    order_subtotal = sum((l.gross for l in lines), ZERO)
    for promo in [p for p in promotions if p.scope != "order"]:
        if promo.min_subtotal is not None and order_subtotal < promo.min_subtotal:
            continue
        used = False
        for line in lines:
            if not _matches(promo, line) or line.exclusive or (not promo.stackable and line.discounts):
                continue
            amount = _line_discount(promo, line)
            if amount > 0:
                line.discounts.append((promo, amount, _describe(promo)))
                line.exclusive = not promo.stackable
                used = True
        if used:
            applied.append(promo)
    for promo in [p for p in promotions if p.scope == "order"]:
        open_lines = [l for l in lines if not l.exclusive and l.net > 0]
        if not open_lines or (not promo.stackable and any(l.discounts for l in lines)):
            continue
        base = sum((l.net for l in open_lines), ZERO)
        if promo.min_subtotal is not None and base < promo.min_subtotal:
            continue
        value = Decimal(promo.value)
        amount = min(to_money(base * value / 100) if promo.kind == "percentage" else to_money(value), base)
        if amount <= 0:
            continue
        for line, share in zip(open_lines, allocate_pro_rata(amount, [l.net for l in open_lines])):
            if share > 0:
                line.discounts.append((promo, share, _describe(promo)))
        if not promo.stackable:
            for line in lines:
                line.exclusive = True
        applied.append(promo)
    return applied
