"""Customer feedback: once per order, after (part of) it has been delivered; every refusal writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from om_core.clock import frozen_at
from om_core.errors import AlreadyExists, InvalidTransition, UnknownOrder, ValidationError
from om_core.models import Feedback
from om_core.services import fulfilment, orders
from om_core.services.feedback import record_feedback
from tests.om_core.helpers import fields, refused
from tests.om_core.store import ADA, web_order

T0 = datetime(2030, 3, 4, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STOREOM_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture(autouse=True)
def clock():
    with frozen_at(T0):
        yield


def shipped(db, *lines) -> tuple[str, list[str]]:
    """Place and dispatch every parcel; returns the order number and the tracking numbers."""
    with db.transaction() as s:
        number = orders.place_order(s, web_order(*lines)).number
        shipments = [sh.number for sh in fulfilment.create_shipments(s, number)]
    tracking = []
    for sh in shipments:
        with db.transaction() as s:
            tracking.append(fulfilment.dispatch_shipment(s, sh).tracking_number)
    return number, tracking


def deliver(db, tracking_number) -> None:
    with db.transaction() as s:
        fulfilment.record_tracking_event(s, {"tracking_number": tracking_number, "kind": "delivered",
                                             "carrier_event_id": f"d-{tracking_number}", "at": T0 + timedelta(days=2)})


@pytest.fixture
def delivered(store) -> str:
    number, [tracking] = shipped(store, ("MUG", 1))
    deliver(store, tracking)
    return number


GOOD = {"rating": 4, "would_recommend": 9, "comment": "Quick, but the box was dented.",
        "tags": ["packaging", "delivery_speed", "packaging"]}


def test_feedback_after_delivery_is_recorded(store, delivered):
    with frozen_at(T0 + timedelta(days=3)), store.transaction() as s:
        fb = record_feedback(s, delivered, GOOD, actor="web")
        assert (fb.rating, fb.would_recommend, fb.comment, fb.customer_id) == (4, 9, "Quick, but the box was dented.", ADA)
        assert fb.tags == ["delivery_speed", "packaging"], "sorted, each once"
        assert fb.created_at == T0 + timedelta(days=3)
    with store.read() as s:
        event = orders.order_view(s, orders.get_order(s, delivered))["events"][-1]
        stored = s.scalars(select(Feedback)).all()
    assert (event["kind"], event["actor"], event["data"]) == ("feedback_received", "web", {"rating": 4, "would_recommend": 9})
    assert len(stored) == 1


def test_rating_alone_is_enough(store, delivered):
    with store.transaction() as s:
        fb = record_feedback(s, delivered, {"rating": 1})
        assert (fb.rating, fb.would_recommend, fb.comment, fb.tags) == (1, None, None, [])


def test_feedback_after_part_of_the_order_arrived(store):
    # TEE-S from WH-EAST and KETTLE from WH-WEST: one parcel delivered is enough to say something.
    number, (east, _west) = shipped(store, ("TEE-S", 1), ("KETTLE", 1))
    deliver(store, east)
    with store.transaction() as s:
        record_feedback(s, number, {"rating": 3, "tags": ["delivery_speed"]})


def test_feedback_before_delivery_is_refused(store):
    number, _ = shipped(store, ("MUG", 1))
    err = refused(store, InvalidTransition, lambda s: record_feedback(s, number, {"rating": 5}))
    assert err.details == {"order": number, "status": "fulfilled"}
    assert "not been delivered" in err.message


def test_feedback_twice_is_refused(store, delivered):
    with store.transaction() as s:
        record_feedback(s, delivered, {"rating": 5})
    err = refused(store, AlreadyExists, lambda s: record_feedback(s, delivered, {"rating": 1}))
    assert err.details == {"order": delivered}


def test_feedback_on_an_unknown_order_is_refused(store):
    refused(store, UnknownOrder, lambda s: record_feedback(s, "SO-NOPE", {"rating": 5}))


@pytest.mark.parametrize("data, field", [
    ({"rating": 0}, "rating"),
    ({"rating": 6}, "rating"),
    ({"rating": 5, "would_recommend": 11}, "would_recommend"),
    ({"rating": 5, "would_recommend": -1}, "would_recommend"),
    ({"rating": 5, "tags": ["vibes"]}, "tags.0"),
    ({"rating": 5, "tags": ["service"] * 9}, "tags"),
    ({"would_recommend": 5}, "rating"),
    ({"rating": 5, "stars": 5}, "stars"),
])
def test_invalid_feedback_is_refused(store, delivered, data, field):
    err = refused(store, ValidationError, lambda s: record_feedback(s, delivered, data))
    assert fields(err) == [field]
