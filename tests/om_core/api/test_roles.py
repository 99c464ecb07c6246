"""Least privilege on every route: the policy below is the reviewed list of which roles may call what
(admin may call everything). The test checks that the app declares exactly this policy, that a request
without a key gets 401 everywhere but the health check, and that every other role gets 403 and writes
nothing. Scope rules within a role (a channel's own orders, a store's own locations) are tested with
the routes themselves."""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute

from om_core.api.routers import ROUTERS
from tests.om_core.api.conftest import Api, problem_of
from tests.om_core.helpers import table_snapshot

POLICY: dict[tuple[str, str], set[str]] = {
    ("GET", "/v1/products"): {'channel', 'manager', 'marketing', 'merchandiser', 'store_ops'},
    ("GET", "/v1/products/{sku}"): {'channel', 'manager', 'marketing', 'merchandiser', 'store_ops'},
    ("POST", "/v1/products"): {'manager', 'merchandiser'},
    ("PATCH", "/v1/products/{sku}"): {'manager', 'merchandiser'},
    ("POST", "/v1/suppliers"): {'manager', 'merchandiser'},
    ("GET", "/v1/suppliers/{code}"): {'manager', 'merchandiser'},
    ("GET", "/v1/locations"): {'channel', 'manager', 'merchandiser', 'store_ops'},
    ("GET", "/v1/locations/{code}"): {'channel', 'manager', 'merchandiser', 'store_ops'},
    ("POST", "/v1/locations"): {'manager'},
    ("PATCH", "/v1/locations/{code}"): {'manager'},
    ("GET", "/v1/channels"): {'channel', 'manager', 'merchandiser'},
    ("GET", "/v1/channels/{code}"): {'channel', 'manager', 'merchandiser'},
    ("POST", "/v1/channels"): {'manager'},
    ("PATCH", "/v1/channels/{code}"): {'manager'},
    ("PUT", "/v1/channels/{code}/locations/{location_code}"): {'manager'},
    ("POST", "/v1/customers"): {'channel', 'manager'},
    ("GET", "/v1/customers/{customer_id}"): {'channel', 'manager', 'marketing'},
    ("PATCH", "/v1/customers/{customer_id}"): {'channel', 'manager'},
    ("GET", "/v1/customers"): {'manager', 'marketing'},
    ("GET", "/v1/availability/{sku}"): {'channel', 'manager', 'merchandiser', 'store_ops'},
    ("POST", "/v1/orders/quote"): {'channel', 'manager'},
    ("POST", "/v1/orders"): {'channel', 'manager'},
    ("GET", "/v1/orders/{number}"): {'channel', 'manager', 'marketing', 'store_ops'},
    ("GET", "/v1/orders"): {'channel', 'manager', 'marketing'},
    ("PATCH", "/v1/orders/{number}"): {'channel', 'manager'},
    ("POST", "/v1/orders/{number}/cancel"): {'channel', 'manager'},
    ("POST", "/v1/orders/{number}/hold"): {'manager'},
    ("POST", "/v1/orders/{number}/release"): {'manager'},
    ("POST", "/v1/orders/{number}/route"): {'manager'},
    ("GET", "/v1/orders/{number}/payment"): {'channel', 'manager'},
    ("POST", "/v1/orders/{number}/shipments"): {'manager'},
    ("GET", "/v1/locations/{code}/pick-list"): {'manager', 'store_ops'},
    ("GET", "/v1/shipments/{number}"): {'channel', 'manager', 'store_ops'},
    ("POST", "/v1/shipments/{number}/pack"): {'manager', 'store_ops'},
    ("POST", "/v1/shipments/{number}/ship"): {'manager', 'store_ops'},
    ("POST", "/v1/shipments/{number}/deliver"): {'manager', 'store_ops'},
    ("POST", "/v1/shipments/{number}/ready"): {'manager', 'store_ops'},
    ("POST", "/v1/shipments/{number}/collect"): {'manager', 'store_ops'},
    ("POST", "/v1/tracking-events"): {'manager'},
    ("POST", "/v1/orders/{number}/returns"): {'channel', 'manager'},
    ("GET", "/v1/returns/{number}"): {'channel', 'manager', 'store_ops'},
    ("POST", "/v1/returns/{number}/receive"): {'manager', 'store_ops'},
    ("POST", "/v1/returns/{number}/refund"): {'manager'},
    ("POST", "/v1/returns/{number}/exchange"): {'channel', 'manager'},
    ("POST", "/v1/purchase-orders"): {'manager', 'merchandiser'},
    ("GET", "/v1/purchase-orders/{number}"): {'manager', 'merchandiser', 'store_ops'},
    ("POST", "/v1/purchase-orders/{number}/send"): {'manager', 'merchandiser'},
    ("POST", "/v1/purchase-orders/{number}/cancel"): {'manager', 'merchandiser'},
    ("POST", "/v1/purchase-orders/{number}/receipts"): {'manager', 'store_ops'},
    ("POST", "/v1/stock/receipts"): {'manager', 'store_ops'},
    ("POST", "/v1/stock/adjustments"): {'manager', 'store_ops'},
    ("POST", "/v1/stock/transfers"): {'manager', 'store_ops'},
    ("GET", "/v1/stock/movements"): {'manager', 'merchandiser', 'store_ops'},
    ("POST", "/v1/imports/{kind}"): {'manager', 'merchandiser'},
    ("GET", "/v1/exports/{dataset}"): {'manager', 'merchandiser'},
    ("GET", "/v1/recommendations/{customer_id}"): {'marketing'},
    ("GET", "/v1/feeds/recommendations"): {'marketing'},
    ("POST", "/v1/api-keys"): set(),
    ("GET", "/v1/api-keys"): set(),
    ("DELETE", "/v1/api-keys/{prefix}"): set(),
    ("POST", "/v1/webhooks"): set(),
    ("GET", "/v1/webhooks"): set(),
    ("DELETE", "/v1/webhooks/{subscription_id}"): set(),
    ("GET", "/v1/webhooks/{subscription_id}/deliveries"): set(),
}
#: One key per role.
ROLE_KEYS = {"channel": "web", "store_ops": "nyc", "merchandiser": "merchandiser", "manager": "manager", "marketing": "marketing", "admin": "admin"}


def _allowed(dependant: Any) -> frozenset[str] | None:
    for dep in dependant.dependencies:
        if hasattr(dep.call, "allowed"):
            return dep.call.allowed
        found = _allowed(dep)
        if found is not None:
            return found
    return None


def declared() -> dict[tuple[str, str], frozenset[str] | None]:
    return {(method, f"/v1{route.path}"): _allowed(route.dependant)
            for router in ROUTERS for route in router.routes if isinstance(route, APIRoute) for method in route.methods}


def concrete(path: str) -> str:
    return re.sub(r"\{[a-z_]+\}", "1", path)


def test_the_app_declares_exactly_the_reviewed_policy():
    routes = declared()
    assert routes.pop(("GET", "/v1/health")) is None  # the one route without a key
    assert {route: set(roles) - {"admin"} for route, roles in routes.items()} == POLICY
    assert all("admin" in roles for roles in routes.values())


def test_no_key_gets_401_on_every_route_but_health(api: Api):
    before = table_snapshot(api.db)
    for method, path in POLICY:
        problem_of(api.anon.request(method, concrete(path), json={}), 401, "unauthorized")
    assert api.anon.get("/v1/health").status_code == 200
    assert table_snapshot(api.db) == before


def test_every_other_role_gets_403_and_writes_nothing(api: Api):
    before = table_snapshot(api.db)
    checked = 0
    for (method, path), roles in POLICY.items():
        for role, key in ROLE_KEYS.items():
            if role in roles or role == "admin":
                continue
            problem_of(api.as_(key).request(method, concrete(path), json={}), 403, "forbidden")
            checked += 1
    assert checked > 150
    assert table_snapshot(api.db) == before
