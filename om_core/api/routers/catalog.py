"""Catalog: products and suppliers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from om_core.api.routers._common import EVERYONE, Limit, Offset, allow, database, fields, ok, page, write
from om_core.db import Database
from om_core.services import catalog
from om_core.services.apikeys import Principal

router = APIRouter(tags=["catalog"])

PRODUCT_FIELDS = ("sku", "name", "description", "category", "brand", "price", "cost", "tax_class", "size", "colour", "attributes",
                  "pack_size", "min_order_qty", "weight_kg", "returnable", "backorder_policy", "active", "created_at")
WRITERS = allow("merchandiser", "manager")


def product_view(p: Any, principal: Principal) -> dict[str, Any]:
    view = fields(p, *PRODUCT_FIELDS)
    if principal.role in ("channel", "marketing"):
        view.pop("cost")  # what the retailer pays is not a channel's business
    return view


@router.get("/products", summary="List products")
def list_products(limit: Limit = 50, offset: Offset = 0, category: str | None = Query(None, max_length=120),
                  active: bool | None = None, db: Database = Depends(database), who: Principal = Depends(allow(*EVERYONE))):
    with db.read() as s:
        items = [product_view(p, who) for p in catalog.list_products(s, category=category, active=active, limit=limit, offset=offset)]
    return ok(page(items, limit, offset))


@router.get("/products/{sku}", summary="Read a product")
def get_product(sku: str, db: Database = Depends(database), who: Principal = Depends(allow(*EVERYONE))):
    with db.read() as s:
        return ok(product_view(catalog.get_product(s, sku), who))


@router.post("/products", status_code=201, summary="Create a product")
def create_product(body: catalog.ProductIn, db: Database = Depends(database), who: Principal = Depends(WRITERS)):
    with write(db) as s:
        view = product_view(catalog.create_product(s, body), who)
    return ok(view, 201)


@router.patch("/products/{sku}", summary="Update a product")
def update_product(sku: str, body: catalog.ProductUpdate, db: Database = Depends(database), who: Principal = Depends(WRITERS)):
    with write(db) as s:
        view = product_view(catalog.update_product(s, sku, body), who)
    return ok(view)


SUPPLIER_FIELDS = ("code", "name", "email", "lead_time_days", "lead_time_std_days", "created_at")


@router.post("/suppliers", status_code=201, summary="Create a supplier")
def create_supplier(body: catalog.SupplierIn, db: Database = Depends(database), _: Principal = Depends(WRITERS)):
    with write(db) as s:
        view = fields(catalog.create_supplier(s, body), *SUPPLIER_FIELDS)
    return ok(view, 201)


@router.get("/suppliers/{code}", summary="Read a supplier")
def get_supplier(code: str, db: Database = Depends(database), _: Principal = Depends(WRITERS)):
    with db.read() as s:
        return ok(fields(catalog.get_supplier(s, code), *SUPPLIER_FIELDS))
