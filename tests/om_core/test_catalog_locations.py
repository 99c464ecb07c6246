"""Catalog (suppliers, products), locations and channels.

From `build_store`: ACME (lead time 5 +- 1.5 days) supplies everything but SOFA, which comes from DROP
(3 days, no deviation). The web channel sells WH-EAST, WH-WEST, ST-NYC, DS-DROP in that order.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from om_core.db import Database
from om_core.errors import (
    AlreadyExists,
    UnknownChannel,
    UnknownLocation,
    UnknownProduct,
    UnknownSupplier,
    ValidationError,
)
from om_core.models import ChannelLocation, Location
from om_core.services import catalog, locations
from tests.om_core.helpers import fields, refused

# --- helpers -------------------------------------------------------------------------------


def sold_by(db: Database, channel: str) -> list[str]:
    with db.read() as s:
        return [l.code for l in locations.channel_locations(s, locations.get_channel(s, channel))]


PRODUCT = {"sku": "HOODIE-M", "name": "Hoodie M", "category": "apparel", "price": "45.00", "cost": "18.00"}

# --- products ------------------------------------------------------------------------------


def test_create_product_with_attributes(store: Database) -> None:
    attributes = {"material": "organic cotton", "care": ["wash 30", "no tumble"], "gsm": 320}
    with store.transaction() as s:
        catalog.create_product(s, {**PRODUCT, "attributes": attributes, "size": "M", "colour": "grey", "brand": "Acme",
                                   "pack_size": 6, "min_order_qty": 2, "weight_kg": "0.75", "supplier": "ACME",
                                   "backorder_policy": "allow", "returnable": False})

    with store.read() as s:
        p = catalog.get_product(s, "HOODIE-M")
        assert p.attributes == attributes
        assert (p.name, p.category, p.size, p.colour, p.brand) == ("Hoodie M", "apparel", "M", "grey", "Acme")
        assert (Decimal(p.price), Decimal(p.cost), Decimal(p.weight_kg)) == (Decimal("45.00"), Decimal("18.00"), Decimal("0.75"))
        assert (p.pack_size, p.min_order_qty, p.backorder_policy, p.returnable, p.active) == (6, 2, "allow", False, True)
        assert p.supplier is not None and p.supplier.code == "ACME"
        assert "HOODIE-M" in [x.sku for x in catalog.list_products(s, category="apparel")]
        assert "HOODIE-M" not in [x.sku for x in catalog.list_products(s, category="kitchen")]


def test_create_product_defaults(store: Database) -> None:
    with store.transaction() as s:
        catalog.create_product(s, PRODUCT)
    with store.read() as s:
        p = catalog.get_product(s, "HOODIE-M")
        assert (p.attributes, p.pack_size, p.min_order_qty, p.tax_class, p.backorder_policy, p.returnable, p.active) == (
            {}, 1, 1, "standard", "deny", True, True,
        )
        assert p.supplier_id is None
        assert catalog.lead_time(p) == (Decimal(7), Decimal(0))


def test_duplicate_sku_is_refused(store: Database) -> None:
    err = refused(store, AlreadyExists, lambda s: catalog.create_product(s, {**PRODUCT, "sku": "MUG", "name": "Another mug"}))
    assert err.details == {"sku": "MUG"}
    with store.read() as s:
        assert catalog.get_product(s, "MUG").name == "Coffee mug"


@pytest.mark.parametrize(
    ("change", "expected_fields"),
    [
        ({"price": "-0.01"}, ["price"]),
        ({"cost": "1.234"}, ["cost"]),
        ({"pack_size": 0}, ["pack_size"]),
        ({"backorder_policy": "sometimes"}, ["backorder_policy"]),
        ({"colour_code": "#808080"}, ["colour_code"]),
        ({"sku": "BAD SKU"}, ["sku"]),
        ({"sku": ""}, ["sku"]),
        ({"name": ""}, ["name"]),
        ({"lead_time_days": "400"}, ["lead_time_days"]),
        ({"price": "-1", "pack_size": 0, "flavour": "x"}, ["price", "pack_size", "flavour"]),
    ],
)
def test_product_validation(store: Database, change: dict[str, Any], expected_fields: list[str]) -> None:
    err = refused(store, ValidationError, lambda s: catalog.create_product(s, {**PRODUCT, **change}))
    assert sorted(fields(err)) == sorted(expected_fields)


def test_product_with_missing_required_fields(store: Database) -> None:
    err = refused(store, ValidationError, lambda s: catalog.create_product(s, {"sku": "X1"}))
    assert sorted(fields(err)) == ["category", "cost", "name", "price"]


def test_product_with_unknown_supplier(store: Database) -> None:
    err = refused(store, UnknownSupplier, lambda s: catalog.create_product(s, {**PRODUCT, "supplier": "NOBODY"}))
    assert err.details == {"supplier": "NOBODY"}


def test_update_product_changes_only_the_given_fields(store: Database) -> None:
    with store.transaction() as s:
        catalog.update_product(s, "MUG", {"price": "13.75", "attributes": {"capacity_ml": 350}, "backorder_policy": "allow", "active": False})

    with store.read() as s:
        p = catalog.get_product(s, "MUG")
        assert Decimal(p.price) == Decimal("13.75")
        assert p.attributes == {"capacity_ml": 350}
        assert (p.backorder_policy, p.active) == ("allow", False)
        # untouched
        assert (p.name, Decimal(p.cost), Decimal(p.weight_kg), p.category) == ("Coffee mug", Decimal("4.00"), Decimal("0.400"), "kitchen")
        assert "MUG" not in [x.sku for x in catalog.list_products(s, active=True)]


@pytest.mark.parametrize(
    ("change", "expected_fields"),
    [
        ({"price": "-5"}, ["price"]),
        ({"pack_size": 0}, ["pack_size"]),
        ({"backorder_policy": "later"}, ["backorder_policy"]),
        ({"sku": "MUG-2"}, ["sku"]),  # a SKU is an identity, not an editable field
    ],
)
def test_update_product_validation(store: Database, change: dict[str, Any], expected_fields: list[str]) -> None:
    err = refused(store, ValidationError, lambda s: catalog.update_product(s, "MUG", change))
    assert fields(err) == expected_fields


def test_update_unknown_product(store: Database) -> None:
    refused(store, UnknownProduct, lambda s: catalog.update_product(s, "NOPE", {"price": "1.00"}))


def test_products_by_sku_names_every_unknown_sku(store: Database) -> None:
    with store.read() as s, pytest.raises(UnknownProduct) as info:
        catalog.products_by_sku(s, ["MUG", "ZED", "ABC"])
    assert info.value.details == {"skus": ["ABC", "ZED"]}


# --- lead times and suppliers ------------------------------------------------------------------


def test_lead_time_falls_back_to_the_supplier(store: Database) -> None:
    with store.transaction() as s:
        catalog.create_product(s, {**PRODUCT, "sku": "OWN-MEAN", "supplier": "ACME", "lead_time_days": "2"})
        catalog.create_product(s, {**PRODUCT, "sku": "OWN-BOTH", "supplier": "ACME", "lead_time_days": "9", "lead_time_std_days": "0.5"})
    with store.read() as s:
        assert catalog.lead_time(catalog.get_product(s, "TEE-S")) == (Decimal("5"), Decimal("1.5"))
        assert catalog.lead_time(catalog.get_product(s, "SOFA")) == (Decimal("3"), Decimal("0"))
        assert catalog.lead_time(catalog.get_product(s, "OWN-MEAN")) == (Decimal("2"), Decimal("1.5"))
        assert catalog.lead_time(catalog.get_product(s, "OWN-BOTH")) == (Decimal("9"), Decimal("0.5"))


def test_supplier_rules(store: Database) -> None:
    refused(store, AlreadyExists, lambda s: catalog.create_supplier(s, {"code": "ACME", "name": "Acme again"}))
    err = refused(store, ValidationError, lambda s: catalog.create_supplier(s, {"code": "SLOW", "name": "Slow", "lead_time_days": "400"}))
    assert fields(err) == ["lead_time_days"]
    with store.read() as s, pytest.raises(UnknownSupplier):
        catalog.get_supplier(s, "NOBODY")


# --- locations -----------------------------------------------------------------------------


def test_create_locations(store: Database) -> None:
    with store.transaction() as s:
        locations.create_location(s, {"code": "ST-LA", "name": "LA store", "kind": "store", "can_pickup": True, "region": "CA",
                                      "cutoff_hour_utc": 22, "daily_capacity": 40})
        locations.create_location(s, {"code": "DS-ACME", "name": "Acme direct", "kind": "dropship", "supplier": "ACME", "can_ship": True})

    with store.read() as s:
        store_loc = locations.get_location(s, "ST-LA")
        assert (store_loc.kind, store_loc.can_pickup, store_loc.can_ship_from_store, store_loc.country, store_loc.supplier_id) == (
            "store", True, False, "US", None,
        )
        assert (store_loc.cutoff_hour_utc, store_loc.daily_capacity) == (22, 40)
        dropship = locations.get_location(s, "DS-ACME")
        assert dropship.supplier_id == catalog.get_supplier(s, "ACME").id
        assert [l.code for l in locations.list_locations(s)] == sorted(["WH-EAST", "WH-WEST", "ST-NYC", "ST-SF", "DS-DROP", "ST-LA", "DS-ACME"])


@pytest.mark.parametrize(
    ("payload", "expected_fields", "reason"),
    [
        ({"kind": "dropship"}, ["(body)"], "dropship location needs its supplier"),
        ({"kind": "warehouse", "can_pickup": True}, ["(body)"], "only stores"),
        ({"kind": "dropship", "supplier": "DROP", "can_ship_from_store": True}, ["(body)"], "only stores"),
        ({"kind": "depot"}, ["kind"], ""),
        ({"kind": "store", "country": "usa"}, ["country"], ""),
        ({"kind": "store", "latitude": 91}, ["latitude"], ""),
        ({"kind": "store", "cutoff_hour_utc": 24}, ["cutoff_hour_utc"], ""),
        ({"kind": "store", "opening_hours": "9-5"}, ["opening_hours"], ""),
    ],
)
def test_location_validation(store: Database, payload: dict[str, Any], expected_fields: list[str], reason: str) -> None:
    err = refused(store, ValidationError, lambda s: locations.create_location(s, {"code": "NEW-1", "name": "New", **payload}))
    assert fields(err) == expected_fields
    assert reason in err.errors[0]["reason"]


def test_location_refusals(store: Database) -> None:
    err = refused(store, AlreadyExists, lambda s: locations.create_location(s, {"code": "WH-EAST", "name": "Again", "kind": "warehouse"}))
    assert err.details == {"location": "WH-EAST"}
    refused(store, UnknownSupplier, lambda s: locations.create_location(s, {"code": "DS-X", "name": "X", "kind": "dropship", "supplier": "NOBODY"}))
    with store.read() as s, pytest.raises(UnknownLocation):
        locations.get_location(s, "WH-NOWHERE")


# --- channels ------------------------------------------------------------------------------


def test_channel_locations_follow_priority(store: Database) -> None:
    assert sold_by(store, "web") == ["WH-EAST", "WH-WEST", "ST-NYC", "DS-DROP"]
    assert sold_by(store, "app") == ["WH-WEST"]
    assert sold_by(store, "pos-nyc") == ["ST-NYC"]
    with store.read() as s:
        web = locations.get_channel(s, "web")
        priorities = {
            code: priority
            for code, priority in s.execute(
                select(Location.code, ChannelLocation.priority)
                .join(ChannelLocation, ChannelLocation.location_id == Location.id)
                .where(ChannelLocation.channel_id == web.id)
            )
        }
    assert priorities == {"WH-EAST": 0, "WH-WEST": 1, "ST-NYC": 2, "DS-DROP": 3}


def test_assign_location_reprioritises_without_duplicating(store: Database) -> None:
    with store.transaction() as s:
        locations.assign_location(s, "web", "DS-DROP", priority=-1)
    assert sold_by(store, "web") == ["DS-DROP", "WH-EAST", "WH-WEST", "ST-NYC"]

    with store.transaction() as s:
        locations.assign_location(s, "web", "WH-EAST", priority=50)
        locations.assign_location(s, "web", "ST-SF", priority=1)  # new link; ties with WH-WEST, the older location wins
    assert sold_by(store, "web") == ["DS-DROP", "WH-WEST", "ST-SF", "ST-NYC", "WH-EAST"]
    with store.read() as s:
        web = locations.get_channel(s, "web")
        assert s.scalar(select(func.count()).select_from(ChannelLocation).where(ChannelLocation.channel_id == web.id)) == 5


def test_inactive_locations_are_not_sold(store: Database) -> None:
    with store.transaction() as s:
        locations.get_location(s, "WH-WEST").active = False
    assert sold_by(store, "web") == ["WH-EAST", "ST-NYC", "DS-DROP"]
    assert sold_by(store, "app") == []


def test_create_channel_with_locations(store: Database) -> None:
    with store.transaction() as s:
        channel = locations.create_channel(s, {"code": "market", "name": "Marketplace", "kind": "marketplace", "currency": "EUR",
                                               "locations": ["ST-NYC", "WH-EAST"]})
        assert (channel.kind, channel.currency, channel.prices_include_tax) == ("marketplace", "EUR", False)
    assert sold_by(store, "market") == ["ST-NYC", "WH-EAST"]


@pytest.mark.parametrize(
    ("payload", "expected_fields"),
    [
        ({"kind": "fax"}, ["kind"]),
        ({"kind": "web", "currency": "usd"}, ["currency"]),
        ({"kind": "web", "locations": ["bad code"]}, ["locations.0"]),
        ({"kind": "web", "region": "EU"}, ["region"]),
    ],
)
def test_channel_validation(store: Database, payload: dict[str, Any], expected_fields: list[str]) -> None:
    err = refused(store, ValidationError, lambda s: locations.create_channel(s, {"code": "new", "name": "New", **payload}))
    assert fields(err) == expected_fields


def test_channel_refusals(store: Database) -> None:
    refused(store, AlreadyExists, lambda s: locations.create_channel(s, {"code": "web", "name": "Web again", "kind": "web"}))
    # the channel row is rolled back with the failed link
    refused(store, UnknownLocation, lambda s: locations.create_channel(
        s, {"code": "kiosk", "name": "Kiosk", "kind": "pos", "locations": ["ST-NYC", "ST-NOWHERE"]}
    ))


@pytest.mark.parametrize(
    "call",
    [
        lambda s: locations.get_channel(s, "carrier-pigeon"),
        lambda s: locations.assign_location(s, "carrier-pigeon", "WH-EAST"),
    ],
    ids=["get_channel", "assign_location"],
)
def test_unknown_channel(store: Database, call: Callable[[Session], object]) -> None:
    err = refused(store, UnknownChannel, call)
    assert err.details == {"channel": "carrier-pigeon"}


def test_assign_unknown_location(store: Database) -> None:
    refused(store, UnknownLocation, lambda s: locations.assign_location(s, "web", "ST-NOWHERE"))
