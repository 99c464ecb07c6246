"""Exports for ERP/BI: what happened in a date range (orders, order lines, shipments, returns, stock
movements) and the current master data (products, locations, stock, customers) as CSV or Parquet.

Master data, and `order_history` (order lines), come out in the importer's canonical columns
(om_core.services.importing.SPECS), so an export can be imported again elsewhere as it is. History is filtered on each row's own time: orders
and their lines on `placed_at`, shipments on `created_at`, returns on `opened_at`, movements on `at`;
the range is whole UTC days, `start` to `end` inclusive. CSV has ISO 8601 UTC timestamps and money
as plain decimals; Parquet keeps the types (decimal money, UTC timestamps).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Select, String, and_, cast, func, select
from sqlalchemy.orm import Session, aliased

from om_core.errors import ValidationError
from om_core.models import (
    Address,
    Channel,
    Customer,
    Location,
    Order,
    OrderLine,
    Product,
    ReturnLine,
    ReturnRequest,
    Shipment,
    Stock,
    StockMovement,
    Supplier,
)

HISTORY = ("orders", "order_lines", "order_history", "shipments", "returns", "stock_movements")
MASTER_DATA = ("products", "locations", "stock", "customers")
DATASETS = HISTORY + MASTER_DATA
Dataset = Literal["orders", "order_lines", "order_history", "shipments", "returns", "stock_movements", "products", "locations", "stock", "customers"]
Format = Literal["csv", "parquet"]
MAX_DAYS = 3_660


def _orders(start: datetime, end: datetime) -> Select[Any]:
    return (select(Order.number.label("order_number"), Channel.code.label("channel"), Order.customer_id, Order.external_ref,
                   Order.status, Order.currency, Order.delivery_method, Order.subtotal, Order.discount_total, Order.shipping_total,
                   Order.tax_total, Order.total, Order.ship_country, Order.ship_region, Order.ship_postal_code, Order.placed_at,
                   Order.updated_at)
            .join(Channel, Channel.id == Order.channel_id)
            .where(Order.placed_at >= start, Order.placed_at < end).order_by(Order.placed_at, Order.id))


def _order_lines(start: datetime, end: datetime) -> Select[Any]:
    return (select(Order.number.label("order_number"), OrderLine.line_no, OrderLine.sku, OrderLine.name, OrderLine.quantity,
                   OrderLine.quantity_cancelled, OrderLine.quantity_fulfilled, OrderLine.quantity_delivered,
                   OrderLine.quantity_returned, OrderLine.quantity_backordered, OrderLine.unit_price, OrderLine.discount_total,
                   OrderLine.tax_rate, OrderLine.tax_amount, OrderLine.line_total, Order.placed_at)
            .join(Order, Order.id == OrderLine.order_id)
            .where(Order.placed_at >= start, Order.placed_at < end).order_by(Order.placed_at, Order.id, OrderLine.line_no))


def _shipments(start: datetime, end: datetime) -> Select[Any]:
    return (select(Shipment.number.label("shipment_number"), Order.number.label("order_number"), Location.code.label("location"),
                   Shipment.kind, Shipment.status, Shipment.carrier, Shipment.service_level, Shipment.tracking_number,
                   Shipment.weight_kg, Shipment.shipping_cost, Shipment.delayed, Shipment.created_at, Shipment.packed_at,
                   Shipment.dispatched_at, Shipment.promised_at, Shipment.delivered_at)
            .join(Order, Order.id == Shipment.order_id).join(Location, Location.id == Shipment.location_id)
            .where(Shipment.created_at >= start, Shipment.created_at < end).order_by(Shipment.created_at, Shipment.id))


def _returns(start: datetime, end: datetime) -> Select[Any]:
    received_at = aliased(Location)
    return (select(ReturnRequest.number.label("return_number"), Order.number.label("order_number"), ReturnRequest.status,
                   OrderLine.line_no, OrderLine.sku, ReturnLine.quantity, ReturnLine.reason_code, ReturnLine.condition,
                   ReturnLine.refund_amount, received_at.code.label("received_location"), ReturnRequest.opened_at,
                   ReturnRequest.received_at, ReturnRequest.refunded_at)
            .join(ReturnLine, ReturnLine.return_id == ReturnRequest.id).join(OrderLine, OrderLine.id == ReturnLine.order_line_id)
            .join(Order, Order.id == ReturnRequest.order_id)
            .outerjoin(received_at, received_at.id == ReturnRequest.received_location_id)
            .where(ReturnRequest.opened_at >= start, ReturnRequest.opened_at < end)
            .order_by(ReturnRequest.opened_at, ReturnRequest.id, ReturnLine.id))


def _stock_movements(start: datetime, end: datetime) -> Select[Any]:
    return (select(StockMovement.id.label("movement_id"), Product.sku, Location.code.label("location"), StockMovement.kind,
                   StockMovement.quantity, StockMovement.reserved_change, StockMovement.reason, StockMovement.reference,
                   StockMovement.actor, StockMovement.at)
            .join(Stock, Stock.id == StockMovement.stock_id).join(Product, Product.id == Stock.product_id)
            .join(Location, Location.id == Stock.location_id)
            .where(StockMovement.at >= start, StockMovement.at < end).order_by(StockMovement.at, StockMovement.id))


def _order_history(start: datetime, end: datetime) -> Select[Any]:
    """Order lines in the importer's `orders` columns, so history moves between systems: one row per line
    with the units not cancelled; the customer is their external reference, else their id."""
    pickup = aliased(Location)
    sold = OrderLine.quantity - OrderLine.quantity_cancelled
    return (select(Order.number.label("order_id"), OrderLine.sku, sold.label("quantity"), OrderLine.unit_price,
                   OrderLine.discount_total.label("discount"), Order.placed_at.label("ordered_at"),
                   func.coalesce(Customer.external_ref, cast(Customer.id, String)).label("customer_id"),
                   OrderLine.name.label("description"), pickup.code.label("location"), Channel.code.label("channel"),
                   Order.ship_country.label("country"))
            .join(Order, Order.id == OrderLine.order_id).join(Channel, Channel.id == Order.channel_id)
            .outerjoin(Customer, Customer.id == Order.customer_id)
            .outerjoin(pickup, (pickup.id == Order.pickup_location_id) & (Order.delivery_method == "carry_out"))
            .where(Order.placed_at >= start, Order.placed_at < end, sold > 0)
            .order_by(Order.placed_at, Order.id, OrderLine.line_no))


def _products() -> Select[Any]:
    return (select(Product.sku, Product.name, Product.category, Product.price, Product.cost, Product.description, Product.brand,
                   Product.tax_class, Product.size, Product.colour, Product.pack_size, Product.min_order_qty, Product.weight_kg,
                   Supplier.code.label("supplier"), Product.returnable, Product.backorder_policy, Product.active)
            .outerjoin(Supplier, Supplier.id == Product.supplier_id).order_by(Product.sku))


def _locations() -> Select[Any]:
    return (select(Location.code, Location.kind, Location.name, Location.latitude, Location.longitude, Location.address_line1,
                   Location.city, Location.region, Location.postal_code, Location.country, Location.can_ship, Location.can_pickup,
                   Location.can_ship_from_store, Supplier.code.label("supplier"), Location.daily_capacity, Location.cutoff_hour_utc,
                   Location.active)
            .outerjoin(Supplier, Supplier.id == Location.supplier_id).order_by(Location.code))


def _stock() -> Select[Any]:
    return (select(Product.sku, Location.code.label("location"), Stock.on_hand.label("quantity"))
            .join(Product, Product.id == Stock.product_id).join(Location, Location.id == Stock.location_id)
            .order_by(Product.sku, Location.code))


def _customers() -> Select[Any]:
    return (select(Customer.external_ref.label("customer_id"), Customer.email, Customer.first_name, Customer.last_name, Customer.phone,
                   Customer.marketing_consent, Customer.segment, Address.line1, Address.line2, Address.city, Address.region,
                   Address.postal_code, Address.country)
            .outerjoin(Address, and_(Address.customer_id == Customer.id, Address.is_default.is_(True)))
            .order_by(Customer.id))


_HISTORY_QUERIES: dict[str, Callable[[datetime, datetime], Select[Any]]] = {
    "orders": _orders, "order_lines": _order_lines, "order_history": _order_history, "shipments": _shipments, "returns": _returns, "stock_movements": _stock_movements,
}
_MASTER_QUERIES: dict[str, Callable[[], Select[Any]]] = {
    "products": _products, "locations": _locations, "stock": _stock, "customers": _customers,
}


def day_range(start: date | None, end: date | None) -> tuple[datetime, datetime]:
    """[start 00:00 UTC, the day after end 00:00 UTC); both are required for history."""
    errors = []
    if start is None:
        errors.append({"field": "start", "reason": "required for this dataset"})
    if end is None:
        errors.append({"field": "end", "reason": "required for this dataset"})
    if not errors and end < start:  # type: ignore[operator]
        errors.append({"field": "end", "reason": "before start"})
    if not errors and (end - start).days > MAX_DAYS:  # type: ignore[operator]
        errors.append({"field": "end", "reason": f"the range is over {MAX_DAYS} days"})
    if errors:
        raise ValidationError("Invalid date range: " + "; ".join(f"{e['field']}: {e['reason']}" for e in errors), errors=errors)
    return datetime.combine(start, time(), UTC), datetime.combine(end + timedelta(days=1), time(), UTC)  # type: ignore[operator]


def rows(session: Session, dataset: str, start: date | None = None, end: date | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(columns, rows) of `dataset`; history datasets need the date range."""
    if dataset in _HISTORY_QUERIES:
        stmt = _HISTORY_QUERIES[dataset](*day_range(start, end))
    elif dataset in _MASTER_QUERIES:
        stmt = _MASTER_QUERIES[dataset]()
    else:
        raise ValidationError(f"Unknown export {dataset!r}; one of {', '.join(DATASETS)}",
                              errors=[{"field": "dataset", "reason": f"one of {', '.join(DATASETS)}"}])
    result = session.execute(stmt)
    return list(result.keys()), [tuple(r) for r in result]


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def to_csv(columns: list[str], data: list[tuple[Any, ...]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_csv_value(v) for v in row] for row in data)
    return out.getvalue().encode()


def to_parquet(columns: list[str], data: list[tuple[Any, ...]]) -> bytes:
    arrays = []
    for i in range(len(columns)):
        values = [row[i] for row in data]
        sample = next((v for v in values if v is not None), None)
        if isinstance(sample, datetime):
            arrays.append(pa.array([v.astimezone(UTC) if v else None for v in values], type=pa.timestamp("us", tz="UTC")))
        elif sample is None:
            arrays.append(pa.array(values, type=pa.string()))
        else:
            arrays.append(pa.array(values))
    sink = io.BytesIO()
    pq.write_table(pa.table(arrays, names=columns), sink)
    return sink.getvalue()


def export(session: Session, dataset: str, fmt: str = "csv", *, start: date | None = None, end: date | None = None) -> bytes:
    columns, data = rows(session, dataset, start, end)
    if fmt == "csv":
        return to_csv(columns, data)
    if fmt == "parquet":
        return to_parquet(columns, data)
    raise ValidationError(f"Unknown format {fmt!r}; csv or parquet", errors=[{"field": "format", "reason": "csv or parquet"}])


__all__ = ["DATASETS", "HISTORY", "MASTER_DATA", "day_range", "export", "rows", "to_csv", "to_parquet"]
