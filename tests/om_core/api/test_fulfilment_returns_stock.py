"""Fulfilment, returns, purchase orders and stock over the API, with the store_ops scope rules."""

from __future__ import annotations

from decimal import Decimal

from tests.om_core.api.conftest import Api, problem_of
from tests.om_core.helpers import available, row_counts, table_row_counts
from tests.om_core.store import web_order


def placed(api: Api, *lines: tuple[str, int], key: str = "f-1") -> str:
    r = api.as_("web").post("/v1/orders", json=web_order(*lines), headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    return r.json()["number"]


def shipped(api: Api, number: str, who: str = "east") -> dict:
    [shipment] = api.as_("manager").post(f"/v1/orders/{number}/shipments").json()["items"]
    ops = api.as_(who)
    assert ops.post(f"/v1/shipments/{shipment['number']}/pack", json={"packages": [{"weight_kg": "1.2"}]}).json()["status"] == "packed"
    return ops.post(f"/v1/shipments/{shipment['number']}/ship", json={"carrier": "ups"}).json()


def test_ship_track_deliver(api: Api):
    number = placed(api, ("MUG", 2))
    [shipment] = api.as_("manager").post(f"/v1/orders/{number}/shipments").json()["items"]
    picks = api.as_("east").get("/v1/locations/WH-EAST/pick-list").json()
    assert picks["skus"] == [{"sku": "MUG", "name": "Coffee mug", "quantity": 2}]
    problem_of(api.as_("nyc").get("/v1/locations/WH-EAST/pick-list"), 403)
    problem_of(api.as_("nyc").post(f"/v1/shipments/{shipment['number']}/pack", json={}), 403)
    problem_of(api.as_("east").post(f"/v1/shipments/{shipment['number']}/pack", json={"packages": [{"weight_kg": "-1"}]}), 422)
    assert api.as_("east").post(f"/v1/shipments/{shipment['number']}/pack", json={}).json()["status"] == "packed"
    sent = api.as_("east").post(f"/v1/shipments/{shipment['number']}/ship", json={"carrier": "ups"}).json()
    assert sent["status"] == "dispatched" and sent["tracking_number"]
    event = {"tracking_number": sent["tracking_number"], "kind": "delivered", "at": "2030-01-02T10:00:00Z", "carrier_event_id": "ups-1"}
    problem_of(api.as_("east").post("/v1/tracking-events", json=event), 403)
    problem_of(api.as_("manager").post("/v1/tracking-events", json={**event, "at": "yesterday"}), 422)
    assert api.as_("manager").post("/v1/tracking-events", json=event).json()["status"] == "delivered"
    assert api.as_("manager").post("/v1/tracking-events", json=event).status_code == 201  # the same scan again: no new row
    order = api.as_("web").get(f"/v1/orders/{number}").json()
    assert order["status"] == "delivered" and [e["kind"] for e in order["shipments"][0]["events"]].count("delivered") == 1
    assert api.as_("web").get(f"/v1/shipments/{shipment['number']}").json()["status"] == "delivered"
    problem_of(api.as_("app").get(f"/v1/shipments/{shipment['number']}"), 404)
    problem_of(api.as_("east").post(f"/v1/shipments/{shipment['number']}/deliver"), 409, "invalid_transition")


def test_a_tracking_number_already_on_another_parcel_is_refused(api: Api):
    first = shipped(api, placed(api, ("MUG", 1), key="t-1"))
    [second] = api.as_("manager").post(f"/v1/orders/{placed(api, ('MUG', 1), key='t-2')}/shipments").json()["items"]
    before = table_row_counts(api.db)
    body = problem_of(api.as_("east").post(f"/v1/shipments/{second['number']}/ship",
                                           json={"carrier": "ups", "tracking_number": first["tracking_number"]}), 409, "already_exists")
    assert first["number"] in body["detail"] and table_row_counts(api.db) == before
    assert api.as_("east").get(f"/v1/shipments/{second['number']}").json()["status"] == "pending"


def test_pickup_ready_and_collect(api: Api):
    r = api.as_("web").post("/v1/orders", json=web_order(("MUG", 1), delivery="pickup", pickup_location="ST-NYC", shipping_method=None),
                            headers={"Idempotency-Key": "p-1"})
    assert r.status_code == 201, r.text
    [shipment] = api.as_("manager").post(f"/v1/orders/{r.json()['number']}/shipments").json()["items"]
    problem_of(api.as_("east").post(f"/v1/shipments/{shipment['number']}/ready"), 403)
    assert api.as_("nyc").post(f"/v1/shipments/{shipment['number']}/ready").json()["status"] == "ready_for_pickup"
    assert api.as_("nyc").post(f"/v1/shipments/{shipment['number']}/collect").json()["status"] == "collected"


def test_return_receive_refund_exchange(api: Api):
    number = placed(api, ("MUG", 2), ("TEE-S", 1))
    s = shipped(api, number)
    assert api.as_("east").post(f"/v1/shipments/{s['number']}/deliver").json()["status"] == "delivered"
    web = api.as_("web")
    problem_of(web.post(f"/v1/orders/{number}/returns", json={"reason_code": "damaged", "lines": [{"line_no": 1, "quantity": 5}]}), 422)
    problem_of(web.post(f"/v1/orders/{number}/returns", json={"reason_code": "bored", "lines": [{"line_no": 1, "quantity": 1}]}), 422)
    problem_of(api.as_("app").post(f"/v1/orders/{number}/returns", json={"reason_code": "damaged", "lines": [{"line_no": 1, "quantity": 1}]}), 404)
    rma = web.post(f"/v1/orders/{number}/returns", json={"reason_code": "damaged", "lines": [{"line_no": 1, "quantity": 1}]})
    assert rma.status_code == 201, rma.text
    rma_no = rma.json()["number"]
    problem_of(api.as_("nyc").post(f"/v1/returns/{rma_no}/receive", json={"location": "WH-EAST"}), 403)
    received = api.as_("east").post(f"/v1/returns/{rma_no}/receive", json={"location": "WH-EAST", "inspections": [{"line_no": 1, "condition": "damaged"}]})
    assert received.json()["status"] == "received" and received.json()["lines"][0]["condition"] == "damaged"
    problem_of(api.as_("east").post(f"/v1/returns/{rma_no}/refund", json={}), 403)
    refunded = api.as_("manager").post(f"/v1/returns/{rma_no}/refund", json={"restocking_fee_rate": "0.10"}, headers={"Idempotency-Key": "r-1"})
    assert refunded.status_code == 200, refunded.text
    assert refunded.json()["status"] == "closed" and Decimal(refunded.json()["refund_amount"]) > 0
    assert web.get(f"/v1/orders/{number}/payment").json()["refunded"] == refunded.json()["refund_amount"]
    exchange = api.as_("manager").post(f"/v1/returns/{rma_no}/exchange", json={"lines": [{"sku": "MUG", "quantity": 1}]})
    assert exchange.status_code == 201 and exchange.json()["total"] == "0.00"
    assert web.get(f"/v1/returns/{rma_no}").json()["exchange_order"] == exchange.json()["number"]
    problem_of(api.as_("app").get(f"/v1/returns/{rma_no}"), 404)


def test_purchase_orders_and_receipts(api: Api):
    m = api.as_("merchandiser")
    bad = {"supplier": "ACME", "location": "WH-EAST", "lines": [{"sku": "MUG", "quantity": 0}]}
    before = table_row_counts(api.db)
    problem_of(m.post("/v1/purchase-orders", json=bad), 422)
    problem_of(m.post("/v1/purchase-orders", json={**bad, "lines": [{"sku": "MUG", "quantity": 5}], "expected_at": "2030-02-30"}), 422)
    problem_of(m.post("/v1/purchase-orders", json={**bad, "lines": [{"sku": "NOPE", "quantity": 5}]}), 404, "unknown_sku")
    assert table_row_counts(api.db) == before
    po = m.post("/v1/purchase-orders", json={"supplier": "ACME", "location": "WH-EAST", "lines": [{"sku": "MUG", "quantity": 24, "unit_cost": "3.90"}]})
    assert po.status_code == 201 and po.json()["status"] == "draft" and po.json()["lines"][0]["unit_cost"] == "3.90"
    number = po.json()["number"]
    problem_of(api.as_("east").post(f"/v1/purchase-orders/{number}/receipts", json={}), 409, "invalid_transition")
    assert m.post(f"/v1/purchase-orders/{number}/send").json()["status"] == "sent"
    problem_of(api.as_("nyc").post(f"/v1/purchase-orders/{number}/receipts", json={}), 403)
    problem_of(api.as_("nyc").get(f"/v1/purchase-orders/{number}"), 403)
    problem_of(api.as_("east").post(f"/v1/purchase-orders/{number}/receipts", json={"lines": [{"sku": "MUG", "quantity": 30}]}), 422)
    part = api.as_("east").post(f"/v1/purchase-orders/{number}/receipts", json={"lines": [{"sku": "MUG", "quantity": 10}]}).json()
    assert part["status"] == "partially_received" and part["lines"][0]["received"] == 10
    assert api.as_("manager").post(f"/v1/purchase-orders/{number}/receipts", json={}).json()["status"] == "received"
    assert api.as_("east").get(f"/v1/purchase-orders/{number}").json()["lines"][0]["received"] == 24
    assert available(api.db, "MUG", "WH-EAST") == 124
    other = m.post("/v1/purchase-orders", json={"supplier": "ACME", "location": "WH-WEST", "lines": [{"sku": "TEE-L", "quantity": 5}]}).json()
    assert m.post(f"/v1/purchase-orders/{other['number']}/cancel").json()["status"] == "cancelled"


def test_stock_receipts_adjustments_transfers_movements(api: Api):
    east = api.as_("east")
    assert east.post("/v1/stock/receipts", json={"sku": "MUG", "location": "WH-EAST", "quantity": 6}).json()["available"] == 106
    assert east.post("/v1/stock/adjustments", json={"sku": "MUG", "location": "WH-EAST", "delta": -2, "reason": "damage"}).json()["change"] == -2
    assert east.post("/v1/stock/adjustments", json={"sku": "MUG", "location": "WH-EAST", "counted": 100, "reason": "count"}).json()["available"] == 100
    t = east.post("/v1/stock/transfers", json={"sku": "MUG", "from_location": "WH-EAST", "to_location": "ST-NYC", "quantity": 10})
    assert t.status_code == 201 and t.json()["quantity"] == 10
    assert available(api.db, "MUG", "ST-NYC") == 14
    before = row_counts(api.db)
    problem_of(east.post("/v1/stock/receipts", json={"sku": "MUG", "location": "ST-NYC", "quantity": 1}), 403)
    problem_of(east.post("/v1/stock/receipts", json={"sku": "MUG", "location": "WH-EAST", "quantity": -1}), 422)
    problem_of(east.post("/v1/stock/adjustments", json={"sku": "MUG", "location": "WH-EAST", "delta": -1000, "reason": "theft"}), 409)
    problem_of(east.post("/v1/stock/transfers", json={"sku": "MUG", "from_location": "ST-NYC", "to_location": "WH-EAST", "quantity": 1}), 403)
    problem_of(api.as_("merchandiser").post("/v1/stock/receipts", json={"sku": "MUG", "location": "WH-EAST", "quantity": 1}), 403)
    assert row_counts(api.db) == before
    moves = east.get("/v1/stock/movements", params={"sku": "MUG", "location": "WH-EAST"}).json()["items"]
    assert [m["kind"] for m in moves[:4]] == ["transfer_out", "adjustment", "adjustment", "receipt"]
    assert moves[0]["actor"].startswith("api:")
    problem_of(east.get("/v1/stock/movements", params={"sku": "MUG"}), 403)
    assert api.as_("merchandiser").get("/v1/stock/movements", params={"sku": "MUG"}).status_code == 200
