"""The history importer: master data, stock and order history from CSV files (known answers, both backends).

Small hand-written files in tmp_path; every number asserted here follows from the file in the test.
The last test imports the real Complete Journey sample when it is present next to the repository.
"""

from __future__ import annotations

import csv
import gzip
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from om_core.db import Database
from om_core.errors import ValidationError
from om_core.models import (
    Address,
    Channel,
    Customer,
    Location,
    Order,
    OrderLine,
    Payment,
    Product,
    Reservation,
    ReturnLine,
    ReturnRequest,
    Stock,
    StockMovement,
)
from om_core.services import inventory, orders
from om_core.services.importing import ImportRejected, default_rejects_path, import_file
from tests.om_core.helpers import table_snapshot
from tests.om_core.store import build_store

COMPLETE_JOURNEY = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "complete_journey"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    data = text.lstrip("\n").encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def count(db: Database, model: type) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def rejected(db: Database, kind: str, path: Path, **kwargs) -> list[tuple[int, str, str]]:
    """Import a bad file: expect ImportRejected, nothing written; return the (row, column, reason) errors."""
    before = table_snapshot(db)
    with pytest.raises(ImportRejected) as info:
        import_file(db, kind, path, **kwargs)
    assert info.value.code == "import_rejected"
    assert table_snapshot(db) == before
    assert info.value.details["errors"] == info.value.errors
    return [(e["row"], e["column"], e["reason"]) for e in info.value.errors]


# --- products, locations, customers -------------------------------------------------------------

PRODUCTS = """
sku,name,category,price,cost,brand
MUG,Coffee mug,kitchen,12.50,4.00,Acme
TEE,T-shirt,apparel,20.00,8.00,
"""


def test_products_are_upserted_by_sku(db, tmp_path):
    path = write(tmp_path, "products.csv", PRODUCTS)
    report = import_file(db, "products", path)
    assert (report.rows_read, report.imported, report.updated, report.unchanged, report.rejected) == (2, 2, 0, 0, 0)
    with db.read() as s:
        mug = s.scalar(select(Product).where(Product.sku == "MUG"))
        assert (mug.name, mug.category, mug.price, mug.cost, mug.brand, mug.returnable) == (
            "Coffee mug", "kitchen", Decimal("12.50"), Decimal("4.00"), "Acme", True)
        assert s.scalar(select(Product.brand).where(Product.sku == "TEE")) is None

    before = table_snapshot(db)
    again = import_file(db, "products", path)
    assert (again.imported, again.updated, again.unchanged) == (0, 0, 2)
    assert table_snapshot(db) == before

    changed = write(tmp_path, "products2.csv", "sku,price\nMUG,13.00\n")  # absent columns stay as they are
    report = import_file(db, "products", changed)
    assert (report.imported, report.updated, report.unchanged) == (0, 1, 0)
    with db.read() as s:
        mug = s.scalar(select(Product).where(Product.sku == "MUG"))
        assert (mug.name, mug.price, mug.cost, mug.brand) == ("Coffee mug", Decimal("13.00"), Decimal("4.00"), "Acme")


def test_products_with_map_from_a_gzipped_file(db, tmp_path):
    path = write(tmp_path, "catalog.csv.gz", """
product_id,product_type,product_category,brand,package_size
1001,EGGS - X-LARGE,EGGS,Private,1 DZ
1002,,,National,
""")
    report = import_file(db, "products", path, mapping={"sku": "product_id", "name": "product_type", "category": "product_category",
                                                       "brand": "brand"})
    assert (report.imported, report.rejected) == (2, 0)
    with db.read() as s:
        rows = s.execute(select(Product.sku, Product.name, Product.category, Product.brand, Product.price).order_by(Product.sku)).all()
    # an empty name or category takes the default (the SKU; 'imported'); no price column: 0
    assert [tuple(r) for r in rows] == [("1001", "EGGS - X-LARGE", "EGGS", "Private", Decimal("0.00")),
                                        ("1002", "1002", "imported", "National", Decimal("0.00"))]


def test_locations_are_upserted_by_code(db, tmp_path):
    path = write(tmp_path, "locations.csv", """
code,name,kind,city,region,postal_code,country,can_pickup
WH1,Main DC,warehouse,Newark,NJ,07102,US,
ST1,Downtown,store,New York,ny,10004,US,true
""")
    report = import_file(db, "locations", path)
    assert (report.imported, report.updated, report.unchanged) == (2, 0, 0)
    assert import_file(db, "locations", path).unchanged == 2
    with db.read() as s:
        st1 = s.scalar(select(Location).where(Location.code == "ST1"))
        assert (st1.kind, st1.region, st1.postal_code, st1.can_pickup, st1.can_ship) == ("store", "NY", "10004", True, True)
    bad = write(tmp_path, "bad.csv", """
code,name,kind,postal_code,country,can_pickup
WH2,Second DC,warehouse,ABC,US,
ST2,Uptown,shop,10001,US,
WH3,Third DC,warehouse,,US,true
""")
    assert rejected(db, "locations", bad) == [
        (2, "postal_code", "postal code 'ABC' is not valid for US"),
        (3, "kind", "Input should be 'warehouse', 'store' or 'dropship'"),
        (4, "(row)", "Value error, only stores offer in-store pickup or ship from store"),
    ]


def test_customers_are_upserted_by_external_ref_or_email(db, tmp_path):
    path = write(tmp_path, "customers.csv", """
customer_id,email,first_name,line1,city,postal_code,country
C1,Ada@Example.com,Ada,1 Broadway,New York,10004,US
C2,,Bob,,,,
,carol@example.com,Carol,,,,
""")
    report = import_file(db, "customers", path)
    assert (report.imported, report.updated, report.unchanged) == (3, 0, 0)
    with db.read() as s:
        ada = s.scalar(select(Customer).where(Customer.external_ref == "C1"))
        assert (ada.email, ada.first_name) == ("ada@example.com", "Ada")
        address = s.scalar(select(Address).where(Address.customer_id == ada.id))
        assert (address.line1, address.postal_code, address.country, address.is_default) == ("1 Broadway", "10004", "US", True)
    before = table_snapshot(db)
    assert import_file(db, "customers", path).unchanged == 3
    assert table_snapshot(db) == before

    update = write(tmp_path, "update.csv", "email,first_name,postal_code\ncarol@example.com,Caroline,\nada@example.com,,10005\n")
    report = import_file(db, "customers", update)
    assert (report.imported, report.updated, report.unchanged) == (0, 2, 0)
    with db.read() as s:
        assert s.scalar(select(Customer.first_name).where(Customer.email == "carol@example.com")) == "Caroline"
        assert s.scalar(select(Address.postal_code).join(Customer).where(Customer.external_ref == "C1")) == "10005"


def test_customers_bad_email_and_postal_code_are_bad_rows(db, tmp_path):
    path = write(tmp_path, "customers.csv", """
customer_id,email,line1,city,postal_code,country
C1,not-an-email,,,,
C2,b@example.com,1 Main St,Springfield,1234,US
C3,,,,,
C1,c@example.com,,,,
""")
    errors = rejected(db, "customers", path)
    assert [(row, column) for row, column, _ in errors] == [(2, "email"), (3, "postal_code"), (5, "customer_id")]
    assert errors[0][2].startswith("Value error, not a valid email address")
    assert errors[1][2] == "Value error, postal code '1234' is not valid for US"
    assert errors[2][2] == "'C1' appears again (first on row 2)"
    assert count(db, Customer) == 0


# --- stock --------------------------------------------------------------------------------------


def test_stock_sets_on_hand_through_the_ledger(db, tmp_path):
    build_store(db)  # MUG: 100 at WH-EAST, 4 at ST-NYC
    path = write(tmp_path, "stock.csv", "sku,location,quantity\nMUG,WH-EAST,90\nMUG,ST-SF,7\nTEE-S,WH-EAST,10\n")
    with db.read() as s:
        movements = s.scalar(select(func.count()).select_from(StockMovement))
    report = import_file(db, "stock", path, actor="counter")
    assert (report.imported, report.updated, report.unchanged) == (1, 1, 1)
    with db.read() as s:
        rows = s.execute(
            select(Product.sku, Location.code, StockMovement.quantity, StockMovement.reason, StockMovement.kind, StockMovement.actor)
            .join(Stock, Stock.id == StockMovement.stock_id).join(Product, Product.id == Stock.product_id)
            .join(Location, Location.id == Stock.location_id).where(StockMovement.id > movements).order_by(StockMovement.id)).all()
        assert [tuple(r) for r in rows] == [("MUG", "WH-EAST", -10, "count", "adjustment", "counter"),
                                            ("MUG", "ST-SF", 7, "initial", "adjustment", "counter")]
        assert inventory.verify_ledger(s) == []
    before = table_snapshot(db)
    assert import_file(db, "stock", path).unchanged == 3  # the same file again writes no movement
    assert table_snapshot(db) == before


def test_stock_bad_rows(db, tmp_path):
    build_store(db)
    path = write(tmp_path, "stock.csv", "sku,location,quantity\nMUG,WH-EAST,-1\nNOPE,WH-EAST,1\nMUG,NOWHERE,2\nMUG,WH-EAST,2.5\n")
    assert rejected(db, "stock", path) == [
        (2, "quantity", "-1 is negative"), (3, "sku", "unknown SKU 'NOPE'"), (4, "location", "unknown location 'NOWHERE'"),
        (5, "quantity", "'2.5' is not a whole number"),
    ]


# --- orders -------------------------------------------------------------------------------------

ORDERS = """
order_id,sku,description,quantity,unit_price,ordered_at,customer_id
1001,MUG,Coffee mug,2,12.50,2024-03-01 10:15:00,C1
1001,NEW-1,Brand new thing,1,20.00,2024-03-01 10:15:00,C1
1002,NEW-1,Brand new thing v2,3,19.00,2024-03-05T09:00:00+02:00,C2
1003,MUG,,1.0,12.00,2024-03-06T08:00:00Z,
"""


def test_orders_are_imported_as_delivered_history(db, tmp_path):
    build_store(db)
    with db.read() as s:
        on_hand = dict(s.execute(select(Stock.id, Stock.on_hand)).all())
    movements, reservations = count(db, StockMovement), count(db, Reservation)
    report = import_file(db, "orders", write(tmp_path, "orders.csv", ORDERS))
    assert (report.rows_read, report.imported, report.lines, report.returns, report.rejected, report.duplicates) == (4, 3, 4, 0, 0, 0)
    assert report.created == {"channels": 1, "locations": 0, "customers": 2, "products": 1}
    with db.read() as s:
        o1 = orders.get_order(s, "H-1001")
        assert (o1.external_ref, o1.status, o1.delivery_method, o1.channel.code, o1.channel.kind) == (
            "1001", "delivered", "ship", "history", "web")
        assert o1.placed_at == datetime(2024, 3, 1, 10, 15, tzinfo=UTC)  # naive timestamps are UTC
        assert (o1.subtotal, o1.discount_total, o1.tax_total, o1.shipping_total, o1.total) == (
            Decimal("45.00"), Decimal("0.00"), Decimal("0.00"), Decimal("0.00"), Decimal("45.00"))
        assert [(l.line_no, l.sku, l.name, l.quantity, l.quantity_fulfilled, l.quantity_delivered, l.unit_price, l.line_total)
                for l in o1.lines] == [(1, "MUG", "Coffee mug", 2, 2, 2, Decimal("12.50"), Decimal("25.00")),
                                       (2, "NEW-1", "Brand new thing", 1, 1, 1, Decimal("20.00"), Decimal("20.00"))]
        assert orders.derive_status(o1) == "delivered"
        o2 = orders.get_order(s, "H-1002")
        assert o2.placed_at == datetime(2024, 3, 5, 7, 0, tzinfo=UTC)  # +02:00 converted to UTC
        assert o2.total == Decimal("57.00")
        assert s.scalar(select(Customer.external_ref).where(Customer.id == o2.customer_id)) == "C2"
        o3 = orders.get_order(s, "H-1003")
        assert (o3.customer_id, o3.lines[0].name, o3.lines[0].quantity) == (None, "Coffee mug", 1)  # anonymous sale; "1.0" is 1
        new = s.scalar(select(Product).where(Product.sku == "NEW-1"))
        # the latest sale names and prices an unknown SKU
        assert (new.name, new.category, new.price, new.cost, new.returnable) == ("Brand new thing v2", "imported", Decimal("19.00"),
                                                                                 Decimal("0.00"), True)
        assert s.scalar(select(Product.price).where(Product.sku == "MUG")) == Decimal("12.50")  # known SKUs keep their price
        view = orders.order_view(s, o1)
        assert (view["status"], view["placed_at"], view["payment"]) == ("delivered", "2024-03-01T10:15:00+00:00", None)
        # history reserves nothing and moves no stock
        assert dict(s.execute(select(Stock.id, Stock.on_hand)).all()) == on_hand
        assert inventory.verify_ledger(s) == []
    assert (count(db, StockMovement), count(db, Reservation), count(db, Payment)) == (movements, reservations, 0)


def test_reimporting_the_same_file_imports_nothing_twice(db, tmp_path):
    path = write(tmp_path, "orders.csv", ORDERS)
    import_file(db, "orders", path)
    before = table_snapshot(db)
    again = import_file(db, "orders", path)
    assert (again.imported, again.lines, again.duplicates, again.created) == (
        0, 0, 3, {"channels": 0, "locations": 0, "customers": 0, "products": 0})
    assert table_snapshot(db) == before


def test_orders_with_map_country_names_and_gzip(db, tmp_path):
    path = write(tmp_path, "online_retail.csv.gz", """
InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850,United Kingdom
536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850,United Kingdom
536366,22633,HAND WARMER UNION JACK,6,2010-12-01 08:28:00,1.85,17851,EIRE
""")
    mapping = {"order_id": "InvoiceNo", "sku": "StockCode", "description": "Description", "quantity": "Quantity",
               "ordered_at": "InvoiceDate", "unit_price": "UnitPrice", "customer_id": "CustomerID", "country": "Country"}
    report = import_file(db, "orders", path, mapping=mapping)
    assert (report.imported, report.lines, report.rejected) == (2, 3, 0)
    with db.read() as s:
        rows = s.execute(select(Order.number, Order.ship_country, Order.total).order_by(Order.number)).all()
    assert [tuple(r) for r in rows] == [("H-536365", "GB", Decimal("35.64")), ("H-536366", "IE", Decimal("11.10"))]


def test_line_total_and_discount_give_the_paid_amounts(db, tmp_path):
    """line_total is what was paid after the discount; without unit_price it is (line_total + discount) / quantity."""
    path = write(tmp_path, "baskets.csv", """
basket,product,qty,paid,disc,when,household,store
B1,P1,2.0,11.87,2.90,2017-02-18 18:13:10,H1,309
B1,P2,1.0,1.00,0,2017-02-18 18:13:10,H1,309
""")
    mapping = {"order_id": "basket", "sku": "product", "quantity": "qty", "line_total": "paid", "discount": "disc",
               "ordered_at": "when", "customer_id": "household", "location": "store"}
    report = import_file(db, "orders", path, mapping=mapping)
    assert report.created == {"channels": 1, "locations": 1, "customers": 1, "products": 2}
    with db.read() as s:
        o = orders.get_order(s, "H-B1")
        assert (o.subtotal, o.discount_total, o.total) == (Decimal("15.77"), Decimal("2.90"), Decimal("12.87"))
        assert [(l.unit_price, l.discount_total, l.line_total) for l in o.lines] == [
            (Decimal("7.39"), Decimal("2.90"), Decimal("11.87")),  # (11.87 + 2.90) / 2 = 7.385 -> 7.39
            (Decimal("1.00"), Decimal("0.00"), Decimal("1.00"))]
        # a location makes it a store sale: carried out at a store created from the file, on a 'pos' channel
        store = s.scalar(select(Location).where(Location.code == "309"))
        assert (store.kind, o.delivery_method, o.pickup_location_id, o.channel.kind) == ("store", "carry_out", store.id, "pos")


def test_channel_column_and_per_channel_duplicates(db, tmp_path):
    path = write(tmp_path, "orders.csv", """
order_id,sku,quantity,unit_price,ordered_at,customer_id,channel
7,MUG,1,10.00,2024-01-01 10:00:00,C1,shop-a
7,MUG,2,10.00,2024-01-01 11:00:00,C1,shop-b
8,MUG,1,10.00,2024-01-02 10:00:00,C1,
""")
    report = import_file(db, "orders", path)
    assert (report.imported, report.created["channels"]) == (3, 3)
    with db.read() as s:
        rows = s.execute(select(Channel.code, Order.external_ref, Order.total).join(Channel).order_by(Order.id)).all()
        numbers = s.scalars(select(Order.number).order_by(Order.id)).all()
    assert [tuple(r) for r in rows] == [("shop-a", "7", Decimal("10.00")), ("shop-b", "7", Decimal("20.00")),
                                        ("history", "8", Decimal("10.00"))]
    assert numbers[0] == "H-7" and numbers[1].startswith("H-") and numbers[1] != "H-7" and numbers[2] == "H-8"
    assert import_file(db, "orders", path).duplicates == 3


# --- returns (negative quantities) ---------------------------------------------------------------

RETURNS = """
order_id,sku,quantity,unit_price,ordered_at,customer_id
1,MUG,3,10.00,2024-01-10 10:00:00,C1
2,MUG,2,11.00,2024-02-10 10:00:00,C1
2,TEE,1,20.00,2024-02-10 10:00:00,C1
C3,MUG,-3,11.00,2024-03-01 12:00:00,C1
"""


def test_negative_quantities_return_the_most_recent_earlier_purchases(db, tmp_path):
    report = import_file(db, "orders", write(tmp_path, "orders.csv", RETURNS))
    assert (report.imported, report.lines, report.returns) == (2, 3, 2)
    with db.read() as s:
        o1, o2 = orders.get_order(s, "H-1"), orders.get_order(s, "H-2")
        # 3 back: the 2 of order 2 (most recent), then 1 of order 1
        assert [(l.sku, l.quantity, l.quantity_returned) for l in o2.lines] == [("MUG", 2, 2), ("TEE", 1, 0)]
        assert [(l.sku, l.quantity, l.quantity_returned) for l in o1.lines] == [("MUG", 3, 1)]
        assert (o1.status, o2.status) == ("partially_returned", "partially_returned")
        assert (orders.derive_status(o1), orders.derive_status(o2)) == ("partially_returned", "partially_returned")
        returns = s.execute(select(ReturnRequest.number, ReturnRequest.order_id, ReturnRequest.status, ReturnRequest.reason_code,
                                   ReturnRequest.received_at, ReturnRequest.refund_amount, ReturnRequest.opened_by)
                            .order_by(ReturnRequest.number)).all()
        when = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
        assert [tuple(r) for r in returns] == [("HR-C3-1", o2.id, "closed", "other", when, Decimal("22.00"), "import"),
                                               ("HR-C3-2", o1.id, "closed", "other", when, Decimal("11.00"), "import")]
        lines = s.execute(select(ReturnLine.order_line_id, ReturnLine.quantity, ReturnLine.refund_amount).order_by(ReturnLine.id)).all()
        assert [tuple(r) for r in lines] == [(o2.lines[0].id, 2, Decimal("22.00")), (o1.lines[0].id, 1, Decimal("11.00"))]
        assert inventory.verify_ledger(s) == [] and s.scalar(select(func.count()).select_from(StockMovement)) == 0
    before = table_snapshot(db)
    again = import_file(db, "orders", tmp_path / "orders.csv")
    assert (again.imported, again.returns, again.duplicates, again.duplicate_returns) == (0, 0, 2, 1)
    assert table_snapshot(db) == before


def test_a_return_may_come_in_a_later_file(db, tmp_path):
    import_file(db, "orders", write(tmp_path, "january.csv", RETURNS.split("C3,")[0]))
    report = import_file(db, "orders", write(tmp_path, "march.csv", """
order_id,sku,quantity,unit_price,ordered_at,customer_id
C9,TEE,-1,20.00,2024-03-02 09:00:00,C1
"""))
    assert (report.imported, report.returns) == (0, 1)
    with db.read() as s:
        o2 = orders.get_order(s, "H-2")
        assert ([l.quantity_returned for l in o2.lines], o2.status) == ([0, 1], "partially_returned")
        assert s.scalar(select(ReturnRequest.number)) == "HR-C9-1"


def test_unmatched_returns_are_bad_rows(db, tmp_path):
    path = write(tmp_path, "orders.csv", """
order_id,sku,quantity,unit_price,ordered_at,customer_id
1,MUG,2,10.00,2024-01-10 10:00:00,C1
C2,MUG,-1,10.00,2024-01-09 10:00:00,C1
C3,TEE,-1,10.00,2024-01-11 10:00:00,C1
C4,MUG,-3,10.00,2024-01-11 10:00:00,C1
C5,MUG,-1,10.00,2024-01-11 10:00:00,
""")
    assert rejected(db, "orders", path) == [
        (3, "quantity", "return without an earlier purchase in the history"),  # bought only the next day
        (4, "quantity", "return without an earlier purchase in the history"),
        (5, "quantity", "returns 3 but only 2 unit(s) bought earlier by this customer are not yet returned"),
        (6, "customer_id", "a return needs the customer, to find the earlier purchase"),
    ]


# --- bad files ------------------------------------------------------------------------------------


def test_bad_rows_reject_the_file_and_name_each_row(db, tmp_path):
    build_store(db)
    path = write(tmp_path, "orders.csv", """
order_id,sku,quantity,unit_price,ordered_at,customer_id
1,MUG,two,10.00,2024-01-10 10:00:00,C1
2,MUG,1,10.00,2024-13-01 10:00:00,C1
3,MUG,1,ten,2024-01-10 10:00:00,C1
4,MUG,0,-1,2099-01-01,C1
5,MUG,1,10.00,2024-01-10 10:00:00,C1
5,MUG,1,10.00,2024-01-10 10:00:00,C9
,bad sku,1,10.00,2024-01-10 10:00:00,C1
""")
    assert rejected(db, "orders", path) == [
        (2, "quantity", "'two' is not a whole number"),
        (3, "ordered_at", "'2024-13-01 10:00:00' is not a timestamp (ISO 8601, e.g. 2024-03-01 14:30:00)"),
        (4, "unit_price", "'ten' is not an amount"),
        (5, "quantity", "must not be 0"),
        (5, "unit_price", "-1 is negative"),
        (5, "ordered_at", "2099-01-01 is in the future"),
        (7, "customer_id", "order 5 has customer_id 'C1' on row 6"),
        (8, "order_id", "required"),
        (8, "sku", "'bad sku' is not a code (letters, digits and . _ - /, starting with a letter or digit)"),
    ]


def test_missing_columns_and_unknown_map_targets_are_refused_before_reading(db, tmp_path):
    path = write(tmp_path, "orders.csv", "order_id,sku,quantity,ordered_at\n1,MUG,1,2024-01-01\n")
    before = table_snapshot(db)
    with pytest.raises(ValidationError) as info:
        import_file(db, "orders", path)
    assert type(info.value) is ValidationError
    assert [(e["field"], e["reason"]) for e in info.value.errors] == [
        ("customer_id", "required column missing (rename a column with --map customer_id=<column>)"),
        ("unit_price", "the file needs one of the columns unit_price, line_total")]
    with pytest.raises(ValidationError) as info:
        import_file(db, "orders", path, mapping={"customer_id": "order_id", "price": "quantity", "unit_price": "Price"})
    assert [(e["field"], e["reason"]) for e in info.value.errors] == [
        ("price", "not a column of the orders import (known: order_id, sku, quantity, ordered_at, customer_id, unit_price, "
                  "line_total, discount, description, category, location, channel, country)"),
        ("unit_price", "mapped to column 'Price', which is not in the file"),
        # a column mapped to another canonical column is not also read under its own name
        ("order_id", "required column missing (rename a column with --map order_id=<column>)")]
    with pytest.raises(ValidationError, match="Unknown import kind"):
        import_file(db, "suppliers", path)
    assert table_snapshot(db) == before


def test_rows_with_the_wrong_number_of_fields_are_bad_rows(db, tmp_path):
    path = write(tmp_path, "orders.csv", """
order_id,sku,quantity,unit_price,ordered_at,customer_id
1,MUG,1,10.00,2024-01-10 10:00:00,C1

2,MUG,1,10.00,2024-01-10 10:00:00,C1,extra
3,MUG,1,10.00,2024-01-10 10:00:00,C1
""")
    assert rejected(db, "orders", path) == [(4, "(row)", "has 7 fields, the header has 6")]  # the blank line 3 is skipped
    report = import_file(db, "orders", path, skip_bad_rows=True)
    assert (report.rows_read, report.imported, report.rejected) == (3, 2, 1)


def test_skip_bad_rows_imports_the_good_ones_and_writes_the_rejects(db, tmp_path):
    path = write(tmp_path, "orders.csv", """
order_id,sku,quantity,unit_price,ordered_at,customer_id,note
1,MUG,1,10.00,2024-01-10 10:00:00,C1,"a, quoted note"

1,TEE,x,20.00,2024-01-10 10:00:00,C1,
2,MUG,2,10.00,2024-01-11 10:00:00,C2,
C3,TEE,-1,20.00,2024-01-12 10:00:00,C1,
""")
    report = import_file(db, "orders", path, skip_bad_rows=True)
    assert (report.rows_read, report.imported, report.lines, report.rejected) == (4, 2, 2, 2)
    assert report.rejects_path == str(tmp_path / "orders.rejects.csv") == str(default_rejects_path(path))
    assert [(e["row"], e["column"]) for e in report.errors] == [(4, "quantity"), (6, "quantity")]  # line 3 is blank
    with open(report.rejects_path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows == [
        ["order_id", "sku", "quantity", "unit_price", "ordered_at", "customer_id", "note", "error"],
        ["1", "TEE", "x", "20.00", "2024-01-10 10:00:00", "C1", "", "row 4: quantity: 'x' is not a whole number"],
        ["C3", "TEE", "-1", "20.00", "2024-01-12 10:00:00", "C1", "", "row 6: quantity: return without an earlier purchase in the history"],
    ]
    elsewhere = tmp_path / "out" / "bad.csv"
    again = import_file(db, "orders", path, skip_bad_rows=True, rejects_path=elsewhere)
    assert (again.imported, again.duplicates, again.rejects_path) == (0, 2, str(elsewhere))
    assert elsewhere.is_file()


# --- command line -----------------------------------------------------------------------------------


@pytest.fixture
def cli(sqlite_db, tmp_path):
    runner = CliRunner(env={"STOREOM_HOME": str(tmp_path), "STOREOM_DATABASE_URL": sqlite_db.url})

    def run(*args: str):
        from om_core.cli_import import import_group

        return runner.invoke(import_group, list(args), catch_exceptions=False)

    return run


def test_cli_prints_the_report(cli, sqlite_db, tmp_path):
    path = write(tmp_path, "retail.csv", "Invoice,Code,Qty,Price,Date,Customer\n9,MUG,2,3.50,2024-01-01 09:00,C1\n")
    result = cli("orders", str(path), "--map", "order_id=Invoice,sku=Code", "--map", "quantity=Qty,unit_price=Price",
                 "--map", "ordered_at=Date,customer_id=Customer")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["kind"], report["imported"], report["lines"], report["errors"], report["error_count"]) == ("orders", 1, 1, [], 0)
    assert count(sqlite_db, Order) == 1


def test_cli_rejected_file_exits_1_with_the_bad_rows(cli, sqlite_db, tmp_path):
    rows = "".join(f"{i},MUG,x,1.00,2024-01-01,C1\n" for i in range(60))
    path = write(tmp_path, "orders.csv", "order_id,sku,quantity,unit_price,ordered_at,customer_id\n" + rows)
    result = cli("orders", str(path))
    assert result.exit_code == 1 and result.stdout == ""
    first, _, rest = result.stderr.partition("\n")
    assert first.startswith(
        "error [import_rejected]: orders.csv: 60 bad row(s), nothing imported: row 2 quantity: 'x' is not a whole number")
    details = json.loads(rest)
    assert (details["error_count"], details["errors_shown"], len(details["errors"])) == (60, 50, 50)
    assert details["errors"][0] == {"row": 2, "column": "quantity", "reason": "'x' is not a whole number"}
    assert count(sqlite_db, Order) == 0

    result = cli("orders", str(path), "--map", "order_id")  # malformed option: usage error
    assert result.exit_code == 2
    result = cli("orders", str(path), "--map", "nope=order_id")  # unknown canonical column: refused
    assert result.exit_code == 1 and result.stderr.startswith("error [validation_error]: Cannot import orders: nope: not a column")


# --- the real data ------------------------------------------------------------------------------------


@pytest.mark.skipif(not (COMPLETE_JOURNEY / "transactions_sample.csv.gz").is_file(),
                    reason=f"Complete Journey sample not found at {COMPLETE_JOURNEY}")
def test_complete_journey_sample(db, tmp_path):
    """Baskets become orders and stores locations. The sample has 75,000 lines in 47,243 baskets of 2,377
    households at 293 stores; 416 lines have quantity 0 (no units sold) and are rejected, which leaves
    209 baskets and 4 households with no line at all."""
    import pandas as pd

    lines = pd.read_csv(COMPLETE_JOURNEY / "transactions_sample.csv.gz", dtype=str)
    sold = lines[lines.quantity.astype(float) != 0]
    assert (len(lines), lines.basket_id.nunique(), lines.household_id.nunique(), lines.store_id.nunique()) == (75_000, 47_243, 2_377, 293)
    assert (len(sold), sold.basket_id.nunique(), sold.household_id.nunique(), sold.store_id.nunique()) == (74_584, 47_034, 2_373, 293)

    products = import_file(db, "products", COMPLETE_JOURNEY / "products.csv.gz",
                           mapping={"sku": "product_id", "category": "product_category", "brand": "brand", "name": "product_type"})
    assert (products.rows_read, products.imported, products.rejected) == (20_897, 20_897, 0)

    mapping = {"order_id": "basket_id", "sku": "product_id", "customer_id": "household_id", "location": "store_id",
               "ordered_at": "transaction_timestamp", "line_total": "sales_value", "discount": "retail_disc"}
    report = import_file(db, "orders", COMPLETE_JOURNEY / "transactions_sample.csv.gz", mapping=mapping, skip_bad_rows=True,
                         rejects_path=tmp_path / "rejects.csv")
    assert (report.rows_read, report.imported, report.lines, report.rejected) == (75_000, 47_034, 74_584, 416)
    assert {e["reason"] for e in report.errors} == {"must not be 0"} and {e["column"] for e in report.errors} == {"quantity"}
    # 5 products of the sample are not in products.csv; 4 of them appear only on zero-quantity lines
    assert report.created == {"channels": 1, "locations": 293, "customers": 2_373, "products": 1}
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Order).where(Order.status == "delivered")) == 47_034
        assert s.scalar(select(func.count()).select_from(OrderLine)) == 74_584
        assert s.scalar(select(func.count()).select_from(Location).where(Location.kind == "store")) == 293
        total = s.scalar(select(func.sum(Order.total)))
        discounts = s.scalar(select(func.sum(Order.discount_total)))
    assert Decimal(total).quantize(Decimal("0.01")) == sum(map(Decimal, sold.sales_value)).quantize(Decimal("0.01"))
    assert Decimal(discounts).quantize(Decimal("0.01")) == sum(map(Decimal, sold.retail_disc)).quantize(Decimal("0.01"))
    assert import_file(db, "orders", COMPLETE_JOURNEY / "transactions_sample.csv.gz", mapping=mapping, skip_bad_rows=True,
                       rejects_path=tmp_path / "rejects.csv").duplicates == 47_034


# --- more edges -----------------------------------------------------------------------------------


def test_product_bad_rows(db, tmp_path):
    path = write(tmp_path, "products.csv", """
sku,name,price,supplier,returnable
A 1,Spaced,1.00,,
B1,Pricey,abc,,
B2,Supplied,1.00,NOPE,
B3,Flag,1.00,,maybe
B3,Again,1.00,,
B4,Fine,1.999,,no
""")
    errors = rejected(db, "products", path)
    assert [(row, column) for row, column, _ in errors] == [(2, "sku"), (3, "price"), (4, "supplier"), (5, "returnable"),
                                                           (6, "sku"), (7, "price")]
    assert errors[2][2] == "unknown supplier 'NOPE'" and errors[4][2] == "'B3' appears again (first on row 5)"
    report = import_file(db, "products", path, skip_bad_rows=True)
    assert (report.imported, report.rejected) == (0, 6)


def test_an_invoice_may_mix_a_return_and_new_purchases(db, tmp_path):
    """An exchange at the till: one order_id with a negative line (returns an earlier purchase) and a sale."""
    path = write(tmp_path, "orders.csv", """
order_id,sku,quantity,unit_price,ordered_at,customer_id,location
1,MUG,2,10.00,2024-01-10 10:00:00,C1,S1
2,MUG,-1,10.00,2024-01-20 10:00:00,C1,S2
2,TEE,1,20.00,2024-01-20 10:05:00,C1,S2
""")
    report = import_file(db, "orders", path)
    assert (report.imported, report.lines, report.returns) == (2, 2, 1)
    with db.read() as s:
        o2 = orders.get_order(s, "H-2")
        assert ([(l.sku, l.quantity) for l in o2.lines], o2.placed_at) == ([("TEE", 1)], datetime(2024, 1, 20, 10, 5, tzinfo=UTC))
        rma = s.scalar(select(ReturnRequest))
        s2 = s.scalar(select(Location.id).where(Location.code == "S2"))
        assert (rma.number, rma.order_id, rma.received_location_id) == ("HR-2-1", orders.get_order(s, "H-1").id, s2)
    assert import_file(db, "orders", path).duplicates == 2


def test_empty_and_all_bad_files(db, tmp_path):
    header = write(tmp_path, "empty.csv", "order_id,sku,quantity,unit_price,ordered_at,customer_id\n")
    report = import_file(db, "orders", header)
    assert (report.rows_read, report.imported, report.rejected, report.rejects_path) == (0, 0, 0, None)
    with pytest.raises(ValidationError, match="empty"):
        import_file(db, "orders", write(tmp_path, "nothing.csv", ""))
    bad = write(tmp_path, "bad.csv", "order_id,sku,quantity,unit_price,ordered_at,customer_id\n1,MUG,0,1.00,2024-01-01,C1\n")
    report = import_file(db, "orders", bad, skip_bad_rows=True)
    assert (report.rows_read, report.imported, report.rejected) == (1, 0, 1)
    assert count(db, Order) == 0 and count(db, Product) == 0 and count(db, Customer) == 0


def test_non_iso_timestamps_are_recognised_or_given(db, tmp_path):
    path = write(tmp_path, "orders.csv", """
order_id,sku,quantity,unit_price,ordered_at,customer_id
1,MUG,1,1.00,12/1/2010 8:26,C1
2,MUG,1,1.00,12/13/2010 18:05,C1
""")
    import_file(db, "orders", path)  # month first, as recognised from the first value
    european = write(tmp_path, "eu.csv", "order_id,sku,quantity,unit_price,ordered_at,customer_id\n3,MUG,1,1.00,13/12/2010 18:05,C1\n")
    import_file(db, "orders", european, date_format="%d/%m/%Y %H:%M")
    with db.read() as s:
        placed = s.execute(select(Order.number, Order.placed_at).order_by(Order.number)).all()
    assert [tuple(r) for r in placed] == [("H-1", datetime(2010, 12, 1, 8, 26, tzinfo=UTC)),
                                          ("H-2", datetime(2010, 12, 13, 18, 5, tzinfo=UTC)),
                                          ("H-3", datetime(2010, 12, 13, 18, 5, tzinfo=UTC))]
