"""Payments: authorize at placement, capture, void and refund against the ledger; declines, card-number
refusal, idempotent retries, and the compensating void when a placement rolls back."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from om_core.db import Database
from om_core.errors import IdempotencyConflict, PaymentDeclined, PaymentError, UnknownOrder, ValidationError
from om_core.models import Order, OrderEvent, Payment, PaymentTransaction
from om_core.services import orders, payments, promotions
from om_core.services.payments import TestGateway
from tests.om_core.helpers import table_row_counts
from tests.om_core.store import web_order

D = Decimal
ZERO = D("0.00")
# The standard test order: TEE-S x2 for Ada (NY). 2 x 20.00 = 40.00 goods (< 50.00, so standard shipping 4.95);
# tax 40.00 x 8.875% = 3.55 and 4.95 x 8.875% = 0.4393 -> 0.44; total 40.00 + 4.95 + 3.55 + 0.44 = 48.94.
TOTAL = D("48.94")
LEDGER_TABLES = ("orders", "order_lines", "reservations", "stock_movements", "payments", "payment_transactions", "order_events")


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestGateway]:
    """A fresh TestGateway registered as 'spy' (the registry is restored afterwards), so its calls are ours alone."""
    monkeypatch.setattr(payments, "_GATEWAYS", dict(payments._GATEWAYS))
    gw = TestGateway()
    gw.name = "spy"
    payments.register_gateway(gw)
    yield gw


def order_request(**extra: Any) -> dict[str, Any]:
    return web_order(("TEE-S", 2), gateway="spy", **extra)


@pytest.fixture
def placed(store: Database, gateway: TestGateway) -> str:
    with store.transaction() as s:
        order = orders.place_order(s, order_request())
        assert order.total == TOTAL
        return order.number


def ledger(db: Database, number: str) -> list[tuple[str, Decimal, str]]:
    with db.read() as s:
        _, payment = payments.order_payment(s, number)
        return [(tx.kind, tx.amount, tx.status) for tx in payment.transactions]


def balance(db: Database, number: str) -> payments.Balance:
    with db.read() as s:
        _, payment = payments.order_payment(s, number)
        return payments.balance(payment)


def auth_reference(db: Database, number: str) -> str:
    with db.read() as s:
        _, payment = payments.order_payment(s, number)
        return next(tx.gateway_reference for tx in payment.transactions if tx.kind == "authorize")


# --- the test gateway -------------------------------------------------------------------------


def test_test_gateway_is_deterministic() -> None:
    a, b = TestGateway(), TestGateway()
    first = a.authorize("tok_visa", D("10.00"), "USD", "SO-1:auth:0")
    assert first.approved and first.reference is not None and first.reference.startswith("auth_")
    assert b.authorize("tok_visa", D("10.00"), "USD", "SO-1:auth:0") == first  # same inputs, same reference
    assert a.authorize("tok_visa", D("10.00"), "USD", "SO-2:auth:0").reference != first.reference
    assert a.authorize("tok_visa", D("10.01"), "USD", "SO-1:auth:0").reference != first.reference
    assert a.capture(first.reference, D("10.00"), "SO-1:capture:1").reference.startswith("capt_")  # type: ignore[arg-type, union-attr]
    assert a.calls == [
        ("authorize", "tok_visa", D("10.00")), ("authorize", "tok_visa", D("10.00")),
        ("authorize", "tok_visa", D("10.01")), ("capture", first.reference, D("10.00")),
    ]


def test_test_gateway_declines() -> None:
    declined = TestGateway().authorize("tok_decline_insufficient_funds", D("1.00"), "USD", "r")
    assert (declined.approved, declined.reference, declined.message) == (False, None, "declined by issuer")
    assert not TestGateway(decline=True).authorize("tok_visa", D("1.00"), "USD", "r").approved


# --- authorize at placement -------------------------------------------------------------------


def test_placement_authorizes_the_order_total(store: Database, gateway: TestGateway, placed: str) -> None:
    with store.read() as s:
        order, payment = payments.order_payment(s, placed)
        assert (payment.gateway, payment.token, payment.currency) == ("spy", "tok_visa", "USD")
        [tx] = payment.transactions
        assert (tx.kind, tx.amount, tx.status, tx.idempotency_key) == ("authorize", TOTAL, "succeeded", None)
        assert tx.gateway_reference.startswith("auth_")
        kinds = s.scalars(select(OrderEvent.kind).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)).all()
        assert "payment_authorized" in kinds
    assert gateway.calls == [("authorize", "tok_visa", TOTAL)]
    bal = balance(store, placed)
    assert (bal.authorized, bal.captured, bal.open_authorization, bal.refundable) == (TOTAL, ZERO, TOTAL, ZERO)


def test_declined_payment_writes_nothing(store: Database, gateway: TestGateway) -> None:
    before = table_row_counts(store)
    with pytest.raises(PaymentDeclined) as caught, store.transaction() as s:
        orders.place_order(s, order_request(payment_token="tok_decline"))
    assert caught.value.code == "payment_declined"
    assert caught.value.details["amount"] == str(TOTAL)
    after = table_row_counts(store)
    assert {t: after[t] for t in LEDGER_TABLES} == {t: before[t] for t in LEDGER_TABLES}  # no order, lines, stock rows, payment
    assert after == before
    assert gateway.calls == [("authorize", "tok_decline", TOTAL)]  # nothing was authorized, so nothing to void


def test_gateway_declining_everything(store: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(payments, "_GATEWAYS", dict(payments._GATEWAYS))
    declining = TestGateway(decline=True)
    declining.name = "down"
    payments.register_gateway(declining)
    before = table_row_counts(store)
    with pytest.raises(PaymentDeclined), store.transaction() as s:
        orders.place_order(s, web_order(("MUG", 1), gateway="down"))
    assert table_row_counts(store) == before


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("4111 1111 1111 1111", "card numbers are not accepted"),
        ("4111-1111-1111-1111", "card numbers are not accepted"),
        ("4111111111111111", "card numbers are not accepted"),
        ("tok_4111111111111111", "card numbers are not accepted"),
        ("", "required"),
        ("t" * 129, "required"),
    ],
)
def test_card_numbers_and_bad_tokens_are_refused_before_anything_happens(store: Database, gateway: TestGateway, token: str, reason: str) -> None:
    before = table_row_counts(store)
    with pytest.raises(ValidationError) as caught, store.transaction() as s:
        orders.place_order(s, order_request(payment_token=token))
    assert caught.value.errors == [{"field": "payment_token", "reason": reason}]
    assert table_row_counts(store) == before
    assert gateway.calls == []
    with store.read() as s:
        assert s.scalars(select(Payment.token)).all() == []


def test_unknown_gateway(store: Database) -> None:
    before = table_row_counts(store)
    with pytest.raises(ValidationError) as caught, store.transaction() as s:
        orders.place_order(s, web_order(("MUG", 1), gateway="nope"))
    assert caught.value.errors == [{"field": "gateway", "reason": "unknown"}]
    assert table_row_counts(store) == before


# --- capture, void, refund ----------------------------------------------------------------------


def test_capture_part_then_the_rest_then_too_much(store: Database, gateway: TestGateway, placed: str) -> None:
    with store.transaction() as s:
        tx = payments.capture(s, placed, D("20.00"))
        assert (tx.kind, tx.amount, tx.status) == ("capture", D("20.00"), "succeeded")
    bal = balance(store, placed)
    assert (bal.captured, bal.open_authorization) == (D("20.00"), D("28.94"))  # 48.94 - 20.00

    with store.transaction() as s:
        assert payments.capture(s, placed).amount == D("28.94")  # default: all that is open
    bal = balance(store, placed)
    assert (bal.captured, bal.open_authorization, bal.refundable) == (TOTAL, ZERO, TOTAL)

    before = table_row_counts(store)
    with pytest.raises(PaymentError) as caught, store.transaction() as s:
        payments.capture(s, placed, D("0.01"))
    assert caught.value.details == {"order": placed, "amount": "0.01", "limit": "0.00"}
    assert table_row_counts(store) == before

    auth = auth_reference(store, placed)
    assert gateway.calls[1:] == [("capture", auth, D("20.00")), ("capture", auth, D("28.94"))]
    assert ledger(store, placed) == [
        ("authorize", TOTAL, "succeeded"), ("capture", D("20.00"), "succeeded"), ("capture", D("28.94"), "succeeded"),
    ]


def test_capture_more_than_authorized_writes_nothing(store: Database, gateway: TestGateway, placed: str) -> None:
    before = table_row_counts(store)
    with pytest.raises(PaymentError) as caught, store.transaction() as s:
        payments.capture(s, placed, D("48.95"))  # one cent over
    assert caught.value.details["limit"] == str(TOTAL)
    assert table_row_counts(store) == before
    assert [c[0] for c in gateway.calls] == ["authorize"]


@pytest.mark.parametrize("operation", ["capture", "void", "refund"])
@pytest.mark.parametrize("amount", [D("0"), D("-5.00"), D("0.004")])  # 0.004 rounds to 0.00
def test_non_positive_amounts_are_refused(store: Database, gateway: TestGateway, placed: str, operation: str, amount: Decimal) -> None:
    before = table_row_counts(store)
    with pytest.raises(ValidationError) as caught, store.transaction() as s:
        getattr(payments, operation)(s, placed, amount)
    assert caught.value.errors == [{"field": "amount", "reason": "must be > 0"}]
    assert table_row_counts(store) == before


def test_refund_up_to_what_was_captured(store: Database, gateway: TestGateway, placed: str) -> None:
    before = table_row_counts(store)
    with pytest.raises(PaymentError), store.transaction() as s:
        payments.refund(s, placed, D("1.00"))  # nothing captured yet
    assert table_row_counts(store) == before

    with store.transaction() as s:
        capture_ref = payments.capture(s, placed, D("30.00")).gateway_reference

    before = table_row_counts(store)
    with pytest.raises(PaymentError) as caught, store.transaction() as s:
        payments.refund(s, placed, D("30.01"))
    assert caught.value.details == {"order": placed, "amount": "30.01", "limit": "30.00"}
    assert table_row_counts(store) == before

    with store.transaction() as s:
        tx = payments.refund(s, placed, D("10.00"))
        assert (tx.kind, tx.amount, tx.status) == ("refund", D("10.00"), "succeeded")
        assert tx.gateway_reference.startswith("refu_")
    bal = balance(store, placed)
    assert (bal.captured, bal.refunded, bal.refundable) == (D("30.00"), D("10.00"), D("20.00"))  # 30.00 - 10.00
    assert gateway.calls[-1] == ("refund", capture_ref, D("10.00"))  # refunds go against the capture

    with store.transaction() as s:
        payments.refund(s, placed, D("20.00"))
    before = table_row_counts(store)
    with pytest.raises(PaymentError), store.transaction() as s:
        payments.refund(s, placed, D("0.01"))
    assert table_row_counts(store) == before
    assert balance(store, placed).refundable == ZERO


def test_void_the_open_authorization(store: Database, gateway: TestGateway, placed: str) -> None:
    with store.transaction() as s:
        tx = payments.void(s, placed)
        assert (tx.kind, tx.amount, tx.status) == ("void", TOTAL, "succeeded")
    bal = balance(store, placed)
    assert (bal.voided, bal.open_authorization) == (TOTAL, ZERO)
    assert gateway.calls[-1] == ("void", auth_reference(store, placed), TOTAL)

    before = table_row_counts(store)
    with pytest.raises(PaymentError), store.transaction() as s:
        payments.capture(s, placed, D("1.00"))
    with pytest.raises(ValidationError), store.transaction() as s:
        payments.void(s, placed)  # nothing open: the default amount is 0.00
    assert table_row_counts(store) == before


def test_partial_void_then_capture_the_rest(store: Database, gateway: TestGateway, placed: str) -> None:
    with store.transaction() as s:
        payments.void(s, placed, D("8.94"))
        assert payments.capture(s, placed).amount == D("40.00")  # 48.94 - 8.94
    bal = balance(store, placed)
    assert (bal.authorized, bal.voided, bal.captured, bal.open_authorization) == (TOTAL, D("8.94"), D("40.00"), ZERO)


def test_declined_capture_is_recorded_and_changes_no_balance(store: Database, gateway: TestGateway, placed: str) -> None:
    gateway.decline = True
    with store.transaction() as s:
        tx = payments.capture(s, placed)
        assert (tx.status, tx.gateway_reference, tx.message) == ("declined", None, "declined by issuer")
    assert balance(store, placed).open_authorization == TOTAL
    with store.read() as s:
        order_id = s.scalar(select(Order.id).where(Order.number == placed))
        assert s.scalars(select(OrderEvent.kind).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id.desc())).first() == "payment_capture_declined"
    gateway.decline = False
    with store.transaction() as s:
        assert payments.capture(s, placed).status == "succeeded"
    assert balance(store, placed).captured == TOTAL


def test_operations_on_unknown_orders_and_orders_without_payment(store: Database, gateway: TestGateway) -> None:
    before = table_row_counts(store)
    with pytest.raises(UnknownOrder), store.transaction() as s:
        payments.capture(s, "SO-NOPE", D("1.00"))
    assert table_row_counts(store) == before

    # A free order (100% off, picked up: total 0.00) needs no token and has no payment.
    with store.transaction() as s:
        promotions.create_promotion(s, {"name": "free", "kind": "percentage", "scope": "order", "value": "100"})
        free = orders.place_order(s, web_order(("MUG", 1), delivery="pickup", pickup_location="ST-NYC",
                                               shipping_method=None, payment_token=None))
        assert free.total == ZERO
        number = free.number
    before = table_row_counts(store)
    with pytest.raises(PaymentError) as caught, store.transaction() as s:
        payments.refund(s, number, D("1.00"))
    assert caught.value.details == {"order": number}
    assert table_row_counts(store) == before


def test_cancel_voids_the_open_authorization(store: Database, gateway: TestGateway, placed: str) -> None:
    with store.transaction() as s:
        orders.cancel_order(s, placed, reason="customer asked")
    assert ledger(store, placed) == [("authorize", TOTAL, "succeeded"), ("void", TOTAL, "succeeded")]
    assert gateway.calls[-1] == ("void", auth_reference(store, placed), TOTAL)


# --- idempotent retries -------------------------------------------------------------------------


def test_idempotent_capture_returns_the_same_transaction(store: Database, gateway: TestGateway, placed: str) -> None:
    with store.transaction() as s:
        first = payments.capture(s, placed, D("10.00"), idempotency_key="cap-1")
        first_id, first_ref = first.id, first.gateway_reference
    before = table_row_counts(store)
    with store.transaction() as s:
        again = payments.capture(s, placed, D("10.00"), idempotency_key="cap-1")
        assert (again.id, again.gateway_reference, again.idempotency_key) == (first_id, first_ref, "cap-1")
    assert table_row_counts(store) == before  # no new ledger row, event or key
    assert [c[0] for c in gateway.calls] == ["authorize", "capture"]  # the gateway was called once
    assert balance(store, placed).captured == D("10.00")

    with pytest.raises(IdempotencyConflict) as caught, store.transaction() as s:
        payments.capture(s, placed, D("11.00"), idempotency_key="cap-1")
    assert caught.value.details == {"scope": "payment.capture", "key": "cap-1"}
    assert table_row_counts(store) == before

    # A new key is a new capture.
    with store.transaction() as s:
        assert payments.capture(s, placed, D("10.00"), idempotency_key="cap-2").id != first_id
    assert balance(store, placed).captured == D("20.00")


def test_idempotency_keys_are_scoped_per_operation(store: Database, gateway: TestGateway, placed: str) -> None:
    with store.transaction() as s:
        payments.capture(s, placed, D("10.00"), idempotency_key="k")
        payments.refund(s, placed, D("10.00"), idempotency_key="k")  # same key, other operation: not a retry
    assert ledger(store, placed)[1:] == [("capture", D("10.00"), "succeeded"), ("refund", D("10.00"), "succeeded")]


def test_idempotency_key_too_long(store: Database, gateway: TestGateway, placed: str) -> None:
    before = table_row_counts(store)
    with pytest.raises(ValidationError) as caught, store.transaction() as s:
        payments.capture(s, placed, D("1.00"), idempotency_key="k" * 129)
    assert caught.value.errors == [{"field": "idempotency_key", "reason": "1-128 characters"}]
    assert table_row_counts(store) == before


def test_idempotent_retry_with_the_same_amount_spelled_differently(store: Database, gateway: TestGateway, placed: str) -> None:
    with store.transaction() as s:
        first_id = payments.capture(s, placed, D("10"), idempotency_key="cap-1").id
    with store.transaction() as s:
        assert payments.capture(s, placed, D("10.00"), idempotency_key="cap-1").id == first_id


# --- compensation: a rolled-back placement voids its authorization ---------------------------


def test_rollback_after_placement_voids_the_authorization(store: Database, gateway: TestGateway) -> None:
    before = table_row_counts(store)
    with pytest.raises(RuntimeError, match="crash after placement"), store.transaction() as s:
        order = orders.place_order(s, order_request())
        auth = s.scalar(select(PaymentTransaction.gateway_reference).join(Payment).where(Payment.order_id == order.id))
        assert auth is not None and auth.startswith("auth_")
        assert gateway.calls == [("authorize", "tok_visa", TOTAL)]
        raise RuntimeError("crash after placement")
    assert gateway.calls == [("authorize", "tok_visa", TOTAL), ("void", auth, TOTAL)]
    assert table_row_counts(store) == before


def test_failure_inside_placement_after_authorization_voids_it(store: Database, gateway: TestGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    real_record_events = payments.record_events

    def failing_record_events(session: Any, events: list[dict[str, Any]]) -> Any:
        if any(e["kind"] == "payment_authorized" for e in events):
            raise RuntimeError("audit store down")
        return real_record_events(session, events)

    monkeypatch.setattr(payments, "record_events", failing_record_events)
    monkeypatch.setattr(orders, "record_events", failing_record_events)  # placement records its events in one insert
    before = table_row_counts(store)
    with pytest.raises(RuntimeError, match="audit store down"), store.transaction() as s:
        orders.place_order(s, order_request())
    assert [c[0] for c in gateway.calls] == ["authorize", "void"]
    assert gateway.calls[1][2] == TOTAL
    assert table_row_counts(store) == before


def test_committed_placement_is_not_voided(store: Database, gateway: TestGateway, placed: str) -> None:
    assert [c[0] for c in gateway.calls] == ["authorize"]
    assert balance(store, placed).open_authorization == TOTAL


def test_refund_spanning_two_captures_never_exceeds_a_capture_at_the_gateway(store: Database, gateway: TestGateway, placed: str) -> None:
    with store.transaction() as s:
        payments.capture(s, placed, D("10.00"))
        payments.capture(s, placed, D("20.00"))
        payments.refund(s, placed, D("25.00"))  # 25.00 <= 30.00 captured in total
    captured = {ref: amount for op, ref, amount in gateway.calls if op == "capture"}
    with store.read() as s:
        _, payment = payments.order_payment(s, placed)
        capture_amounts = {tx.gateway_reference: tx.amount for tx in payment.transactions if tx.kind == "capture"}
    assert captured  # the gateway saw both captures
    for op, capture_ref, amount in gateway.calls:
        if op == "refund":
            assert amount <= capture_amounts[capture_ref]
