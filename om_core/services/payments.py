"""Payments: authorize at placement, capture on shipment, void what will not be captured, refund
what was captured. Every gateway call is a `PaymentTransaction` row; balances are sums over them.

Only gateway tokens are stored. Anything that looks like a card number is refused outright.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from om_core.clock import utcnow
from om_core.db import on_rollback, write_rows
from om_core.errors import PaymentDeclined, PaymentError, UnknownOrder, ValidationError
from om_core.models import Order, Payment, PaymentTransaction
from om_core.money import ZERO, to_money
from om_core.services import idempotency
from om_core.services.events import record_event, record_events

CARD_NUMBER = re.compile(r"(?:\d[ -]?){13,19}")


@dataclass(frozen=True)
class GatewayResult:
    approved: bool
    reference: str | None
    message: str = ""


class PaymentGateway(Protocol):
    """What StoreOM needs from a payment provider. Implementations must be idempotent per `reference`."""

    name: str

    def authorize(self, token: str, amount: Decimal, currency: str, reference: str) -> GatewayResult: ...

    def capture(self, authorization: str, amount: Decimal, reference: str) -> GatewayResult: ...

    def void(self, authorization: str, amount: Decimal, reference: str) -> GatewayResult: ...

    def refund(self, capture: str, amount: Decimal, reference: str) -> GatewayResult: ...


class TestGateway:
    """Deterministic built-in gateway: same inputs, same reference. Tokens starting with
    `tok_decline` are declined, as is everything when constructed with `decline=True`."""

    __test__ = False  # not a pytest class
    name = "test"

    def __init__(self, decline: bool = False) -> None:
        self.decline = decline
        self.calls: list[tuple[str, str, Decimal]] = []

    def _result(self, op: str, subject: str, amount: Decimal, reference: str) -> GatewayResult:
        self.calls.append((op, subject, amount))
        if self.decline or subject.startswith("tok_decline"):
            return GatewayResult(False, None, "declined by issuer")
        digest = hashlib.sha256(f"{op}|{subject}|{amount}|{reference}".encode()).hexdigest()[:20]
        return GatewayResult(True, f"{op[:4]}_{digest}")

    def authorize(self, token: str, amount: Decimal, currency: str, reference: str) -> GatewayResult:
        return self._result("authorize", token, amount, reference)

    def capture(self, authorization: str, amount: Decimal, reference: str) -> GatewayResult:
        return self._result("capture", authorization, amount, reference)

    def void(self, authorization: str, amount: Decimal, reference: str) -> GatewayResult:
        return self._result("void", authorization, amount, reference)

    def refund(self, capture: str, amount: Decimal, reference: str) -> GatewayResult:
        return self._result("refund", capture, amount, reference)


_GATEWAYS: dict[str, PaymentGateway] = {"test": TestGateway()}


def register_gateway(gateway: PaymentGateway) -> None:
    _GATEWAYS[gateway.name] = gateway


def get_gateway(name: str = "test") -> PaymentGateway:
    try:
        return _GATEWAYS[name]
    except KeyError:
        raise ValidationError(f"Unknown payment gateway {name!r}", errors=[{"field": "gateway", "reason": "unknown"}]) from None


def check_token(token: str) -> None:
    if not token or len(token) > 128:
        raise ValidationError("A payment token of 1-128 characters is required", errors=[{"field": "payment_token", "reason": "required"}])
    if CARD_NUMBER.search(token):
        raise ValidationError(
            "That looks like a card number: send the gateway's token, never the card",
            errors=[{"field": "payment_token", "reason": "card numbers are not accepted"}],
        )


@dataclass(frozen=True)
class Balance:
    authorized: Decimal
    captured: Decimal
    voided: Decimal
    refunded: Decimal

    @property
    def open_authorization(self) -> Decimal:
        """Authorized but neither captured nor voided: what can still be captured."""
        return self.authorized - self.captured - self.voided

    @property
    def refundable(self) -> Decimal:
        return self.captured - self.refunded


def balance(payment: Payment) -> Balance:
    sums = {"authorize": ZERO, "capture": ZERO, "void": ZERO, "refund": ZERO}
    for tx in payment.transactions:
        if tx.status == "succeeded":
            sums[tx.kind] += Decimal(tx.amount)
    return Balance(sums["authorize"], sums["capture"], sums["void"], sums["refund"])


def _append(payment: Payment, kind: str, amount: Decimal, result: GatewayResult, key: str | None, parent: str | None) -> PaymentTransaction:
    tx = PaymentTransaction(
        kind=kind, amount=amount, status="succeeded" if result.approved else "declined",
        gateway_reference=result.reference, parent_reference=parent, message=result.message or None, idempotency_key=key, at=utcnow(),
    )
    payment.transactions.append(tx)
    return tx


_INSERT_PAYMENT = insert(Payment.__table__).returning(Payment.id, Payment.order_id)
_INSERT_TRANSACTION = insert(PaymentTransaction.__table__)


def authorize(
    session: Session, order: Order, amount: Decimal, *, token: str, gateway: str = "test", payment_id: int, sequence: int,
    actor: str | None = None,
) -> None:
    """Authorize more on an existing payment (an order that grew), in the caller's transaction."""
    _authorize(session, [(order, token, gateway, to_money(amount), payment_id, sequence)], actor)


def authorize_new(session: Session, items: list[tuple[Order, str, str]], *, actor: str | None = None,
                  events: list[dict[str, Any]] | None = None) -> None:
    """Open a payment for each new order [(order, token, gateway)] and authorize its total.

    Inside the caller's transaction: if it rolls back, every hold the gateway gave is voided.
    `events`: a list to add the payment_authorized events to (the caller records them), else recorded here.
    """
    for _, token, gateway in items:
        check_token(token)
        get_gateway(gateway)
    now = utcnow()
    values = [dict(order_id=o.id, gateway=gateway, token=token, currency=o.currency, created_at=now) for o, token, gateway in items]
    rows = write_rows(session, _INSERT_PAYMENT, values[0] if len(values) == 1 else values)  # one: a plain insert
    payment_ids = {order_id: payment_id for payment_id, order_id in rows}
    _authorize(session, [(o, token, gateway, to_money(o.total), payment_ids[o.id], 0) for o, token, gateway in items], actor, events)


def _authorize(session: Session, items: list[tuple[Order, str, str, Decimal, int, int]], actor: str | None,
               events: list[dict[str, Any]] | None = None) -> None:
    approved = []
    for order, token, gateway, amount, payment_id, sequence in items:
        if amount <= 0:
            continue
        gw = get_gateway(gateway)
        result = gw.authorize(token, amount, order.currency, f"{order.number}:auth:{sequence}")
        if not result.approved:
            raise PaymentDeclined(f"Payment declined: {result.message}", order=order.number, amount=str(amount))
        approved.append((order, gw, amount, payment_id, result))
    if not approved:
        return
    holds = [(gw, r.reference, amount, f"{o.number}:compensate") for o, gw, amount, _, r in approved]
    on_rollback(session, lambda: [gw.void(ref, amount, why) for gw, ref, amount, why in holds])  # type: ignore[arg-type]
    now = utcnow()
    write_rows(session, _INSERT_TRANSACTION, [
        dict(payment_id=payment_id, kind="authorize", amount=amount, status="succeeded", gateway_reference=r.reference,
             parent_reference=None, message=None, idempotency_key=None, at=now)
        for _, _, amount, payment_id, r in approved
    ])
    authorized = [
        dict(order_id=o.id, kind="payment_authorized", actor=actor, channel=None, data={"amount": str(amount)}, at=now)
        for o, _, amount, _, _ in approved
    ]
    if events is None:
        record_events(session, authorized)
    else:
        events += authorized


def order_payment(session: Session, order_number: str) -> tuple[Order, Payment]:
    order = session.scalar(select(Order).where(Order.number == order_number))
    if order is None:
        raise UnknownOrder(f"Unknown order {order_number!r}", order=order_number)
    payment = session.scalar(select(Payment).where(Payment.order_id == order.id))
    if payment is None:
        raise PaymentError(f"Order {order_number} has no payment", order=order_number)
    return order, payment


_PARENT = {"capture": "authorize", "void": "authorize", "refund": "capture"}
_PAST = {"capture": "captured", "void": "voided", "refund": "refunded"}


def _open_parents(payment: Payment, kind: str) -> list[tuple[str, Decimal]]:
    """What each authorization (for capture/void) or capture (for refund) still has open, oldest first."""
    parent_kind = _PARENT[kind]
    children = {"authorize": ("capture", "void"), "capture": ("refund",)}[parent_kind]
    used: dict[str, Decimal] = {}
    for tx in payment.transactions:
        if tx.status == "succeeded" and tx.kind in children and tx.parent_reference:
            used[tx.parent_reference] = used.get(tx.parent_reference, ZERO) + Decimal(tx.amount)
    parents = [
        (tx.gateway_reference, Decimal(tx.amount) - used.get(tx.gateway_reference, ZERO))  # type: ignore[arg-type]
        for tx in payment.transactions
        if tx.kind == parent_kind and tx.status == "succeeded"
    ]
    return [(ref, left) for ref, left in parents if left > 0]


def _operate(
    session: Session, order_number: str, kind: str, amount: Decimal | None, *, idempotency_key: str | None, actor: str | None
) -> PaymentTransaction:
    """Capture, void or refund, spread over the authorizations or captures it draws on: captures take
    the oldest authorization first, voids and refunds the newest first, never more than each has open."""
    digest = idempotency.request_hash({"order": order_number, "kind": kind, "amount": None if amount is None else str(to_money(amount))})
    remembered = idempotency.recall(session, f"payment.{kind}", idempotency_key, digest)
    if remembered is not None:
        return session.get_one(PaymentTransaction, remembered["transaction_id"])
    order, payment = order_payment(session, order_number)
    parents = _open_parents(payment, kind)
    limit = sum((left for _, left in parents), ZERO)
    amount = limit if amount is None else to_money(amount)
    if amount <= 0:
        raise ValidationError(f"{kind.capitalize()} amount must be positive", errors=[{"field": "amount", "reason": "must be > 0"}])
    if amount > limit:
        what = "what was captured and not yet refunded" if kind == "refund" else "the open authorization"
        raise PaymentError(f"Cannot {kind} {amount}: more than {what} ({limit})", order=order_number, amount=str(amount), limit=str(limit))
    gw = get_gateway(payment.gateway)
    operation = getattr(gw, kind)
    remaining = amount
    tx = None
    for parent_ref, left in parents if kind == "capture" else reversed(parents):
        if remaining <= 0:
            break
        portion = min(left, remaining)
        result = operation(parent_ref, portion, f"{order.number}:{kind}:{len(payment.transactions)}")
        tx = _append(payment, kind, portion, result, idempotency_key, parent_ref)
        if not result.approved:
            break
        remaining -= portion
    assert tx is not None
    session.flush()
    approved = tx.status == "succeeded"
    record_event(session, order, f"payment_{_PAST[kind]}" if approved else f"payment_{kind}_declined", actor=actor,
                 amount=str(amount - remaining if approved else amount))
    idempotency.remember(session, f"payment.{kind}", idempotency_key, digest, {"transaction_id": tx.id})
    return tx


def capture(session: Session, order_number: str, amount: Decimal | None = None, *, idempotency_key: str | None = None, actor: str | None = None) -> PaymentTransaction:
    """Take the money (on shipment), up to the open authorization; default: all of it."""
    return _operate(session, order_number, "capture", amount, idempotency_key=idempotency_key, actor=actor)


def void(session: Session, order_number: str, amount: Decimal | None = None, *, idempotency_key: str | None = None, actor: str | None = None) -> PaymentTransaction:
    """Release an authorization hold (all of what is open by default)."""
    return _operate(session, order_number, "void", amount, idempotency_key=idempotency_key, actor=actor)


def refund(session: Session, order_number: str, amount: Decimal, *, idempotency_key: str | None = None, actor: str | None = None) -> PaymentTransaction:
    """Give captured money back; never more than was captured and not yet refunded."""
    return _operate(session, order_number, "refund", amount, idempotency_key=idempotency_key, actor=actor)
