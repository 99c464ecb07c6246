"""Staging assets: the core's tables as of the as-of day, cleaned and joined (group `staging`)."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from pipelines.common import OWNERS, definition_metadata, output
from pipelines.defs.staging import logic as L
from pipelines.resources import StoreDatabase

GROUP = "staging"
KINDS = {"python", "pandas", "parquet"}

ORDERS_COLUMNS = {
    "order_id": "Core order id", "order_number": "Order number (SO-..., H-... for imports)",
    "channel": "Sales channel code", "channel_kind": "web, app, pos or marketplace", "customer_id": "Customer id (null: anonymous)",
    "status": "Order status now (not as of)", "delivery_method": "ship, pickup or carry_out",
    "pickup_location": "Store code for pickup/carry-out orders", "shipping_method": "Shipping method code",
    "promised_delivery_days": "Days promised at checkout", "subtotal": "Goods before discounts (currency)",
    "discount_total": "Discounts (currency)", "shipping_total": "Shipping charged (currency)", "tax_total": "Tax (currency)",
    "total": "Order total (currency)", "placed_at": "When the order was placed (UTC)", "order_date": "Day placed (UTC)",
}
LINES_COLUMNS = {
    "line_id": "Order line id", "order_id": "Order id", "line_no": "Line number in the order", "product_id": "Product id",
    "sku": "SKU on the line", "sku_known": "The line's product exists in the catalog", "category": "Product category",
    "location": "Location serving the line (first shipment's, else the pickup store; null when unknown)",
    "channel": "Sales channel code", "customer_id": "Customer id", "placed_at": "Order placed (UTC; null if the order is missing)",
    "order_date": "Day placed", "quantity": "Units ordered", "quantity_cancelled": "Units cancelled (now)",
    "quantity_fulfilled": "Units shipped/handed over by the as-of day", "quantity_returned": "Units on returns opened by the as-of day",
    "quantity_backordered": "Units backordered (now)", "units": "Units sold = quantity - quantity_cancelled",
    "unit_price": "Unit price (currency)", "unit_cost": "Product cost per unit (currency)", "discount_total": "Line discounts (currency)",
    "tax_amount": "Tax on the line (currency)", "line_total": "Line total as recorded (currency)",
    "revenue": "line_total, 0 for a fully cancelled line (currency)", "net_revenue": "revenue less tax (currency)",
    "cogs": "units x unit_cost (currency)",
}
PAYMENTS_COLUMNS = {
    "transaction_id": "Payment transaction id", "payment_id": "Payment id", "order_id": "Order id", "gateway": "Gateway",
    "currency": "Currency", "kind": "authorize, capture, void or refund", "status": "succeeded, declined or failed",
    "amount": "Amount (currency)", "at": "When (UTC)",
}
SHIPMENTS_COLUMNS = {
    "shipment_id": "Shipment id", "shipment_number": "Shipment number", "order_id": "Order id", "location": "Shipping location code",
    "kind": "ship, pickup or dropship", "carrier": "Carrier code", "service_level": "Service level", "units": "Units in the shipment",
    "shipping_cost": "Carrier cost (currency)", "promised_at": "Promised delivery (UTC)", "created_at": "Created (UTC)",
    "packed_at": "Packed (UTC, by as-of)", "dispatched_at": "Dispatched (UTC, by as-of)", "delivered_at": "Delivered/collected (UTC, by as-of)",
    "ready_at": "Ready for pickup (UTC, by as-of)", "tracking_events": "Tracking events by as-of",
    "first_scan_at": "First carrier scan (UTC)", "exceptions": "Exception scans by as-of",
    "status": "Status as of the as-of day (from the timestamps)", "on_time": "Delivered by the promise (null: not delivered or no promise)",
    "delayed": "Exception scan, delivered late, or in transit past the promise",
}
RETURNS_COLUMNS = {
    "return_line_id": "Return line id", "return_id": "Return id", "return_number": "RMA number", "order_id": "Order id",
    "order_line_id": "Order line id", "sku": "SKU", "category": "Category", "quantity": "Units returned",
    "reason_code": "Reason", "condition": "resellable, damaged, wrong_item or null (not inspected)",
    "disposition": "restock (resellable), write_off (damaged/wrong item) or pending", "refund_amount": "Refund for the line (currency)",
    "status": "Status as of the as-of day", "opened_at": "Opened (UTC)", "received_at": "Received (UTC, by as-of)",
    "refunded_at": "Refunded (UTC, by as-of)", "received_location": "Location that received it", "unit_price": "Unit price",
    "unit_cost": "Unit cost",
}
SNAPSHOT_COLUMNS = {
    "day": "Day (UTC)", "sku": "SKU", "category": "Category", "location": "Location code",
    "on_hand": "Closing units on hand (ledger running total)", "reserved": "Closing units reserved",
    "available": "on_hand - reserved", "units_in": "Units received/transferred in/returned/adjusted up that day",
    "units_shipped": "Units leaving by sale that day", "units_other_out": "Other units out (transfers, write-offs, adjustments)",
    "unit_cost": "Cost per unit (current)", "unit_price": "Price per unit (current)",
    "inventory_value": "max(on_hand,0) x unit_cost (currency)", "stockout": "on_hand <= 0 at close",
}
PO_COLUMNS = {
    "po_id": "Purchase order id", "po_number": "PO number", "supplier": "Supplier code", "location": "Receiving location",
    "status": "draft, sent, closed or cancelled as of the as-of day", "created_at": "Created (UTC)", "sent_at": "Sent (UTC, by as-of)",
    "expected_at": "Expected (UTC)", "closed_at": "Closed (UTC, by as-of)", "sku": "SKU", "quantity_ordered": "Units ordered",
    "quantity_received": "Units received (now)", "unit_cost": "Cost per unit (currency)",
}
CUSTOMERS_COLUMNS = {
    "customer_id": "Customer id", "external_ref": "External reference", "core_segment": "Segment set in the core",
    "marketing_consent": "Opted in to marketing", "created_at": "Created (UTC)", "first_order_at": "First order (UTC)",
    "last_order_at": "Latest order by as-of (UTC)", "orders": "Orders by as-of (not cancelled)", "revenue": "Sum of order totals (currency)",
}
FEEDBACK_COLUMNS = {
    "feedback_id": "Feedback id", "order_id": "Order id", "customer_id": "Customer id", "channel": "Order's channel",
    "rating": "Rating 1-5", "would_recommend": "0-10 likelihood to recommend", "created_at": "Given (UTC)",
}


def _asset(name: str, columns: dict[str, str], **kwargs):  # type: ignore[no-untyped-def]
    return dg.asset(name=name, group_name=GROUP, kinds=KINDS, owners=OWNERS, metadata=definition_metadata(columns), **kwargs)


@_asset("stg_orders", ORDERS_COLUMNS)
def stg_orders(store_db: StoreDatabase) -> dg.Output:
    """Orders placed up to the as-of day, with channel, delivery and money columns."""
    cutoff = store_db.cutoff()
    return output(L.clean_orders(store_db.query(L.SQL_ORDERS, {"cutoff": cutoff})), ORDERS_COLUMNS, as_of=store_db.as_of_date())


@_asset("stg_order_lines", LINES_COLUMNS)
def stg_order_lines(store_db: StoreDatabase) -> dg.Output:
    """Order lines up to the as-of day with category, cost, serving location and units sold, fulfilled and returned."""
    cutoff = store_db.cutoff()
    p = {"cutoff": cutoff}
    df = L.clean_order_lines(store_db.query(L.SQL_LINES, p), store_db.query(L.SQL_SHIPMENT_LINES, p),
                             L.clean_returns(store_db.query(L.SQL_RETURN_LINES, p), cutoff), store_db.query(L.SQL_LOCATIONS), cutoff)
    return output(df, LINES_COLUMNS, as_of=store_db.as_of_date())


@_asset("stg_payments", PAYMENTS_COLUMNS)
def stg_payments(store_db: StoreDatabase) -> dg.Output:
    """Payment transactions (authorize, capture, void, refund) up to the as-of day."""
    return output(L.clean_payments(store_db.query(L.SQL_PAYMENTS, {"cutoff": store_db.cutoff()})), PAYMENTS_COLUMNS,
                  as_of=store_db.as_of_date())


@_asset("stg_shipments", SHIPMENTS_COLUMNS)
def stg_shipments(store_db: StoreDatabase) -> dg.Output:
    """Shipments and pickups with their tracking events summarised, as they stood on the as-of day."""
    cutoff = store_db.cutoff()
    p = {"cutoff": cutoff}
    df = L.clean_shipments(store_db.query(L.SQL_SHIPMENTS, p), store_db.query(L.SQL_TRACKING, p),
                           store_db.query(L.SQL_SHIPMENT_LINES, p), cutoff)
    return output(df, SHIPMENTS_COLUMNS, as_of=store_db.as_of_date())


@_asset("stg_returns", RETURNS_COLUMNS)
def stg_returns(store_db: StoreDatabase) -> dg.Output:
    """Return lines opened up to the as-of day, with reason, condition, disposition and refund."""
    cutoff = store_db.cutoff()
    return output(L.clean_returns(store_db.query(L.SQL_RETURN_LINES, {"cutoff": cutoff}), cutoff), RETURNS_COLUMNS,
                  as_of=store_db.as_of_date())


@_asset("stg_inventory_snapshots", SNAPSHOT_COLUMNS)
def stg_inventory_snapshots(store_db: StoreDatabase) -> dg.Output:
    """Closing stock per day per SKU x location, rebuilt from the stock movement ledger up to the as-of day."""
    df = L.inventory_snapshots(store_db.query(L.SQL_MOVEMENTS, {"cutoff": store_db.cutoff()}), store_db.as_of_date())
    return output(df, SNAPSHOT_COLUMNS, as_of=store_db.as_of_date())


@_asset("stg_purchase_orders", PO_COLUMNS)
def stg_purchase_orders(store_db: StoreDatabase) -> dg.Output:
    """Purchase order lines created up to the as-of day, with their status as of that day."""
    cutoff = store_db.cutoff()
    return output(L.clean_purchase_orders(store_db.query(L.SQL_PURCHASE_ORDERS, {"cutoff": cutoff}), cutoff), PO_COLUMNS,
                  as_of=store_db.as_of_date())


@_asset("stg_customers", CUSTOMERS_COLUMNS)
def stg_customers(store_db: StoreDatabase, stg_orders: pd.DataFrame) -> dg.Output:
    """Customers known by the as-of day with first/last order, order count and spend."""
    return output(L.clean_customers(store_db.query(L.SQL_CUSTOMERS), stg_orders, store_db.cutoff()), CUSTOMERS_COLUMNS,
                  as_of=store_db.as_of_date())


@_asset("stg_feedback", FEEDBACK_COLUMNS)
def stg_feedback(store_db: StoreDatabase) -> dg.Output:
    """Customer ratings (1-5) and likelihood to recommend (0-10) given up to the as-of day."""
    return output(L.clean_feedback(store_db.query(L.SQL_FEEDBACK, {"cutoff": store_db.cutoff()})), FEEDBACK_COLUMNS,
                  as_of=store_db.as_of_date())
