"""Webhooks: subscriptions over the API, signed deliveries from the outbox to a real local HTTP receiver,
retries with backoff, the delivery log, idempotent event ids; email dispatch leaves webhook rows alone."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from om_core.clock import frozen_at, utcnow
from om_core.models import OutboxMessage, WebhookDelivery
from om_core.services import notifications
from om_core.services.webhooks import deliver
from tests.om_core.api.conftest import Api, problem_of
from tests.om_core.store import web_order


class Receiver:
    """A real HTTP endpoint on loopback that records what it is sent and answers with queued statuses."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def subscribe(api: Api, url: str, *events: str) -> dict:
    r = api.as_("admin").post("/v1/webhooks", json={"url": url, "event_types": list(events), "secret": "s" * 32})
    assert r.status_code == 201, r.text
    return r.json()


def webhook_rows(api: Api) -> int:
    with api.db.read() as s:
        return s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "webhook"))


def test_signed_deliveries_with_stable_event_ids(api: Api, receiver: Receiver):
    sub = subscribe(api, receiver.url, "order.placed", "order.cancelled", "purchase_order.received")
    assert sub["secret"] == "s" * 32
    assert "secret" not in api.as_("admin").get("/v1/webhooks").json()["items"][0]
    order = api.as_("web").post("/v1/orders", json=web_order(("MUG", 1)), headers={"Idempotency-Key": "w1"}).json()
    number = order["number"]
    api.as_("web").post(f"/v1/orders/{number}/cancel", json={"reason": "test"})
    po = api.as_("manager").post("/v1/purchase-orders", json={"supplier": "ACME", "location": "WH-EAST", "lines": [{"sku": "MUG", "quantity": 5}]}).json()
    api.as_("manager").post(f"/v1/purchase-orders/{po['number']}/send")
    api.as_("manager").post(f"/v1/purchase-orders/{po['number']}/receipts", json={})
    report = deliver(api.db)
    assert (report.delivered, report.failed, report.dead) == (3, 0, 0)
    assert [e["type"] for e in receiver.events()] == ["order.placed", "order.cancelled", "purchase_order.received"]
    placed = receiver.events()[0]
    assert placed["data"]["order_number"] == number and placed["data"]["channel"] == "web" and placed["data"]["total"] == order["total"]
    for headers, body in receiver.received:
        expected = "sha256=" + hmac.new(b"s" * 32, body, hashlib.sha256).hexdigest()
        assert headers["x-storeom-signature"] == expected
        assert headers["x-storeom-event-id"] == json.loads(body)["id"]
        assert headers["content-type"] == "application/json"
    assert receiver.events()[2]["data"] == {"purchase_order": po["number"], "status": "received", "location": "WH-EAST",
                                            "lines": [{"sku": "MUG", "received": 5}]}
    assert deliver(api.db).delivered == 0  # nothing twice
    log = api.as_("admin").get(f"/v1/webhooks/{sub['id']}/deliveries").json()["items"]
    assert [(l["event_type"], l["outcome"], l["status_code"]) for l in log] == [
        ("purchase_order.received", "delivered", 204), ("order.cancelled", "delivered", 204), ("order.placed", "delivered", 204)]


def test_failures_retry_with_backoff_under_the_same_event_id(api: Api, receiver: Receiver):
    sub = subscribe(api, receiver.url, "order.placed")
    receiver.statuses = [500]
    api.as_("web").post("/v1/orders", json=web_order(("MUG", 1)), headers={"Idempotency-Key": "w2"})
    report = deliver(api.db)
    assert (report.delivered, report.failed) == (0, 1)
    with api.db.read() as s:
        row = s.scalar(select(OutboxMessage).where(OutboxMessage.kind == "webhook"))
        assert row.status == "failed" and row.next_attempt_at > utcnow() + timedelta(seconds=20)
    assert deliver(api.db).delivered == 0  # not due yet
    with frozen_at(utcnow() + timedelta(minutes=5)):
        assert deliver(api.db).delivered == 1
    first, second = receiver.received
    assert first[0]["x-storeom-event-id"] == second[0]["x-storeom-event-id"] and first[1] == second[1]
    with api.db.read() as s:
        log = s.execute(select(WebhookDelivery.attempt, WebhookDelivery.outcome, WebhookDelivery.status_code).order_by(WebhookDelivery.id)).all()
    assert [tuple(r) for r in log] == [(1, "failed", 500), (2, "delivered", 204)]
    assert api.as_("admin").delete(f"/v1/webhooks/{sub['id']}").json()["active"] is False


def test_gone_and_removed_subscriptions_give_up(api: Api, receiver: Receiver):
    gone = subscribe(api, receiver.url, "order.placed")
    removed = subscribe(api, receiver.url + "/other", "order.placed")
    api.as_("admin").delete(f"/v1/webhooks/{removed['id']}")
    # removed before the event: no message for it at all
    receiver.statuses = [410]
    api.as_("web").post("/v1/orders", json=web_order(("MUG", 1)), headers={"Idempotency-Key": "w3"})
    assert webhook_rows(api) == 1
    report = deliver(api.db)
    assert (report.delivered, report.failed, report.dead) == (0, 0, 1)
    problem_of(api.as_("admin").get(f"/v1/webhooks/{removed['id']}/deliveries"), 404, "unknown_webhook_subscription")
    assert api.as_("admin").get(f"/v1/webhooks/{gone['id']}/deliveries").json()["items"][0]["outcome"] == "dead"


def test_low_stock_once_a_day(api: Api, receiver: Receiver):
    subscribe(api, receiver.url, "stock.low")
    report = deliver(api.db)
    lows = {(e["data"]["sku"], e["data"]["location"]) for e in receiver.events()}
    # the store: KETTLE 2 at WH-WEST, TEE-L 3, SOFA 3, MUG 4 at ST-NYC, TEE-M 5 + 5 are at or below 5 available
    assert lows == {("KETTLE", "WH-WEST"), ("TEE-L", "WH-WEST"), ("SOFA", "DS-DROP"), ("MUG", "ST-NYC"), ("TEE-M", "WH-EAST"), ("TEE-M", "WH-WEST")}
    assert report.low_stock_events == report.delivered == 6
    assert deliver(api.db).low_stock_events == 0


def test_no_subscription_writes_no_webhook_rows_and_email_dispatch_skips_them(api: Api, receiver: Receiver, tmp_path):
    api.as_("web").post("/v1/orders", json=web_order(("MUG", 1)), headers={"Idempotency-Key": "w4"})
    assert webhook_rows(api) == 0
    subscribe(api, receiver.url, "order.placed")
    api.as_("web").post("/v1/orders", json=web_order(("MUG", 1)), headers={"Idempotency-Key": "w5"})
    assert webhook_rows(api) == 1
    emails = notifications.dispatch(api.db, transport=notifications.FileTransport(tmp_path / "mail"))
    assert emails.sent == 2 and len(list((tmp_path / "mail").iterdir())) == 2  # the two confirmations only
    assert deliver(api.db).delivered == 1


def test_subscription_refusals(api: Api):
    admin = api.as_("admin")
    problem_of(admin.post("/v1/webhooks", json={"url": "ftp://x.example.com", "event_types": ["order.placed"]}), 422)
    problem_of(admin.post("/v1/webhooks", json={"url": "https://erp.example.com", "event_types": ["order.exploded"]}), 422)
    problem_of(admin.post("/v1/webhooks", json={"url": "https://erp.example.com", "event_types": []}), 422)
    problem_of(api.as_("manager").post("/v1/webhooks", json={"url": "https://erp.example.com", "event_types": ["order.placed"]}), 403)
    problem_of(admin.delete("/v1/webhooks/999"), 404)
    assert admin.get("/v1/webhooks").json()["items"] == []


def test_every_order_event_type_through_an_order_life(api: Api, receiver: Receiver):
    subscribe(api, receiver.url, "order.placed", "order.modified", "order.cancelled", "order.shipped", "order.delivered",
              "return.received", "refund.issued")
    web, mgr = api.as_("web"), api.as_("manager")
    number = web.post("/v1/orders", json=web_order(("MUG", 2)), headers={"Idempotency-Key": "life"}).json()["number"]
    assert web.patch(f"/v1/orders/{number}", json={"set_quantities": {"1": 1}}).status_code == 200
    [shipment] = mgr.post(f"/v1/orders/{number}/shipments").json()["items"]
    mgr.post(f"/v1/shipments/{shipment['number']}/pack", json={})
    mgr.post(f"/v1/shipments/{shipment['number']}/ship", json={})
    mgr.post(f"/v1/shipments/{shipment['number']}/deliver")
    rma = web.post(f"/v1/orders/{number}/returns", json={"reason_code": "damaged", "lines": [{"line_no": 1, "quantity": 1}]}).json()["number"]
    mgr.post(f"/v1/returns/{rma}/receive", json={"location": "WH-EAST"})
    mgr.post(f"/v1/returns/{rma}/refund", json={})
    other = web.post("/v1/orders", json=web_order(("MUG", 1)), headers={"Idempotency-Key": "life-2"}).json()["number"]
    web.post(f"/v1/orders/{other}/cancel", json={"reason": "test"})
    assert deliver(api.db).delivered == 8
    events = receiver.events()
    assert [e["type"] for e in events] == ["order.placed", "order.modified", "order.shipped", "order.delivered", "return.received",
                                           "refund.issued", "order.placed", "order.cancelled"]
    assert {e["data"]["order_number"] for e in events[:6]} == {number} and events[5]["data"]["return_number"] == rma
    assert len({e["id"] for e in events}) == 8


def _queued(db, event_type: str) -> list[str]:
    with db.read() as s:
        return list(s.scalars(select(OutboxMessage.recipient).where(OutboxMessage.kind == "webhook", OutboxMessage.subject == event_type)))


def test_a_subscription_made_after_a_placement_gets_that_orders_later_events(api: Api):
    from om_core.services import orders, webhooks

    with api.db.transaction() as s:  # placed while nobody subscribes
        number = orders.place_order(s, web_order(("MUG", 1))).number
    with api.db.transaction() as s:
        sub = webhooks.create_subscription(s, {"url": "https://erp.example.com/hooks", "event_types": ["order.placed", "order.cancelled"]})
        sub_id = sub.id
    with api.db.transaction() as s:
        orders.cancel_order(s, number, reason="changed my mind")
        orders.place_order(s, web_order(("MUG", 2)))
    assert _queued(api.db, "order.cancelled") == [f"webhook:{sub_id}"]
    assert _queued(api.db, "order.placed") == [f"webhook:{sub_id}"]  # the second order only


def test_a_subscription_made_inside_the_placing_transaction_gets_its_later_events(api: Api):
    """Placement learns 'no subscriptions' with its channel read; a subscription created afterwards in the
    same transaction must still get the transaction's later events."""
    from om_core.services import orders, webhooks

    with api.db.transaction() as s:
        number = orders.place_order(s, web_order(("MUG", 1))).number
        sub_id = webhooks.create_subscription(s, {"url": "https://erp.example.com/hooks", "event_types": ["order.cancelled"]}).id
        orders.cancel_order(s, number, reason="test")
    assert _queued(api.db, "order.cancelled") == [f"webhook:{sub_id}"]
    with api.db.transaction() as s:
        webhooks.remove_subscription(s, sub_id)
        orders.place_order(s, web_order(("MUG", 1)))
        other = orders.place_order(s, web_order(("TEE-S", 1))).number
        orders.cancel_order(s, other, reason="test")
    assert len(_queued(api.db, "order.cancelled")) == 1  # nothing for the removed subscription
