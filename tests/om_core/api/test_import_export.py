"""CSV import and export over the API: the importer's validation and reports, history exports for a date
range as CSV and Parquet, master data round trips, and the real Complete Journey sample."""

from __future__ import annotations

import csv
import gzip
import io
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from om_core.api import ApiSettings, create_app
from om_core.clock import utcnow
from om_core.db import Database
from om_core.models import Order, Product
from om_core.services import catalog
from tests.om_core.api.conftest import NO_LIMITS, Api, make_keys, problem_of
from tests.om_core.helpers import table_row_counts
from tests.om_core.store import web_order

COMPLETE_JOURNEY = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "complete_journey"
PRODUCTS_CSV = b"sku,name,category,price,cost\nHAT,Sun hat,apparel,18.00,6.00\nSCARF,Scarf,apparel,25.00,9.00\n"


def upload(api: Api, who: str, kind: str, body: bytes, **params):
    return api.as_(who).post(f"/v1/imports/{kind}", content=body, params=params, headers={"Content-Type": "text/csv"})


def test_import_products_and_again_unchanged(api: Api):
    r = upload(api, "merchandiser", "products", PRODUCTS_CSV)
    assert r.status_code == 200, r.text
    assert (r.json()["rows_read"], r.json()["imported"], r.json()["rejected"]) == (2, 2, 0)
    assert api.as_("web").get("/v1/products/HAT").json()["price"] == "18.00"
    again = upload(api, "merchandiser", "products", gzip.compress(PRODUCTS_CSV)).json()  # gzip is recognised by its bytes
    assert (again["imported"], again["unchanged"]) == (0, 2)


def test_bad_rows_are_refused_with_the_reasons_and_nothing_written(api: Api):
    bad = PRODUCTS_CSV + b"BAD SKU,Nope,apparel,1.00,1.00\nOK2,Fine,apparel,abc,1.00\n"
    before = table_row_counts(api.db)
    body = problem_of(upload(api, "manager", "products", bad), 422, "import_rejected")
    assert [e["field"] for e in body["errors"]] == ["row 4: sku", "row 5: price"] and body["error_count"] == 2
    problem_of(upload(api, "manager", "products", b"name\nx\n"), 422, "validation_error")  # no sku column
    problem_of(upload(api, "manager", "products", PRODUCTS_CSV, map="sku"), 422, "validation_error")
    problem_of(upload(api, "manager", "products", b""), 400, "empty_body")
    problem_of(upload(api, "merchandiser", "customers", b"email\na@example.com\n"), 403)
    problem_of(upload(api, "marketing", "products", PRODUCTS_CSV), 403)
    problem_of(api.anon.post("/v1/imports/products", content=PRODUCTS_CSV), 401)
    problem_of(upload(api, "manager", "suppliers", PRODUCTS_CSV), 422)
    assert table_row_counts(api.db) == before
    skipped = upload(api, "manager", "products", bad, skip_bad_rows=True).json()
    assert (skipped["imported"], skipped["rejected"], skipped["error_count"]) == (2, 2, 2)


def test_import_with_a_column_map(api: Api):
    body = b"id,title,cat,retail,unit_cost\nBELT,Belt,apparel,30.00,10.00\n"
    r = upload(api, "manager", "products", body, map=["sku=id,name=title", "category=cat,price=retail,cost=unit_cost"])
    assert r.status_code == 200 and r.json()["imported"] == 1


def test_import_size_limit(store):
    api = Api(create_app(store, ApiSettings(rate_per_second=0, key_cache_seconds=0, max_import_bytes=100)), make_keys(store))
    problem_of(upload(api, "manager", "products", PRODUCTS_CSV * 3), 413, "payload_too_large")


def test_export_history_csv_and_parquet(api: Api):
    for i in range(2):
        assert api.as_("web").post("/v1/orders", json=web_order(("MUG", 1 + i)), headers={"Idempotency-Key": f"e{i}"}).status_code == 201
    today = utcnow().date().isoformat()
    mgr = api.as_("manager")
    r = mgr.get("/v1/exports/orders", params={"start": today, "end": today})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 2 and {row["channel"] for row in rows} == {"web"} and rows[0]["placed_at"].endswith("+00:00")
    with api.db.read() as s:
        assert sorted(row["total"] for row in rows) == sorted(f"{t:.2f}" for t in s.scalars(select(Order.total)))
    lines = list(csv.DictReader(io.StringIO(mgr.get("/v1/exports/order_lines", params={"start": today, "end": today}).text)))
    assert sorted(int(l["quantity"]) for l in lines) == [1, 2]
    moves = mgr.get("/v1/exports/stock_movements", params={"start": today, "end": today, "format": "parquet"})
    table = pq.read_table(io.BytesIO(moves.content))
    assert moves.headers["content-type"] == "application/vnd.apache.parquet"
    assert str(table.schema.field("at").type) == "timestamp[us, tz=UTC]" and "reservation" in table.column("kind").to_pylist()
    orders = pq.read_table(io.BytesIO(mgr.get("/v1/exports/orders", params={"start": today, "end": today, "format": "parquet"}).content))
    assert str(orders.schema.field("total").type).startswith("decimal128")
    assert mgr.get("/v1/exports/orders", params={"start": "2000-01-01", "end": "2000-01-31"}).text.count("\n") == 1  # header only
    for name in ("shipments", "returns"):
        assert mgr.get(f"/v1/exports/{name}", params={"start": today, "end": today}).status_code == 200


def test_export_refusals(api: Api):
    mgr = api.as_("manager")
    problem_of(mgr.get("/v1/exports/orders"), 422, "validation_error")
    problem_of(mgr.get("/v1/exports/orders", params={"start": "2026-02-30", "end": "2026-03-01"}), 422)
    problem_of(mgr.get("/v1/exports/orders", params={"start": "2026-03-02", "end": "2026-03-01"}), 422)
    problem_of(mgr.get("/v1/exports/orders", params={"start": "2026-03-01", "end": "2026-03-01", "format": "xlsx"}), 422)
    problem_of(mgr.get("/v1/exports/payments", params={"start": "2026-03-01", "end": "2026-03-01"}), 422)
    problem_of(api.as_("merchandiser").get("/v1/exports/customers"), 403)
    problem_of(api.as_("marketing").get("/v1/exports/products"), 403)
    problem_of(api.as_("web").get("/v1/exports/orders", params={"start": "2026-03-01", "end": "2026-03-01"}), 403)


def test_master_data_round_trip(api: Api, tmp_path, sqlite_template):
    """Products, locations, customers and stock exported from the store import unchanged into an empty database."""
    shutil.copy(sqlite_template, tmp_path / "other.db")
    db = Database(f"sqlite:///{tmp_path / 'other.db'}")
    with db.transaction() as s:  # the suppliers are not part of the master data files
        catalog.create_supplier(s, {"code": "ACME", "name": "Acme"})
        catalog.create_supplier(s, {"code": "DROP", "name": "Drop"})
    other = Api(create_app(db, NO_LIMITS), make_keys_empty(db))
    for kind in ("products", "locations", "customers", "stock"):
        body = api.as_("manager").get(f"/v1/exports/{kind}").content
        r = upload(other, "manager", kind, body)
        assert r.status_code == 200, (kind, r.text)
        assert r.json()["rejected"] == 0
        assert upload(other, "manager", kind, body).json()["imported"] == 0 or kind == "stock"
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Product)) == 8
    for kind in ("products", "locations", "stock"):
        assert other.as_("manager").get(f"/v1/exports/{kind}").content == api.as_("manager").get(f"/v1/exports/{kind}").content
    db.dispose()


@pytest.mark.skipif(not (COMPLETE_JOURNEY / "transactions_sample.csv.gz").is_file(),
                    reason=f"Complete Journey sample not found at {COMPLETE_JOURNEY}")
def test_complete_journey_sample_over_the_api(db):
    """The real sample, uploaded as the .csv.gz files it comes in: 20,897 products, then 75,000 lines in
    47,243 baskets of which 416 lines have quantity 0 and are rejected (skipped, reported)."""
    api = Api(create_app(db, ApiSettings(rate_per_second=0, key_cache_seconds=0)), make_keys_empty(db))
    products = upload(api, "manager", "products", (COMPLETE_JOURNEY / "products.csv.gz").read_bytes(),
                      map="sku=product_id,category=product_category,brand=brand,name=product_type")
    assert products.status_code == 200, products.text
    assert (products.json()["rows_read"], products.json()["imported"]) == (20_897, 20_897)
    mapping = ("order_id=basket_id,sku=product_id,customer_id=household_id,location=store_id,ordered_at=transaction_timestamp,"
               "line_total=sales_value,discount=retail_disc")
    orders = upload(api, "manager", "orders", (COMPLETE_JOURNEY / "transactions_sample.csv.gz").read_bytes(), map=mapping, skip_bad_rows=True)
    assert orders.status_code == 200, orders.text
    report = orders.json()
    assert (report["rows_read"], report["imported"], report["lines"], report["rejected"]) == (75_000, 47_034, 74_584, 416)
    assert report["error_count"] == 416 and len(report["errors"]) == 50 and {e["reason"] for e in report["errors"]} == {"must not be 0"}
    again = upload(api, "manager", "orders", (COMPLETE_JOURNEY / "transactions_sample.csv.gz").read_bytes(), map=mapping, skip_bad_rows=True)
    assert again.json()["duplicates"] == 47_034


def make_keys_empty(db) -> dict[str, str]:
    from om_core.services.apikeys import create_api_key

    with db.transaction() as s:
        return {"manager": create_api_key(s, {"role": "manager"})[1]}


def test_broken_uploads_are_refused_and_write_nothing(api: Api):
    before = table_row_counts(api.db)
    truncated_gzip = gzip.compress(PRODUCTS_CSV, mtime=0)[:20]
    body = problem_of(upload(api, "manager", "products", truncated_gzip), 422)
    assert body["code"] in ("unreadable_file", "validation_error") and "/tmp" not in body["detail"]
    problem_of(upload(api, "manager", "products", bytes(range(256)) * 2), 422)
    problem_of(upload(api, "manager", "products", b'sku,name,category,price,cost\n"unterminated,x,y,1,1\n'), 422)
    for kind in ("orders", "stock", "customers", "locations"):
        problem_of(upload(api, "manager", kind, b"\x00\x01garbage\xff" * 40), 422)
    assert table_row_counts(api.db) == before


def test_order_history_exports_in_the_importers_columns(api: Api, tmp_path, sqlite_template):
    number = api.as_("web").post("/v1/orders", json=web_order(("MUG", 2), ("TEE-S", 1)), headers={"Idempotency-Key": "h1"}).json()["number"]
    today = utcnow().date().isoformat()
    body = api.as_("manager").get("/v1/exports/order_history", params={"start": today, "end": today}).content
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert [(r["order_id"], r["sku"], r["quantity"], r["unit_price"], r["channel"]) for r in rows] == [
        (number, "MUG", "2", "12.50", "web"), (number, "TEE-S", "1", "20.00", "web")]
    shutil.copy(sqlite_template, tmp_path / "other.db")
    db = Database(f"sqlite:///{tmp_path / 'other.db'}")
    other = Api(create_app(db, NO_LIMITS), make_keys_empty(db))
    report = upload(other, "manager", "orders", body).json()
    assert (report["imported"], report["lines"], report["rejected"], report["created"]["products"]) == (1, 2, 0, 2)
    with db.read() as s:
        assert s.scalar(select(Order.external_ref)) == number
    db.dispose()
