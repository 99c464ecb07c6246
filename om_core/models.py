"""The core's tables. Quantities are integers (units), money is Numeric/Decimal, time is UTC.

Stock on hand is a projection of the append-only `stock_movements` ledger; reservations are rows
tied to order lines (never a counter), so what is promised can always be re-derived.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from om_core.clock import utcnow
from om_core.db import UTCDateTime

Money = Numeric(14, 2)
Rate = Numeric(8, 5)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), Decimal: Money, dict[str, Any]: JSON}


def _now() -> datetime:
    return utcnow()


# --- catalog and network -----------------------------------------------------------------


class Supplier(Base):
    __tablename__ = "suppliers"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    lead_time_days: Mapped[Decimal] = mapped_column(Numeric(6, 2), default=Decimal("7"))
    lead_time_std_days: Mapped[Decimal] = mapped_column(Numeric(6, 2), default=Decimal("0"))
    created_at: Mapped[datetime] = mapped_column(default=_now)


class Product(Base):
    """A sellable SKU. Lead time defaults to the supplier's unless set here."""

    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(120), index=True)
    brand: Mapped[str | None] = mapped_column(String(120))
    price: Mapped[Decimal] = mapped_column(Money)
    cost: Mapped[Decimal] = mapped_column(Money)
    tax_class: Mapped[str] = mapped_column(String(32), default="standard")
    size: Mapped[str | None] = mapped_column(String(32))
    colour: Mapped[str | None] = mapped_column(String(32))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pack_size: Mapped[int] = mapped_column(Integer, default=1)
    min_order_qty: Mapped[int] = mapped_column(Integer, default=1)
    weight_kg: Mapped[Decimal] = mapped_column(Numeric(10, 3), default=Decimal("0.5"))
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("suppliers.id"))
    lead_time_days: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    lead_time_std_days: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    returnable: Mapped[bool] = mapped_column(Boolean, default=True)
    backorder_policy: Mapped[str] = mapped_column(String(16), default="deny")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)

    supplier: Mapped[Supplier | None] = relationship()
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_non_negative"),
        CheckConstraint("pack_size >= 1", name="pack_size_positive"),
        CheckConstraint("backorder_policy in ('deny', 'allow')", name="backorder_policy"),
    )


class Location(Base):
    """A warehouse, a store or a dropship supplier, and what it can do for online orders."""

    __tablename__ = "locations"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    address_line1: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(120))
    region: Mapped[str | None] = mapped_column(String(64))
    postal_code: Mapped[str | None] = mapped_column(String(16))
    country: Mapped[str] = mapped_column(String(2), default="US")
    can_ship: Mapped[bool] = mapped_column(Boolean, default=True)
    can_pickup: Mapped[bool] = mapped_column(Boolean, default=False)
    can_ship_from_store: Mapped[bool] = mapped_column(Boolean, default=False)
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("suppliers.id"))
    daily_capacity: Mapped[int | None] = mapped_column(Integer)
    cutoff_hour_utc: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    __table_args__ = (CheckConstraint("kind in ('warehouse', 'store', 'dropship')", name="kind"),)


class Channel(Base):
    __tablename__ = "channels"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    prices_include_tax: Mapped[bool] = mapped_column(Boolean, default=False)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    routing_strategy: Mapped[str] = mapped_column(String(32), default="nearest_with_stock", server_default="nearest_with_stock")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    __table_args__ = (CheckConstraint("kind in ('web', 'app', 'pos', 'marketplace')", name="kind"),)


class ChannelLocation(Base):
    """Which locations' stock a channel may sell, in preference order (lower priority first)."""

    __tablename__ = "channel_locations"
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"), primary_key=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), primary_key=True)
    priority: Mapped[int] = mapped_column(Integer, default=100)


# --- inventory ----------------------------------------------------------------------------


class Stock(Base):
    """On hand of one SKU at one location: the ledger's running total, locked before it changes."""

    __tablename__ = "stock"
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (
        UniqueConstraint("product_id", "location_id"),
        CheckConstraint("on_hand >= 0", name="on_hand_non_negative"),
    )


class Reservation(Base):
    """Units of one stock row promised to one order line. Released or fulfilled rows stay as history."""

    __tablename__ = "reservations"
    id: Mapped[int] = mapped_column(primary_key=True)
    stock_id: Mapped[int] = mapped_column(ForeignKey("stock.id"))
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=_now)
    closed_at: Mapped[datetime | None]
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("status in ('active', 'released', 'fulfilled')", name="status"),
        Index("ix_reservations_stock_status", "stock_id", "status"),
    )


class StockMovement(Base):
    """Append-only ledger. `quantity` changes on hand; `reserved_change` changes what is promised."""

    __tablename__ = "stock_movements"
    id: Mapped[int] = mapped_column(primary_key=True)
    stock_id: Mapped[int] = mapped_column(ForeignKey("stock.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    reserved_change: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(String(200))
    reference: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(default=_now, index=True)
    __table_args__ = (
        CheckConstraint(
            "kind in ('receipt', 'sale', 'reservation', 'reservation_release', 'adjustment', "
            "'transfer_out', 'transfer_in', 'return', 'write_off')",
            name="kind",
        ),
    )


class Transfer(Base):
    __tablename__ = "transfers"
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    from_location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    to_location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(200))
    actor: Mapped[str | None] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(default=_now)


class PurchaseOrder(Base):
    __tablename__ = "purchase_orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    status: Mapped[str] = mapped_column(String(24), default="draft")
    expected_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    sent_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    lines: Mapped[list[PurchaseOrderLine]] = relationship(
        back_populates="purchase_order", order_by="PurchaseOrderLine.id", cascade="all, delete-orphan"
    )
    __table_args__ = (
        CheckConstraint(
            "status in ('draft', 'sent', 'partially_received', 'received', 'cancelled')", name="status"
        ),
    )


class PurchaseOrderLine(Base):
    __tablename__ = "purchase_order_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_order_id: Mapped[int] = mapped_column(ForeignKey("purchase_orders.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity_ordered: Mapped[int] = mapped_column(Integer)
    quantity_received: Mapped[int] = mapped_column(Integer, default=0)
    unit_cost: Mapped[Decimal] = mapped_column(Money)
    purchase_order: Mapped[PurchaseOrder] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship(lazy="joined")
    __table_args__ = (CheckConstraint("quantity_ordered > 0", name="quantity_positive"),)


# --- customers ----------------------------------------------------------------------------


class Customer(Base):
    """Contact data for transactional messages; marketing consent is a separate, explicit flag."""

    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    external_ref: Mapped[str | None] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(120))
    last_name: Mapped[str | None] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(32))
    marketing_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    marketing_consent_at: Mapped[datetime | None]
    segment: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    addresses: Mapped[list[Address]] = relationship(
        back_populates="customer", order_by="Address.id", cascade="all, delete-orphan"
    )


class Address(Base):
    __tablename__ = "addresses"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    line1: Mapped[str] = mapped_column(String(200))
    line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(120))
    region: Mapped[str | None] = mapped_column(String(64))
    postal_code: Mapped[str] = mapped_column(String(16))
    country: Mapped[str] = mapped_column(String(2))
    is_default: Mapped[bool] = mapped_column(Boolean, default=True)
    customer: Mapped[Customer] = relationship(back_populates="addresses")


# --- pricing rules ------------------------------------------------------------------------


class TaxRate(Base):
    """Rate by destination country (and optionally region) and product tax class."""

    __tablename__ = "tax_rates"
    id: Mapped[int] = mapped_column(primary_key=True)
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str] = mapped_column(String(64), default="")
    tax_class: Mapped[str] = mapped_column(String(32))
    rate: Mapped[Decimal] = mapped_column(Rate)
    __table_args__ = (UniqueConstraint("country", "region", "tax_class"),)


class ShippingMethod(Base):
    """A delivery service with its price rule: flat, base + per kg, free above a threshold."""

    __tablename__ = "shipping_methods"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    service_level: Mapped[str] = mapped_column(String(16))
    base_price: Mapped[Decimal] = mapped_column(Money)
    price_per_kg: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    free_over: Mapped[Decimal | None] = mapped_column(Money)
    promised_days: Mapped[int] = mapped_column(Integer)
    countries: Mapped[list[str] | None] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    __table_args__ = (
        CheckConstraint("service_level in ('standard', 'expedited', 'overnight', 'pickup')", name="service_level"),
    )


class Promotion(Base):
    """A discount rule. Line rules apply by priority; a non-stackable rule excludes others on its lines."""

    __tablename__ = "promotions"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    coupon_code: Mapped[str | None] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(16))
    target: Mapped[str | None] = mapped_column(String(120))
    value: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    buy_quantity: Mapped[int | None] = mapped_column(Integer)
    get_quantity: Mapped[int | None] = mapped_column(Integer)
    min_subtotal: Mapped[Decimal | None] = mapped_column(Money)
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    usage_limit_total: Mapped[int | None] = mapped_column(Integer)
    usage_limit_per_customer: Mapped[int | None] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    stackable: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    __table_args__ = (
        CheckConstraint("kind in ('percentage', 'fixed', 'buy_x_get_y')", name="kind"),
        CheckConstraint("scope in ('order', 'sku', 'category')", name="scope"),
    )


class PromotionRedemption(Base):
    __tablename__ = "promotion_redemptions"
    id: Mapped[int] = mapped_column(primary_key=True)
    promotion_id: Mapped[int] = mapped_column(ForeignKey("promotions.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    amount: Mapped[Decimal] = mapped_column(Money)
    voided: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(default=_now)


# --- orders -------------------------------------------------------------------------------


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    external_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(24), default="placed", index=True)
    hold: Mapped[bool] = mapped_column(Boolean, default=False)
    currency: Mapped[str] = mapped_column(String(3))
    prices_include_tax: Mapped[bool] = mapped_column(Boolean)
    delivery_method: Mapped[str] = mapped_column(String(16))
    shipping_method_id: Mapped[int | None] = mapped_column(ForeignKey("shipping_methods.id"))
    pickup_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    ship_from_store_allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    ship_name: Mapped[str | None] = mapped_column(String(200))
    ship_line1: Mapped[str | None] = mapped_column(String(200))
    ship_line2: Mapped[str | None] = mapped_column(String(200))
    ship_city: Mapped[str | None] = mapped_column(String(120))
    ship_region: Mapped[str | None] = mapped_column(String(64))
    ship_postal_code: Mapped[str | None] = mapped_column(String(16))
    ship_country: Mapped[str | None] = mapped_column(String(2))
    email: Mapped[str | None] = mapped_column(String(254))
    coupon_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    subtotal: Mapped[Decimal] = mapped_column(Money)
    discount_total: Mapped[Decimal] = mapped_column(Money)
    shipping_total: Mapped[Decimal] = mapped_column(Money)
    tax_total: Mapped[Decimal] = mapped_column(Money)
    total: Mapped[Decimal] = mapped_column(Money)
    promised_delivery_days: Mapped[int | None] = mapped_column(Integer)
    ship_latitude: Mapped[float | None]
    ship_longitude: Mapped[float | None]
    routing_reason: Mapped[str | None] = mapped_column(Text)
    fulfilment_started_at: Mapped[datetime | None]
    placed_at: Mapped[datetime] = mapped_column(default=_now, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=_now)
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.line_no", cascade="all, delete-orphan"
    )
    channel: Mapped[Channel] = relationship(lazy="joined")
    __table_args__ = (CheckConstraint("delivery_method in ('ship', 'pickup', 'carry_out')", name="delivery"),)


class OrderLine(Base):
    """Quantities by fate; the order's status is derived from them."""

    __tablename__ = "order_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[int] = mapped_column(Integer)
    quantity_cancelled: Mapped[int] = mapped_column(Integer, default=0)
    quantity_fulfilled: Mapped[int] = mapped_column(Integer, default=0)
    quantity_returned: Mapped[int] = mapped_column(Integer, default=0)
    quantity_delivered: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    quantity_backordered: Mapped[int] = mapped_column(Integer, default=0)
    unit_price: Mapped[Decimal] = mapped_column(Money)
    discount_total: Mapped[Decimal] = mapped_column(Money)
    tax_rate: Mapped[Decimal] = mapped_column(Rate)
    tax_amount: Mapped[Decimal] = mapped_column(Money)
    line_total: Mapped[Decimal] = mapped_column(Money)
    order: Mapped[Order] = relationship(back_populates="lines")
    discounts: Mapped[list[LineDiscount]] = relationship(order_by="LineDiscount.id", cascade="all, delete-orphan")
    reservations: Mapped[list[Reservation]] = relationship(order_by="Reservation.id")
    __table_args__ = (
        UniqueConstraint("order_id", "line_no"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "quantity_cancelled + quantity_fulfilled <= quantity AND quantity_delivered <= quantity_fulfilled "
            "AND quantity_returned <= quantity_fulfilled",
            name="quantities_consistent",
        ),
    )


class LineDiscount(Base):
    __tablename__ = "line_discounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"), index=True)
    promotion_id: Mapped[int] = mapped_column(ForeignKey("promotions.id"))
    amount: Mapped[Decimal] = mapped_column(Money)
    description: Mapped[str] = mapped_column(String(300))


class Payment(Base):
    """The customer's payment instrument for an order: a gateway token, never a card number."""

    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    gateway: Mapped[str] = mapped_column(String(32))
    token: Mapped[str] = mapped_column(String(128))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    transactions: Mapped[list[PaymentTransaction]] = relationship(
        order_by="PaymentTransaction.id", back_populates="payment"
    )


class PaymentTransaction(Base):
    """Ledger row of one gateway operation; a payment's balances are sums over these."""

    __tablename__ = "payment_transactions"
    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16))
    gateway_reference: Mapped[str | None] = mapped_column(String(128))
    parent_reference: Mapped[str | None] = mapped_column(String(128))
    message: Mapped[str | None] = mapped_column(String(300))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(default=_now)
    payment: Mapped[Payment] = relationship(back_populates="transactions")
    __table_args__ = (
        CheckConstraint("kind in ('authorize', 'capture', 'void', 'refund')", name="kind"),
        CheckConstraint("status in ('succeeded', 'declined', 'failed')", name="status"),
        CheckConstraint("amount >= 0", name="amount_non_negative"),
    )


class OrderEvent(Base):
    """The audit trail: every state change of an order, who or which channel made it, and when."""

    __tablename__ = "order_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(48))
    actor: Mapped[str | None] = mapped_column(String(120))
    channel: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(default=_now)


class IdempotencyKey(Base):
    """A remembered request: the same key and body returns the stored result, a new body is refused."""

    __tablename__ = "idempotency_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(48))
    key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    __table_args__ = (UniqueConstraint("scope", "key"),)


# --- fulfilment -----------------------------------------------------------------------------


class Shipment(Base):
    """What leaves one location for one order: a parcel to an address, or a pickup at the counter.

    pending -> packed -> dispatched -> in_transit -> out_for_delivery -> delivered, with `exception`
    possible on the way; pickups go pending -> ready_for_pickup -> collected (or expired).
    """

    __tablename__ = "shipments"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24), default="pending", index=True)
    carrier: Mapped[str | None] = mapped_column(String(32))
    service_level: Mapped[str] = mapped_column(String(16))
    tracking_number: Mapped[str | None] = mapped_column(String(64), unique=True)
    label_path: Mapped[str | None] = mapped_column(String(500))
    weight_kg: Mapped[Decimal | None] = mapped_column(Numeric(10, 3))
    shipping_cost: Mapped[Decimal | None] = mapped_column(Money)
    promised_at: Mapped[datetime | None]
    estimated_at: Mapped[datetime | None]
    delayed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    packed_at: Mapped[datetime | None]
    dispatched_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    ready_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    lines: Mapped[list[ShipmentLine]] = relationship(order_by="ShipmentLine.id", cascade="all, delete-orphan")
    packages: Mapped[list[Package]] = relationship(order_by="Package.id", cascade="all, delete-orphan")
    events: Mapped[list[TrackingEvent]] = relationship(order_by="TrackingEvent.at", cascade="all, delete-orphan")
    __table_args__ = (
        CheckConstraint("kind in ('ship', 'pickup', 'dropship')", name="kind"),
        CheckConstraint(
            "status in ('pending', 'packed', 'dispatched', 'in_transit', 'out_for_delivery', 'delivered', "
            "'exception', 'ready_for_pickup', 'collected', 'expired', 'cancelled')",
            name="status",
        ),
    )


class ShipmentLine(Base):
    __tablename__ = "shipment_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)


class Package(Base):
    __tablename__ = "packages"
    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id"), index=True)
    weight_kg: Mapped[Decimal] = mapped_column(Numeric(10, 3))
    length_cm: Mapped[Decimal] = mapped_column(Numeric(8, 1))
    width_cm: Mapped[Decimal] = mapped_column(Numeric(8, 1))
    height_cm: Mapped[Decimal] = mapped_column(Numeric(8, 1))


class TrackingEvent(Base):
    """A carrier scan. `carrier_event_id` makes ingestion idempotent: the same scan twice is one row."""

    __tablename__ = "tracking_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime]
    location_text: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(300))
    carrier_event_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(default=_now)
    __table_args__ = (
        UniqueConstraint("shipment_id", "carrier_event_id"),
        CheckConstraint(
            "kind in ('label_created', 'picked_up', 'in_transit', 'out_for_delivery', 'delivered', 'exception')", name="kind"
        ),
    )


# --- returns and feedback -------------------------------------------------------------------


class ReturnRequest(Base):
    """A return (RMA): opened, received and inspected, refunded. Receiving and refunding are independent."""

    __tablename__ = "returns"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    reason_code: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    opened_by: Mapped[str | None] = mapped_column(String(120))
    opened_at: Mapped[datetime] = mapped_column(default=_now)
    received_at: Mapped[datetime | None]
    received_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    refund_amount: Mapped[Decimal | None] = mapped_column(Money)
    refunded_at: Mapped[datetime | None]
    exchange_order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    lines: Mapped[list[ReturnLine]] = relationship(order_by="ReturnLine.id", cascade="all, delete-orphan")
    __table_args__ = (CheckConstraint("status in ('open', 'received', 'refunded', 'closed', 'cancelled')", name="status"),)


class ReturnLine(Base):
    __tablename__ = "return_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("returns.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    reason_code: Mapped[str] = mapped_column(String(32))
    condition: Mapped[str | None] = mapped_column(String(16))
    refund_amount: Mapped[Decimal | None] = mapped_column(Money)
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("condition is null or condition in ('resellable', 'damaged', 'wrong_item')", name="condition"),
    )


class Feedback(Base):
    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    rating: Mapped[int] = mapped_column(Integer)
    would_recommend: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    __table_args__ = (
        CheckConstraint("rating between 1 and 5", name="rating"),
        CheckConstraint("would_recommend is null or would_recommend between 0 and 10", name="nps"),
    )


# --- customer communication -----------------------------------------------------------------


class OutboxMessage(Base):
    """A message to send, written in the same transaction as the business event that causes it.

    The dispatcher claims pending rows, delivers them and marks them sent; `dedupe_key` makes the
    same business event produce one message at most, and a crash between delivery and marking is
    covered by a deterministic Message-ID the mail system de-duplicates on.
    """

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(48))
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    marketing: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=_now)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    sent_at: Mapped[datetime | None]
    __table_args__ = (
        CheckConstraint("status in ('pending', 'sending', 'sent', 'failed', 'dead')", name="status"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
    )


# --- HTTP API and integrations ----------------------------------------------------------------


class ApiKey(Base):
    """A key for the HTTP API: only its prefix (the id shown in lists) and the SHA-256 of the whole key
    are kept, so a leaked database does not leak working keys. A channel key is bound to one channel,
    a store_ops key to its locations (codes)."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(24), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id"))
    locations: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    revoked_at: Mapped[datetime | None]
    __table_args__ = (
        CheckConstraint("role in ('channel', 'store_ops', 'merchandiser', 'manager', 'marketing', 'admin')", name="role"),
    )


class WebhookSubscription(Base):
    """An ERP/CRM endpoint and the event types it wants. The secret signs each delivery (HMAC-SHA256)."""

    __tablename__ = "webhook_subscriptions"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(128))
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    removed_at: Mapped[datetime | None]


class WebhookDelivery(Base):
    """The delivery log: one row per attempt to deliver one outbox message to one subscription."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id"), index=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), index=True)
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(48))
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[datetime] = mapped_column(default=_now)
    __table_args__ = (CheckConstraint("outcome in ('delivered', 'failed', 'dead')", name="outcome"),)
