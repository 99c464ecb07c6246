"""Customer feedback on delivered orders: a 1-5 rating, would-recommend 0-10 (NPS), a comment and topics."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from om_core.clock import utcnow
from om_core.errors import AlreadyExists, InvalidTransition
from om_core.models import Feedback
from om_core.services.events import record_event
from om_core.services.orders import get_order
from om_core.validation import Input, parse

Topic = Literal["delivery_speed", "accuracy", "condition", "service", "price", "packaging", "product_quality", "other"]


class FeedbackIn(Input):
    rating: int = Field(ge=1, le=5)
    would_recommend: int | None = Field(default=None, ge=0, le=10)
    comment: str | None = Field(default=None, max_length=5000)
    tags: list[Topic] = Field(default_factory=list, max_length=8)


def record_feedback(session: Session, order_number: str, data: FeedbackIn | dict[str, Any], *, actor: str | None = None) -> Feedback:
    """One feedback per order, once at least part of it has been delivered."""
    data = parse(FeedbackIn, data)
    order = get_order(session, order_number)
    if not any(l.quantity_delivered for l in order.lines):
        raise InvalidTransition(f"Order {order_number} has not been delivered yet", order=order_number, status=order.status)
    if session.scalar(select(Feedback.id).where(Feedback.order_id == order.id)) is not None:
        raise AlreadyExists(f"Order {order_number} already has feedback", order=order_number)
    feedback = Feedback(order_id=order.id, customer_id=order.customer_id, rating=data.rating, would_recommend=data.would_recommend,
                        comment=data.comment, tags=sorted(set(data.tags)), created_at=utcnow())
    session.add(feedback)
    session.flush()
    record_event(session, order, "feedback_received", actor=actor, rating=data.rating, would_recommend=data.would_recommend)
    return feedback
