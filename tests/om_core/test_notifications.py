"""Customer communication: templates, the transactional outbox, and exactly-once dispatch."""

from __future__ import annotations

import email
import email.policy
import smtplib
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from om_core.clock import frozen_at
from om_core.db import Database
from om_core.errors import ValidationError
from om_core.models import Order, OutboxMessage
from om_core.services import notifications, orders
from om_core.services.notifications import (
    LEASE,
    MARKETING_KINDS,
    MAX_ATTEMPTS,
    MESSAGE_KINDS,
    REQUIRED_CONTEXT,
    DispatchReport,
    FileTransport,
    PermanentDeliveryError,
    SMTPTransport,
    dispatch,
    enqueue,
    notify_order,
    render,
    transport_from_env,
)
from tests.om_core.store import ADA, BOB, web_order

T0 = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


# --- helpers ------------------------------------------------------------------------------------


class Recorder:
    """A transport that keeps what it was given (thread-safe), optionally failing or crashing."""

    def __init__(self, fail: BaseException | None = None, crash_on: int | None = None) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.calls = 0
        self.fail = fail
        self.crash_on = crash_on
        self._lock = threading.Lock()

    def send(self, message):  # type: ignore[no-untyped-def]
        with self._lock:
            self.calls += 1
            if self.crash_on is not None and self.calls == self.crash_on:
                raise Crash("dispatcher process killed")
            if self.fail is not None:
                raise self.fail
            self.messages.append(message)

    @property
    def ids(self) -> list[str]:
        return [m["Message-ID"] for m in self.messages]


class Crash(BaseException):
    """Stands in for the dispatcher dying mid-batch (not an Exception: nothing catches it)."""


def order_ctx(n: int = 1, **extra: object) -> dict[str, object]:
    return {"order_number": f"SO-TEST{n:05d}", "first_name": "Ada", "currency": "USD", "total": "25.00",
            "lines": [{"sku": "MUG", "name": "Coffee mug", "quantity": 2}], "delivery_method": "ship", **extra}


def add_messages(db: Database, n: int, *, kind: str = "order_confirmed") -> list[int]:
    ids = []
    with db.transaction() as s:
        for i in range(n):
            msg = enqueue(s, kind, recipient=f"c{i}@example.com", context=order_ctx(i), dedupe_key=f"{kind}:SO-TEST{i:05d}")
            assert msg is not None
            s.flush()
            ids.append(msg.id)
    return ids


def outbox(db: Database) -> list[OutboxMessage]:
    with db.read() as s:
        rows = list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        s.expunge_all()  # keep the loaded values after the read session ends
        return rows


def outbox_count(db: Database) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(OutboxMessage)) or 0


def one(db: Database, outbox_id: int) -> OutboxMessage:
    with db.read() as s:
        row = s.get(OutboxMessage, outbox_id)
        s.expunge_all()
        return row  # type: ignore[return-value]


FULL_CONTEXT = {
    **order_ctx(7, first_name="Ada"), "subtotal": "22.00", "discount_total": "2.00", "shipping_total": "4.95", "tax_total": "0.05",
    "tracking_number": "1Z999AA10123456784", "tracking_url": "https://track.example.com/1Z999AA10123456784", "carrier": "UPS",
    "estimated_delivery": datetime(2025, 3, 7, tzinfo=UTC), "store_name": "NYC store", "store_address": "1 Broadway, New York",
    "return_number": "RMA-000042", "refund_amount": "12.50", "feedback_url": "https://shop.example.com/feedback/abc",
    "headline": "Spring sale: 20% off kitchenware", "message": "Everything in the kitchen range is 20% off this week.",
    "coupon_code": "SPRING20", "unsubscribe_url": "https://shop.example.com/unsubscribe/abc",
}


# --- templates ----------------------------------------------------------------------------------


def test_kinds_are_the_documented_set():
    assert MESSAGE_KINDS == {"order_confirmed", "order_modified", "order_cancelled", "shipped", "out_for_delivery", "delivered",
                             "delayed", "ready_for_pickup", "return_received", "refund_issued", "feedback_request"}
    assert MARKETING_KINDS == {"promotion"}
    assert not MESSAGE_KINDS & MARKETING_KINDS


@pytest.mark.parametrize("kind", sorted(REQUIRED_CONTEXT))
def test_every_kind_renders_a_subject_text_and_html(kind):
    subject, text, html = render(kind, FULL_CONTEXT)
    assert subject and "\n" not in subject and len(subject) <= 300
    assert text.startswith("Hi Ada,") and "StoreOM" in text
    assert html.startswith("<!DOCTYPE html>") and "Hi Ada," in html
    if kind in MESSAGE_KINDS:
        assert "SO-TEST00007" in text and "SO-TEST00007" in html


@pytest.mark.parametrize("kind, text_has, html_has", [
    ("order_confirmed", ["2 x Coffee mug (MUG)", "Total:    $25.00"], ["Coffee mug", "$25.00"]),
    ("shipped", ["1Z999AA10123456784", "https://track.example.com/1Z999AA10123456784", "UPS", "Friday, March 7, 2025"],
     ['href="https://track.example.com/1Z999AA10123456784"', "1Z999AA10123456784"]),
    ("ready_for_pickup", ["NYC store", "1 Broadway"], ["NYC store"]),
    ("refund_issued", ["$12.50", "RMA-000042"], ["$12.50"]),
    ("feedback_request", ["https://shop.example.com/feedback/abc"], ['href="https://shop.example.com/feedback/abc"']),
    ("promotion", ["SPRING20", "https://shop.example.com/unsubscribe/abc"], ["SPRING20", "Unsubscribe"]),
])
def test_templates_show_what_the_customer_needs(kind, text_has, html_has):
    subject, text, html = render(kind, FULL_CONTEXT)
    for needle in text_has:
        assert needle in text, needle
    for needle in html_has:
        assert needle in html, needle
    if kind == "ready_for_pickup":
        assert "NYC store" in subject
    if kind == "refund_issued":
        assert "$12.50" in subject


def test_html_is_autoescaped_and_text_is_not():
    ctx = order_ctx(first_name='<script>alert("x")</script>', lines=[{"sku": "A&B", "name": "Tom & Jerry <mug>", "quantity": 1}])
    subject, text, html = render("order_confirmed", ctx)
    assert "<script>" not in html and "&lt;script&gt;" in html and "Tom &amp; Jerry &lt;mug&gt;" in html
    assert '<script>alert("x")</script>' in text and "Tom & Jerry <mug>" in text


def test_missing_context_or_a_non_http_link_is_refused():
    with pytest.raises(ValidationError) as exc:
        render("return_received", order_ctx(order_number=None))
    assert {e["field"] for e in exc.value.errors} == {"context.order_number", "context.return_number"}
    with pytest.raises(ValidationError):  # a link that is not http(s) is dropped, and this one is required
        render("feedback_request", order_ctx(feedback_url="javascript:alert(1)"))


def test_a_shipment_without_a_usable_tracking_link_still_gets_its_email():
    _, text, html = render("shipped", order_ctx(tracking_number="DS-123", tracking_url="DS-123", carrier="ups"))
    assert "DS-123" in text and "Track your parcel" not in text and "href=" not in html
    assert "shipped with UPS" in text


def test_subject_is_one_line_whatever_the_context():
    subject, _, _ = render("return_received", order_ctx(return_number="RMA-1\r\nBcc: victim@example.com"))
    assert "\r" not in subject and "\n" not in subject


# --- enqueue ------------------------------------------------------------------------------------


def test_a_message_rolls_back_with_the_business_event(store):
    with pytest.raises(RuntimeError), store.transaction() as s:
        order = orders.place_order(s, web_order(("MUG", 1)))
        assert notify_order(s, order, "order_confirmed") is not None
        raise RuntimeError("payment provider timed out after the order was written")
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 0
    assert outbox_count(store) == 0


def test_rollback_of_a_plain_enqueue_leaves_nothing(db):
    with pytest.raises(RuntimeError), db.transaction() as s:
        enqueue(s, "order_confirmed", recipient="ada@example.com", context=order_ctx(), dedupe_key="k1")
        raise RuntimeError("boom")
    assert outbox_count(db) == 0


def test_order_confirmation_is_written_with_the_order(store):
    with frozen_at(T0), store.transaction() as s:
        order = orders.place_order(s, web_order(("MUG", 2), ("TEE-S", 1)))
        msg = notify_order(s, order, "order_confirmed")
        number, order_id = order.number, order.id
    assert msg is not None
    [row] = outbox(store)
    assert (row.kind, row.recipient, row.order_id, row.customer_id) == ("order_confirmed", "ada@example.com", order_id, ADA)
    assert (row.status, row.attempts, row.marketing, row.dedupe_key) == ("pending", 0, False, f"order_confirmed:{number}")
    assert row.next_attempt_at == T0 and row.created_at == T0
    assert number in row.subject
    assert "Hi Ada," in row.body_text and "2 x Coffee mug (MUG)" in row.body_text and "1 x T-shirt S (TEE-S)" in row.body_text
    with store.read() as s:
        total = s.scalar(select(Order.total).where(Order.number == number))
    assert f"${total:.2f}" in row.body_text and f"${total:.2f}" in row.body_html


@pytest.mark.parametrize("consent", [True, False, None])
def test_consent_never_gates_transactional_kinds(db, consent):
    with db.transaction() as s:
        for kind in sorted(MESSAGE_KINDS):
            msg = enqueue(s, kind, recipient="bob@example.com", context=FULL_CONTEXT, dedupe_key=f"{kind}:x",
                          marketing_consent=consent)
            assert msg is not None and msg.marketing is False
    assert outbox_count(db) == len(MESSAGE_KINDS)


def test_a_customer_without_marketing_consent_still_gets_order_emails(store):
    with store.transaction() as s:
        order = orders.place_order(s, web_order(("MUG", 1), customer_id=BOB))
        assert notify_order(s, order, "order_confirmed") is not None
        assert notify_order(s, order, "shipped", tracking_number="1Z1", tracking_url="https://t.example.com/1Z1") is not None
        # ...and no promotion: Bob never agreed to marketing
        assert notify_order(s, order, "promotion", headline="Sale", message="20% off") is None
    assert [(m.kind, m.recipient) for m in outbox(store)] == [("order_confirmed", "bob@example.com"), ("shipped", "bob@example.com")]


@pytest.mark.parametrize("consent", [False, None])
def test_marketing_needs_explicit_consent(db, consent):
    with db.transaction() as s:
        assert enqueue(s, "promotion", recipient="ada@example.com", context=FULL_CONTEXT, dedupe_key="promo:1",
                       marketing=True, marketing_consent=consent) is None
        assert enqueue(s, "promotion", recipient="ada@example.com", context=FULL_CONTEXT, dedupe_key="promo:2",
                       marketing_consent=consent) is None
    assert outbox_count(db) == 0


def test_marketing_with_consent_is_enqueued_and_flagged(db):
    with db.transaction() as s:
        msg = enqueue(s, "promotion", recipient="ada@example.com", context=FULL_CONTEXT, dedupe_key="promo:1",
                      marketing=True, marketing_consent=True)
    assert msg is not None
    [row] = outbox(db)
    assert row.marketing is True and row.subject == "Spring sale: 20% off kitchenware"


def test_a_transactional_kind_cannot_be_sent_as_marketing(db):
    with pytest.raises(ValidationError), db.transaction() as s:
        enqueue(s, "shipped", recipient="ada@example.com", context=FULL_CONTEXT, dedupe_key="k", marketing=True)
    assert outbox_count(db) == 0


def test_same_dedupe_key_twice_is_one_message(db):
    with db.transaction() as s:
        first = enqueue(s, "order_confirmed", recipient="ada@example.com", context=order_ctx(), dedupe_key="order_confirmed:SO-1")
        again = enqueue(s, "order_confirmed", recipient="ada@example.com", context=order_ctx(), dedupe_key="order_confirmed:SO-1")
        assert again is first
        first_id = first.id
    with db.transaction() as s:  # a later transaction (e.g. a retried webhook) gets the same row back
        later = enqueue(s, "order_confirmed", recipient="other@example.com", context=order_ctx(), dedupe_key="order_confirmed:SO-1")
        assert later is not None and later.id == first_id and later.recipient == "ada@example.com"
    assert outbox_count(db) == 1


def test_notify_order_dedupes_per_event_and_suffix(store):
    with store.transaction() as s:
        order = orders.place_order(s, web_order(("MUG", 1)))
        tracking = {"tracking_number": "1Z1", "tracking_url": "https://t.example.com/1Z1"}
        a = notify_order(s, order, "shipped", dedupe_suffix="SH-1", **tracking)
        b = notify_order(s, order, "shipped", dedupe_suffix="SH-1", **tracking)
        c = notify_order(s, order, "shipped", dedupe_suffix="SH-2", **tracking)
        assert a is b and c is not a
        assert notify_order(s, order, "order_confirmed") is notify_order(s, order, "order_confirmed")
        number = order.number
    assert sorted(m.dedupe_key for m in outbox(store)) == [
        f"order_confirmed:{number}", f"shipped:{number}:SH-1", f"shipped:{number}:SH-2"]


def test_a_key_committed_by_another_transaction_inserts_nothing_and_keeps_ours(db):
    """Another transaction committed the key first: our insert does nothing (ON CONFLICT DO NOTHING),
    the existing row is returned, and the rest of our transaction (the business event) still commits."""
    with db.transaction() as s:
        theirs = enqueue(s, "order_confirmed", recipient="ada@example.com", context=order_ctx(1), dedupe_key="dup")
        s.flush()
        theirs_id = theirs.id
    with db.transaction() as s:
        other = enqueue(s, "order_confirmed", recipient="bob@example.com", context=order_ctx(2), dedupe_key="other")
        mine = enqueue(s, "order_confirmed", recipient="ada@example.com", context=order_ctx(1), dedupe_key="dup")
        assert mine is not None and mine.id == theirs_id
        assert other is not None
    assert sorted(m.dedupe_key for m in outbox(db)) == ["dup", "other"]


def test_no_recipient_means_no_message(store):
    with store.transaction() as s:
        assert enqueue(s, "order_confirmed", recipient=None, context=order_ctx(), dedupe_key="a") is None
        assert enqueue(s, "order_confirmed", recipient="  ", context=order_ctx(), dedupe_key="b") is None
        till_sale = orders.place_order(s, {"channel": "pos-nyc", "delivery": "carry_out", "location": "ST-NYC",
                                           "lines": [{"sku": "MUG", "quantity": 1}], "payment_token": "tok_till"})
        assert till_sale.email is None and till_sale.customer_id is None
        assert notify_order(s, till_sale, "order_confirmed") is None
    assert outbox_count(store) == 0


def test_unknown_kind_is_refused_and_writes_nothing(store):
    with pytest.raises(ValidationError) as exc, store.transaction() as s:
        enqueue(s, "order_teleported", recipient="ada@example.com", context=order_ctx(), dedupe_key="x")
    assert exc.value.errors[0]["field"] == "kind"
    with pytest.raises(ValidationError), store.transaction() as s:
        order = orders.place_order(s, web_order(("MUG", 1)))
        notify_order(s, order, "order_teleported")
    assert outbox_count(store) == 0


def test_a_malformed_recipient_is_refused(db):
    with pytest.raises(ValidationError), db.transaction() as s:
        enqueue(s, "order_confirmed", recipient="ada@example.com\r\nBcc: x@example.com", context=order_ctx(), dedupe_key="x")
    assert outbox_count(db) == 0


def test_ready_for_pickup_names_the_store(store):
    with store.transaction() as s:
        order = orders.place_order(s, web_order(("MUG", 1), delivery="pickup", pickup_location="ST-NYC", shipping_method=None))
        msg = notify_order(s, order, "ready_for_pickup")
    assert msg is not None and "NYC store" in msg.subject and "NYC store" in msg.body_text


# --- dispatch -----------------------------------------------------------------------------------


def test_dispatch_writes_one_eml_per_message_with_both_parts(db, tmp_path):
    out = tmp_path / "outbox"
    with frozen_at(T0):
        ids = add_messages(db, 3)
        report = dispatch(db, transport=FileTransport(out))
    assert report == DispatchReport(sent=3, failed=0, dead=0)
    assert sorted(p.name for p in out.iterdir()) == [f"{i:08d}-order_confirmed.eml" for i in ids]  # no temp files left
    parsed = email.message_from_bytes((out / f"{ids[0]:08d}-order_confirmed.eml").read_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"] == f"<outbox-{ids[0]}@storeom.local>"
    assert parsed["To"] == "c0@example.com" and parsed["Subject"] == "Thanks for your order SO-TEST00000"
    assert parsed.get_content_type() == "multipart/alternative"
    assert "2 x Coffee mug (MUG)" in parsed.get_body(("plain",)).get_content()
    assert "<strong>SO-TEST00000</strong>" in parsed.get_body(("html",)).get_content()
    for row in outbox(db):
        assert (row.status, row.attempts, row.sent_at, row.last_error) == ("sent", 1, T0, None)


def test_a_second_dispatch_sends_nothing(db):
    add_messages(db, 5)
    first = Recorder()
    assert dispatch(db, transport=first).sent == 5
    second = Recorder()
    assert dispatch(db, transport=second) == DispatchReport(0, 0, 0)
    assert second.calls == 0
    assert len(set(first.ids)) == 5


def test_file_transport_resend_of_a_message_is_the_same_file(db, tmp_path):
    [outbox_id] = add_messages(db, 1)
    row = one(db, outbox_id)
    transport = FileTransport(tmp_path / "outbox")
    transport.send(notifications.build_email(row, "shop@example.com"))
    transport.send(notifications.build_email(row, "shop@example.com"))
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == [f"{outbox_id:08d}-order_confirmed.eml"]


def test_a_failing_transport_records_the_failure_and_backs_off(db):
    with frozen_at(T0):
        [outbox_id] = add_messages(db, 1)
        report = dispatch(db, transport=Recorder(fail=ConnectionRefusedError("SMTP server down")))
    assert report == DispatchReport(sent=0, failed=1, dead=0)
    row = one(db, outbox_id)
    assert (row.status, row.attempts, row.sent_at) == ("failed", 1, None)
    assert row.last_error == "ConnectionRefusedError: SMTP server down"
    assert row.next_attempt_at == T0 + timedelta(seconds=30)

    early = Recorder()
    with frozen_at(T0 + timedelta(seconds=29)):
        assert dispatch(db, transport=early) == DispatchReport(0, 0, 0)
    assert early.calls == 0

    later = Recorder()
    with frozen_at(T0 + timedelta(seconds=30)):
        assert dispatch(db, transport=later) == DispatchReport(sent=1)
    row = one(db, outbox_id)
    assert (row.status, row.attempts, row.last_error, row.sent_at) == ("sent", 2, None, T0 + timedelta(seconds=30))
    assert later.ids == [f"<outbox-{outbox_id}@storeom.local>"]


def test_backoff_doubles_until_the_message_is_dead(db):
    with frozen_at(T0):
        [outbox_id] = add_messages(db, 1)
    now = T0
    failing = Recorder(fail=TimeoutError("timed out"))
    for attempt in range(1, MAX_ATTEMPTS + 1):
        with frozen_at(now):
            report = dispatch(db, transport=failing)
        row = one(db, outbox_id)
        assert row.attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert report == DispatchReport(failed=1) and row.status == "failed"
            assert row.next_attempt_at == now + timedelta(seconds=30 * 2 ** (attempt - 1))
            now = row.next_attempt_at
        else:
            assert report == DispatchReport(dead=1) and row.status == "dead" and "timed out" in row.last_error
    assert failing.calls == MAX_ATTEMPTS
    quiet = Recorder()
    with frozen_at(now + timedelta(days=30)):
        assert dispatch(db, transport=quiet) == DispatchReport(0, 0, 0)
    assert quiet.calls == 0


def test_a_permanent_refusal_is_dead_at_once(db):
    [outbox_id] = add_messages(db, 1)
    report = dispatch(db, transport=Recorder(fail=PermanentDeliveryError("550 no such user")))
    assert report == DispatchReport(dead=1)
    row = one(db, outbox_id)
    assert (row.status, row.attempts) == ("dead", 1) and "550 no such user" in row.last_error


def test_two_dispatchers_send_each_message_exactly_once(db):
    ids = add_messages(db, 200)
    transport = Recorder()
    reports: list[DispatchReport] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        try:
            start.wait()
            reports.append(dispatch(db, transport=transport, batch=7))
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert transport.calls == 200
    assert Counter(transport.ids) == {f"<outbox-{i}@storeom.local>": 1 for i in ids}
    assert sum(r.sent for r in reports) == 200
    assert {(m.status, m.attempts) for m in outbox(db)} == {("sent", 1)}


def test_a_claim_only_succeeds_if_the_row_is_still_as_read(db):
    """Two dispatchers read the same due rows; only the first UPDATE claims them."""
    with frozen_at(T0):
        add_messages(db, 4)
    with frozen_at(T0 + timedelta(minutes=1)):
        with db.read() as s:
            seen = notifications._select_due(s, T0 + timedelta(minutes=1), 10)
        assert len(seen) == 4
        with db.transaction() as s:
            assert len(notifications._claim_rows(s, seen, T0 + timedelta(minutes=1))) == 4
        with db.transaction() as s:  # the second reader's view is stale: nothing matches
            assert notifications._claim_rows(s, seen, T0 + timedelta(minutes=1)) == []
    assert {(m.status, m.attempts) for m in outbox(db)} == {("sending", 1)}


def test_a_stale_sending_row_is_reclaimed_after_the_lease(db):
    with frozen_at(T0):
        ids = add_messages(db, 3)
        crashing = Recorder(crash_on=2)  # delivers the first message, dies on the second
        with pytest.raises(Crash):
            dispatch(db, transport=crashing)
    rows = {m.id: m for m in outbox(db)}
    assert rows[ids[0]].status == "sent"  # what was delivered before the crash is recorded
    assert [rows[i].status for i in ids[1:]] == ["sending", "sending"]

    waiting = Recorder()
    with frozen_at(T0 + LEASE - timedelta(seconds=1)):
        assert dispatch(db, transport=waiting) == DispatchReport(0, 0, 0)  # the lease still holds
    assert waiting.calls == 0

    recovering = Recorder()
    with frozen_at(T0 + LEASE):
        assert dispatch(db, transport=recovering) == DispatchReport(sent=2)
    # the resend carries the same Message-ID the crashed attempt used, so receivers de-duplicate it
    assert recovering.ids == [f"<outbox-{i}@storeom.local>" for i in ids[1:]]
    assert {m.id: (m.status, m.attempts) for m in outbox(db)} == {ids[0]: ("sent", 1), ids[1]: ("sent", 2), ids[2]: ("sent", 2)}


def test_a_message_that_keeps_killing_the_dispatcher_ends_dead(db):
    [outbox_id] = add_messages(db, 1)
    with db.transaction() as s:
        s.execute(update(OutboxMessage).values(status="sending", attempts=MAX_ATTEMPTS, next_attempt_at=T0))
    transport = Recorder()
    with frozen_at(T0 + timedelta(seconds=1)):
        assert dispatch(db, transport=transport) == DispatchReport(dead=1)
    assert transport.calls == 0 and one(db, outbox_id).status == "dead"


def test_limit_and_batch_bound_a_run(db):
    add_messages(db, 25)
    transport = Recorder()
    assert dispatch(db, transport=transport, limit=10, batch=4).sent == 10
    assert dispatch(db, transport=transport, batch=4).sent == 15
    assert transport.calls == 25


# --- transports ---------------------------------------------------------------------------------


def test_transport_from_env(monkeypatch, tmp_path):
    for var in ("STOREOM_SMTP_HOST", "STOREOM_SMTP_PORT", "STOREOM_SMTP_USER", "STOREOM_SMTP_PASSWORD", "STOREOM_SMTP_STARTTLS", "STOREOM_MAIL_FROM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("STOREOM_HOME", str(tmp_path))
    files = transport_from_env()
    assert isinstance(files, FileTransport) and files.directory == tmp_path / "outbox" and files.directory.is_dir()

    monkeypatch.setenv("STOREOM_SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("STOREOM_SMTP_PORT", "2525")
    monkeypatch.setenv("STOREOM_SMTP_USER", "shop")
    monkeypatch.setenv("STOREOM_SMTP_PASSWORD", "s3cret")
    monkeypatch.setenv("STOREOM_SMTP_STARTTLS", "false")
    monkeypatch.setenv("STOREOM_MAIL_FROM", "Shop <orders@shop.example.com>")
    smtp = transport_from_env()
    assert isinstance(smtp, SMTPTransport)
    assert (smtp.host, smtp.port, smtp.username, smtp.password, smtp.starttls) == ("smtp.example.com", 2525, "shop", "s3cret", False)
    assert smtp.sender == "Shop <orders@shop.example.com>" and smtp.envelope_from == "orders@shop.example.com"


class FakeSMTP:
    instances: list[FakeSMTP] = []
    refuse_with: tuple[int, bytes] | None = None

    def __init__(self, host, port, timeout):  # type: ignore[no-untyped-def]
        self.host, self.port, self.log = host, port, []
        FakeSMTP.instances.append(self)

    def ehlo(self):  # type: ignore[no-untyped-def]
        self.log.append("ehlo")

    def starttls(self, context=None):  # type: ignore[no-untyped-def]
        self.log.append("starttls")

    def login(self, user, password):  # type: ignore[no-untyped-def]
        self.log.append(("login", user, password))

    def send_message(self, message, from_addr=None):  # type: ignore[no-untyped-def]
        if FakeSMTP.refuse_with:
            raise smtplib.SMTPRecipientsRefused({message["To"]: FakeSMTP.refuse_with})
        self.log.append(("send", from_addr, message["Message-ID"]))

    def rset(self):  # type: ignore[no-untyped-def]
        self.log.append("rset")

    def quit(self):  # type: ignore[no-untyped-def]
        self.log.append("quit")

    def close(self):  # type: ignore[no-untyped-def]
        self.log.append("close")


def test_smtp_transport_uses_starttls_login_and_one_connection(db, monkeypatch):
    monkeypatch.setattr(smtplib, "SMTP", FakeSMTP)
    FakeSMTP.instances, FakeSMTP.refuse_with = [], None
    ids = add_messages(db, 3)
    transport = SMTPTransport("smtp.example.com", 587, "shop", "pw", True, "Shop <orders@shop.example.com>")
    assert dispatch(db, transport=transport) == DispatchReport(sent=3)
    transport.close()
    [conn] = FakeSMTP.instances
    assert conn.log[:4] == ["ehlo", "starttls", "ehlo", ("login", "shop", "pw")]
    assert conn.log[4:7] == [("send", "orders@shop.example.com", f"<outbox-{i}@storeom.local>") for i in ids]
    assert conn.log[-1] == "quit"


def test_smtp_5xx_refusal_is_permanent_and_4xx_is_retried(db, monkeypatch):
    monkeypatch.setattr(smtplib, "SMTP", FakeSMTP)
    FakeSMTP.instances = []
    [a, b] = add_messages(db, 2)
    transport = SMTPTransport("smtp.example.com", 25, None, None, False, "orders@shop.example.com")
    FakeSMTP.refuse_with = (550, b"5.1.1 no such user")
    assert dispatch(db, transport=transport, limit=1) == DispatchReport(dead=1)
    FakeSMTP.refuse_with = (451, b"4.7.1 try again later")
    assert dispatch(db, transport=transport, limit=1) == DispatchReport(failed=1)
    FakeSMTP.refuse_with = None
    assert (one(db, a).status, one(db, b).status) == ("dead", "failed")
