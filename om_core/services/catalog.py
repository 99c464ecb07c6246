"""Suppliers and products (SKUs)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from om_core.db import read_rows
from om_core.errors import AlreadyExists, UnknownProduct, UnknownSupplier, ValidationError
from om_core.models import Product, Supplier
from om_core.validation import Amount, Code, Input, parse


class SupplierIn(Input):
    code: Code
    name: str = Field(min_length=1, max_length=200)
    email: str | None = None
    lead_time_days: Decimal = Field(default=Decimal("7"), ge=0, le=365)
    lead_time_std_days: Decimal = Field(default=Decimal("0"), ge=0, le=365)


class ProductIn(Input):
    sku: Code
    name: str = Field(min_length=1, max_length=300)
    category: str = Field(min_length=1, max_length=120)
    price: Amount
    cost: Amount
    description: str | None = None
    brand: str | None = None
    tax_class: str = Field(default="standard", min_length=1, max_length=32)
    size: str | None = None
    colour: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    pack_size: int = Field(default=1, ge=1, le=10_000)
    min_order_qty: int = Field(default=1, ge=1, le=1_000_000)
    weight_kg: Decimal = Field(default=Decimal("0.5"), ge=0, le=10_000)
    supplier: str | None = None
    lead_time_days: Decimal | None = Field(default=None, ge=0, le=365)
    lead_time_std_days: Decimal | None = Field(default=None, ge=0, le=365)
    returnable: bool = True
    backorder_policy: Literal["deny", "allow"] = "deny"
    active: bool = True


class ProductUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=300)
    category: str | None = Field(default=None, min_length=1, max_length=120)
    price: Amount | None = None
    cost: Amount | None = None
    description: str | None = None
    tax_class: str | None = None
    attributes: dict[str, Any] | None = None
    pack_size: int | None = Field(default=None, ge=1, le=10_000)
    min_order_qty: int | None = Field(default=None, ge=1)
    weight_kg: Decimal | None = Field(default=None, ge=0)
    returnable: bool | None = None
    backorder_policy: Literal["deny", "allow"] | None = None
    active: bool | None = None


_PRODUCTS_BY_SKU = select(Product.__table__).where(Product.sku.in_(bindparam("skus", expanding=True)))


NULLABLE_PRODUCT_FIELDS = frozenset({"description"})


def create_supplier(session: Session, data: SupplierIn | dict[str, Any]) -> Supplier:
    data = parse(SupplierIn, data)
    if session.scalar(select(Supplier.id).where(Supplier.code == data.code)) is not None:
        raise AlreadyExists(f"Supplier {data.code} already exists", code_value=data.code)
    supplier = Supplier(**data.model_dump())
    session.add(supplier)
    session.flush()
    return supplier


def get_supplier(session: Session, code: str) -> Supplier:
    supplier = session.scalar(select(Supplier).where(Supplier.code == code))
    if supplier is None:
        raise UnknownSupplier(f"Unknown supplier {code!r}", supplier=code)
    return supplier


def create_product(session: Session, data: ProductIn | dict[str, Any]) -> Product:
    data = parse(ProductIn, data)
    if session.scalar(select(Product.id).where(Product.sku == data.sku)) is not None:
        raise AlreadyExists(f"SKU {data.sku} already exists", sku=data.sku)
    fields = data.model_dump(exclude={"supplier"})
    supplier = get_supplier(session, data.supplier) if data.supplier else None
    product = Product(**fields, supplier_id=supplier.id if supplier else None)
    session.add(product)
    session.flush()
    return product


def update_product(session: Session, sku: str, data: ProductUpdate | dict[str, Any]) -> Product:
    data = parse(ProductUpdate, data)
    changes = data.model_dump(exclude_unset=True)
    cleared = sorted(f for f, v in changes.items() if v is None and f not in NULLABLE_PRODUCT_FIELDS)
    if cleared:
        raise ValidationError(
            f"These product fields cannot be emptied: {', '.join(cleared)}",
            errors=[{"field": f, "reason": "may not be null"} for f in cleared],
        )
    product = get_product(session, sku)
    for field, value in changes.items():
        setattr(product, field, value)
    session.flush()
    return product


def get_product(session: Session, sku: str) -> Product:
    product = session.scalar(select(Product).where(Product.sku == sku))
    if product is None:
        raise UnknownProduct(f"Unknown SKU {sku!r}", sku=sku)
    return product


def products_by_sku(session: Session, skus: list[str], *, rows: bool = False) -> dict[str, Product]:
    """Fetch many SKUs at once; raises naming every unknown one. With `rows`, read-only rows (faster)."""
    wanted = set(skus)
    if rows:
        found = {p.sku: p for p in read_rows(session, _PRODUCTS_BY_SKU, {"skus": list(wanted)})}
    else:
        found = {p.sku: p for p in session.scalars(select(Product).where(Product.sku.in_(wanted)))}
    missing = sorted(wanted - found.keys())
    if missing:
        raise UnknownProduct(f"Unknown SKU(s): {', '.join(missing)}", skus=missing)
    return found


def list_products(
    session: Session, *, category: str | None = None, active: bool | None = None, limit: int = 100, offset: int = 0
) -> list[Product]:
    stmt = select(Product).order_by(Product.sku).limit(limit).offset(offset)
    if category is not None:
        stmt = stmt.where(Product.category == category)
    if active is not None:
        stmt = stmt.where(Product.active == active)
    return list(session.scalars(stmt))


def lead_time(product: Product) -> tuple[Decimal, Decimal]:
    """(mean, standard deviation) of the supplier lead time in days: the SKU's own, else its supplier's."""
    supplier = product.supplier
    mean = product.lead_time_days if product.lead_time_days is not None else (supplier.lead_time_days if supplier else Decimal(7))
    std = (
        product.lead_time_std_days
        if product.lead_time_std_days is not None
        else (supplier.lead_time_std_days if supplier else Decimal(0))
    )
    return Decimal(mean), Decimal(std)
