"""A small, fully specified store for core tests: every number here is used by some assertion."""

from __future__ import annotations

from decimal import Decimal

from om_core.db import Database
from om_core.services import catalog, customers, inventory, locations, shipping, taxes


def build_store(db: Database) -> None:
    """Two warehouses, two stores (one with pickup and ship-from-store), a dropship supplier,
    web/app/pos channels, 8 SKUs in 3 categories, US tax rates and three shipping services."""
    with db.transaction() as s:
        catalog.create_supplier(s, {"code": "ACME", "name": "Acme Supplies", "lead_time_days": "5", "lead_time_std_days": "1.5"})
        catalog.create_supplier(s, {"code": "DROP", "name": "Drop Ship Co", "lead_time_days": "3"})
        for sku, name, cat, price, cost, extra in [
            ("TEE-S", "T-shirt S", "apparel", "20.00", "8.00", {"size": "S", "colour": "blue"}),
            ("TEE-M", "T-shirt M", "apparel", "20.00", "8.00", {"size": "M", "colour": "blue"}),
            ("TEE-L", "T-shirt L", "apparel", "22.00", "9.00", {"size": "L", "colour": "blue"}),
            ("MUG", "Coffee mug", "kitchen", "12.50", "4.00", {"weight_kg": "0.4"}),
            ("KETTLE", "Electric kettle", "kitchen", "49.99", "25.00", {"weight_kg": "1.6"}),
            ("BEANS", "Espresso beans 250g", "grocery", "9.99", "4.50", {"tax_class": "reduced", "returnable": False}),
            ("PREORDER", "Limited edition print", "apparel", "35.00", "10.00", {"backorder_policy": "allow"}),
            ("SOFA", "Three-seat sofa", "furniture", "899.00", "450.00", {"weight_kg": "60", "supplier": "DROP"}),
        ]:
            catalog.create_product(s, {"sku": sku, "name": name, "category": cat, "price": price, "cost": cost,
                                       "supplier": extra.pop("supplier", "ACME"), **extra})
        locations.create_location(s, {"code": "WH-EAST", "name": "East DC", "kind": "warehouse", "latitude": 40.7, "longitude": -74.0, "country": "US", "region": "NJ"})
        locations.create_location(s, {"code": "WH-WEST", "name": "West DC", "kind": "warehouse", "latitude": 37.8, "longitude": -122.3, "country": "US", "region": "CA"})
        locations.create_location(s, {"code": "ST-NYC", "name": "NYC store", "kind": "store", "can_pickup": True, "can_ship_from_store": True,
                                      "latitude": 40.75, "longitude": -73.99, "country": "US", "region": "NY"})
        locations.create_location(s, {"code": "ST-SF", "name": "SF store", "kind": "store", "can_pickup": False, "country": "US", "region": "CA"})
        locations.create_location(s, {"code": "DS-DROP", "name": "Drop Ship Co", "kind": "dropship", "supplier": "DROP"})
        locations.create_channel(s, {"code": "web", "name": "Web shop", "kind": "web", "locations": ["WH-EAST", "WH-WEST", "ST-NYC", "DS-DROP"]})
        locations.create_channel(s, {"code": "app", "name": "Mobile app", "kind": "app", "locations": ["WH-WEST"]})
        locations.create_channel(s, {"code": "pos-nyc", "name": "NYC tills", "kind": "pos", "prices_include_tax": True, "locations": ["ST-NYC"]})
        taxes.set_tax_rate(s, {"country": "US", "tax_class": "standard", "rate": "0.05"})
        taxes.set_tax_rate(s, {"country": "US", "region": "NY", "tax_class": "standard", "rate": "0.08875"})
        taxes.set_tax_rate(s, {"country": "US", "tax_class": "reduced", "rate": "0.00"})
        shipping.create_shipping_method(s, {"code": "standard", "name": "Standard", "service_level": "standard",
                                            "base_price": "4.95", "free_over": "50.00", "promised_days": 5})
        shipping.create_shipping_method(s, {"code": "expedited", "name": "Expedited", "service_level": "expedited",
                                            "base_price": "9.95", "price_per_kg": "1.00", "promised_days": 2})
        shipping.create_shipping_method(s, {"code": "overnight", "name": "Overnight", "service_level": "overnight",
                                            "base_price": "24.95", "promised_days": 1, "countries": ["US"]})
        for sku, loc, qty in [
            ("TEE-S", "WH-EAST", 10), ("TEE-M", "WH-EAST", 5), ("TEE-M", "WH-WEST", 5), ("TEE-L", "WH-WEST", 3),
            ("MUG", "WH-EAST", 100), ("MUG", "ST-NYC", 4), ("KETTLE", "WH-WEST", 2), ("KETTLE", "ST-SF", 6),
            ("BEANS", "WH-EAST", 50), ("BEANS", "ST-NYC", 20), ("SOFA", "DS-DROP", 3),
        ]:
            inventory.receive_stock(s, {"sku": sku, "location": loc, "quantity": qty, "reference": "opening"}, actor="test")
        customers.create_customer(s, {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace", "phone": "+1 212 555 0100",
                                      "marketing_consent": True,
                                      "address": {"line1": "1 Broadway", "city": "New York", "region": "NY", "postal_code": "10004", "country": "US"}})
        customers.create_customer(s, {"email": "bob@example.com", "first_name": "Bob",
                                      "address": {"line1": "1 Market St", "city": "San Francisco", "region": "CA", "postal_code": "94105", "country": "US"}})


ADA, BOB = 1, 2
NY_ADDRESS = {"line1": "1 Broadway", "city": "New York", "region": "NY", "postal_code": "10004", "country": "US"}
ZERO = Decimal("0.00")


def web_order(*lines: tuple[str, int], **extra: object) -> dict[str, object]:
    """A web order for Ada, shipped standard, paid with a test token."""
    return {"channel": "web", "customer_id": ADA, "lines": [{"sku": s, "quantity": q} for s, q in lines],
            "shipping_method": "standard", "payment_token": "tok_visa", **extra}
