"""Recommendations for marketing: read from the warehouse's `recommendations.parquet` (written by the
recommendations pipeline), only for customers who consented to marketing (the customers table decides)."""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Depends
from sqlalchemy import select

from om_core import warehouse
from om_core.api.routers._common import ApiProblem, Id, Limit, Offset, allow, database, ok, page
from om_core.db import Database
from om_core.models import Customer
from om_core.services import customers
from om_core.services.apikeys import Principal

router = APIRouter(tags=["recommendations"])
MARKETING = allow("marketing")
COLUMNS = ["customer_id", "sku", "rank", "score", "reason", "kind"]


def _table() -> pa.Table:
    if not warehouse.asset_exists("recommendations"):
        raise ApiProblem(404, "no_recommendations", "No recommendations yet — run `storeom pipeline run`")
    return warehouse.read_table("recommendations", COLUMNS)


def _items(table: pa.Table) -> list[dict[str, Any]]:
    return [{**r, "score": round(float(r["score"]), 6)} for r in table.to_pylist()]


@router.get("/recommendations/{customer_id}", summary="A consenting customer's recommended products, best first")
def for_customer(customer_id: Id, limit: Limit = 10, db: Database = Depends(database), _: Principal = Depends(MARKETING)):
    with db.read() as s:
        customer = customers.get_customer(s, customer_id)
        if not customer.marketing_consent:
            raise ApiProblem(404, "no_marketing_consent", f"Customer {customer_id} has not consented to marketing")
    table = _table()
    mine = table.filter(pc.equal(table["customer_id"], customer_id)).sort_by([("rank", "ascending")]).slice(0, limit)
    return ok({"customer_id": customer_id, "items": [{k: v for k, v in r.items() if k != "customer_id"} for r in _items(mine)]})


@router.get("/feeds/recommendations", summary="All consenting customers' recommendations, paginated (by customer, then rank)")
def feed(limit: Limit = 100, offset: Offset = 0, kind: Literal["new", "replenish"] | None = None, db: Database = Depends(database),
         _: Principal = Depends(MARKETING)):
    table = _table()
    with db.read() as s:
        consenting = list(s.scalars(select(Customer.id).where(Customer.marketing_consent.is_(True))))
    table = table.filter(pc.is_in(table["customer_id"], value_set=pa.array(consenting, type=table.schema.field("customer_id").type)))
    if kind is not None:
        table = table.filter(pc.equal(table["kind"], kind))
    table = table.sort_by([("customer_id", "ascending"), ("rank", "ascending")]).slice(offset, limit)
    return ok(page(_items(table), limit, offset))
