"""Orders over the API: quote, place with Idempotency-Key, read with timeline and tracking, list,
modify, cancel, hold/release, route, payment; a channel key sees its own channel's orders only."""

from __future__ import annotations

from tests.om_core.api.conftest import Api, problem_of
from tests.om_core.helpers import available, row_counts
from tests.om_core.store import ADA, web_order


def place(api: Api, who: str = "web", key: str = "k-1", **extra) -> dict:
    body = web_order(("MUG", 2), ("TEE-S", 1), **extra)
    if who == "app":
        body["channel"] = "app"
        body["lines"] = [{"sku": "TEE-M", "quantity": 1}]
    r = api.as_(who).post("/v1/orders", json=body, headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    return r.json()


def test_quote_writes_nothing(api: Api):
    before = row_counts(api.db)
    q = api.as_("web").post("/v1/orders/quote", json=web_order(("MUG", 2)))
    assert q.status_code == 200, q.text
    assert q.json()["total"] == "32.61"  # (2 x 12.50 + 4.95 standard shipping) x 1.08875 (Ada ships to NY)
    assert row_counts(api.db) == before


def test_place_is_idempotent_and_money_is_strings(api: Api):
    first = place(api)
    assert first["status"] == "placed" and isinstance(first["total"], str) and first["lines"][0]["unit_price"] == "12.50"
    assert api.as_("web").get(f"/v1/orders/{first['number']}/payment").json()["authorized"] == first["total"]
    assert first["placed_at"].endswith("+00:00")
    counts = row_counts(api.db)
    again = place(api)  # same key, same body: the first answer, nothing written
    assert again["number"] == first["number"] and row_counts(api.db) == counts
    r = api.as_("web").post("/v1/orders", json=web_order(("MUG", 3)), headers={"Idempotency-Key": "k-1"})
    problem_of(r, 409, "idempotency_conflict")
    # the key is the caller's own: another key may use the same string
    other = api.as_("manager").post("/v1/orders", json=web_order(("MUG", 2), ("TEE-S", 1)), headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 201 and other.json()["number"] != first["number"]
    assert available(api.db, "MUG", "WH-EAST") == 96


def test_placement_answers_the_lines_as_stored(api: Api):
    """The answer to POST /v1/orders is built from the placement itself (no second read): it must say
    exactly what the stored order says, and a replay (read from the database) must say the same."""
    web = api.as_("web")
    body = web_order(("MUG", 2), ("TEE-S", 1), ("KETTLE", 1))
    placed = web.post("/v1/orders", json=body, headers={"Idempotency-Key": "lines-1"})
    assert placed.status_code == 201, placed.text
    stored = web.get(f"/v1/orders/{placed.json()['number']}").json()
    keys = ("line_no", "sku", "quantity", "backordered", "unit_price", "discount_total", "tax_amount", "line_total")
    assert [{k: l[k] for k in keys} for l in placed.json()["lines"]] == [{k: l[k] for k in keys} for l in stored["lines"]]
    assert [l["sku"] for l in placed.json()["lines"]] == ["MUG", "TEE-S", "KETTLE"]
    replay = web.post("/v1/orders", json=body, headers={"Idempotency-Key": "lines-1"})
    assert replay.status_code == 201 and replay.json() == placed.json()


def test_read_order_with_timeline_and_tracking(api: Api):
    number = place(api)["number"]
    mgr = api.as_("manager")
    assert mgr.post(f"/v1/orders/{number}/shipments").status_code == 201
    order = mgr.get(f"/v1/orders/{number}").json()
    assert [e["kind"] for e in order["events"]][:2] == ["order_placed", "payment_authorized"]
    assert order["shipments"][0]["status"] == "pending" and order["shipments"][0]["location"] == "WH-EAST"
    problem_of(mgr.get("/v1/orders/SO-NOPE"), 404, "unknown_order")


def test_channel_keys_see_only_their_channel(api: Api):
    web_number = place(api)["number"]
    app_number = place(api, "app", key="a-1")["number"]
    problem_of(api.as_("app").get(f"/v1/orders/{web_number}"), 404, "unknown_order")
    problem_of(api.as_("app").patch(f"/v1/orders/{web_number}", json={"set_quantities": {"1": 1}}), 404)
    problem_of(api.as_("app").post(f"/v1/orders/{web_number}/cancel", json={"reason": "x"}), 404)
    problem_of(api.as_("app").get(f"/v1/orders/{web_number}/payment"), 404)
    problem_of(api.as_("app").post("/v1/orders", json=web_order(("MUG", 1)), headers={"Idempotency-Key": "x"}), 403, "forbidden")
    problem_of(api.as_("app").post("/v1/orders/quote", json=web_order(("MUG", 1))), 403)
    assert [o["number"] for o in api.as_("app").get("/v1/orders").json()["items"]] == [app_number]
    problem_of(api.as_("app").get("/v1/orders", params={"channel": "web"}), 403)
    assert {o["number"] for o in api.as_("manager").get("/v1/orders").json()["items"]} == {web_number, app_number}
    assert api.as_("web").get(f"/v1/orders/{web_number}").status_code == 200


def test_payment_data_is_not_for_marketing(api: Api):
    number = place(api)["number"]
    view = api.as_("marketing").get(f"/v1/orders/{number}").json()
    assert "payment" not in view and not any(e["kind"].startswith("payment_") for e in view["events"])
    problem_of(api.as_("marketing").get(f"/v1/orders/{number}/payment"), 403)
    pay = api.as_("web").get(f"/v1/orders/{number}/payment").json()
    assert pay["authorized"] == view["total"] and pay["transactions"][0]["kind"] == "authorize"
    assert "token" not in pay and "tok_visa" not in str(pay)


def test_no_payment_amounts_in_the_timeline_for_marketing(api: Api):
    number = place(api)["number"]
    [shipment] = api.as_("manager").post(f"/v1/orders/{number}/shipments").json()["items"]
    api.as_("manager").post(f"/v1/shipments/{shipment['number']}/ship", json={})
    full = api.as_("manager").get(f"/v1/orders/{number}").json()
    assert any("captured" in e["data"] for e in full["events"])
    view = api.as_("marketing").get(f"/v1/orders/{number}").json()
    assert "shipment_dispatched" in [e["kind"] for e in view["events"]]
    assert not any("captured" in e["data"] for e in view["events"]) and "captured" not in str(view)


def test_store_ops_reads_orders_routed_to_its_locations(api: Api):
    number = place(api)["number"]  # allocated at WH-EAST
    view = api.as_("east").get(f"/v1/orders/{number}").json()
    assert view["number"] == number and "payment" not in view
    problem_of(api.as_("nyc").get(f"/v1/orders/{number}"), 404)


def test_list_filters(api: Api):
    a = place(api)["number"]
    b = place(api, key="k-2", shipping_method="expedited")["number"]
    mgr = api.as_("manager")
    api.as_("web").post(f"/v1/orders/{b}/cancel", json={"reason": "changed mind"})
    assert [o["number"] for o in mgr.get("/v1/orders", params={"status": "cancelled"}).json()["items"]] == [b]
    assert {o["number"] for o in mgr.get("/v1/orders", params={"customer_id": ADA, "channel": "web"}).json()["items"]} == {a, b}
    assert mgr.get("/v1/orders", params={"placed_from": "2100-01-01T00:00:00Z"}).json()["items"] == []
    assert len(mgr.get("/v1/orders", params={"placed_to": "2100-01-01T00:00:00+00:00", "limit": 1}).json()["items"]) == 1
    problem_of(mgr.get("/v1/orders", params={"placed_from": "2026-01-01T00:00:00"}), 422)  # no time zone


def test_modify_cancel_hold_release_route(api: Api):
    number = place(api)["number"]
    web = api.as_("web")
    r = web.patch(f"/v1/orders/{number}", json={"set_quantities": {"1": 1}, "add_lines": [{"sku": "BEANS", "quantity": 2}]})
    assert r.status_code == 200, r.text
    assert {l["sku"]: l["quantity"] - l["cancelled"] for l in r.json()["lines"]} == {"MUG": 1, "TEE-S": 1, "BEANS": 2}
    before = row_counts(api.db)
    problem_of(web.patch(f"/v1/orders/{number}", json={"set_quantities": {"1": -1}}), 422)
    problem_of(web.patch(f"/v1/orders/{number}", json={"add_lines": [{"sku": "KETTLE", "quantity": 500}]}), 409, "insufficient_stock")
    assert row_counts(api.db) == before
    mgr = api.as_("manager")
    assert mgr.post(f"/v1/orders/{number}/hold", json={"reason": "fraud check"}).json()["status"] == "on_hold"
    problem_of(web.post(f"/v1/orders/{number}/hold", json={"reason": "x"}), 403)
    assert mgr.post(f"/v1/orders/{number}/release").json()["status"] == "placed"
    routed = mgr.post(f"/v1/orders/{number}/route", json={"strategy": "fewest_shipments"})
    assert routed.status_code == 200 and routed.json()["routing_reason"]
    cancelled = web.post(f"/v1/orders/{number}/cancel", json={"reason": "changed mind"}).json()
    assert cancelled["status"] == "cancelled"
    problem_of(web.post(f"/v1/orders/{number}/cancel", json={"reason": "again"}), 409, "invalid_transition")
    problem_of(web.post(f"/v1/orders/{number}/cancel", json={}), 422)
    assert available(api.db, "MUG", "WH-EAST") == 100


def test_availability_with_promised_dates(api: Api):
    data = api.as_("web").get("/v1/availability/MUG").json()
    assert data["channel"] == "web" and data["available"] == 104
    east = next(r for r in data["locations"] if r["location"] == "WH-EAST")
    assert set(east["promised_delivery"]) == {"standard", "expedited", "overnight"}
    assert east["promised_delivery"]["overnight"] < east["promised_delivery"]["standard"]
    assert api.as_("app").get("/v1/availability/MUG").json()["available"] == 0
    assert api.as_("nyc").get("/v1/availability/MUG", params={"location": "ST-NYC"}).json()["available"] == 4
    problem_of(api.as_("nyc").get("/v1/availability/MUG", params={"location": "WH-EAST"}), 403)
    assert api.as_("merchandiser").get("/v1/availability/MUG").json()["available"] == 104
    problem_of(api.as_("web").get("/v1/availability/NOPE"), 404, "unknown_sku")
