"""Customer communication: transactional email written to an outbox, delivered exactly once.

`enqueue` renders a message (subject, plain text, HTML) and adds it to the `outbox` table in the
caller's transaction, so the email exists if and only if the business event committed. Rendering
happens here, once: the dispatcher never touches a template.

`dispatch` delivers due messages. Each round claims a batch in a short transaction with an UPDATE
that only succeeds if the row is still in the state that was read (status and attempt count), so
two dispatchers never claim the same row; it sends outside any transaction and then marks the batch
sent, or failed with exponential backoff (dead after MAX_ATTEMPTS). A claim is a lease: a row left
in 'sending' by a crashed dispatcher becomes due again LEASE after it was claimed. A message sent
twice because of such a crash carries the same Message-ID (`<outbox-{id}@storeom.local>`), which
mail systems and the FileTransport's file name de-duplicate.

Transactional kinds never look at marketing consent; marketing kinds are written only with
explicit consent (`marketing_consent is True`).
"""

from __future__ import annotations

import hashlib
import os
import re
import smtplib
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email import headerregistry
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import bindparam, insert, select, tuple_, update
from sqlalchemy.orm import Session, make_transient_to_detached

from om_core.clock import utcnow
from om_core.config import get_settings
from om_core.db import Database, insert_with_ids, read_rows, write_rows
from om_core.errors import ValidationError
from om_core.models import Customer, Location, Order, OutboxMessage

# --- kinds and the context each template needs ------------------------------------------------

#: Required context keys per transactional kind (a key is missing if absent, None or "").
TRANSACTIONAL_CONTEXT: dict[str, tuple[str, ...]] = {
    "order_confirmed": ("order_number", "lines", "total", "currency"),
    "order_modified": ("order_number", "lines", "total", "currency"),
    "order_cancelled": ("order_number",),
    "shipped": ("order_number", "tracking_number"),  # + tracking_url, shown as a link when it is one
    "out_for_delivery": ("order_number",),
    "delivered": ("order_number",),
    "delayed": ("order_number",),
    "ready_for_pickup": ("order_number", "store_name"),
    "return_received": ("order_number", "return_number"),
    "refund_issued": ("order_number", "refund_amount", "currency"),
    "feedback_request": ("order_number", "feedback_url"),
}
#: Required context keys per marketing kind.
MARKETING_CONTEXT: dict[str, tuple[str, ...]] = {
    "promotion": ("headline", "message"),
}
MESSAGE_KINDS: frozenset[str] = frozenset(TRANSACTIONAL_CONTEXT)
MARKETING_KINDS: frozenset[str] = frozenset(MARKETING_CONTEXT)
REQUIRED_CONTEXT: dict[str, tuple[str, ...]] = {**TRANSACTIONAL_CONTEXT, **MARKETING_CONTEXT}

#: Context keys that become links: only http(s) (and mailto) links are kept; anything else is dropped.
URL_KEYS = ("tracking_url", "feedback_url", "cta_url", "unsubscribe_url")

LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=30)
MESSAGE_ID_DOMAIN = "storeom.local"
WEBHOOK_KIND = "webhook"
DEFAULT_SENDER = "StoreOM <no-reply@storeom.local>"
DEFAULT_SHOP_NAME = "StoreOM"
TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"

_MAX_SUBJECT = 300  # outbox.subject
_MAX_DEDUPE_KEY = 160  # outbox.dedupe_key
_MAX_RECIPIENT = 254  # outbox.recipient
_MAX_ERROR = 2000

# --- rendering ----------------------------------------------------------------------------------

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$", "NZD": "NZ$"}


def _money(amount: Any, currency: str | None = None) -> str:
    """`12.5, "USD"` -> "$12.50"; currencies without a symbol here read "12.50 CHF"."""
    if amount is None or amount == "":
        return ""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    text = f"{abs(value):,.2f}"
    sign = "-" if value < 0 else ""
    symbol = _SYMBOLS.get((currency or "").upper())
    if symbol:
        return f"{sign}{symbol}{text}"
    return f"{sign}{text} {currency}" if currency else f"{sign}{text}"


def _human_date(value: Any) -> str:
    """A date, datetime or ISO string as "Monday, March 3, 2025"; anything else as given."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, date):  # datetime is a date too
        return f"{value:%A}, {value:%B} {value.day}, {value.year}"
    return "" if value is None else str(value)


_CARRIERS = {"ups": "UPS", "usps": "USPS", "fedex": "FedEx", "dhl": "DHL", "ontrac": "OnTrac"}


def _carrier(value: Any) -> str:
    """Carrier codes as customers know them: "ups" -> "UPS"."""
    text = str(value or "")
    return _CARRIERS.get(text.lower(), text)


def _safe_url(value: Any) -> str:
    url = str(value or "").strip()
    return url if _url_ok(url) else "#"


def _url_ok(url: str) -> bool:
    parts = urlsplit(url)
    return (parts.scheme.lower() in ("http", "https") and bool(parts.netloc)) or parts.scheme.lower() == "mailto"


_env = Environment(
    loader=FileSystemLoader(str(TEMPLATE_DIR)),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True, default=False),
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)
_env.filters.update(money=_money, human_date=_human_date, safe_url=_safe_url, carrier=_carrier)
_templates: dict[str, tuple[Any, Any, Any]] = {}
_templates_lock = threading.Lock()


def _templates_for(kind: str) -> tuple[Any, Any, Any]:
    found = _templates.get(kind)
    if found is None:
        with _templates_lock:
            found = _templates.get(kind) or (
                _env.get_template(f"{kind}.subject.txt"), _env.get_template(f"{kind}.txt"), _env.get_template(f"{kind}.html")
            )
            _templates[kind] = found
    return found


def _check_kind(kind: str) -> None:
    if kind not in REQUIRED_CONTEXT:
        raise ValidationError(
            f"Unknown message kind {kind!r}", errors=[{"field": "kind", "reason": f"one of {', '.join(sorted(REQUIRED_CONTEXT))}"}]
        )


def _clean_context(kind: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """The context to render: a link that is not http(s)/mailto is dropped (never rendered), then
    every required key must be present; amounts given as Decimal become "12.50"."""
    values = {
        key: (f"{value:.2f}" if isinstance(value, Decimal) else value)
        for key, value in context.items()
        if not (key in URL_KEYS and value and not _url_ok(str(value).strip()))
    }
    missing = [key for key in REQUIRED_CONTEXT[kind] if values.get(key) is None or values.get(key) == ""]
    if missing:
        raise ValidationError(
            f"Message {kind!r} cannot be rendered: " + ", ".join(f"{k} is required" for k in missing),
            errors=[{"field": f"context.{k}", "reason": "required" + (" (an http(s) link)" if k in URL_KEYS else "")} for k in missing],
        )
    values.setdefault("shop_name", os.environ.get("STOREOM_SHOP_NAME") or DEFAULT_SHOP_NAME)
    return values


def render(kind: str, context: Mapping[str, Any]) -> tuple[str, str, str]:
    """(subject, plain text, HTML) for a kind; raises ValidationError for an unknown kind or missing context."""
    _check_kind(kind)
    values = _clean_context(kind, context)
    subject_t, text_t, html_t = _templates_for(kind)
    subject = " ".join(subject_t.render(values).split())[:_MAX_SUBJECT]  # one line: no header injection
    text = re.sub(r"[ \t]+\n", "\n", text_t.render(values))
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    html = html_t.render(values).strip() + "\n"
    return subject, text, html


# --- enqueue ------------------------------------------------------------------------------------

_t = OutboxMessage.__table__
_FIND = select(_t.c.id).where(_t.c.dedupe_key == bindparam("key"))
_INSERT = insert(_t).returning(_t.c.id)


def _existing(session: Session, dedupe_key: str) -> OutboxMessage | None:
    """The message already written under this key (Core look-up; the ORM load only on a hit)."""
    found = read_rows(session, _FIND, {"key": dedupe_key})
    return session.get(OutboxMessage, found[0].id) if found else None


def _clean_recipient(recipient: str | None) -> str | None:
    if recipient is None or not recipient.strip():
        return None
    value = recipient.strip()
    local, _, domain = value.rpartition("@")
    if (not local or not domain or len(value) > _MAX_RECIPIENT or "." not in domain
            or any(c.isspace() or ord(c) < 32 or c in ",;<>" for c in value)):
        raise ValidationError(f"Not a valid recipient address: {value!r}", errors=[{"field": "recipient", "reason": "not an email address"}])
    return value


def enqueue(
    session: Session,
    kind: str,
    *,
    recipient: str | None,
    context: dict[str, Any],
    dedupe_key: str,
    order_id: int | None = None,
    customer_id: int | None = None,
    marketing: bool = False,
    marketing_consent: bool | None = None,
) -> OutboxMessage | None:
    """Render `kind` and add it to the outbox in the caller's transaction.

    Returns None, writing nothing, when there is no recipient (e.g. an anonymous till sale) or when a
    marketing kind lacks explicit consent. Transactional kinds ignore `marketing_consent` entirely.
    A `dedupe_key` already in the outbox returns that message and writes nothing. Two transactions
    cannot race on one key: the business event behind a key is written under a lock on its order or
    shipment; should one ever slip through, the unique key fails that transaction rather than send twice.
    `marketing=True` is only valid for a marketing kind (a kind is marketing by definition).
    """
    _check_kind(kind)
    is_marketing = kind in MARKETING_KINDS
    if marketing and not is_marketing:
        raise ValidationError(f"{kind!r} is a transactional message, not marketing", errors=[{"field": "marketing", "reason": "transactional kind"}])
    if not dedupe_key or len(dedupe_key) > _MAX_DEDUPE_KEY:
        raise ValidationError(f"dedupe_key must be 1-{_MAX_DEDUPE_KEY} characters", errors=[{"field": "dedupe_key", "reason": f"1-{_MAX_DEDUPE_KEY} characters"}])
    _clean_context(kind, context)
    address = _clean_recipient(recipient)
    if address is None:
        return None
    if is_marketing and marketing_consent is not True:
        return None
    found = _existing(session, dedupe_key)
    if found is not None:
        return found
    subject, text, html = render(kind, context)
    now = utcnow()
    values = {
        "kind": kind, "dedupe_key": dedupe_key, "recipient": address, "subject": subject, "body_text": text, "body_html": html,
        "order_id": order_id, "customer_id": customer_id, "marketing": is_marketing, "status": "pending", "attempts": 0,
        "next_attempt_at": now, "last_error": None, "created_at": now, "sent_at": None,
    }
    values["id"] = session.connection().execute(_INSERT, values).scalar_one()
    # One Core INSERT, then adopt the row into the session as persistent (cheaper than a unit-of-work
    # flush on the order-placement hot path).
    message = OutboxMessage(**values)
    make_transient_to_detached(message)
    session.add(message)
    return message


_FIND_MANY = select(_t.c.id, _t.c.dedupe_key).where(_t.c.dedupe_key.in_(bindparam("keys", expanding=True)))


def enqueue_many(session: Session, messages: list[dict[str, Any]], *, fresh: bool = False) -> list[int | None]:
    """`enqueue` for many messages at once (batched services): each a dict of enqueue's keyword
    arguments plus `kind` and optionally `at` (when it was written; default now). The same checks and
    the same rendering, one message at a time; one look-up of the dedupe keys and one insert for all.
    Returns each message's outbox id: the existing one for a known dedupe key (also within the
    batch), None when nothing is written (no recipient, or marketing without consent).

    `fresh`: every dedupe key names something this transaction created (a new order's number), so no
    committed message can carry it and the look-up is skipped; should one exist after all, the unique
    key fails the transaction rather than send twice."""
    prepared: list[tuple[dict[str, Any], str] | None] = []
    for m in messages:
        kind = m["kind"]
        _check_kind(kind)
        is_marketing = kind in MARKETING_KINDS
        if m.get("marketing") and not is_marketing:
            raise ValidationError(f"{kind!r} is a transactional message, not marketing", errors=[{"field": "marketing", "reason": "transactional kind"}])
        key = m["dedupe_key"]
        if not key or len(key) > _MAX_DEDUPE_KEY:
            raise ValidationError(f"dedupe_key must be 1-{_MAX_DEDUPE_KEY} characters", errors=[{"field": "dedupe_key", "reason": f"1-{_MAX_DEDUPE_KEY} characters"}])
        _clean_context(kind, m["context"])
        address = _clean_recipient(m.get("recipient"))
        if address is None or (is_marketing and m.get("marketing_consent") is not True):
            prepared.append(None)
        else:
            prepared.append((m, address))
    keys = sorted({p[0]["dedupe_key"] for p in prepared if p is not None})
    known: dict[str, int | None] = {r.dedupe_key: r.id for r in read_rows(session, _FIND_MANY, {"keys": keys})} if keys and not fresh else {}
    rows, new_keys = [], []
    for p in prepared:
        if p is None or p[0]["dedupe_key"] in known:
            continue
        m, address = p
        subject, text, html = render(m["kind"], m["context"])
        now = m.get("at") or utcnow()
        rows.append({
            "kind": m["kind"], "dedupe_key": m["dedupe_key"], "recipient": address, "subject": subject, "body_text": text, "body_html": html,
            "order_id": m.get("order_id"), "customer_id": m.get("customer_id"), "marketing": m["kind"] in MARKETING_KINDS, "status": "pending",
            "attempts": 0, "next_attempt_at": now, "last_error": None, "created_at": now, "sent_at": None,
        })
        known[m["dedupe_key"]] = None
        new_keys.append(m["dedupe_key"])
    if len(rows) == 1:  # one message (an order's confirmation): a plain insert, not the batched kind
        known[new_keys[0]] = write_rows(session, _INSERT, rows[0]).scalar_one()
    elif rows:
        for key, outbox_id in zip(new_keys, insert_with_ids(session, _t, rows)):
            known[key] = outbox_id
    return [None if p is None else known[p[0]["dedupe_key"]] for p in prepared]


def order_context(session: Session, order: Order, kind: str = "", *, customer: Any = None, lines: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """What every order message can show: number, first name, lines, totals (strings), currency.
    Pass `customer` and `lines` when they are at hand (order placement) to save reading them again."""
    if customer is None and order.customer_id:
        customer = session.get(Customer, order.customer_id)
    first_name = customer.first_name if customer and customer.first_name else None
    if first_name is None and order.ship_name:
        first_name = order.ship_name.split()[0]
    if lines is not None:
        pass
    elif kind == "order_cancelled":
        lines = [{"sku": l.sku, "name": l.name, "quantity": l.quantity} for l in order.lines]
    else:
        lines = [
            {"sku": l.sku, "name": l.name, "quantity": l.quantity - l.quantity_cancelled}
            for l in order.lines if l.quantity > l.quantity_cancelled
        ]
    context: dict[str, Any] = {
        "order_number": order.number,
        "first_name": first_name,
        "lines": lines,
        "subtotal": f"{order.subtotal:.2f}",
        "discount_total": f"{order.discount_total:.2f}",
        "shipping_total": f"{order.shipping_total:.2f}",
        "tax_total": f"{order.tax_total:.2f}",
        "total": f"{order.total:.2f}",
        "currency": order.currency,
        "delivery_method": order.delivery_method,
    }
    if kind == "ready_for_pickup" and order.pickup_location_id:
        store = session.get(Location, order.pickup_location_id)
        if store is not None:
            context["store_name"] = store.name
            address = ", ".join(p for p in (store.address_line1, store.city, store.region, store.postal_code) if p)
            if address:
                context["store_address"] = address
    return context


def notify_order(
    session: Session, order: Order, kind: str, *, dedupe_suffix: str = "", customer: Any = None,
    lines: list[dict[str, Any]] | None = None, **extra: Any,
) -> OutboxMessage | None:
    """Enqueue `kind` about `order` to the order's email (or its customer's).

    The context is `order_context(...)` overlaid with `extra` (tracking_number, tracking_url, carrier,
    estimated_delivery, store_name, return_number, refund_amount, feedback_url, ...). The dedupe key is
    `kind:number[:suffix]`: one message per event, e.g. `dedupe_suffix=shipment.number` for each parcel.
    """
    _check_kind(kind)
    if customer is None and order.customer_id:
        customer = session.get(Customer, order.customer_id)
    recipient = order.email or (customer.email if customer else None)
    context = {**order_context(session, order, kind, customer=customer, lines=lines), **extra}
    dedupe_key = f"{kind}:{order.number}" + (f":{dedupe_suffix}" if dedupe_suffix else "")
    return enqueue(
        session, kind, recipient=recipient, context=context, dedupe_key=dedupe_key, order_id=order.id,
        customer_id=order.customer_id, marketing=kind in MARKETING_KINDS,
        marketing_consent=customer.marketing_consent if customer else None,
    )


def notify_new_order(session: Session, order: Order, kind: str, *, customer: Any, lines: list[dict[str, Any]]) -> int | None:
    """`notify_order` for an order placed in this transaction, with its customer and lines at hand: the
    same message, without the dedupe look-up (nothing can carry the new order's key yet) and without
    loading the row into the session. Returns the outbox id, or None when there is no recipient."""
    _check_kind(kind)
    recipient = order.email or (customer.email if customer else None)
    [outbox_id] = enqueue_many(session, [{
        "kind": kind, "recipient": recipient, "context": order_context(session, order, kind, customer=customer, lines=lines),
        "dedupe_key": f"{kind}:{order.number}", "order_id": order.id, "customer_id": order.customer_id,
        "marketing_consent": customer.marketing_consent if customer else None,
    }], fresh=True)
    return outbox_id


# --- transports ---------------------------------------------------------------------------------


class PermanentDeliveryError(Exception):
    """The receiving side refused the message for good (e.g. SMTP 5xx): the message goes dead at once."""


@runtime_checkable
class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


class FileTransport:
    """Writes each message to `<outbox id:08d>-<kind>.eml`; a resend overwrites the same file.

    Files appear atomically (written to a temporary name, then renamed), so a reader never sees half
    a message. `fsync=True` also makes each file durable before `send` returns (slower).
    """

    def __init__(self, directory: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync

    def path_for(self, message: EmailMessage) -> Path:
        outbox_id = message.get("X-StoreOM-Outbox-Id")
        kind = _UNSAFE_NAME.sub("_", str(message.get("X-StoreOM-Kind") or "message"))
        if outbox_id is None or not str(outbox_id).isdigit():
            stem = _UNSAFE_NAME.sub("_", str(message.get("Message-ID") or "").strip("<>")) or "message"
            return self.directory / f"{stem}.eml"
        return self.directory / f"{int(outbox_id):08d}-{kind}.eml"

    def send(self, message: EmailMessage) -> None:
        final = self.path_for(message)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        data = message.as_bytes()
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


class SMTPTransport:
    """Sends through an SMTP server, reusing one connection (reconnecting when the server drops it).

    5xx refusals raise PermanentDeliveryError; anything else is a transient failure to retry.
    """

    def __init__(
        self,
        host: str,
        port: int = 587,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        sender: str = DEFAULT_SENDER,
        *,
        timeout: float = 30.0,
    ) -> None:
        self.host, self.port, self.username, self.password = host, port, username, password
        self.starttls, self.sender, self.timeout = starttls, sender, timeout
        self.envelope_from = parseaddr(sender)[1] or sender
        self._smtp: smtplib.SMTP | None = None
        self._lock = threading.Lock()

    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self.password or "")
        except BaseException:
            _quietly_close(smtp)
            raise
        return smtp

    def send(self, message: EmailMessage) -> None:
        with self._lock:
            for retry in (False, True):
                if self._smtp is None:
                    self._smtp = self._connect()
                try:
                    self._smtp.send_message(message, from_addr=self.envelope_from)
                    return
                except smtplib.SMTPServerDisconnected:
                    self._smtp = None  # an idle connection the server closed: reconnect once
                    if retry:
                        raise
                except smtplib.SMTPRecipientsRefused as exc:
                    self._reset()
                    if all(500 <= code < 600 for code, _ in exc.recipients.values()):
                        raise PermanentDeliveryError(f"recipient refused: {exc.recipients}") from exc
                    raise
                except smtplib.SMTPResponseException as exc:
                    self._reset()
                    if 500 <= exc.smtp_code < 600:
                        raise PermanentDeliveryError(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
                    raise
                except Exception:
                    smtp, self._smtp = self._smtp, None
                    _quietly_close(smtp)
                    raise

    def _reset(self) -> None:
        try:
            if self._smtp is not None:
                self._smtp.rset()
        except Exception:
            smtp, self._smtp = self._smtp, None
            _quietly_close(smtp)

    def close(self) -> None:
        with self._lock:
            smtp, self._smtp = self._smtp, None
            if smtp is not None:
                try:
                    smtp.quit()
                except Exception:
                    _quietly_close(smtp)


def _quietly_close(smtp: smtplib.SMTP | None) -> None:
    try:
        if smtp is not None:
            smtp.close()
    except Exception:
        pass


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def mail_from() -> str:
    """The From address: STOREOM_MAIL_FROM, else `StoreOM <no-reply@storeom.local>`."""
    return os.environ.get("STOREOM_MAIL_FROM") or DEFAULT_SENDER


def transport_from_env() -> Transport:
    """SMTP when STOREOM_SMTP_HOST is set (STOREOM_SMTP_PORT default 587, STOREOM_SMTP_USER,
    STOREOM_SMTP_PASSWORD, STOREOM_SMTP_STARTTLS default on, STOREOM_MAIL_FROM); otherwise .eml
    files in STOREOM_HOME/outbox."""
    env = os.environ
    host = env.get("STOREOM_SMTP_HOST", "").strip()
    if host:
        try:
            port = int(env.get("STOREOM_SMTP_PORT") or 587)
        except ValueError:
            raise ValidationError("STOREOM_SMTP_PORT must be a number", errors=[{"field": "STOREOM_SMTP_PORT", "reason": "not a number"}]) from None
        return SMTPTransport(
            host, port, env.get("STOREOM_SMTP_USER") or None, env.get("STOREOM_SMTP_PASSWORD") or None,
            _flag(env.get("STOREOM_SMTP_STARTTLS") or "true"), mail_from(),
        )
    return FileTransport(get_settings().outbox_dir)


# --- dispatch -----------------------------------------------------------------------------------


@dataclass
class DispatchReport:
    """What one `dispatch` call did: delivered, failed (will retry), and given up on (dead)."""

    sent: int = 0
    failed: int = 0
    dead: int = 0


@dataclass(frozen=True)
class _Claimed:
    id: int
    kind: str
    recipient: str
    subject: str
    body_text: str
    body_html: str
    attempts: int


_DUE = ("pending", "failed", "sending")  # 'sending' is due only once its lease has run out


class _CachingHeaderRegistry(headerregistry.HeaderRegistry):
    """The stdlib registry builds a new header class on every lookup; one per header name is enough."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls


#: `email.policy.default` with cached header classes (same output, ~30% less CPU per message).
MAIL_POLICY = email_policy.default.clone(header_factory=_CachingHeaderRegistry())


def message_id(outbox_id: int) -> str:
    return f"<outbox-{outbox_id}@{MESSAGE_ID_DOMAIN}>"


def build_email(row: Any, sender: str) -> EmailMessage:
    """The MIME message for an outbox row: text and HTML alternatives and a deterministic Message-ID."""
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["From"] = sender
    msg["To"] = row.recipient
    msg["Subject"] = row.subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = message_id(row.id)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-StoreOM-Outbox-Id"] = str(row.id)
    msg["X-StoreOM-Kind"] = row.kind
    msg.set_content(row.body_text)
    msg.add_alternative(row.body_html, subtype="html")
    # A boundary derived from the content: the same bytes on a resend, and no per-message regex
    # compilation in the generator. "=_" never occurs in quoted-printable or base64 output.
    digest = hashlib.blake2b(f"{row.id}\0{row.body_text}\0{row.body_html}".encode(), digest_size=12).hexdigest()
    msg.set_boundary(f"=_storeom_{digest}")
    return msg


def _kind_filter(webhooks: bool) -> Any:
    """Webhook messages (om_core.services.webhooks) share the outbox and its claim/retry machinery but
    are delivered by their own pass: each dispatcher sees only its own rows."""
    return _t.c.kind == WEBHOOK_KIND if webhooks else _t.c.kind != WEBHOOK_KIND


def _select_due(session: Session, now: datetime, n: int, *, webhooks: bool = False) -> list[tuple[int, str, int]]:
    """Ids due now with the status and attempt count they were read with (the claim's precondition)."""
    stmt = (
        select(_t.c.id, _t.c.status, _t.c.attempts)
        .where(_t.c.status.in_(_DUE), _t.c.next_attempt_at <= now, _kind_filter(webhooks))
        .order_by(_t.c.next_attempt_at, _t.c.id)
        .limit(n)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)  # concurrent dispatchers take different rows
    return [(r.id, r.status, r.attempts) for r in session.connection().execute(stmt)]


def _claim_rows(session: Session, seen: list[tuple[int, str, int]], now: datetime) -> list[_Claimed]:
    """Claim what was read, but only rows still in the (status, attempts) they were read with.

    The claim takes the lease (status 'sending', next_attempt_at = now + LEASE) and counts the
    attempt, so any other reader's precondition no longer holds and its UPDATE matches nothing.
    """
    if not seen:
        return []
    stmt = (
        update(_t)
        .where(tuple_(_t.c.id, _t.c.status, _t.c.attempts).in_(seen), _t.c.next_attempt_at <= now)
        .values(status="sending", attempts=_t.c.attempts + 1, next_attempt_at=now + LEASE)
        .returning(_t.c.id, _t.c.kind, _t.c.recipient, _t.c.subject, _t.c.body_text, _t.c.body_html, _t.c.attempts)
    )
    rows = session.connection().execute(stmt).all()
    return sorted((_Claimed(*r) for r in rows), key=lambda c: c.id)


def _bury_stale(session: Session, now: datetime, *, webhooks: bool = False) -> int:
    """A lease that ran out after the last allowed attempt: dead, not an endless crash loop."""
    result = session.connection().execute(
        update(_t)
        .where(_t.c.status == "sending", _t.c.next_attempt_at <= now, _t.c.attempts >= MAX_ATTEMPTS, _kind_filter(webhooks))
        .values(status="dead", last_error=f"dispatcher lease expired after {MAX_ATTEMPTS} attempts")
    )
    return result.rowcount or 0


def _claim(db: Database, n: int, *, webhooks: bool = False) -> tuple[int, list[_Claimed], int]:
    """One short transaction: (rows seen due, rows claimed, rows buried)."""
    with db.transaction() as session:
        now = utcnow()
        buried = _bury_stale(session, now, webhooks=webhooks)
        seen = _select_due(session, now, n, webhooks=webhooks)
        return len(seen), _claim_rows(session, seen, now), buried


_MARK_SENT = update(_t).where(_t.c.id == bindparam("b_id")).values(status="sent", sent_at=bindparam("b_now", type_=_t.c.sent_at.type), last_error=None)
# Only while we still hold the claim: a lease another dispatcher took over is theirs to record.
_MARK_FAILED = (
    update(_t)
    .where(_t.c.id == bindparam("b_id"), _t.c.status == "sending", _t.c.attempts == bindparam("b_attempts"))
    .values(status=bindparam("b_status"), next_attempt_at=bindparam("b_next", type_=_t.c.next_attempt_at.type), last_error=bindparam("b_error"))
)


def _backoff(attempts: int) -> timedelta:
    return BACKOFF_BASE * (2 ** max(0, attempts - 1))


def _mark(db: Database, sent: list[_Claimed], failed: list[tuple[_Claimed, BaseException, bool]]) -> tuple[int, int]:
    """Record a batch's outcome in one transaction; returns (failed, dead) counts."""
    if not sent and not failed:
        return 0, 0
    n_failed = n_dead = 0
    with db.transaction() as session:
        now = utcnow()
        conn = session.connection()
        if sent:
            conn.execute(_MARK_SENT, [{"b_id": c.id, "b_now": now} for c in sent])
        if failed:
            rows = []
            for claimed, exc, permanent in failed:
                dead = permanent or claimed.attempts >= MAX_ATTEMPTS
                n_dead += dead
                n_failed += not dead
                error = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]
                rows.append({
                    "b_id": claimed.id, "b_attempts": claimed.attempts, "b_status": "dead" if dead else "failed",
                    "b_next": now if dead else now + _backoff(claimed.attempts), "b_error": error,
                })
            conn.execute(_MARK_FAILED, rows)
    return n_failed, n_dead


def dispatch(db: Database, *, transport: Transport | None = None, limit: int = 10_000, batch: int = 500) -> DispatchReport:
    """Deliver up to `limit` due messages, `batch` per claim; see the module docstring for the guarantees."""
    if limit < 1 or batch < 1:
        raise ValidationError("limit and batch must be positive", errors=[{"field": "limit/batch", "reason": "positive"}])
    own_transport = transport is None
    transport = transport or transport_from_env()
    sender = getattr(transport, "sender", None) or mail_from()
    report = DispatchReport()
    claimed_total = 0
    idle_rounds = 0
    try:
        while claimed_total < limit:
            seen, claimed, buried = _claim(db, min(batch, limit - claimed_total))
            report.dead += buried
            if seen == 0:
                break
            if not claimed:  # another dispatcher won every row we saw; look again (bounded)
                idle_rounds += 1
                if idle_rounds > 10:
                    break
                continue
            idle_rounds = 0
            claimed_total += len(claimed)
            sent: list[_Claimed] = []
            failed: list[tuple[_Claimed, BaseException, bool]] = []
            try:
                for row in claimed:
                    try:
                        transport.send(build_email(row, sender))
                    except PermanentDeliveryError as exc:
                        failed.append((row, exc, True))
                    except Exception as exc:  # noqa: BLE001 - any transport error is a failed attempt
                        failed.append((row, exc, False))
                    else:
                        sent.append(row)
            finally:
                # Even if interrupted, record what was already delivered; rows not yet attempted stay
                # 'sending' and are retried when their lease runs out.
                n_failed, n_dead = _mark(db, sent, failed)
            report.sent += len(sent)
            report.failed += n_failed
            report.dead += n_dead
    finally:
        if own_transport and hasattr(transport, "close"):
            transport.close()  # type: ignore[union-attr]
    return report


__all__ = [
    "DispatchReport",
    "FileTransport",
    "LEASE",
    "MARKETING_KINDS",
    "MAX_ATTEMPTS",
    "MESSAGE_KINDS",
    "PermanentDeliveryError",
    "REQUIRED_CONTEXT",
    "SMTPTransport",
    "Transport",
    "build_email",
    "dispatch",
    "enqueue",
    "enqueue_many",
    "mail_from",
    "message_id",
    "notify_new_order",
    "notify_order",
    "order_context",
    "render",
    "transport_from_env",
]
