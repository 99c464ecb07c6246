"""Typed errors: every refusal names what was wrong so a channel can show it or fix the request."""

from __future__ import annotations

from typing import Any


class StoreOMError(Exception):
    """Base of every business error. `code` is stable for integrations; `details` is JSON-safe."""

    code = "storeom_error"
    http_status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **({"details": self.details} if self.details else {})}


class ValidationError(StoreOMError):
    """Input that can never succeed as sent. `errors` lists (field, reason) pairs."""

    code = "validation_error"
    http_status = 422

    def __init__(self, message: str, errors: list[dict[str, str]] | None = None, **details: Any) -> None:
        super().__init__(message, errors=errors or [], **details)
        self.errors = errors or []


class NotFound(StoreOMError):
    code = "not_found"
    http_status = 404


class UnknownProduct(NotFound):
    code = "unknown_sku"


class UnknownLocation(NotFound):
    code = "unknown_location"


class UnknownChannel(NotFound):
    code = "unknown_channel"


class UnknownCustomer(NotFound):
    code = "unknown_customer"


class UnknownSupplier(NotFound):
    code = "unknown_supplier"


class UnknownOrder(NotFound):
    code = "unknown_order"


class UnknownPurchaseOrder(NotFound):
    code = "unknown_purchase_order"


class UnknownShippingMethod(NotFound):
    code = "unknown_shipping_method"


class Conflict(StoreOMError):
    code = "conflict"
    http_status = 409


class AlreadyExists(Conflict):
    code = "already_exists"


class InsufficientStock(Conflict):
    """One error for the whole order: every short SKU with what is available and the alternatives."""

    code = "insufficient_stock"

    def __init__(self, shortages: list[dict[str, Any]]) -> None:
        skus = ", ".join(f"{s['sku']} (requested {s['requested']}, available {s['available']})" for s in shortages)
        super().__init__(f"Not enough stock for: {skus}", shortages=shortages)
        self.shortages = shortages


class PriceMismatch(Conflict):
    code = "price_mismatch"


class CouponError(StoreOMError):
    code = "coupon_invalid"
    http_status = 422


class PromotionLimitReached(Conflict):
    code = "promotion_limit_reached"


class PaymentDeclined(StoreOMError):
    code = "payment_declined"
    http_status = 402


class PaymentError(Conflict):
    code = "payment_error"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class ModificationNotAllowed(Conflict):
    code = "modification_not_allowed"


class StockError(Conflict):
    code = "stock_error"
