"""Catalog, network and customers over the API: create, read, update, list, with the role rules."""

from __future__ import annotations

from tests.om_core.api.conftest import Api, problem_of
from tests.om_core.helpers import table_row_counts
from tests.om_core.store import ADA, BOB

NEW_PRODUCT = {"sku": "CAP", "name": "Cap", "category": "apparel", "price": "15.00", "cost": "5.50", "supplier": "ACME"}


def test_products_crud_and_list(api: Api):
    m = api.as_("merchandiser")
    r = m.post("/v1/products", json=NEW_PRODUCT)
    assert r.status_code == 201 and r.json()["price"] == "15.00" and r.json()["cost"] == "5.50"
    r = m.patch("/v1/products/CAP", json={"price": "16.50", "active": False})
    assert r.json()["price"] == "16.50" and r.json()["active"] is False
    assert m.get("/v1/products/CAP").json()["price"] == "16.50"
    listed = m.get("/v1/products", params={"category": "kitchen"}).json()
    assert [p["sku"] for p in listed["items"]] == ["KETTLE", "MUG"] and listed["next_offset"] is None
    first = m.get("/v1/products", params={"limit": 3}).json()
    second = m.get("/v1/products", params={"limit": 3, "offset": first["next_offset"]}).json()
    assert len(first["items"]) == 3 and first["next_offset"] == 3 and {p["sku"] for p in first["items"]}.isdisjoint(p["sku"] for p in second["items"])
    assert [p["sku"] for p in m.get("/v1/products", params={"active": False}).json()["items"]] == ["CAP"]
    # channels see prices but not what the retailer pays
    assert "cost" not in api.as_("web").get("/v1/products/MUG").json()


def test_product_refusals_write_nothing(api: Api):
    m = api.as_("merchandiser")
    before = table_row_counts(api.db)
    problem_of(m.post("/v1/products", json={**NEW_PRODUCT, "sku": "MUG"}), 409, "already_exists")
    problem_of(m.post("/v1/products", json={**NEW_PRODUCT, "price": "-1"}), 422, "validation_error")
    problem_of(m.post("/v1/products", json={**NEW_PRODUCT, "supplier": "NOPE"}), 404, "unknown_supplier")
    problem_of(m.patch("/v1/products/MUG", json={"price": "abc"}), 422)
    problem_of(api.as_("web").post("/v1/products", json=NEW_PRODUCT), 403, "forbidden")
    assert table_row_counts(api.db) == before


def test_suppliers(api: Api):
    m = api.as_("merchandiser")
    assert m.post("/v1/suppliers", json={"code": "NEWCO", "name": "New Co", "lead_time_days": "4.5"}).status_code == 201
    assert m.get("/v1/suppliers/NEWCO").json()["lead_time_days"] == "4.50"
    problem_of(m.get("/v1/suppliers/NOPE"), 404, "unknown_supplier")


def test_locations_and_channels(api: Api):
    mgr = api.as_("manager")
    r = mgr.post("/v1/locations", json={"code": "ST-BOS", "name": "Boston store", "kind": "store", "can_pickup": True, "region": "ma"})
    assert r.status_code == 201 and r.json()["region"] == "MA"
    assert mgr.patch("/v1/locations/ST-BOS", json={"daily_capacity": 40, "cutoff_hour_utc": 18}).json()["daily_capacity"] == 40
    problem_of(mgr.patch("/v1/locations/WH-EAST", json={"can_pickup": True}), 422, "validation_error")
    assert [l["code"] for l in api.as_("web").get("/v1/locations", params={"kind": "warehouse"}).json()["items"]] == ["WH-EAST", "WH-WEST"]
    assert api.as_("nyc").get("/v1/locations/ST-NYC").json()["can_pickup"] is True
    r = mgr.post("/v1/channels", json={"code": "market", "name": "Marketplace", "kind": "marketplace", "locations": ["WH-WEST"]})
    assert r.status_code == 201 and [l["code"] for l in r.json()["locations"]] == ["WH-WEST"]
    r = mgr.put("/v1/channels/market/locations/ST-BOS", json={"priority": 500})
    assert [l["code"] for l in r.json()["locations"]] == ["WH-WEST", "ST-BOS"]
    assert mgr.patch("/v1/channels/market", json={"routing_strategy": "lowest_cost"}).json()["routing_strategy"] == "lowest_cost"
    assert {c["code"] for c in mgr.get("/v1/channels").json()["items"]} == {"web", "app", "pos-nyc", "market"}
    # a channel key sees its own channel only
    assert [c["code"] for c in api.as_("web").get("/v1/channels").json()["items"]] == ["web"]
    assert [l["code"] for l in api.as_("web").get("/v1/channels/web").json()["locations"]] == ["WH-EAST", "WH-WEST", "ST-NYC", "DS-DROP"]
    problem_of(api.as_("web").get("/v1/channels/app"), 404, "unknown_channel")
    problem_of(api.as_("merchandiser").post("/v1/locations", json={"code": "X", "name": "X", "kind": "warehouse"}), 403)


def test_customers_and_personal_data(api: Api):
    web = api.as_("web")
    r = web.post("/v1/customers", json={"email": "Cleo@Example.com", "first_name": "Cleo", "phone": "212 555 0199",
                                        "address": {"line1": "5 Main St", "city": "Albany", "region": "NY", "postal_code": "12207", "country": "US"}})
    assert r.status_code == 201
    cleo = r.json()
    assert cleo["email"] == "cleo@example.com" and cleo["phone"] == "+12125550199" and cleo["addresses"][0]["city"] == "Albany"
    assert web.patch(f"/v1/customers/{cleo['id']}", json={"marketing_consent": True, "last_name": "Patra"}).json()["last_name"] == "Patra"
    problem_of(web.post("/v1/customers", json={"email": "cleo@example.com"}), 409, "already_exists")
    problem_of(web.post("/v1/customers", json={"email": "not-an-email"}), 422)
    problem_of(web.patch(f"/v1/customers/{cleo['id']}", json={"phone": "12"}), 422)
    # marketing: personal data only of customers who consented (Ada did, Bob did not)
    mk = api.as_("marketing")
    assert mk.get(f"/v1/customers/{ADA}").json()["email"] == "ada@example.com"
    bob = mk.get(f"/v1/customers/{BOB}").json()
    assert "email" not in bob and "first_name" not in bob and "addresses" not in bob and bob["marketing_consent"] is False
    listed = mk.get("/v1/customers", params={"marketing_consent": True}).json()["items"]
    assert {c["id"] for c in listed} == {ADA, cleo["id"]}
    assert mk.get("/v1/customers", params={"email": "bob@example.com"}).json()["items"] == []
    assert api.as_("manager").get("/v1/customers", params={"email": "BOB@example.com"}).json()["items"][0]["id"] == BOB
    problem_of(api.as_("merchandiser").get(f"/v1/customers/{ADA}"), 403)
    problem_of(api.as_("nyc").get(f"/v1/customers/{ADA}"), 403)
    problem_of(web.get("/v1/customers/999"), 404, "unknown_customer")
