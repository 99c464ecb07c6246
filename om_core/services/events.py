"""The order's audit trail: one row per state change, with who (or which channel) did it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from om_core.clock import utcnow
from om_core.db import write_rows
from om_core.models import Order, OrderEvent
from om_core.services import webhooks


def record_event(
    session: Session, order: Order, kind: str, *, actor: str | None = None, channel: str | None = None, **data: Any
) -> None:
    """Append to the audit trail (an insert, never an update: events are history). Webhook-worthy kinds
    are queued for their subscribers in the same transaction (om_core.services.webhooks)."""
    event = dict(order_id=order.id, kind=kind, actor=actor, channel=channel, data=data, at=utcnow())
    write_rows(session, _INSERT_EVENT, event)
    webhooks.on_order_events(session, [event])


_INSERT_EVENT = insert(OrderEvent.__table__)


def record_events(session: Session, events: list[dict[str, Any]]) -> None:
    """Append many events at once: dicts with order_id, kind, actor, channel, data and at."""
    if events:
        write_rows(session, _INSERT_EVENT, events)
        webhooks.on_order_events(session, events)


def order_events(session: Session, order_id: int) -> list[OrderEvent]:
    return list(session.scalars(select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)))
