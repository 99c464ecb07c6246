"""The API's ground rules: keys, the one error shape, size and rate limits, redacted logs, OpenAPI."""

from __future__ import annotations

import logging

from om_core.api import ApiSettings, create_app
from om_core.api.logs import redact
from tests.om_core.api.conftest import NO_LIMITS, Api, make_keys, problem_of
from tests.om_core.helpers import row_counts, table_row_counts
from tests.om_core.store import web_order


def test_health_needs_no_key(api: Api):
    r = api.anon.get("/v1/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_no_key_unknown_key_and_revoked_key_get_401(api: Api):
    problem_of(api.anon.get("/v1/products"), 401, "unauthorized")
    problem_of(api.anon.get("/v1/products", headers={"X-API-Key": "som_aaaaaaaaaaaa_" + "x" * 40}), 401, "unauthorized")
    problem_of(api.anon.get("/v1/products", headers={"Authorization": "Bearer nonsense"}), 401)
    assert api.anon.get("/v1/products", headers={"Authorization": f"Bearer {api.keys['merchandiser']}"}).status_code == 200
    prefix = api.keys["merchandiser"].split("_")[1]
    assert api.as_("admin").delete(f"/v1/api-keys/{prefix}").status_code == 200
    problem_of(api.as_("merchandiser").get("/v1/products"), 401, "unauthorized")


def test_openapi_document_and_docs(api: Api):
    doc = api.anon.get("/openapi.json").json()
    assert doc["info"]["title"] == "StoreOM API"
    assert all(path.startswith("/v1/") for path in doc["paths"])
    assert "/v1/orders" in doc["paths"] and "post" in doc["paths"]["/v1/orders"]
    assert api.anon.get("/docs").status_code == 200


def test_unknown_field_wrong_type_negative_quantity_are_422_and_write_nothing(api: Api):
    before = row_counts(api.db)
    web = api.as_("web")
    headers = {"Idempotency-Key": "k1"}
    body = problem_of(web.post("/v1/orders", json=web_order(("MUG", 1), surprise=1), headers=headers), 422, "validation_error")
    assert body["errors"] == [{"field": "surprise", "reason": "Extra inputs are not permitted"}]
    body = problem_of(web.post("/v1/orders", json=web_order(("MUG", "many")), headers=headers), 422)
    assert body["errors"][0]["field"] == "lines.0.quantity"
    body = problem_of(web.post("/v1/orders", json=web_order(("MUG", -2)), headers=headers), 422)
    assert body["errors"][0]["field"] == "lines.0.quantity" and "greater than 0" in body["errors"][0]["reason"]
    problem_of(api.as_("manager").get("/v1/customers/99999999999"), 422)  # beyond any id the database can hold
    big_customer = web_order(("MUG", 1), customer_id=99_999_999_999)
    assert web.post("/v1/orders", json=big_customer, headers=headers).status_code in (404, 422)  # unknown (SQLite), out of range (PostgreSQL)
    body = problem_of(api.as_("manager").get("/v1/orders", params={"placed_from": "2026-13-45"}), 422)
    assert body["errors"][0]["field"] == "query.placed_from"
    assert row_counts(api.db) == before


def test_malformed_json_is_400(api: Api):
    before = row_counts(api.db)
    r = api.as_("web").post("/v1/orders", content=b'{"channel": "web", "lines": [', headers={"Idempotency-Key": "k", "Content-Type": "application/json"})
    problem_of(r, 400, "malformed_json")
    assert row_counts(api.db) == before


def test_service_errors_keep_their_code_and_status(api: Api):
    web = api.as_("web")
    problem_of(web.get("/v1/products/NOPE"), 404, "unknown_sku")
    body = problem_of(web.post("/v1/orders", json=web_order(("MUG", 500)), headers={"Idempotency-Key": "big"}), 409, "insufficient_stock")
    assert body["shortages"][0]["sku"] == "MUG"
    problem_of(web.post("/v1/orders", json=web_order(("MUG", 1))), 400, "idempotency_key_required")


def test_oversized_body_is_413_and_writes_nothing(store):
    app = create_app(store, ApiSettings(rate_per_second=0, key_cache_seconds=0, max_body_bytes=2_000))
    api = Api(app, make_keys(store))
    before = table_row_counts(store)
    big = web_order(("MUG", 1), external_ref="x" * 5_000)
    problem_of(api.as_("web").post("/v1/orders", json=big, headers={"Idempotency-Key": "k"}), 413, "payload_too_large")

    def chunks():  # no Content-Length: counted as it streams
        yield b'{"channel": "web", "lines": [], "email": "'
        for _ in range(10):
            yield b"a" * 500
        yield b'"}'

    r = api.as_("web").post("/v1/orders", content=chunks(), headers={"Idempotency-Key": "k2", "Content-Type": "application/json"})
    problem_of(r, 413, "payload_too_large")
    assert table_row_counts(store) == before


def test_rate_limit_per_key_is_429(store):
    app = create_app(store, ApiSettings(rate_per_second=0.001, burst=3, key_cache_seconds=0))
    api = Api(app, make_keys(store))
    assert [api.as_("merchandiser").get("/v1/products").status_code for _ in range(3)] == [200, 200, 200]
    r = api.as_("merchandiser").get("/v1/products")
    problem_of(r, 429, "rate_limited")
    assert int(r.headers["Retry-After"]) >= 1
    assert api.as_("manager").get("/v1/products").status_code == 200  # another key has its own bucket


def test_logs_never_carry_keys_tokens_or_full_emails(api: Api, caplog):
    caplog.set_level(logging.INFO)
    key = api.keys["manager"]
    api.as_("manager").get("/v1/customers", params={"email": "ada@example.com"})
    api.as_("web").post("/v1/orders", json=web_order(("MUG", 1), email="ada@example.com"), headers={"Idempotency-Key": "log-1"})
    logging.getLogger("uvicorn.error").error("failed for %s with %s token=%s", "bob@example.com", key, "tok_visa")
    logging.getLogger("storeom.api").info('body {"payment_token": "tok_secret_123", "card": "4111 1111 1111 1111"}')
    text = caplog.text
    assert "GET /v1/customers" in text  # the access log ran
    for secret in ("ada@example.com", "bob@example.com", key, key.split("_", 2)[2], "tok_visa", "tok_secret_123", "4111 1111 1111 1111"):
        assert secret not in text
    assert "a***%40example.com" in text and "b***@example.com" in text and f"som_{key.split('_')[1]}_***" in text


def test_redact():
    assert redact("mail ada.l@example.co.uk now") == "mail a***@example.co.uk now"
    assert redact("q=ada%40example.com") == "q=a***%40example.com"
    assert redact('{"payment_token": "abc"}') == '{"payment_token": "***"}'
    assert redact("card 4111-1111-1111-1111") == "card [card]"
    assert redact("order SO-ABCDEFGHJK at 2026-11-27T01:02:03+00:00") == "order SO-ABCDEFGHJK at 2026-11-27T01:02:03+00:00"


def test_settings_from_env(monkeypatch):
    monkeypatch.setenv("STOREOM_API_RATE", "7")
    monkeypatch.setenv("STOREOM_API_MAX_BODY", "1234")
    settings = ApiSettings.from_env()
    assert (settings.rate_per_second, settings.max_body_bytes) == (7.0, 1234)
    assert NO_LIMITS.rate_per_second == 0


def test_admin_creates_lists_and_revokes_keys(api: Api):
    admin = api.as_("admin")
    r = admin.post("/v1/api-keys", json={"role": "store_ops", "locations": ["ST-SF"], "name": "SF store"})
    assert r.status_code == 201
    created = r.json()
    assert created["key"].startswith(f"som_{created['prefix']}_") and created["locations"] == ["ST-SF"]
    listed = admin.get("/v1/api-keys").json()["items"]
    assert created["prefix"] in [k["prefix"] for k in listed]
    assert created["key"] not in str(listed) and "key_hash" not in str(listed)
    sf = api.anon.get("/v1/availability/KETTLE", params={"location": "ST-SF"}, headers={"X-API-Key": created["key"]})
    assert sf.json()["available"] == 6
    before = table_row_counts(api.db)
    problem_of(admin.post("/v1/api-keys", json={"role": "channel"}), 422, "validation_error")
    problem_of(admin.post("/v1/api-keys", json={"role": "manager", "channel": "web"}), 422)
    problem_of(admin.post("/v1/api-keys", json={"role": "channel", "channel": "nope"}), 404, "unknown_channel")
    problem_of(admin.post("/v1/api-keys", json={"role": "owner"}), 422)
    problem_of(admin.delete("/v1/api-keys/nope"), 404, "unknown_api_key")
    assert table_row_counts(api.db) == before
    assert admin.delete(f"/v1/api-keys/{created['prefix']}").json()["revoked_at"]
    problem_of(api.anon.get("/v1/products", headers={"X-API-Key": created["key"]}), 401)


def test_a_cached_key_revoked_through_the_api_is_refused_at_once(store):
    api = Api(create_app(store, ApiSettings(rate_per_second=0, key_cache_seconds=300)), make_keys(store))
    merchandiser = api.as_("merchandiser")
    assert merchandiser.get("/v1/products").status_code == 200  # the key is now in the cache for 300 s
    prefix = api.keys["merchandiser"].split("_")[1]
    assert api.as_("admin").delete(f"/v1/api-keys/{prefix}").status_code == 200
    problem_of(merchandiser.get("/v1/products"), 401, "unauthorized")


def test_a_key_revoked_outside_the_api_is_refused_when_its_cache_entry_expires(store, monkeypatch):
    """`storeom apikey revoke` runs in another process: the server learns of it within key_cache_seconds."""
    from types import SimpleNamespace

    from om_core.api import auth
    from om_core.services.apikeys import revoke_api_key

    clock = [1_000.0]
    monkeypatch.setattr(auth, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    api = Api(create_app(store, ApiSettings(rate_per_second=0, key_cache_seconds=5)), make_keys(store))
    merchandiser = api.as_("merchandiser")
    assert merchandiser.get("/v1/products").status_code == 200
    with store.transaction() as s:
        revoke_api_key(s, api.keys["merchandiser"].split("_")[1])
    clock[0] += 4.9
    assert merchandiser.get("/v1/products").status_code == 200  # still within the cache's 5 s
    clock[0] += 0.2
    problem_of(merchandiser.get("/v1/products"), 401, "unauthorized")
    problem_of(merchandiser.get("/v1/products"), 401, "unauthorized")  # a refused key is never cached
