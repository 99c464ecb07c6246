"""Webhooks for ERP/CRM systems: subscriptions per event type, signed deliveries from the outbox.

A business event becomes one outbox row per interested subscription (kind 'webhook', recipient
`webhook:<subscription id>`, subject = the event type, body = the JSON payload), written in the same
transaction as the event, so a webhook exists if and only if the event committed. Order events are
picked up where they are recorded (om_core.services.events); purchase-order receipts where they are
booked; low stock is looked for at the start of each delivery pass.

`deliver` reuses the outbox's claim/lease/backoff machinery (om_core.services.notifications) with its
own HTTP transport: each POST carries `X-StoreOM-Event-Id` (the same for every subscriber and every
retry, so receivers de-duplicate on it), `X-StoreOM-Event` and
`X-StoreOM-Signature: sha256=<hex HMAC-SHA256 of the body with the subscription's secret>`. A 2xx
answer is delivered; anything else is retried with exponential backoff (`next_attempt_at`) up to
MAX_ATTEMPTS; 410 Gone, or a removed subscription, gives up at once. Every attempt is logged in
`webhook_deliveries`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import Field, field_validator
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from om_core.clock import utcnow
from om_core.db import Database, read_rows, write_rows
from om_core.errors import NotFound
from om_core.models import Channel, Location, Order, OutboxMessage, Product, Reservation, Stock, WebhookDelivery, WebhookSubscription
from om_core.services import notifications
from om_core.services.notifications import WEBHOOK_KIND
from om_core.validation import Input, parse

EVENT_TYPES = (
    "order.placed", "order.modified", "order.cancelled", "order.shipped", "order.delivered", "return.received",
    "refund.issued", "stock.low", "purchase_order.received",
)
EventType = Literal[
    "order.placed", "order.modified", "order.cancelled", "order.shipped", "order.delivered", "return.received",
    "refund.issued", "stock.low", "purchase_order.received",
]

#: Order-event kinds (om_core.services.events) and the webhook event they are.
ORDER_EVENT_TYPES = {
    "order_placed": "order.placed",
    "replacement_order_placed": "order.placed",
    "order_modified": "order.modified",
    "order_cancelled": "order.cancelled",
    "shipment_dispatched": "order.shipped",
    "tracking_delivered": "order.delivered",
    "picked_up": "order.delivered",
    "return_received": "return.received",
    "refund_issued": "refund.issued",
}

LOW_STOCK_THRESHOLD = 5
"""Available units at or below which a stock row is low (stock.low, at most once a day per SKU and location)."""

USER_AGENT = "StoreOM-Webhooks/1"


class UnknownSubscription(NotFound):
    code = "unknown_webhook_subscription"


class SubscriptionIn(Input):
    url: str = Field(min_length=8, max_length=500)
    event_types: list[EventType] = Field(min_length=1, max_length=len(EVENT_TYPES))
    secret: str | None = Field(default=None, min_length=16, max_length=128)
    description: str | None = Field(default=None, max_length=200)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL with a host")
        return value

    @field_validator("event_types")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


# --- subscriptions ------------------------------------------------------------------------------------


def create_subscription(session: Session, data: SubscriptionIn | dict[str, Any]) -> WebhookSubscription:
    req = parse(SubscriptionIn, data)
    sub = WebhookSubscription(url=req.url, secret=req.secret or secrets.token_hex(32), event_types=req.event_types,
                              description=req.description, active=True, created_at=utcnow())
    session.add(sub)
    session.flush()
    session.info.pop("webhook_subscribers", None)  # this transaction's later events see it
    return sub


def get_subscription(session: Session, subscription_id: int) -> WebhookSubscription:
    sub = session.get(WebhookSubscription, subscription_id)
    if sub is None or not sub.active:
        raise UnknownSubscription(f"No webhook subscription {subscription_id}", subscription_id=subscription_id)
    return sub


def list_subscriptions(session: Session) -> list[WebhookSubscription]:
    return list(session.scalars(select(WebhookSubscription).where(WebhookSubscription.active.is_(True)).order_by(WebhookSubscription.id)))


def remove_subscription(session: Session, subscription_id: int) -> WebhookSubscription:
    """Stop delivering to a subscription; messages still queued for it give up on their next attempt."""
    sub = get_subscription(session, subscription_id)
    sub.active, sub.removed_at = False, utcnow()
    session.flush()
    session.info.pop("webhook_subscribers", None)
    return sub


def subscription_view(sub: WebhookSubscription) -> dict[str, Any]:
    """A subscription without its secret (shown only when it is created)."""
    return {"id": sub.id, "url": sub.url, "event_types": list(sub.event_types), "description": sub.description,
            "active": sub.active, "created_at": sub.created_at.isoformat()}


def delivery_log(session: Session, subscription_id: int, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    rows = session.scalars(select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
                           .order_by(WebhookDelivery.id.desc()).limit(limit).offset(offset))
    return [{"event_id": r.event_id, "event_type": r.event_type, "attempt": r.attempt, "outcome": r.outcome,
             "status_code": r.status_code, "error": r.error, "duration_ms": r.duration_ms, "at": r.at.isoformat()} for r in rows]


# --- writing webhook messages ------------------------------------------------------------------------

_SUBSCRIBED = select(WebhookSubscription.id, WebhookSubscription.event_types).where(WebhookSubscription.active.is_(True))
_OUTBOX = insert(OutboxMessage.__table__)


ACTIVE_SUBSCRIPTIONS = select(func.count()).select_from(WebhookSubscription).where(WebhookSubscription.active.is_(True)).scalar_subquery()
"""How many subscriptions are active: a column a caller's own read can carry (order placement reads it with
the channel), so that a store without webhooks does not read the subscriptions again for every event."""


def note_active_subscriptions(session: Session, count: int) -> None:
    """What a read of ACTIVE_SUBSCRIPTIONS in this transaction found: none means no event has subscribers."""
    if count == 0 and "webhook_subscribers" not in session.info:
        session.info["webhook_subscribers"] = defaultdict(list)


def _subscribers(session: Session) -> dict[str, list[int]]:
    """Subscription ids per event type, read once per transaction."""
    cached = session.info.get("webhook_subscribers")
    if cached is None:
        cached = defaultdict(list)
        for row in read_rows(session, _SUBSCRIBED):
            for event_type in row.event_types or []:
                cached[event_type].append(row.id)
        session.info["webhook_subscribers"] = cached
    return cached


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def emit(session: Session, event_type: str, data: dict[str, Any], *, order_id: int | None = None, at: datetime | None = None) -> str | None:
    """Queue `event_type` for every subscription that wants it, in the caller's transaction. Returns the
    event id, or None when nobody subscribed (nothing written)."""
    return emit_many(session, [(event_type, data, order_id, at)])[0]


def emit_many(session: Session, events: list[tuple[str, dict[str, Any], int | None, datetime | None]]) -> list[str | None]:
    subscribers = _subscribers(session)
    rows, ids = [], []
    now = utcnow()
    for event_type, data, order_id, at in events:
        subs = subscribers.get(event_type)
        if not subs:
            ids.append(None)
            continue
        event_id = f"evt_{uuid.uuid4().hex}"
        ids.append(event_id)
        body = json.dumps({"id": event_id, "type": event_type, "created_at": (at or now).isoformat(), "data": data},
                          default=_json_default, separators=(",", ":"))
        for sub_id in subs:
            rows.append({
                "kind": WEBHOOK_KIND, "dedupe_key": f"webhook:{sub_id}:{event_id}", "recipient": f"webhook:{sub_id}",
                "subject": event_type, "body_text": body, "body_html": "", "order_id": order_id, "customer_id": None,
                "marketing": False, "status": "pending", "attempts": 0, "next_attempt_at": now, "last_error": None,
                "created_at": now, "sent_at": None,
            })
    if rows:
        write_rows(session, _OUTBOX, rows)
    return ids


_ORDER_REFS = select(Order.id, Order.number, Order.status, Order.total, Order.currency, Order.customer_id, Channel.code.label("channel")).join(
    Channel, Channel.id == Order.channel_id)


def on_order_events(session: Session, events: list[dict[str, Any]]) -> None:
    """Called by om_core.services.events for every order event recorded: the webhook-worthy ones are queued."""
    wanted = [(ORDER_EVENT_TYPES[e["kind"]], e) for e in events if e["kind"] in ORDER_EVENT_TYPES]
    if not wanted:
        return
    subscribers = _subscribers(session)
    wanted = [(t, e) for t, e in wanted if subscribers.get(t)]
    if not wanted:
        return
    refs = {r.id: r for r in session.connection().execute(_ORDER_REFS.where(Order.id.in_({e["order_id"] for _, e in wanted})))}
    out = []
    for event_type, e in wanted:
        ref = refs[e["order_id"]]
        data = {"order_number": ref.number, "channel": ref.channel, "customer_id": ref.customer_id, "total": ref.total,
                "currency": ref.currency, "order_event": e["kind"], **(e.get("data") or {})}
        out.append((event_type, data, e["order_id"], e.get("at")))
    emit_many(session, out)


# --- low stock ----------------------------------------------------------------------------------------


def find_low_stock(db: Database, *, threshold: int = LOW_STOCK_THRESHOLD) -> int:
    """Queue stock.low for stock rows at or below `threshold` available units, once a day per SKU and
    location (a dedupe marker per day keeps a second pass from repeating it). Returns events queued."""
    with db.transaction() as session:
        if not _subscribers(session).get("stock.low"):
            return 0
        reserved = (select(Reservation.stock_id, func.sum(Reservation.quantity).label("reserved"))
                    .where(Reservation.status == "active").group_by(Reservation.stock_id).subquery())
        rows = session.execute(
            select(Product.sku, Location.code, Stock.on_hand, func.coalesce(reserved.c.reserved, 0))
            .join(Product, Product.id == Stock.product_id).join(Location, Location.id == Stock.location_id)
            .outerjoin(reserved, reserved.c.stock_id == Stock.id)
            .where(Product.active.is_(True), Location.active.is_(True),
                   Stock.on_hand - func.coalesce(reserved.c.reserved, 0) <= threshold)
            .order_by(Product.sku, Location.code)
        ).all()
        if not rows:
            return 0
        day = utcnow().date().isoformat()
        markers = {f"stock.low:{sku}:{loc}:{day}" for sku, loc, _, _ in rows}
        seen = set(session.scalars(select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.in_(markers))))
        events, marks = [], []
        for sku, loc, on_hand, held in rows:
            marker = f"stock.low:{sku}:{loc}:{day}"
            if marker in seen:
                continue
            events.append(("stock.low", {"sku": sku, "location": loc, "on_hand": on_hand, "reserved": int(held),
                                         "available": max(on_hand - int(held), 0), "threshold": threshold}, None, None))
            marks.append(marker)
        emit_many(session, events)
        now = utcnow()
        if marks:  # the day's marker: a delivered-already row, so no dispatcher ever picks it up
            write_rows(session, _OUTBOX, [{
                "kind": WEBHOOK_KIND, "dedupe_key": m, "recipient": "webhook:marker", "subject": "stock.low", "body_text": "",
                "body_html": "", "order_id": None, "customer_id": None, "marketing": False, "status": "sent", "attempts": 0,
                "next_attempt_at": now, "last_error": None, "created_at": now, "sent_at": now} for m in marks])
        return len(events)


# --- delivery -----------------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    low_stock_events: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _GiveUp(Exception):
    """Delivery can never succeed (subscription removed, 410 Gone)."""


_LOG = insert(WebhookDelivery.__table__)


def deliver(db: Database, *, limit: int = 10_000, batch: int = 100, timeout: float = 10.0, client: httpx.Client | None = None,
            low_stock_threshold: int = LOW_STOCK_THRESHOLD) -> DeliveryReport:
    """One delivery pass: queue low-stock events, then POST every due webhook message once."""
    report = DeliveryReport(low_stock_events=find_low_stock(db, threshold=low_stock_threshold))
    own_client = client is None
    client = client or httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT}, follow_redirects=False)
    claimed_total = idle = 0
    try:
        while claimed_total < limit:
            seen, claimed, buried = notifications._claim(db, min(batch, limit - claimed_total), webhooks=True)
            report.dead += buried
            if seen == 0:
                break
            if not claimed:
                idle += 1
                if idle > 10:
                    break
                continue
            idle = 0
            claimed_total += len(claimed)
            with db.read() as session:
                subs = {s.id: (s.url, s.secret, s.active) for s in session.scalars(select(WebhookSubscription))}
            sent, failed, log = [], [], []
            try:
                for row in claimed:
                    sub_id = int(row.recipient.split(":", 1)[1])
                    event_id = json.loads(row.body_text)["id"]
                    started = time.perf_counter()
                    status_code = None
                    try:
                        url, secret, active = subs.get(sub_id, (None, None, False))
                        if not active:
                            raise _GiveUp(f"subscription {sub_id} was removed")
                        body = row.body_text.encode()
                        response = client.post(url, content=body, headers={
                            "Content-Type": "application/json", "X-StoreOM-Event-Id": event_id, "X-StoreOM-Event": row.subject,
                            "X-StoreOM-Signature": sign(secret, body), "X-StoreOM-Delivery-Attempt": str(row.attempts),
                        })
                        status_code = response.status_code
                        if response.status_code == 410:
                            raise _GiveUp("410 Gone: the receiver unsubscribed")
                        if not 200 <= response.status_code < 300:
                            raise RuntimeError(f"HTTP {response.status_code}")
                    except _GiveUp as exc:
                        failed.append((row, exc, True))
                        outcome, error = "dead", str(exc)
                    except Exception as exc:  # noqa: BLE001 - any transport error is a failed attempt
                        permanent = row.attempts >= notifications.MAX_ATTEMPTS
                        failed.append((row, exc, False))
                        outcome, error = ("dead" if permanent else "failed"), f"{type(exc).__name__}: {exc}"[:2000]
                    else:
                        sent.append(row)
                        outcome, error = "delivered", None
                    log.append({"subscription_id": sub_id, "outbox_id": row.id, "event_id": event_id, "event_type": row.subject,
                                "attempt": row.attempts, "outcome": outcome, "status_code": status_code, "error": error,
                                "duration_ms": int((time.perf_counter() - started) * 1000), "at": utcnow()})
            finally:
                n_failed, n_dead = notifications._mark(db, sent, failed)
                if log:
                    with db.transaction() as session:
                        known = {sid for sid in subs}
                        write_rows(session, _LOG, [entry for entry in log if entry["subscription_id"] in known])
            report.delivered += len(sent)
            report.failed += n_failed
            report.dead += n_dead
    finally:
        if own_client:
            client.close()
    return report


__all__ = [
    "ACTIVE_SUBSCRIPTIONS", "EVENT_TYPES", "LOW_STOCK_THRESHOLD", "ORDER_EVENT_TYPES", "DeliveryReport", "SubscriptionIn", "UnknownSubscription",
    "create_subscription", "deliver", "delivery_log", "emit", "emit_many", "find_low_stock", "get_subscription",
    "list_subscriptions", "note_active_subscriptions", "on_order_events", "remove_subscription", "sign", "subscription_view",
]
