"""Customers. Personal data (email, names, phone, addresses) goes only to the roles that need it:
channels (checkout), managers and admins; marketing sees it only for customers who consented."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import Field, ValidationInfo, field_validator
from sqlalchemy import select

from om_core.api.routers._common import Id, PERSONAL_DATA_ROLES, Limit, Offset, allow, database, ok, page, write
from om_core.clock import utcnow
from om_core.db import Database
from om_core.models import Customer
from om_core.services import customers
from om_core.services.apikeys import Principal
from om_core.validation import Input

router = APIRouter(tags=["customers"])

WRITERS = allow("channel", "manager")
READERS = allow("channel", "manager", "marketing")


class CustomerUpdate(Input):
    first_name: str | None = Field(default=None, max_length=120)
    last_name: str | None = Field(default=None, max_length=120)
    phone: str | None = None
    marketing_consent: bool | None = None
    segment: str | None = Field(default=None, max_length=32)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None, info: ValidationInfo) -> str | None:
        return customers.normalize_phone(value) if value else value


def customer_view(c: Customer, principal: Principal) -> dict[str, Any]:
    view: dict[str, Any] = {"id": c.id, "external_ref": c.external_ref, "segment": c.segment, "marketing_consent": c.marketing_consent,
                            "created_at": c.created_at}
    if principal.role in PERSONAL_DATA_ROLES or (principal.role == "marketing" and c.marketing_consent):
        view |= {"email": c.email, "first_name": c.first_name, "last_name": c.last_name, "phone": c.phone,
                 "addresses": [{k: getattr(a, k) for k in ("name", "line1", "line2", "city", "region", "postal_code", "country", "is_default")}
                               for a in c.addresses]}
    return view


@router.post("/customers", status_code=201, summary="Create a customer")
def create_customer(body: customers.CustomerIn, db: Database = Depends(database), who: Principal = Depends(WRITERS)):
    with write(db) as s:
        view = customer_view(customers.create_customer(s, body), who)
    return ok(view, 201)


@router.get("/customers/{customer_id}", summary="Read a customer")
def get_customer(customer_id: Id, db: Database = Depends(database), who: Principal = Depends(READERS)):
    with db.read() as s:
        return ok(customer_view(customers.get_customer(s, customer_id), who))


@router.patch("/customers/{customer_id}", summary="Update a customer (names, phone, consent, segment)")
def update_customer(customer_id: Id, body: CustomerUpdate, db: Database = Depends(database), who: Principal = Depends(WRITERS)):
    with write(db) as s:
        c = customers.get_customer(s, customer_id)
        for name, value in body.model_dump(exclude_unset=True).items():
            if name == "marketing_consent":
                if value is not None and value != c.marketing_consent:
                    c.marketing_consent, c.marketing_consent_at = value, utcnow()
            elif value is not None:
                setattr(c, name, value)
        s.flush()
        view = customer_view(c, who)
    return ok(view)


@router.get("/customers", summary="List customers")
def list_customers(limit: Limit = 50, offset: Offset = 0, segment: str | None = Query(None, max_length=32),
                   marketing_consent: bool | None = None, email: str | None = Query(None, max_length=254),
                   external_ref: str | None = Query(None, max_length=64),
                   db: Database = Depends(database), who: Principal = Depends(allow("manager", "marketing"))):
    with db.read() as s:
        stmt = select(Customer).order_by(Customer.id).limit(limit).offset(offset)
        if segment is not None:
            stmt = stmt.where(Customer.segment == segment)
        if marketing_consent is not None:
            stmt = stmt.where(Customer.marketing_consent == marketing_consent)
        if email is not None:
            stmt = stmt.where(Customer.email == email.strip().lower())
            if who.role == "marketing":
                stmt = stmt.where(Customer.marketing_consent.is_(True))
        if external_ref is not None:
            stmt = stmt.where(Customer.external_ref == external_ref)
        return ok(page([customer_view(c, who) for c in s.scalars(stmt)], limit, offset))
