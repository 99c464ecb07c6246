"""Batched order placement and fulfilment: the same rules as one order at a time, for thousands.

`place_orders` validates, allocates, routes and prices every request with the same `build_draft` as
`orders.place_order`, reading catalog, customers, stock and promotions once for the whole batch and
keeping availability and promotion use in step as drafts are taken, then writes all of them with
the same batched writer. `ship_orders` and `deliver_shipments` take orders through shipment and
delivery in a few statements per batch. The simulator and large imports of live orders use these;
one request never sees a different rule than a single placement would apply.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session, make_transient_to_detached

from om_core.clock import utcnow
from om_core.db import IN_LIST_SIZE, insert_with_ids, on_rollback, read_rows, read_rows_in, write_rows
from om_core.errors import (
    AlreadyExists,
    Conflict,
    IdempotencyConflict,
    InvalidTransition,
    ModificationNotAllowed,
    PaymentDeclined,
    PaymentError,
    StockError,
    StoreOMError,
    UnknownCustomer,
    UnknownLocation,
    UnknownOrder,
    UnknownProduct,
    UnknownPurchaseOrder,
    UnknownSupplier,
    ValidationError,
)
from om_core.models import (
    Address,
    Channel,
    ChannelLocation,
    Customer,
    Feedback,
    IdempotencyKey,
    Location,
    Order,
    OrderLine,
    Payment,
    PaymentTransaction,
    Product,
    Promotion,
    PromotionRedemption,
    PurchaseOrder,
    PurchaseOrderLine,
    Reservation,
    ReturnLine,
    ReturnRequest,
    Shipment,
    ShipmentLine,
    ShippingMethod,
    Stock,
    StockMovement,
    Supplier,
    TaxRate,
    TrackingEvent,
    Transfer,
)
from om_core.money import to_money
from om_core.services import idempotency, inventory, notifications, numbering, payments, webhooks
from om_core.services.catalog import _PRODUCTS_BY_SKU, ProductIn
from om_core.services.customers import AddressIn, CustomerIn, customers_with_addresses
from om_core.services.events import record_events
from om_core.services.feedback import FeedbackIn
from om_core.services.fulfilment import CARRIERS, STATUS_FOR_EVENT, TRACKING_PROGRESS, TrackingEventIn, UnknownShipment
from om_core.services.inventory import ReceiptIn, TransferIn
from om_core.services.orders import (
    MANUAL_TRANSITIONS,
    Lookups,
    OrderIn,
    _new_number,
    _record_orders,
    build_draft,
    fill_backorders,
    status_from,
)
from om_core.services.promotions import _ACTIVE, normalize_codes, select_promotions
from om_core.services.purchasing import PurchaseOrderIn, ReceiptLineIn, receipt_lines
from om_core.services.returns import (
    InspectionIn,
    ReturnIn,
    UnknownReturn,
    check_return_lines,
    refund_amount,
)
from om_core.services.taxes import TaxTable
from om_core.validation import parse


@dataclass
class BulkOrder:
    request: dict[str, Any] | OrderIn
    placed_at: datetime
    idempotency_key: str | None = None


@dataclass
class BulkResult:
    number: str | None
    error: StoreOMError | None = None


_LOCATIONS = select(Location.__table__)
_ACTIVE_DURING = _ACTIVE.where(or_(Promotion.starts_at.is_(None), Promotion.starts_at <= bindparam("last")),
                               or_(Promotion.ends_at.is_(None), Promotion.ends_at > bindparam("first")))
_CHANNELS_BY_CODE = select(Channel.__table__).where(Channel.code.in_(bindparam("codes", expanding=True)))
_CHANNELS_LOCATIONS = (  # `locations.channel_locations` for many channels: active locations in preference order
    select(Location.__table__, ChannelLocation.channel_id)
    .join(ChannelLocation, ChannelLocation.location_id == Location.id)
    .where(ChannelLocation.channel_id.in_(bindparam("ids", expanding=True)), Location.active.is_(True))
    .order_by(ChannelLocation.channel_id, ChannelLocation.priority, Location.id)
)
_TAX_RATES = select(TaxRate.__table__)
_USES = (
    select(PromotionRedemption.promotion_id, func.count())
    .where(PromotionRedemption.promotion_id.in_(bindparam("ids", expanding=True)), PromotionRedemption.voided.is_(False))
    .group_by(PromotionRedemption.promotion_id)
)
_USES_BY = (
    select(PromotionRedemption.promotion_id, PromotionRedemption.customer_id, func.count())
    .where(PromotionRedemption.promotion_id.in_(bindparam("promos", expanding=True)),
           PromotionRedemption.customer_id.in_(bindparam("customers", expanding=True)), PromotionRedemption.voided.is_(False))
    .group_by(PromotionRedemption.promotion_id, PromotionRedemption.customer_id)
)


class _RatesRead(TaxTable):
    """A `TaxTable` from the rates a batch read once (the same choice: the country's rates, the
    region's overriding them). `rows`: the country's rates, its own (region "") first."""

    def __init__(self, rows: list[Any], region: str | None) -> None:
        self._rates: dict[str, Decimal] = {}
        wanted = ("", (region or "").upper())
        for row in rows:
            if row.region in wanted:
                self._rates[row.tax_class] = Decimal(row.rate)


class BatchLookups(Lookups):
    """Reads each thing once for a whole batch; stock and promotion use move as drafts are taken."""

    def __init__(self, session: Session, requests: list[OrderIn], window: tuple[datetime, datetime] | None = None) -> None:
        super().__init__(session)
        skus = sorted({l.sku for r in requests for l in r.lines})
        self._products = {p.sku: p for p in read_rows(session, _PRODUCTS_BY_SKU, {"skus": skus})} if skus else {}
        ids = sorted({r.customer_id for r in requests if r.customer_id is not None})
        self._customers = customers_with_addresses(session, ids) if ids else {}
        codes = sorted({r.channel for r in requests})
        self._channels: dict[str, Any] = {c.code: c for c in read_rows(session, _CHANNELS_BY_CODE, {"codes": codes})} if codes else {}
        self._channel_locations: dict[int, list[Any]] = {c.id: [] for c in self._channels.values()}
        if self._channels:
            for row in read_rows(session, _CHANNELS_LOCATIONS, {"ids": sorted(self._channel_locations)}):
                self._channel_locations[row.channel_id].append(row)
        self._locations: dict[str, Any] = {l.code: l for l in read_rows(session, _LOCATIONS)}
        self._location_ids = {l.id for l in self._locations.values()}
        self._methods = {m.code: m for m in read_rows(session, select(ShippingMethod.__table__).where(ShippingMethod.active.is_(True)))}
        self._taxes: dict[tuple[str, str | None], TaxTable] = {}
        self._tax_rates: dict[str, list[Any]] = defaultdict(list)
        for row in sorted(read_rows(session, _TAX_RATES), key=lambda r: r.region != ""):
            self._tax_rates[row.country].append(row)
        self._stocks: dict[tuple[int, int], Any] | None = None
        self._available: dict[tuple[int, int], int] = {}
        if window is not None:  # only what can apply during the batch: a long calendar is mostly past or future
            first, last = window
            self._promotions = read_rows(session, _ACTIVE_DURING, {"first": first, "last": last})
        else:
            self._promotions = read_rows(session, _ACTIVE)
        limited = [p.id for p in self._promotions if p.usage_limit_total or p.usage_limit_per_customer]
        self._limited = [p for p in self._promotions if p.usage_limit_per_customer]
        self._used_total: dict[int, int] = defaultdict(int)
        self._used_by: dict[tuple[int, int], int] = defaultdict(int)
        if limited:
            for promo_id, count in read_rows(session, _USES, {"ids": limited}):
                self._used_total[promo_id] += count
            per_customer = [p.id for p in self._limited]
            if per_customer and ids:  # only the batch's customers can use theirs up
                for promo_id, customer_id, count in read_rows(session, _USES_BY, {"promos": per_customer, "customers": ids}):
                    self._used_by[(promo_id, customer_id)] += count
        self._product_ids = {p.id for p in self._products.values()}

    def channel(self, code: str) -> Any:
        found = self._channels.get(code)
        if found is None or not found.active:
            return super().channel(code)  # raises the usual error
        return found

    def customer(self, customer_id: int) -> tuple[Any, AddressIn | None]:
        try:
            return self._customers[customer_id]
        except KeyError:
            raise UnknownCustomer(f"Unknown customer {customer_id}", customer_id=customer_id) from None

    def products(self, skus: list[str]) -> dict[str, Any]:
        missing = sorted(set(skus) - self._products.keys())
        if missing:
            raise UnknownProduct(f"Unknown SKU(s): {', '.join(missing)}", skus=missing)
        return {s: self._products[s] for s in skus}

    def channel_locations(self, channel: Any) -> list[Any]:
        if channel.id not in self._channel_locations:
            self._channel_locations[channel.id] = super().channel_locations(channel)
        return self._channel_locations[channel.id]

    def location(self, code: str) -> Any:
        if code not in self._locations:
            self._locations[code] = super().location(code)
        return self._locations[code]

    def shipping_method(self, code: str) -> Any:
        if code not in self._methods:
            return super().shipping_method(code)  # raises the usual error
        return self._methods[code]

    def taxes(self, country: str, region: str | None) -> TaxTable:
        key = (country, region)
        if key not in self._taxes:
            self._taxes[key] = _RatesRead(self._tax_rates.get(country, []), region)
        return self._taxes[key]

    def stock(self, product_ids: set[int], location_ids: set[int], *, lock: bool, before_allocation: Any) -> tuple[dict, dict]:
        if self._stocks is None:  # lock every stock row the batch can touch, once, in id order
            self._stocks, self._available = super().stock(self._product_ids, self._location_ids, lock=lock, before_allocation=None)
        return self._stocks, self._available

    def promotions(self, *, coupon_codes: list[str], customer_id: int | None, at: datetime, lock: bool, exclude_order: int | None) -> list[Any]:
        mine = {p.id: self._used_by.get((p.id, customer_id), 0) for p in self._limited} if customer_id is not None else {}
        return select_promotions(self._promotions, codes=normalize_codes(coupon_codes), customer_id=customer_id, at=at,
                                 used_total=self._used_total, used_by_customer=mine)

    def alternatives(self, channel: Any, product: Any, requested: int, candidate_ids: set[int]) -> dict[str, Any]:
        return {"backorder": product.backorder_policy == "allow", "other_locations": [], "similar_skus": []}

    def take(self, draft: Any, customer_id: int | None) -> None:
        """A draft was accepted: its units are no longer available, its promotions were used once more."""
        for d in draft.lines:
            for location, qty in d.allocations:
                self._available[(d.product.id, location.id)] -= qty
        for promo in draft.promotions:
            self._used_total[promo.id] += 1
            if customer_id is not None:
                self._used_by[(promo.id, customer_id)] += 1


Refused = Callable[[int, StoreOMError], "dict[str, Any] | OrderIn | None"]


def place_orders(session: Session, batch: list[BulkOrder], *, actor: str | None = None, notify: bool = False,
                 on_refused: Refused | None = None) -> list[BulkResult]:
    """Place many orders in the caller's transaction. Each result is the order number or the error
    that request got, as if the requests were placed one by one with `orders.place_order` in that
    order: a request that is short, invalid or whose card is declined writes nothing for itself (its
    stock and promotion use stay free for the requests after it); the others still go through.

    `on_refused(index, error)`: the customer's answer to a refusal of request `index` (e.g. fewer
    units, or waiting for a backorder after `InsufficientStock`): a new request, placed at once (as if
    right after the refused one, at the same `placed_at`), or None to give up. The result is then the
    answer's. Requests with an idempotency key get no second try.

    The payment of each order is authorized right after its draft, before anything is written; a
    till sale is handed over, and its payment captured, at its own `placed_at`."""
    results: list[BulkResult] = [BulkResult(None) for _ in batch]
    parsed: list[tuple[int, OrderIn]] = []
    for i, item in enumerate(batch):
        try:
            req = parse(OrderIn, item.request)
            if req.payment_token is not None:
                payments.check_token(req.payment_token)
            parsed.append((i, req))
        except StoreOMError as exc:
            results[i].error = exc
    times = [item.placed_at for item in batch]
    look = BatchLookups(session, [r for _, r in parsed], window=(min(times), max(times)) if times else None)
    entries, placed_index, digests, numbers = [], [], {}, []
    authorized: dict[int, tuple[Decimal, Any]] = {}  # entry index -> (amount, gateway result)
    holds: list[tuple[Any, str, Decimal, str]] = []
    on_rollback(session, lambda: [gw.void(ref, amount, why) for gw, ref, amount, why in holds])  # type: ignore[func-returns-value]
    next_number = numbering.NumberPool(session, Order.number, _new_number, len(parsed))
    for i, req in parsed:
        item = batch[i]
        placed = _draft_and_authorize(session, look, i, req, item, results, digests, holds, on_refused, next_number)
        if placed is None:
            continue
        req, draft, number, auth = placed
        if auth is not None:
            authorized[len(entries)] = auth
        look.take(draft, req.customer_id)
        entries.append((req, draft, item.placed_at))
        placed_index.append(i)
        numbers.append(number)
    if not entries:
        return results
    return _write_placed(session, batch, results, entries, placed_index, numbers, digests, authorized, actor=actor, notify=notify)


def _draft_and_authorize(session: Session, look: BatchLookups, i: int, req: OrderIn, item: BulkOrder, results: list[BulkResult],
                         digests: dict[int, str], holds: list[tuple[Any, str, Decimal, str]], on_refused: Refused | None,
                         next_number: Callable[[], str]) -> tuple[OrderIn, Any, str, tuple[Decimal, Any] | None] | None:
    """Draft request `i` and authorize its payment (trying the customer's answers to a refusal); the
    request, draft, order number and authorization, or None when it ends refused or remembered."""
    while True:
        try:
            if item.idempotency_key is not None:
                digest = idempotency.request_hash(req)
                remembered = idempotency.recall(session, "order.place", item.idempotency_key, digest)
                if remembered is not None:
                    results[i].number = remembered["order_number"]
                    return None
                digests[i] = digest
            draft = build_draft(session, req, lock=True, at=item.placed_at, lookups=look)
            if draft.total > 0 and req.payment_token is None:
                raise ValidationError("A payment token is required for an order with a total above zero",
                                      errors=[{"field": "payment_token", "reason": "required"}])
            number = next_number()
            auth = None
            if req.payment_token is not None:
                gw = payments.get_gateway(req.gateway)
                amount = to_money(draft.total)
                if amount > 0:
                    result = gw.authorize(req.payment_token, amount, draft.channel.currency, f"{number}:auth:0")
                    if not result.approved:
                        raise PaymentDeclined(f"Payment declined: {result.message}", order=number, amount=str(amount))
                    holds.append((gw, result.reference, amount, f"{number}:compensate"))
                    auth = (amount, result)
            return req, draft, number, auth
        except StoreOMError as exc:
            answer = on_refused(i, exc) if on_refused is not None and item.idempotency_key is None else None
            if answer is None:
                results[i].error = exc
                return None
            try:
                answered = parse(OrderIn, answer)
                if answered.customer_id != req.customer_id or {l.sku for l in answered.lines} - {l.sku for l in req.lines}:
                    raise ValidationError("An answer to a refusal keeps the customer and only drops or reduces lines",
                                          errors=[{"field": "lines", "reason": "not in the refused request"}])
                if answered.payment_token is not None:
                    payments.check_token(answered.payment_token)
            except StoreOMError as bad:
                results[i].error = bad
                return None
            req = answered


def _write_placed(session: Session, batch: list[BulkOrder], results: list[BulkResult], entries: list[tuple[OrderIn, Any, datetime]],
                  placed_index: list[int], numbers: list[str], digests: dict[int, str], authorized: dict[int, tuple[Decimal, Any]],
                  *, actor: str | None, notify: bool) -> list[BulkResult]:
    """Write the accepted drafts: orders, payments, till hand-overs, idempotency records, confirmations."""
    events: list[dict[str, Any]] = []
    placed = _record_orders(session, entries, actor=actor, event="order_placed", adopt=False, numbers=numbers, events=events)
    _record_payments(session, placed, entries, authorized, actor=actor, events=events)
    record_events(session, events)
    carry_out = {o.id: e[2] for o, e in zip(placed, entries) if e[0].delivery == "carry_out"}
    if carry_out:  # till sales: handed over, i.e. fulfilled and delivered, when they were rung up
        ids = list(carry_out)
        _hand_over_all(session, ids, at=carry_out, actor=actor, refresh=False)  # delivered at once: one status refresh below
        session.execute(update(OrderLine).where(OrderLine.order_id.in_(ids)).values(quantity_delivered=OrderLine.quantity_fulfilled))
        _refresh_statuses(session, ids, carry_out)
    for i, order in zip(placed_index, placed):
        results[i].number = order.number
        if i in digests:
            idempotency.remember(session, "order.place", batch[i].idempotency_key, digests[i], {"order_number": order.number})
    if notify:
        for record, (_, draft, _) in zip(placed, entries):
            order = Order(**vars(record))
            make_transient_to_detached(order)  # already inserted: attach it, do not insert it again
            session.add(order)
            notifications.notify_order(session, order, "order_confirmed", customer=draft.customer,
                                       lines=[{"sku": d.product.sku, "name": d.product.name, "quantity": d.line.quantity} for d in draft.lines])
    return results


def _record_payments(session: Session, placed: list[Any], entries: list[tuple[OrderIn, Any, datetime]],
                     authorized: dict[int, tuple[Decimal, Any]], *, actor: str | None, events: list[dict[str, Any]]) -> None:
    """What `payments.authorize_new` writes, for authorizations already given: a payment per order
    with a token, an 'authorize' transaction and event per approved hold, each at its order's time.
    The events are added to `events`, for the caller to record with the orders' own (one insert)."""
    with_token = [(k, o, e) for k, (o, e) in enumerate(zip(placed, entries)) if e[0].payment_token]
    if not with_token:
        return
    rows = write_rows(session, payments._INSERT_PAYMENT, [
        dict(order_id=o.id, gateway=e[0].gateway, token=e[0].payment_token, currency=o.currency, created_at=e[2]) for _, o, e in with_token
    ])
    payment_ids = {order_id: payment_id for payment_id, order_id in rows}
    approved = [(o, e[2], *authorized[k]) for k, o, e in with_token if k in authorized]
    if not approved:
        return
    write_rows(session, payments._INSERT_TRANSACTION, [
        dict(payment_id=payment_ids[o.id], kind="authorize", amount=amount, status="succeeded", gateway_reference=r.reference,
             parent_reference=None, message=None, idempotency_key=None, at=at)
        for o, at, amount, r in approved
    ])
    events += [
        dict(order_id=o.id, kind="payment_authorized", actor=actor, channel=None, data={"amount": str(amount)}, at=at)
        for o, at, amount, _ in approved
    ]


# --- handing goods over: reservations become sales, payments are captured -------------------------

_ACTIVE_RESERVATIONS = (
    select(Reservation.id, Reservation.stock_id, Reservation.quantity, OrderLine.order_id, OrderLine.id.label("line_id"),
           Stock.product_id, Stock.location_id, Order.number.label("order_number"))
    .join(OrderLine, OrderLine.id == Reservation.order_line_id)
    .join(Stock, Stock.id == Reservation.stock_id)
    .join(Order, Order.id == OrderLine.order_id)
    .where(OrderLine.order_id.in_(bindparam("order_ids", expanding=True)), Reservation.status == "active")
)
_FULFIL_RESERVATIONS = (
    update(Reservation.__table__).where(Reservation.id == bindparam("rid")).values(status="fulfilled", closed_at=bindparam("now"))
)
_START_FULFILMENT = (
    update(Order.__table__).where(Order.id == bindparam("oid"), Order.fulfilment_started_at.is_(None))
    .values(fulfilment_started_at=bindparam("now"))
)
_FULFIL_RESERVATIONS_IN = (
    update(Reservation.__table__).where(Reservation.id.in_(bindparam("ids", expanding=True)))
    .values(status="fulfilled", closed_at=bindparam("now"))
)
_START_FULFILMENT_IN = (
    update(Order.__table__).where(Order.id.in_(bindparam("ids", expanding=True)), Order.fulfilment_started_at.is_(None))
    .values(fulfilment_started_at=bindparam("now"))
)
_SHARED_MOMENT = 50  # rows at one moment from which one `IN (...)` update costs less than a row-by-row executemany
_TAKE_OFF_SHELF = update(Stock.__table__).where(Stock.id == bindparam("sid")).values(on_hand=Stock.on_hand - bindparam("units"))
_INSERT_MOVEMENTS = insert(StockMovement.__table__)
_LINE_FULFILLED = (
    update(OrderLine.__table__).where(OrderLine.id == bindparam("lid"))
    .values(quantity_fulfilled=OrderLine.quantity_fulfilled + bindparam("units"))
)
_LINE_DELIVERED = (
    update(OrderLine.__table__).where(OrderLine.id == bindparam("lid"))
    .values(quantity_delivered=OrderLine.quantity_delivered + bindparam("units"))
)
_OPEN_AUTHORIZATIONS = (
    select(Payment.id, Payment.order_id, Payment.gateway, Order.number, PaymentTransaction.kind, PaymentTransaction.amount,
           PaymentTransaction.gateway_reference, PaymentTransaction.parent_reference, PaymentTransaction.status)
    .join(Order, Order.id == Payment.order_id)
    .join(PaymentTransaction, PaymentTransaction.payment_id == Payment.id)
    .where(Payment.order_id.in_(bindparam("order_ids", expanding=True)))
    .order_by(PaymentTransaction.id)
)
_INSERT_TRANSACTIONS = insert(PaymentTransaction.__table__)
_LINE_TOTALS = (
    select(OrderLine.order_id, func.sum(OrderLine.quantity - OrderLine.quantity_cancelled), func.sum(OrderLine.quantity_fulfilled),
           func.sum(OrderLine.quantity_delivered), func.sum(OrderLine.quantity_returned), func.sum(OrderLine.quantity_backordered), Order.hold)
    .join(Order, Order.id == OrderLine.order_id)
    .where(OrderLine.order_id.in_(bindparam("order_ids", expanding=True)))
    .group_by(OrderLine.order_id, Order.hold)
)
_SET_STATUS = update(Order.__table__).where(Order.id == bindparam("oid")).values(status=bindparam("status"), updated_at=bindparam("now"))
_SET_STATUS_IN = (
    update(Order.__table__).where(Order.id.in_(bindparam("ids", expanding=True))).values(status=bindparam("status"), updated_at=bindparam("now"))
)


def _when(at: datetime | dict[int, datetime] | None, order_id: int) -> datetime:
    """The moment for one order: the same for all (`at`, or now) or each order's own."""
    if isinstance(at, dict):
        return at[order_id]
    return at or utcnow()


def _update_at(session: Session, by_id: Any, by_ids: Any, key: str, moments: list[tuple[int, datetime]], **also: list[Any]) -> None:
    """The same update for each (id, moment) (and the id's values in `also`): ids sharing their values
    (a shipping run) in `IN (...)` statements (`by_ids`), the others (till sales, each at its own
    moment) in one executemany (`by_id`)."""
    names = ["now", *also]
    shared: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for k, (row_id, moment) in enumerate(moments):
        shared[(moment, *(values[k] for values in also.values()))].append(row_id)
    one_by_one = []
    for values, ids in shared.items():
        params = dict(zip(names, values))
        if len(ids) < _SHARED_MOMENT:
            one_by_one += [{key: row_id, **params} for row_id in ids]
            continue
        for i in range(0, len(ids), IN_LIST_SIZE):
            write_rows(session, by_ids, {"ids": ids[i:i + IN_LIST_SIZE], **params})
    if one_by_one:
        write_rows(session, by_id, one_by_one)


def _hand_over_all(session: Session, order_ids: list[int], *, at: datetime | dict[int, datetime] | None, actor: str | None,
                   location_filter: dict[int, set[int]] | None = None, refresh: bool = True) -> dict[int, dict[int, int]]:
    """Every active reservation of these orders (optionally only at given locations per order) becomes
    a sale: reservation rows fulfilled, 'sale' ledger rows, on hand down, lines fulfilled; then the
    open authorizations are captured and (`refresh`) the order statuses follow. `at`: one moment for
    all, or each order's own ({order id: at}). Returns {order_id: {line_id: units}} handed over."""
    rows = read_rows(session, _ACTIVE_RESERVATIONS, {"order_ids": order_ids})
    if location_filter is not None:
        rows = [r for r in rows if r.location_id in location_filter.get(r.order_id, set())]
    if not rows:
        return {}
    when = {oid: _when(at, oid) for oid in {r.order_id for r in rows}}
    order_numbers = {r.order_id: r.order_number for r in rows}
    _update_at(session, _FULFIL_RESERVATIONS, _FULFIL_RESERVATIONS_IN, "rid", [(r.id, when[r.order_id]) for r in rows])
    per_stock: dict[int, int] = defaultdict(int)
    per_line: dict[int, int] = defaultdict(int)
    handed: dict[int, dict[int, int]] = defaultdict(dict)
    for r in rows:
        per_stock[r.stock_id] += r.quantity
        per_line[r.line_id] += r.quantity
        handed[r.order_id][r.line_id] = handed[r.order_id].get(r.line_id, 0) + r.quantity
    write_rows(session, _TAKE_OFF_SHELF, [{"sid": sid, "units": q} for sid, q in sorted(per_stock.items())])
    write_rows(session, _INSERT_MOVEMENTS, [
        {"stock_id": r.stock_id, "kind": "sale", "quantity": -r.quantity, "reserved_change": -r.quantity, "reason": None,
         "reference": f"order:{order_numbers[r.order_id]}", "actor": actor, "at": when[r.order_id]} for r in rows
    ])
    write_rows(session, _LINE_FULFILLED, [{"lid": lid, "units": q} for lid, q in per_line.items()])
    _update_at(session, _START_FULFILMENT, _START_FULFILMENT_IN, "oid", [(oid, when[oid]) for oid in handed])
    _capture_open(session, list(handed), at=when, actor=actor)
    if refresh:
        _refresh_statuses(session, list(handed), when)
    return handed


def _tally_authorization(payment: dict[str, Any], r: Any) -> None:
    """One transaction row of `_OPEN_AUTHORIZATIONS` into its payment's tally: the succeeded authorizations
    (`auth`: reference, amount) and what succeeded captures and voids used of each (`used`)."""
    if r.status != "succeeded":
        return
    if r.kind == "authorize":
        payment["auth"].append((r.gateway_reference, Decimal(r.amount)))
    elif r.kind in ("capture", "void") and r.parent_reference:
        payment["used"][r.parent_reference] += Decimal(r.amount)


def _capture_open(session: Session, order_ids: list[int], *, at: datetime | dict[int, datetime], actor: str | None) -> None:
    """Capture what is still authorized on these orders (their goods have all been handed over)."""
    by_payment: dict[int, dict[str, Any]] = {}
    for r in read_rows(session, _OPEN_AUTHORIZATIONS, {"order_ids": order_ids}):
        p = by_payment.setdefault(r.id, {"order_id": r.order_id, "number": r.number, "gateway": r.gateway, "auth": [], "used": defaultdict(Decimal)})
        _tally_authorization(p, r)
    txs, events = [], []
    for payment_id, p in by_payment.items():
        gw = payments.get_gateway(p["gateway"])
        moment = _when(at, p["order_id"])
        for ref, amount in p["auth"]:
            left = amount - p["used"][ref]
            if left <= 0:
                continue
            result = gw.capture(ref, left, f"{p['number']}:capture:{ref}")
            txs.append(dict(payment_id=payment_id, kind="capture", amount=left, status="succeeded" if result.approved else "declined",
                            gateway_reference=result.reference, parent_reference=ref, message=result.message or None, idempotency_key=None,
                            at=moment))
            events.append(dict(order_id=p["order_id"], kind="payment_captured" if result.approved else "payment_capture_declined",
                               actor=actor, channel=None, data={"amount": str(left)}, at=moment))
    if txs:
        write_rows(session, _INSERT_TRANSACTIONS, txs)
        record_events(session, events)


def _refresh_statuses(session: Session, order_ids: list[int], now: datetime | dict[int, datetime]) -> None:
    moments, statuses = [], []
    for oid, a, f, d, r, b, h in read_rows(session, _LINE_TOTALS, {"order_ids": order_ids}):
        moments.append((oid, _when(now, oid)))
        statuses.append(status_from(active=int(a), fulfilled=int(f), delivered=int(d), returned=int(r), backordered=int(b), hold=h))
    if moments:
        _update_at(session, _SET_STATUS, _SET_STATUS_IN, "oid", moments, status=statuses)


# --- shipping and delivery ------------------------------------------------------------------------

_INSERT_SHIPMENTS = insert(Shipment.__table__).returning(Shipment.id, Shipment.number)
_INSERT_SHIPMENT_LINES = insert(ShipmentLine.__table__)
_INSERT_TRACKING = insert(TrackingEvent.__table__)
_ORDERS_TO_SHIP = (
    select(Order.id, Order.number, Order.delivery_method, Order.placed_at, Order.promised_delivery_days, Order.hold, Order.status,
           Order.shipping_method_id)
    .where(Order.number.in_(bindparam("numbers", expanding=True)))
)


def ship_orders(session: Session, numbers: list[str], *, at: datetime, actor: str | None = None) -> dict[str, list[str]]:
    """Ship every reserved unit of these orders: one shipment per location, dispatched at `at` (no
    PDF label in bulk), stock sold, payment captured. Pickup orders become ready at the counter
    instead (handed over when collected). Orders on hold or cancelled are skipped."""
    orders = [o for o in read_rows(session, _ORDERS_TO_SHIP, {"numbers": numbers}) if not o.hold and o.status in ("placed", "backordered", "partially_fulfilled")]
    if not orders:
        return {}
    by_id = {o.id: o for o in orders}
    rows = read_rows(session, _ACTIVE_RESERVATIONS, {"order_ids": list(by_id)})
    stock_location = {r.stock_id: r.location_id for r in rows}
    kinds = dict(session.execute(select(Location.id, Location.kind)).all())
    levels = {m.id: m.service_level for m in read_rows(session, select(ShippingMethod.id, ShippingMethod.service_level))}
    groups: dict[tuple[int, int], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        groups[(r.order_id, stock_location[r.stock_id])][r.line_id] += r.quantity
    shipments, keyed = [], []
    parcels: dict[str, list[int]] = defaultdict(list)  # carrier -> rows of its shipments
    numbers = iter(numbering.new_numbers(session, Shipment.number, numbering.shipment_number, len(groups)))
    for (order_id, location_id), lines in sorted(groups.items()):
        o = by_id[order_id]
        pickup = o.delivery_method == "pickup"
        service = "pickup" if pickup else levels.get(o.shipping_method_id, "standard")
        promised = o.placed_at + timedelta(days=o.promised_delivery_days or 0)
        number = next(numbers)
        carrier = None if pickup else CARRIERS.get(service, "usps")
        if carrier is not None:
            parcels[carrier].append(len(shipments))
        shipments.append(dict(
            number=number, order_id=order_id, location_id=location_id,
            kind="pickup" if pickup else ("dropship" if kinds[location_id] == "dropship" else "ship"),
            status="ready_for_pickup" if pickup else "dispatched", carrier=carrier, service_level=service,
            tracking_number=None,
            label_path=None, weight_kg=None, shipping_cost=None, promised_at=promised, estimated_at=promised, delayed=False,
            created_at=at, packed_at=at, dispatched_at=None if pickup else at, delivered_at=None,
            ready_at=at if pickup else None, expires_at=at + timedelta(days=7) if pickup else None,
        ))
        keyed.append((number, lines))
    for carrier, at_rows in parcels.items():
        tracking = numbering.new_numbers(session, Shipment.tracking_number, lambda c=carrier: numbering.tracking_number(c), len(at_rows))
        for row, tracking_number in zip(at_rows, tracking):
            shipments[row]["tracking_number"] = tracking_number
    ids = {number: sid for sid, number in write_rows(session, _INSERT_SHIPMENTS, shipments)}
    write_rows(session, _INSERT_SHIPMENT_LINES, [
        {"shipment_id": ids[number], "order_line_id": lid, "quantity": q} for number, lines in keyed for lid, q in lines.items()
    ])
    labels = [
        {"shipment_id": ids[s["number"]], "kind": "label_created", "at": at, "location_text": None, "description": "Label created",
         "carrier_event_id": f"storeom:{s['number']}:label", "received_at": at}
        for s in shipments if s["kind"] != "pickup"
    ]
    if labels:
        write_rows(session, _INSERT_TRACKING, labels)
    ship_now = {s["order_id"]: set() for s in shipments if s["kind"] != "pickup"}
    for s in shipments:
        if s["kind"] != "pickup":
            ship_now[s["order_id"]].add(s["location_id"])
    session.execute(update(Order).where(Order.id.in_(list(by_id)), Order.fulfilment_started_at.is_(None)).values(fulfilment_started_at=at))
    if ship_now:
        _hand_over_all(session, list(ship_now), at=at, actor=actor, location_filter=ship_now)
    record_events(session, [
        dict(order_id=s["order_id"], kind="ready_for_pickup" if s["kind"] == "pickup" else "shipment_dispatched", actor=actor, channel=None,
             data={"shipment": s["number"], "tracking_number": s["tracking_number"]}, at=at)
        for s in shipments
    ])
    result: dict[str, list[str]] = defaultdict(list)
    for s in shipments:
        result[by_id[s["order_id"]].number].append(s["number"])
    return dict(result)


_SHIPMENTS_BY_NUMBER = (
    select(Shipment.id, Shipment.number, Shipment.order_id, Shipment.kind, Shipment.status, Shipment.location_id)
    .where(Shipment.number.in_(bindparam("numbers", expanding=True)))
)
_SHIPMENT_LINES = select(ShipmentLine.shipment_id, ShipmentLine.order_line_id, ShipmentLine.quantity).where(
    ShipmentLine.shipment_id.in_(bindparam("ids", expanding=True)))
_SET_DELIVERED = (
    update(Shipment.__table__).where(Shipment.id == bindparam("sid"))
    .values(status=bindparam("status"), delivered_at=bindparam("at"), dispatched_at=func.coalesce(Shipment.dispatched_at, bindparam("at")))
)


def deliver_shipments(session: Session, deliveries: dict[str, datetime], *, actor: str | None = None) -> None:
    """Parcels delivered (a 'delivered' scan each) and pickups collected (handed over, captured) at the given times."""
    rows = read_rows(session, _SHIPMENTS_BY_NUMBER, {"numbers": list(deliveries)})
    pickups = [r for r in rows if r.kind == "pickup" and r.status == "ready_for_pickup"]
    parcels = [r for r in rows if r.kind != "pickup" and r.status in ("dispatched", "in_transit", "out_for_delivery", "exception")]
    # collected: the goods leave the store now (one hand-over for orders with one pickup in the batch)
    per_order: dict[int, list[Any]] = defaultdict(list)
    for r in pickups:
        per_order[r.order_id].append(r)
    single = {oid: rs[0] for oid, rs in per_order.items() if len(rs) == 1}
    if single:
        _hand_over_all(session, sorted(single), at={oid: deliveries[r.number] for oid, r in single.items()}, actor=actor,
                       location_filter={oid: {r.location_id} for oid, r in single.items()})
    for r in pickups:
        if r.order_id not in single:
            _hand_over_all(session, [r.order_id], at=deliveries[r.number], actor=actor, location_filter={r.order_id: {r.location_id}})
    done = pickups + parcels
    if not done:
        return
    write_rows(session, _SET_DELIVERED, [
        {"sid": r.id, "status": "collected" if r.kind == "pickup" else "delivered", "at": deliveries[r.number]} for r in done
    ])
    if parcels:
        write_rows(session, _INSERT_TRACKING, [
            {"shipment_id": r.id, "kind": "delivered", "at": deliveries[r.number], "location_text": None, "description": "Delivered",
             "carrier_event_id": f"storeom:{r.number}:delivered", "received_at": deliveries[r.number]} for r in parcels
        ])
    per_line: dict[int, int] = defaultdict(int)
    for sl in read_rows(session, _SHIPMENT_LINES, {"ids": [r.id for r in done]}):
        per_line[sl.order_line_id] += sl.quantity
    write_rows(session, _LINE_DELIVERED, [{"lid": lid, "units": q} for lid, q in per_line.items()])
    latest = max(deliveries[r.number] for r in done)
    _refresh_statuses(session, sorted({r.order_id for r in done}), latest)
    record_events(session, [
        dict(order_id=r.order_id, kind="picked_up" if r.kind == "pickup" else "tracking_delivered", actor=actor, channel=None,
             data={"shipment": r.number}, at=deliveries[r.number]) for r in done
    ])


# --- customers and stock in batches ---------------------------------------------------------------

_EMAILS_TAKEN = select(Customer.email).where(Customer.email.in_(bindparam("keys", expanding=True)))
_REFS_TAKEN = select(Customer.external_ref).where(Customer.external_ref.in_(bindparam("keys", expanding=True)))
_INSERT_ADDRESSES = insert(Address.__table__)
_LOCATIONS_BY_CODE = select(Location.id, Location.code).where(Location.code.in_(bindparam("codes", expanding=True)))
_ADD_ON_HAND = update(Stock.__table__).where(Stock.id == bindparam("sid")).values(on_hand=Stock.on_hand + bindparam("units"))


def _write_some(session: Session, stmt: Any, rows: list[dict[str, Any]]) -> None:
    """`write_rows` for a list that may be empty (then nothing to run)."""
    if rows:
        write_rows(session, stmt, rows)


def _parse_all(model: type[Any], items: list[Any], what: str) -> list[Any]:
    """Every item parsed, or one ValidationError naming each bad field by the item's position."""
    parsed, errors = [], []
    for i, item in enumerate(items):
        try:
            parsed.append(parse(model, item))
        except ValidationError as exc:
            errors += [{"field": f"{i}.{e['field']}", "reason": e["reason"]} for e in exc.errors]
    if errors:
        raise ValidationError(f"Invalid {what}: " + "; ".join(f"{e['field']}: {e['reason']}" for e in errors), errors=errors)
    return parsed


def create_customers(session: Session, items: list[CustomerIn | dict[str, Any]], *, created_at: list[datetime] | None = None) -> list[int]:
    """`customers.create_customer` for many at once: the same validation and uniqueness of email and
    external reference (against the database and within the batch), each with its default address.
    `created_at`: when each signed up (an import of history, a simulation), else now for all.
    Returns the new ids in the order of `items`; one bad or duplicate item refuses the whole batch."""
    if created_at is not None and len(created_at) != len(items):
        raise ValidationError("created_at needs one moment per customer", errors=[{"field": "created_at", "reason": "length differs from items"}])
    data = _parse_all(CustomerIn, items, "customers")
    for field in ("email", "external_ref"):
        seen: set[str] = set()
        for d in data:
            value = getattr(d, field)
            if value and value in seen:
                raise AlreadyExists(f"The batch has customer {field} {value} twice", **{field: value})
            if value:
                seen.add(value)
        taken = read_rows_in(session, _EMAILS_TAKEN if field == "email" else _REFS_TAKEN, "keys", sorted(seen))
        if taken:
            value = sorted(r[0] for r in taken)[0]
            what = f"email {value}" if field == "email" else value
            raise AlreadyExists(f"A customer with {what} already exists" if field == "email" else f"Customer {value} already exists",
                                **{field: value})
    if not data:
        return []
    moments = created_at if created_at is not None else [utcnow()] * len(data)
    ids = insert_with_ids(session, Customer.__table__, [
        {**d.model_dump(exclude={"address"}), "marketing_consent_at": at if d.marketing_consent else None, "created_at": at}
        for d, at in zip(data, moments)
    ])
    addresses = [{**d.address.model_dump(), "customer_id": cid, "is_default": True} for cid, d in zip(ids, data) if d.address]
    if addresses:
        write_rows(session, _INSERT_ADDRESSES, addresses)
    return ids


def _products_and_locations(session: Session, skus: set[str], codes: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    products = {p.sku: p for p in read_rows_in(session, _PRODUCTS_BY_SKU, "skus", sorted(skus))}
    missing = sorted(skus - products.keys())
    if missing:
        raise UnknownProduct(f"Unknown SKU(s): {', '.join(missing)}", skus=missing)
    locations = {l.code: l for l in read_rows(session, _LOCATIONS_BY_CODE, {"codes": sorted(codes)})}
    unknown = sorted(codes - locations.keys())
    if unknown:
        raise UnknownLocation(f"Unknown location(s): {', '.join(unknown)}", locations=unknown)
    return products, locations


def _stock_rows(session: Session, pairs: set[tuple[int, int]], *, create: bool) -> dict[tuple[int, int], Any]:
    """The stock rows of these (product, location) pairs, locked in id order; with `create`, the
    missing ones are created empty first (a row created concurrently is simply used)."""
    products, locations = {p for p, _ in pairs}, {l for _, l in pairs}
    rows = {(r.product_id, r.location_id): r for r in inventory.stock_rows(session, products, locations, lock=True)}
    missing = sorted(pairs - rows.keys())
    if create and missing:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
        write_rows(session, upsert(Stock.__table__).on_conflict_do_nothing(index_elements=["product_id", "location_id"]),
                   [{"product_id": p, "location_id": l, "on_hand": 0} for p, l in missing])
        new_products, new_locations = {p for p, _ in missing}, {l for _, l in missing}
        for r in inventory.stock_rows(session, new_products, new_locations, lock=True):
            rows.setdefault((r.product_id, r.location_id), r)
    return {key: row for key, row in rows.items() if key in pairs}


def receive_stock(session: Session, items: list[ReceiptIn | dict[str, Any]], *, actor: str | None = None) -> list[int]:
    """`inventory.receive_stock` for many receipts (opening balances, deliveries): one 'receipt' ledger
    row each and on hand up, in a few statements. Returns the stock row id of each receipt; one bad
    item (unknown SKU or location, bad quantity) refuses the whole batch."""
    data = _parse_all(ReceiptIn, items, "receipts")
    if not data:
        return []
    products, locations = _products_and_locations(session, {d.sku for d in data}, {d.location for d in data})
    keys = [(products[d.sku].id, locations[d.location].id) for d in data]
    stocks = _stock_rows(session, set(keys), create=True)
    now = utcnow()
    per_stock: dict[int, int] = defaultdict(int)
    for key, d in zip(keys, data):
        per_stock[stocks[key].id] += d.quantity
    _write_some(session, _ADD_ON_HAND, [{"sid": sid, "units": q} for sid, q in sorted(per_stock.items())])
    _write_some(session, _INSERT_MOVEMENTS, [
        {"stock_id": stocks[key].id, "kind": "receipt", "quantity": d.quantity, "reserved_change": 0, "reason": None,
         "reference": d.reference, "actor": actor, "at": now} for key, d in zip(keys, data)
    ])
    return [stocks[key].id for key in keys]


def transfer_stock(session: Session, items: list[TransferIn | dict[str, Any]], *, actor: str | None = None) -> list[int]:
    """`inventory.transfer_stock` for many: each moves available units (on hand less reserved, counting
    the batch's earlier transfers) between two locations, with a transfer record and its
    'transfer_out'/'transfer_in' ledger rows. Returns the transfer ids; one item that cannot be done
    refuses the whole batch, and nothing is written."""
    data = _parse_all(TransferIn, items, "transfers")
    same = [i for i, d in enumerate(data) if d.from_location == d.to_location]
    if same:
        raise ValidationError("A transfer needs two different locations",
                              errors=[{"field": f"{i}.to_location", "reason": "same as from_location"} for i in same])
    if not data:
        return []
    products, locations = _products_and_locations(session, {d.sku for d in data}, {d.from_location for d in data} | {d.to_location for d in data})
    sources = [(products[d.sku].id, locations[d.from_location].id) for d in data]
    targets = [(products[d.sku].id, locations[d.to_location].id) for d in data]
    stocks = _stock_rows(session, set(sources) | set(targets), create=False)
    reserved = inventory.reserved_by_stock(session, [stocks[k].id for k in set(sources) if k in stocks])
    left = {key: max(row.on_hand - reserved.get(row.id, 0), 0) for key, row in stocks.items()}
    for i, (source, target, d) in enumerate(zip(sources, targets, data)):
        available = left.get(source, 0)
        if d.quantity > available:
            raise StockError(f"Only {available} of {d.sku} available at {d.from_location} to transfer",
                             available=available, requested=d.quantity, item=i)
        left[source] = available - d.quantity
        left[target] = left.get(target, 0) + d.quantity
    new_targets = {t for t in targets if t not in stocks}
    if new_targets:
        stocks.update(_stock_rows(session, new_targets, create=True))
    now = utcnow()
    ids = insert_with_ids(session, Transfer.__table__, [
        {"product_id": products[d.sku].id, "from_location_id": locations[d.from_location].id, "to_location_id": locations[d.to_location].id,
         "quantity": d.quantity, "reason": d.reason, "actor": actor, "at": now} for d in data
    ])
    per_stock: dict[int, int] = defaultdict(int)
    movements = []
    for tid, source, target, d in zip(ids, sources, targets, data):
        ref = f"transfer:{tid}"
        for key, kind, q in ((source, "transfer_out", -d.quantity), (target, "transfer_in", d.quantity)):
            per_stock[stocks[key].id] += q
            movements.append({"stock_id": stocks[key].id, "kind": kind, "quantity": q, "reserved_change": 0, "reason": d.reason,
                              "reference": ref, "actor": actor, "at": now})
    _write_some(session, _ADD_ON_HAND, [{"sid": sid, "units": q} for sid, q in sorted(per_stock.items()) if q])
    _write_some(session, _INSERT_MOVEMENTS, movements)
    return ids


# --- returns received and refunded in batches -------------------------------------------------------


@dataclass
class ReturnReceipt:
    """A return's goods back at `location`, inspected (lines not listed are resellable), at `at` (default now)."""

    number: str
    location: str
    inspections: list[InspectionIn | dict[str, Any]] | None = None
    at: datetime | None = None


_RETURNS_BY_NUMBER = select(ReturnRequest.__table__).where(ReturnRequest.number.in_(bindparam("numbers", expanding=True))).order_by(ReturnRequest.id)
_RETURNS_LOCKED = _RETURNS_BY_NUMBER.with_for_update()
_RETURN_LINES = select(ReturnLine.__table__).where(ReturnLine.return_id.in_(bindparam("ids", expanding=True))).order_by(ReturnLine.id)
_ORDER_ROWS = select(Order.__table__).where(Order.id.in_(bindparam("ids", expanding=True)))
_ORDER_LINE_ROWS = select(OrderLine.__table__).where(OrderLine.order_id.in_(bindparam("ids", expanding=True))).order_by(OrderLine.order_id, OrderLine.line_no)
_CUSTOMER_ROWS = select(Customer.__table__).where(Customer.id.in_(bindparam("ids", expanding=True)))
_SET_CONDITION = update(ReturnLine.__table__).where(ReturnLine.id == bindparam("rlid")).values(condition=bindparam("condition"))
_ADD_RETURNED = (
    update(OrderLine.__table__).where(OrderLine.id == bindparam("lid")).values(quantity_returned=OrderLine.quantity_returned + bindparam("units"))
)
_SET_RECEIVED = (
    update(ReturnRequest.__table__).where(ReturnRequest.id == bindparam("rid"))
    .values(received_at=bindparam("at"), received_location_id=bindparam("location_id"), status=bindparam("status"))
)
_REFUNDED_BEFORE = (
    select(ReturnRequest.order_id, ReturnLine.order_line_id, func.sum(ReturnLine.quantity))
    .join(ReturnRequest, ReturnRequest.id == ReturnLine.return_id)
    .where(ReturnRequest.order_id.in_(bindparam("order_ids", expanding=True)), ReturnRequest.refunded_at.is_not(None))
    .group_by(ReturnRequest.order_id, ReturnLine.order_line_id)
)
_PAYMENTS_OF = select(Payment.id, Payment.order_id, Payment.gateway).where(Payment.order_id.in_(bindparam("order_ids", expanding=True))).order_by(Payment.id)
_TRANSACTIONS_OF = (
    select(PaymentTransaction.payment_id, PaymentTransaction.kind, PaymentTransaction.amount, PaymentTransaction.status,
           PaymentTransaction.gateway_reference, PaymentTransaction.parent_reference)
    .where(PaymentTransaction.payment_id.in_(bindparam("ids", expanding=True))).order_by(PaymentTransaction.id)
)
_KEYS_KNOWN = select(IdempotencyKey.key, IdempotencyKey.request_hash, IdempotencyKey.response).where(
    IdempotencyKey.scope == "payment.refund", IdempotencyKey.key.in_(bindparam("keys", expanding=True)))
_INSERT_KEYS = insert(IdempotencyKey.__table__)
_SET_LINE_REFUND = update(ReturnLine.__table__).where(ReturnLine.id == bindparam("rlid")).values(refund_amount=bindparam("amount"))
_SET_REFUNDED = (
    update(ReturnRequest.__table__).where(ReturnRequest.id == bindparam("rid"))
    .values(refund_amount=bindparam("amount"), refunded_at=bindparam("at"), status=bindparam("status"))
)


class _Orders:
    """Orders with their lines and customers, read once for a batch (rows, not ORM objects)."""

    def __init__(self, session: Session, order_ids: set[int]) -> None:
        ids = sorted(order_ids)
        self.orders = {o.id: o for o in read_rows_in(session, _ORDER_ROWS, "ids", ids)}
        self.lines: dict[int, list[Any]] = defaultdict(list)
        for line in read_rows_in(session, _ORDER_LINE_ROWS, "ids", ids):
            self.lines[line.order_id].append(line)
        customer_ids = sorted({o.customer_id for o in self.orders.values() if o.customer_id})
        self.customers = {c.id: c for c in read_rows_in(session, _CUSTOMER_ROWS, "ids", customer_ids)}

    def message(self, order_id: int, kind: str, *, dedupe_suffix: str, at: datetime, **extra: Any) -> dict[str, Any]:
        """What `notifications.notify_order` would enqueue about this order, for `enqueue_many`."""
        order = self.orders[order_id]
        customer = self.customers.get(order.customer_id) if order.customer_id else None
        lines = [{"sku": l.sku, "name": l.name, "quantity": l.quantity - l.quantity_cancelled}
                 for l in self.lines[order_id] if l.quantity > l.quantity_cancelled]
        context = {**notifications.order_context(None, order, kind, customer=customer, lines=lines), **extra}  # type: ignore[arg-type]
        return dict(kind=kind, recipient=order.email or (customer.email if customer else None), context=context,
                    dedupe_key=f"{kind}:{order.number}:{dedupe_suffix}", order_id=order.id, customer_id=order.customer_id,
                    marketing_consent=customer.marketing_consent if customer else None, at=at)


def _forget_loaded(session: Session, *models: type[Any]) -> None:
    """Rows changed behind the ORM's back: loaded objects of these kinds are read again when next used."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, models):
            session.expire(obj)


def _return_rows(session: Session, numbers: list[str]) -> tuple[dict[str, Any], dict[int, list[Any]]]:
    seen: set[str] = set()
    for number in numbers:
        if number in seen:
            raise InvalidTransition(f"Return {number} is listed twice in the batch", return_number=number)
        seen.add(number)
    rmas = {r.number: r for r in read_rows(session, _RETURNS_LOCKED, {"numbers": numbers})}
    for number in numbers:
        if number not in rmas:
            raise UnknownReturn(f"Unknown return {number!r}", return_number=number)
    lines: dict[int, list[Any]] = defaultdict(list)
    for rl in read_rows_in(session, _RETURN_LINES, "ids", [r.id for r in rmas.values()]):
        lines[rl.return_id].append(rl)
    return rmas, lines


@dataclass
class ReturnOpening:
    """A return (RMA) to open on `order_number` (a `returns.ReturnIn`), at `at` (default now)."""

    order_number: str
    request: ReturnIn | dict[str, Any]
    at: datetime | None = None


_ORDERS_BY_NUMBER_LOCKED = select(Order.__table__).where(Order.number.in_(bindparam("numbers", expanding=True))).order_by(Order.id).with_for_update()
_BEING_RETURNED = (
    select(ReturnLine.order_line_id, func.sum(ReturnLine.quantity))
    .join(ReturnRequest, ReturnRequest.id == ReturnLine.return_id)
    .where(ReturnRequest.order_id.in_(bindparam("ids", expanding=True)), ReturnRequest.status != "cancelled")
    .group_by(ReturnLine.order_line_id)
)
_LAST_DELIVERIES = (
    select(ShipmentLine.order_line_id, func.max(Shipment.delivered_at))
    .join(Shipment, Shipment.id == ShipmentLine.shipment_id)
    .where(Shipment.order_id.in_(bindparam("ids", expanding=True)), Shipment.delivered_at.is_not(None))
    .group_by(ShipmentLine.order_line_id)
)
_RETURNABLE = select(Product.id, Product.returnable).where(Product.id.in_(bindparam("ids", expanding=True)))
_INSERT_RETURN_LINES = insert(ReturnLine.__table__)


def open_returns(session: Session, openings: list[ReturnOpening], *, actor: str | None = None) -> list[BulkResult]:
    """`returns.open_return` for many returns, as if opened one by one in this order: the same checks
    (delivered units not already being returned, counting the batch's earlier openings; returnable
    SKUs; the return window from the last delivery, or the hand-over of a till sale). Each result is
    the return's number or the error that opening got; the others still go through."""
    session.flush()
    results = [BulkResult(None) for _ in openings]
    parsed: list[tuple[int, ReturnIn]] = []
    for i, o in enumerate(openings):
        try:
            parsed.append((i, parse(ReturnIn, o.request)))
        except StoreOMError as exc:
            results[i].error = exc
    if not parsed:
        return results
    orders = {o.number: o for o in read_rows_in(session, _ORDERS_BY_NUMBER_LOCKED, "numbers", sorted({openings[i].order_number for i, _ in parsed}))}
    book = _Orders(session, {o.id for o in orders.values()})
    order_ids = sorted(book.orders)
    returning: dict[int, int] = defaultdict(int)
    for line_id, units in read_rows_in(session, _BEING_RETURNED, "ids", order_ids):
        returning[line_id] += int(units)
    last = dict(read_rows_in(session, _LAST_DELIVERIES, "ids", order_ids))
    returnable = dict(read_rows_in(session, _RETURNABLE, "ids", sorted({l.product_id for ls in book.lines.values() for l in ls})))
    opened = []
    for i, data in parsed:
        o = openings[i]
        now = o.at or utcnow()
        try:
            order = orders.get(o.order_number)
            if order is None:
                raise UnknownOrder(f"Unknown order {o.order_number!r}", order=o.order_number)
            by_no = {l.line_no: l for l in book.lines[order.id]}
            check_return_lines(o.order_number, data, by_no, returning=returning, now=now,
                               returnable=lambda line: returnable[line.product_id],
                               delivered_at=lambda line, order=order: last.get(line.id) or order.fulfilment_started_at)
        except StoreOMError as exc:
            results[i].error = exc
            continue
        for item in data.lines:
            returning[by_no[item.line_no].id] += item.quantity
        opened.append((i, order, data, by_no, None, now))
    if not opened:
        return results
    numbers = numbering.new_numbers(session, ReturnRequest.number, numbering.rma_number, len(opened))
    opened = [(i, order, data, by_no, number, now) for (i, order, data, by_no, _, now), number in zip(opened, numbers)]
    ids = insert_with_ids(session, ReturnRequest.__table__, [
        dict(number=number, order_id=order.id, status="open", reason_code=data.reason_code, note=data.note, opened_by=actor, opened_at=now)
        for _, order, data, _, number, now in opened
    ])
    write_rows(session, _INSERT_RETURN_LINES, [
        dict(return_id=rid, order_line_id=by_no[item.line_no].id, quantity=item.quantity, reason_code=item.reason_code or data.reason_code)
        for rid, (_, _, data, by_no, _, _) in zip(ids, opened) for item in data.lines
    ])
    record_events(session, [
        dict(order_id=order.id, kind="return_opened", actor=actor, channel=None, at=now,
             data={"return_number": number, "reason": data.reason_code, "lines": {str(item.line_no): item.quantity for item in data.lines}})
        for _, order, data, _, number, now in opened
    ])
    for i, _, _, _, number, _ in opened:
        results[i].number = number
    _forget_loaded(session, ReturnRequest, ReturnLine)
    return results


def receive_returns(session: Session, receipts: list[ReturnReceipt], *, actor: str | None = None) -> list[str]:
    """`returns.receive_return` for many returns: the goods back at each receipt's location and
    inspected; resellable units restocked and the others written off through the ledger, lines'
    returned quantities, the orders' statuses, events and 'return_received' messages, in a few
    statements. One receipt that cannot be done refuses the whole batch (nothing written)."""
    session.flush()
    parsed = [_parse_all(InspectionIn, list(r.inspections or []), f"inspections of return {r.number}") for r in receipts]
    if not receipts:
        return []
    rmas, rlines = _return_rows(session, [r.number for r in receipts])
    for r in receipts:
        rma = rmas[r.number]
        if rma.status not in ("open", "refunded") or rma.received_at is not None:
            raise InvalidTransition(f"Return {r.number} is {rma.status}; it cannot be received again", return_number=r.number)
    codes = {r.location for r in receipts}
    locations = {l.code: l for l in read_rows(session, _LOCATIONS_BY_CODE, {"codes": sorted(codes)})}
    for code in sorted(codes - locations.keys()):
        raise UnknownLocation(f"Unknown location {code!r}", location=code)
    book = _Orders(session, {rma.order_id for rma in rmas.values()})
    line_of = {l.id: l for lines in book.lines.values() for l in lines}
    plans = []
    for r, checks in zip(receipts, parsed):
        rma = rmas[r.number]
        by_no = {line_of[rl.order_line_id].line_no: rl for rl in rlines[rma.id]}
        checked = {c.line_no: c.condition for c in checks}
        unknown = sorted(set(checked) - set(by_no))
        if unknown:
            raise ValidationError(f"Return {r.number} has no line(s) {unknown}",
                                  errors=[{"field": f"inspections.{n}", "reason": "not on this return"} for n in unknown])
        plans.append((r, rma, by_no, checked, r.at or utcnow(), locations[r.location].id))
    stocks = _stock_rows(session, {(line_of[rl.order_line_id].product_id, loc) for _, _, by_no, _, _, loc in plans for rl in by_no.values()},
                         create=True)
    movements, conditions, returned, received, events, messages = [], [], [], [], [], []
    per_stock: dict[int, int] = defaultdict(int)
    order_at: dict[int, datetime] = {}
    for r, rma, by_no, checked, at, location_id in plans:
        ref = f"return:{rma.number}"
        for line_no, rl in sorted(by_no.items()):
            line = line_of[rl.order_line_id]
            condition = checked.get(line_no, "resellable")
            stock_id = stocks[(line.product_id, location_id)].id
            movements.append({"stock_id": stock_id, "kind": "return", "quantity": rl.quantity, "reserved_change": 0, "reason": rl.reason_code,
                              "reference": ref, "actor": actor, "at": at})
            per_stock[stock_id] += rl.quantity
            if condition != "resellable":
                movements.append({"stock_id": stock_id, "kind": "write_off", "quantity": -rl.quantity, "reserved_change": 0, "reason": condition,
                                  "reference": ref, "actor": actor, "at": at})
                per_stock[stock_id] -= rl.quantity
            conditions.append({"rlid": rl.id, "condition": condition})
            returned.append({"lid": line.id, "units": rl.quantity})
        received.append({"rid": rma.id, "at": at, "location_id": location_id, "status": "received" if rma.status == "open" else "closed"})
        order_at[rma.order_id] = max(at, order_at.get(rma.order_id, at))
        events.append(dict(order_id=rma.order_id, kind="return_received", actor=actor, channel=None, at=at,
                           data={"return_number": rma.number, "location": r.location,
                                 "conditions": {str(n): checked.get(n, "resellable") for n in by_no}}))
        messages.append(book.message(rma.order_id, "return_received", dedupe_suffix=rma.number, at=at, return_number=rma.number))
    _write_some(session, _ADD_ON_HAND, [{"sid": sid, "units": q} for sid, q in sorted(per_stock.items()) if q])
    _write_some(session, _INSERT_MOVEMENTS, movements)
    _write_some(session, _SET_CONDITION, conditions)
    _write_some(session, _ADD_RETURNED, returned)
    _write_some(session, _SET_RECEIVED, received)
    _refresh_statuses(session, sorted(order_at), order_at)
    record_events(session, events)
    notifications.enqueue_many(session, messages)
    _forget_loaded(session, Order, OrderLine, ReturnRequest, ReturnLine, Stock)
    return [r.number for r in receipts]


def refund_returns(session: Session, refunds: dict[str, datetime], *, actor: str | None = None) -> dict[str, Decimal]:
    """`returns.refund_return` (no restocking fee) for many returns, each at its own time: the policy's
    amount refunded through the payment ledger (newest capture first, never more than was captured
    and not refunded, counting the batch's earlier refunds), per-line amounts, events and
    'refund_issued' messages. Returns the amount per return; one that cannot be refunded refuses the
    whole batch (nothing written, no gateway called)."""
    session.flush()
    numbers = list(refunds)
    if not numbers:
        return {}
    rmas, rlines = _return_rows(session, numbers)
    for number in numbers:
        rma = rmas[number]
        if rma.refunded_at is not None or rma.status in ("refunded", "closed", "cancelled"):
            raise InvalidTransition(f"Return {number} is {rma.status}; it was already refunded or cancelled", return_number=number)
    order_ids = sorted({rma.order_id for rma in rmas.values()})
    book = _Orders(session, set(order_ids))
    refunded: dict[int, int] = defaultdict(int)  # order line -> units refunded before
    for _, line_id, units in read_rows_in(session, _REFUNDED_BEFORE, "order_ids", order_ids):
        refunded[line_id] += int(units)
    pays: dict[int, Any] = {}
    for pay in read_rows_in(session, _PAYMENTS_OF, "order_ids", order_ids):
        pays.setdefault(pay.order_id, pay)  # an order's first payment, the one `returns.refund_return` refunds
    ledger: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for tx in read_rows_in(session, _TRANSACTIONS_OF, "ids", sorted({p.id for p in pays.values()})):
        ledger[tx.payment_id].append(dict(tx._mapping))
    keys = {k.key: k for k in read_rows(session, _KEYS_KNOWN, {"keys": [f"refund:{n}" for n in numbers]})}
    plans = []
    for number in numbers:  # work everything out first: a refusal must come before any gateway call
        rma, at = rmas[number], refunds[number] or utcnow()
        order = book.orders[rma.order_id]
        lines = book.lines[rma.order_id]
        order_ns = SimpleNamespace(lines=lines, shipping_total=order.shipping_total, tax_total=order.tax_total,
                                   prices_include_tax=order.prices_include_tax)
        rma_ns = SimpleNamespace(lines=rlines[rma.id], reason_code=rma.reason_code)
        amount, per_line = refund_amount(order_ns, rma_ns, refunded_units=dict(refunded))  # type: ignore[arg-type]
        for rl in rlines[rma.id]:
            refunded[rl.order_line_id] += rl.quantity
        payment = pays.get(order.id)
        key = f"refund:{number}"
        digest = idempotency.request_hash({"order": order.number, "kind": "refund", "amount": str(to_money(amount))})
        done_before = key in keys  # refunded at the gateway already (the key's first answer stands)
        if done_before and keys[key].request_hash != digest:
            raise IdempotencyConflict(f"Idempotency key {key!r} was already used with a different request", scope="payment.refund", key=key)
        portions: list[tuple[str, Decimal]] = []  # (capture reference, amount) to refund, newest capture first
        if amount > 0 and not done_before:
            if payment is None:
                raise Conflict(f"Order {order.number} has no payment to refund", order=order.number)
            txs = ledger[payment.id]
            used: dict[str, Decimal] = defaultdict(Decimal)
            for tx in txs:
                if tx["status"] == "succeeded" and tx["kind"] == "refund" and tx["parent_reference"]:
                    used[tx["parent_reference"]] += Decimal(tx["amount"])
            parents = [(tx["gateway_reference"], Decimal(tx["amount"]) - used[tx["gateway_reference"]])
                       for tx in txs if tx["kind"] == "capture" and tx["status"] == "succeeded"]
            parents = [(ref, left) for ref, left in parents if left > 0]
            limit = sum((left for _, left in parents), Decimal(0))
            if amount > limit:
                raise PaymentError(f"Cannot refund {amount}: more than what was captured and not yet refunded ({limit})",
                                   order=order.number, amount=str(amount), limit=str(limit))
            remaining = amount
            for ref, left in reversed(parents):
                if remaining <= 0:
                    break
                portion = min(left, remaining)
                portions.append((ref, portion))
                remaining -= portion
                # the batch's later refunds of this payment see this one as done
                txs.append({"kind": "refund", "status": "succeeded", "amount": portion, "parent_reference": ref, "gateway_reference": None})
        plans.append((number, rma, order, at, amount, per_line, payment, key, digest, portions))
    sent = {p.id: len(ledger[p.id]) - sum(len(pl[9]) for pl in plans if pl[6] is not None and pl[6].id == p.id) for p in pays.values()}
    new_txs, tx_owner, events, line_rows, rma_rows, messages = [], [], [], [], [], []
    for number, rma, order, at, amount, per_line, payment, key, digest, portions in plans:
        if portions:
            gw = payments.get_gateway(payment.gateway)
            remaining, approved = amount, True
            for ref, portion in portions:
                result = gw.refund(ref, portion, f"{order.number}:refund:{sent[payment.id]}")
                sent[payment.id] += 1
                new_txs.append(dict(payment_id=payment.id, kind="refund", amount=portion, status="succeeded" if result.approved else "declined",
                                    gateway_reference=result.reference, parent_reference=ref, message=result.message or None,
                                    idempotency_key=key, at=at))
                if not result.approved:
                    approved = False
                    break
                remaining -= portion
            events.append(dict(order_id=order.id, kind="payment_refunded" if approved else "payment_refund_declined", actor=actor, channel=None,
                               data={"amount": str(amount - remaining if approved else amount)}, at=at))
            tx_owner.append((len(new_txs) - 1, key, digest, at))
        line_rows += [{"rlid": rl_id, "amount": value} for rl_id, value in per_line.items()]
        rma_rows.append({"rid": rma.id, "amount": amount, "at": at, "status": "closed" if rma.received_at is not None else "refunded"})
        events.append(dict(order_id=order.id, kind="refund_issued", actor=actor, channel=None, data={"return_number": number, "amount": str(amount)}, at=at))
        messages.append(book.message(order.id, "refund_issued", dedupe_suffix=number, at=at, return_number=number, refund_amount=str(amount)))
    if new_txs:
        ids = insert_with_ids(session, PaymentTransaction.__table__, new_txs)
        write_rows(session, _INSERT_KEYS, [dict(scope="payment.refund", key=key, request_hash=digest, response={"transaction_id": ids[last]},
                                                created_at=at) for last, key, digest, at in tx_owner])
    _write_some(session, _SET_LINE_REFUND, line_rows)
    _write_some(session, _SET_REFUNDED, rma_rows)
    record_events(session, events)
    notifications.enqueue_many(session, messages)
    _forget_loaded(session, ReturnRequest, ReturnLine, Payment, PaymentTransaction)
    return {number: plan[4] for number, plan in zip(numbers, plans)}


# --- feedback in a batch --------------------------------------------------------------------------


@dataclass
class FeedbackEntry:
    """A customer's feedback on `order_number` (a `feedback.FeedbackIn`), given at `at` (default now)."""

    order_number: str
    feedback: FeedbackIn | dict[str, Any]
    at: datetime | None = None


_ORDERS_BY_NUMBER = select(Order.id, Order.number, Order.customer_id, Order.status).where(Order.number.in_(bindparam("numbers", expanding=True)))
_DELIVERED_ORDERS = (
    select(OrderLine.order_id).where(OrderLine.order_id.in_(bindparam("ids", expanding=True)), OrderLine.quantity_delivered > 0).distinct()
)
_HAVE_FEEDBACK = select(Feedback.order_id).where(Feedback.order_id.in_(bindparam("ids", expanding=True)))
_INSERT_FEEDBACK = insert(Feedback.__table__)


def record_feedbacks(session: Session, entries: list[FeedbackEntry], *, actor: str | None = None) -> list[BulkResult]:
    """`feedback.record_feedback` for many orders: one feedback per order, once part of it has been
    delivered (an order given twice in the batch: the first counts). Each result names the order, or
    carries the error that entry got; the others still go through."""
    session.flush()
    results = [BulkResult(None) for _ in entries]
    parsed = []
    for i, e in enumerate(entries):
        try:
            parsed.append((i, parse(FeedbackIn, e.feedback)))
        except StoreOMError as exc:
            results[i].error = exc
    orders = {o.number: o for o in read_rows_in(session, _ORDERS_BY_NUMBER, "numbers", sorted({entries[i].order_number for i, _ in parsed}))}
    ids = sorted(o.id for o in orders.values())
    delivered = {r[0] for r in read_rows_in(session, _DELIVERED_ORDERS, "ids", ids)}
    given = {r[0] for r in read_rows_in(session, _HAVE_FEEDBACK, "ids", ids)}
    rows, events = [], []
    for i, data in parsed:
        number, at = entries[i].order_number, entries[i].at or utcnow()
        order = orders.get(number)
        if order is None:
            results[i].error = UnknownOrder(f"Unknown order {number!r}", order=number)
        elif order.id not in delivered:
            results[i].error = InvalidTransition(f"Order {number} has not been delivered yet", order=number, status=order.status)
        elif order.id in given:
            results[i].error = AlreadyExists(f"Order {number} already has feedback", order=number)
        else:
            given.add(order.id)
            rows.append(dict(order_id=order.id, customer_id=order.customer_id, rating=data.rating, would_recommend=data.would_recommend,
                             comment=data.comment, tags=sorted(set(data.tags)), created_at=at))
            events.append(dict(order_id=order.id, kind="feedback_received", actor=actor, channel=None, at=at,
                               data={"rating": data.rating, "would_recommend": data.would_recommend}))
            results[i].number = number
    _write_some(session, _INSERT_FEEDBACK, rows)
    record_events(session, events)
    return results


# --- purchase orders received in a batch ------------------------------------------------------------

_POS_LOCKED = select(PurchaseOrder.__table__).where(PurchaseOrder.number.in_(bindparam("numbers", expanding=True))).order_by(PurchaseOrder.id).with_for_update()
_PO_LINES = (
    select(PurchaseOrderLine.id, PurchaseOrderLine.purchase_order_id, PurchaseOrderLine.product_id, PurchaseOrderLine.quantity_ordered,
           PurchaseOrderLine.quantity_received, Product.sku)
    .join(Product, Product.id == PurchaseOrderLine.product_id)
    .where(PurchaseOrderLine.purchase_order_id.in_(bindparam("ids", expanding=True))).order_by(PurchaseOrderLine.id)
)
_SET_PO_LINE_RECEIVED = (
    update(PurchaseOrderLine.__table__).where(PurchaseOrderLine.id == bindparam("lid")).values(quantity_received=bindparam("received"))
)
_SET_PO_STATUS = (
    update(PurchaseOrder.__table__).where(PurchaseOrder.id == bindparam("pid"))
    .values(status=bindparam("status"), closed_at=func.coalesce(bindparam("closed_at"), PurchaseOrder.closed_at))
)
_ALL_LOCATIONS = select(Location.id, Location.code)


def receive_purchase_orders(session: Session, receipts: list[tuple[str, list[ReceiptLineIn | dict[str, Any]] | None]], *,
                            actor: str | None = None) -> dict[str, str]:
    """`purchasing.receive_purchase_order` for a day's deliveries: each receipt (PO number, lines; None
    for everything outstanding) checked the same way and booked in as 'receipt' ledger rows at the
    PO's location, the PO's received quantities and status moved on, a 'purchase_order.received'
    webhook each; then backorders of these SKUs are filled once, from everything that came in.
    Returns each PO's status; one receipt that cannot be booked refuses the whole batch."""
    session.flush()
    if not receipts:
        return {}
    pos = {po.number: po for po in read_rows(session, _POS_LOCKED, {"numbers": sorted({n for n, _ in receipts})})}
    for number, _ in receipts:
        if number not in pos:
            raise UnknownPurchaseOrder(f"Unknown purchase order {number!r}", purchase_order=number)
    po_lines: dict[int, list[Any]] = defaultdict(list)
    for line in read_rows(session, _PO_LINES, {"ids": [po.id for po in pos.values()]}):
        po_lines[line.purchase_order_id].append(line)
    received = {l.id: l.quantity_received for lines in po_lines.values() for l in lines}
    status = {po.id: po.status for po in pos.values()}
    plans = []
    for number, lines in receipts:
        po = pos[number]
        if status[po.id] not in ("sent", "partially_received"):
            raise InvalidTransition(f"Purchase order {number} is {status[po.id]}; only sent orders can be received", status=status[po.id])
        by_sku = {l.sku: l for l in po_lines[po.id]}
        wanted = receipt_lines(number, {sku: l.quantity_ordered - received[l.id] for sku, l in by_sku.items()},
                               _parse_all(ReceiptLineIn, list(lines), f"receipt of {number}") if lines is not None else None)
        for item in wanted:
            received[by_sku[item.sku].id] += item.quantity
        done = all(received[l.id] >= l.quantity_ordered for l in po_lines[po.id])
        status[po.id] = "received" if done else "partially_received"
        plans.append((po, [(by_sku[item.sku], item.quantity) for item in wanted], status[po.id], done))
    locations = dict(read_rows(session, _ALL_LOCATIONS))
    product_ids = {line.product_id for _, items, _, _ in plans for line, _ in items}
    inventory.stock_rows(session, product_ids, locations, lock=True)  # every location: backorders may draw on any
    stocks = _stock_rows(session, {(line.product_id, po.location_id) for po, items, _, _ in plans for line, _ in items}, create=True)
    now = utcnow()
    per_stock: dict[int, int] = defaultdict(int)
    movements, webhook_events, closed = [], [], {}
    for po, items, new_status, done in plans:
        for line, quantity in items:
            stock_id = stocks[(line.product_id, po.location_id)].id
            per_stock[stock_id] += quantity
            movements.append({"stock_id": stock_id, "kind": "receipt", "quantity": quantity, "reserved_change": 0, "reason": None,
                              "reference": f"po:{po.number}", "actor": actor, "at": now})
        if done:
            closed[po.id] = now
        webhook_events.append(("purchase_order.received", {
            "purchase_order": po.number, "status": new_status, "location": locations[po.location_id],
            "lines": [{"sku": line.sku, "received": quantity} for line, quantity in items]}, None, None))
    _write_some(session, _ADD_ON_HAND, [{"sid": sid, "units": q} for sid, q in sorted(per_stock.items())])
    _write_some(session, _INSERT_MOVEMENTS, movements)
    touched = {line.id for _, items, _, _ in plans for line, _ in items}
    _write_some(session, _SET_PO_LINE_RECEIVED, [{"lid": lid, "received": received[lid]} for lid in sorted(touched)])
    _write_some(session, _SET_PO_STATUS, [{"pid": po.id, "status": status[po.id], "closed_at": closed.get(po.id)}
                                           for po in pos.values()])
    webhooks.emit_many(session, webhook_events)
    _forget_loaded(session, PurchaseOrder, PurchaseOrderLine, Stock)
    fill_backorders(session, product_ids=product_ids, actor=actor)
    return {po.number: status[po.id] for po in pos.values()}


# --- cancellations in a batch --------------------------------------------------------------------------


@dataclass
class Cancellation:
    number: str
    reason: str
    at: datetime


_ORDERS_BY_NUMBER = select(Order.__table__).where(Order.number.in_(bindparam("numbers", expanding=True))).order_by(Order.id).with_for_update()
_RELEASE_ONE = (
    update(Reservation.__table__).where(Reservation.id == bindparam("rid"), Reservation.status == "active")
    .values(status="released", closed_at=bindparam("now"))
)
_CANCEL_LINES = (
    update(OrderLine.__table__).where(OrderLine.order_id == bindparam("oid"))
    .values(quantity_cancelled=OrderLine.quantity, quantity_backordered=0)
)
_VOID_REDEMPTIONS = (
    update(PromotionRedemption.__table__)
    .where(PromotionRedemption.order_id.in_(bindparam("ids", expanding=True)), PromotionRedemption.voided.is_(False)).values(voided=True)
)
_SET_CANCELLED = (
    update(Order.__table__).where(Order.id == bindparam("oid")).values(hold=False, status="cancelled", updated_at=bindparam("now"))
)


def cancel_orders(session: Session, cancellations: list[Cancellation], *, actor: str | None = None) -> list[BulkResult]:
    """`orders.cancel_order` for many, each at its own moment: every reservation released, lines
    cancelled, promotion uses freed, the open authorization voided (newest first), an
    'order_cancelled' event and message. Each one refused alone, as if cancelled one by one (unknown
    order, already being fulfilled, a status that cannot be cancelled): its error, nothing written
    for it; the others go through."""
    results = [BulkResult(None) for _ in cancellations]
    if not cancellations:
        return results
    rows = {o.number: o for o in read_rows_in(session, _ORDERS_BY_NUMBER, "numbers", sorted({c.number for c in cancellations}))}
    lines: dict[int, list[Any]] = defaultdict(list)
    for line in read_rows_in(session, _ORDER_LINE_ROWS, "ids", sorted(o.id for o in rows.values())):
        lines[line.order_id].append(line)
    accepted: dict[int, tuple[Any, Cancellation]] = {}
    for k, c in enumerate(cancellations):
        order = rows.get(c.number)
        try:
            if order is None:
                raise UnknownOrder(f"Unknown order {c.number!r}", order=c.number)
            if order.id in accepted:
                raise InvalidTransition(f"Order {c.number} is cancelled; cannot cancel it", order=c.number, status="cancelled", action="cancel")
            if order.fulfilment_started_at is not None or any(l.quantity_fulfilled for l in lines[order.id]):
                raise ModificationNotAllowed(f"Order {c.number} is already being fulfilled; open a return instead", order=c.number)
            if order.status not in MANUAL_TRANSITIONS["cancel"]:
                raise InvalidTransition(f"Order {c.number} is {order.status}; cannot cancel it", order=c.number, status=order.status, action="cancel")
        except StoreOMError as exc:
            results[k].error = exc
            continue
        accepted[order.id] = (order, c)
        results[k].number = c.number
    if not accepted:
        return results
    ids = sorted(accepted)
    held = read_rows(session, _ACTIVE_RESERVATIONS, {"order_ids": ids})
    if held:
        inventory.stock_rows(session, {r.product_id for r in held}, {r.location_id for r in held}, lock=True)
        write_rows(session, _RELEASE_ONE, [{"rid": r.id, "now": accepted[r.order_id][1].at} for r in held])
        write_rows(session, _INSERT_MOVEMENTS, [
            {"stock_id": r.stock_id, "kind": "reservation_release", "quantity": 0, "reserved_change": -r.quantity,
             "reason": f"order cancelled: {accepted[r.order_id][1].reason}", "reference": f"order:{r.order_number}", "actor": actor,
             "at": accepted[r.order_id][1].at} for r in held
        ])
    write_rows(session, _CANCEL_LINES, [{"oid": oid} for oid in ids])
    write_rows(session, _VOID_REDEMPTIONS, {"ids": ids})
    events = _void_open(session, accepted, actor=actor)
    write_rows(session, _SET_CANCELLED, [{"oid": oid, "now": c.at} for oid, (_, c) in accepted.items()])
    events += [dict(order_id=oid, kind="order_cancelled", actor=actor, channel=None, data={"reason": c.reason}, at=c.at)
               for oid, (_, c) in accepted.items()]
    record_events(session, sorted(events, key=lambda e: e["order_id"]))  # per order: the void, then the cancellation
    orders = _Orders(session, set(ids))
    messages = []
    for oid, (_, c) in accepted.items():
        order, customer = orders.orders[oid], orders.customers.get(orders.orders[oid].customer_id)
        everything = [{"sku": l.sku, "name": l.name, "quantity": l.quantity} for l in orders.lines[oid]]
        context = {**notifications.order_context(None, order, "order_cancelled", customer=customer, lines=everything), "reason": c.reason}  # type: ignore[arg-type]
        messages.append(dict(kind="order_cancelled", recipient=order.email or (customer.email if customer else None), context=context,
                             dedupe_key=f"order_cancelled:{order.number}", order_id=oid, customer_id=order.customer_id,
                             marketing_consent=customer.marketing_consent if customer else None, at=c.at))
    notifications.enqueue_many(session, messages)
    _forget_loaded(session, Order, OrderLine, Reservation, Payment, PaymentTransaction, PromotionRedemption)
    return results


def _void_open(session: Session, accepted: dict[int, tuple[Any, Cancellation]], *, actor: str | None) -> list[dict[str, Any]]:
    """`payments.void` of everything still authorized on these orders' payments (newest
    authorization first), each at its cancellation's moment. The payment events."""
    payments_of: dict[int, dict[str, Any]] = {}
    for r in read_rows(session, _OPEN_AUTHORIZATIONS, {"order_ids": sorted(accepted)}):
        p = payments_of.setdefault(r.order_id, {"id": r.id, "gateway": r.gateway, "count": 0, "auth": [], "used": defaultdict(Decimal)})
        if p["id"] != r.id:  # the order's first payment, as `orders.cancel_order` reads it
            continue
        p["count"] += 1
        _tally_authorization(p, r)
    txs, events = [], []
    for oid, p in payments_of.items():
        open_parents = [(ref, amount - p["used"][ref]) for ref, amount in p["auth"] if amount - p["used"][ref] > 0]
        amount = sum((left for _, left in open_parents), Decimal(0))
        if amount <= 0:
            continue
        order, c = accepted[oid]
        gw = payments.get_gateway(p["gateway"])
        remaining, approved = amount, True
        for ref, left in reversed(open_parents):
            if remaining <= 0:
                break
            portion = min(left, remaining)
            result = gw.void(ref, portion, f"{order.number}:void:{p['count']}")
            p["count"] += 1
            txs.append(dict(payment_id=p["id"], kind="void", amount=portion, status="succeeded" if result.approved else "declined",
                            gateway_reference=result.reference, parent_reference=ref, message=result.message or None, idempotency_key=None,
                            at=c.at))
            if not result.approved:
                approved = False
                break
            remaining -= portion
        events.append(dict(order_id=oid, kind="payment_voided" if approved else "payment_void_declined", actor=actor, channel=None,
                           data={"amount": str(amount - remaining if approved else amount)}, at=c.at))
    if txs:
        write_rows(session, _INSERT_TRANSACTIONS, txs)
    return events


# --- the catalogue in a batch --------------------------------------------------------------------------

_SKUS_TAKEN = select(Product.sku).where(Product.sku.in_(bindparam("keys", expanding=True)))
_SUPPLIER_IDS = select(Supplier.id, Supplier.code)


def create_products(session: Session, items: list[ProductIn | dict[str, Any]]) -> list[int]:
    """`catalog.create_product` for many (a catalogue set up or imported): the same validation, SKUs
    unique (against the database and within the batch), suppliers by code. Returns the new ids in the
    order of `items`; one bad or duplicate item refuses the whole batch."""
    data = _parse_all(ProductIn, items, "products")
    seen: set[str] = set()
    for d in data:
        if d.sku in seen:
            raise AlreadyExists(f"The batch has SKU {d.sku} twice", sku=d.sku)
        seen.add(d.sku)
    taken = sorted(r[0] for r in read_rows_in(session, _SKUS_TAKEN, "keys", sorted(seen)))
    if taken:
        raise AlreadyExists(f"SKU {taken[0]} already exists", sku=taken[0])
    if not data:
        return []
    suppliers = {r.code: r.id for r in read_rows(session, _SUPPLIER_IDS)}
    unknown = sorted({d.supplier for d in data if d.supplier} - suppliers.keys())
    if unknown:
        raise UnknownSupplier(f"Unknown supplier {unknown[0]!r}", supplier=unknown[0])
    now = utcnow()
    return insert_with_ids(session, Product.__table__, [
        {**d.model_dump(exclude={"supplier"}), "supplier_id": suppliers[d.supplier] if d.supplier else None, "created_at": now} for d in data
    ])


# --- carrier exceptions in a batch --------------------------------------------------------------------

_SHIPMENTS_BY_TRACKING = (
    select(Shipment.id, Shipment.number, Shipment.order_id, Shipment.status, Shipment.delayed, Shipment.tracking_number,
           Shipment.carrier, Shipment.estimated_at, Shipment.promised_at)
    .where(Shipment.tracking_number.in_(bindparam("numbers", expanding=True)))
)
_SCANS_KNOWN = select(TrackingEvent.shipment_id, TrackingEvent.carrier_event_id).where(
    TrackingEvent.shipment_id.in_(bindparam("ids", expanding=True)))
_SET_EXCEPTION = (
    update(Shipment.__table__).where(Shipment.id == bindparam("sid"))
    .values(status=bindparam("status"), delayed=True, estimated_at=bindparam("estimated"))
)


def record_exceptions(session: Session, scans: list[TrackingEventIn | dict[str, Any]], *, received_at: list[datetime] | None = None) -> int:
    """`fulfilment.record_tracking_event` for many carrier 'exception' scans (a parcel held up): each
    recorded once per carrier event id, the shipment in exception unless it is further along, flagged
    delayed (a 'shipment_delayed' event the first time) and its customer told ('delayed' message),
    a 'tracking_exception' event. `received_at`: when each scan came in (default now). Returns how many
    scans were new; one bad scan (unknown tracking number, parcel not dispatched, another kind) refuses
    the whole batch."""
    data = _parse_all(TrackingEventIn, scans, "scans")
    if received_at is not None and len(received_at) != len(data):
        raise ValidationError("received_at needs one moment per scan", errors=[{"field": "received_at", "reason": "length differs from scans"}])
    other = [i for i, d in enumerate(data) if d.kind != "exception"]
    if other:
        raise ValidationError("Only 'exception' scans are recorded in a batch", errors=[{"field": f"{i}.kind", "reason": "not exception"} for i in other])
    if not data:
        return 0
    moments = received_at if received_at is not None else [utcnow()] * len(data)
    shipments = {r.tracking_number: r for r in read_rows_in(session, _SHIPMENTS_BY_TRACKING, "numbers", sorted({d.tracking_number for d in data}))}
    for d in data:
        row = shipments.get(d.tracking_number)
        if row is None:
            raise UnknownShipment(f"No shipment with tracking number {d.tracking_number!r}", tracking_number=d.tracking_number)
        if row.status in ("pending", "packed", "cancelled"):
            raise InvalidTransition(f"Shipment {row.number} has not been dispatched", shipment=row.number, status=row.status)
    known = {(r.shipment_id, r.carrier_event_id) for r in read_rows_in(session, _SCANS_KNOWN, "ids", sorted({r.id for r in shipments.values()}))}
    state = {r.id: {"status": r.status, "delayed": r.delayed, "estimated": r.estimated_at} for r in shipments.values()}
    new, events, flagged, messages = [], [], {}, []
    for d, now in zip(data, moments):
        row = shipments[d.tracking_number]
        if (row.id, d.carrier_event_id) in known:
            continue
        known.add((row.id, d.carrier_event_id))
        new.append({"shipment_id": row.id, "kind": d.kind, "at": d.at, "location_text": d.location, "description": d.description,
                    "carrier_event_id": d.carrier_event_id, "received_at": now})
        st = state[row.id]
        if d.estimated_delivery is not None:
            st["estimated"] = d.estimated_delivery
        if st["status"] != "delivered":
            if TRACKING_PROGRESS[d.kind] >= TRACKING_PROGRESS.get(st["status"], 0):
                st["status"] = STATUS_FOR_EVENT[d.kind]
            why = d.description or "carrier exception"
            if not st["delayed"]:
                st["delayed"] = True
                events.append(dict(order_id=row.order_id, kind="shipment_delayed", actor=None, channel=None,
                                   data={"shipment": row.number, "reason": why}, at=now))
            flagged.setdefault(row.id, (row, why, now, st["estimated"]))  # one message per parcel: the first scan's
        events.append(dict(order_id=row.order_id, kind=f"tracking_{d.kind}", actor=None, channel=None,
                           data={"shipment": row.number, "at": d.at.isoformat()}, at=now))
    if not new:
        return 0
    write_rows(session, _INSERT_TRACKING, new)
    _write_some(session, _SET_EXCEPTION, [{"sid": sid, "status": state[sid]["status"], "estimated": state[sid]["estimated"]} for sid in flagged])
    record_events(session, events)
    if flagged:
        orders = _Orders(session, {row.order_id for row, _, _, _ in flagged.values()})
        for row, why, now, estimated in flagged.values():
            messages.append(orders.message(row.order_id, "delayed", dedupe_suffix=row.number, at=now, tracking_number=row.tracking_number,
                                           carrier=row.carrier, estimated_delivery=f"{estimated:%Y-%m-%d}" if estimated else None, reason=why))
        notifications.enqueue_many(session, messages)
    _forget_loaded(session, Shipment, TrackingEvent)
    return len(new)


# --- purchase orders raised in a batch ----------------------------------------------------------------

_SUPPLIERS = select(Supplier.id, Supplier.code, Supplier.lead_time_days)
_INSERT_PURCHASE_ORDER_LINES = insert(PurchaseOrderLine.__table__)


def create_purchase_orders(session: Session, items: list[PurchaseOrderIn | dict[str, Any]], *, actor: str | None = None,
                           send: bool = False) -> list[str]:
    """`purchasing.create_purchase_order` for many (and, with `send`, `send_purchase_order` right
    after): the same validation, unit costs from the catalog when missing, arrival from the longest
    lead time when not given. Returns the PO numbers in the order of `items`; one bad item (unknown
    supplier, location or SKU, a SKU twice on one order) refuses the whole batch."""
    data = _parse_all(PurchaseOrderIn, items, "purchase orders")
    twice = [i for i, d in enumerate(data) if len({l.sku for l in d.lines}) != len(d.lines)]
    if twice:
        raise ValidationError("Each SKU may appear once per purchase order",
                              errors=[{"field": f"{i}.lines", "reason": "duplicate sku"} for i in twice])
    if not data:
        return []
    suppliers = {r.code: r for r in read_rows(session, _SUPPLIERS)}
    unknown = sorted({d.supplier for d in data} - suppliers.keys())
    if unknown:
        raise UnknownSupplier(f"Unknown supplier {unknown[0]!r}", supplier=unknown[0])
    products, locations = _products_and_locations(session, {l.sku for d in data for l in d.lines}, {d.location for d in data})
    by_id = {r.id: r for r in suppliers.values()}
    now = utcnow()
    orders, lines = [], []
    numbers = iter(numbering.new_numbers(session, PurchaseOrder.number, lambda: numbering.purchase_order_number(now), len(data)))
    for d in data:
        expected = d.expected_at
        if expected is None:
            days = max(_lead_days(products[l.sku], by_id) for l in d.lines)
            expected = now + timedelta(days=float(days))
        orders.append(dict(number=next(numbers), supplier_id=suppliers[d.supplier].id,
                           location_id=locations[d.location].id, status="sent" if send else "draft", expected_at=expected, note=d.note,
                           created_by=actor, created_at=now, sent_at=now if send else None, closed_at=None))
    ids = insert_with_ids(session, PurchaseOrder.__table__, orders)
    for po_id, d in zip(ids, data):
        lines += [dict(purchase_order_id=po_id, product_id=products[l.sku].id, quantity_ordered=l.quantity, quantity_received=0,
                       unit_cost=l.unit_cost if l.unit_cost is not None else products[l.sku].cost) for l in d.lines]
    write_rows(session, _INSERT_PURCHASE_ORDER_LINES, lines)
    return [o["number"] for o in orders]


def _lead_days(product: Any, suppliers: dict[int, Any]) -> Decimal:
    """`catalog.lead_time`'s mean for a product row: its own, else its supplier's, else 7 days."""
    if product.lead_time_days is not None:
        return Decimal(product.lead_time_days)
    supplier = suppliers.get(product.supplier_id)
    return Decimal(supplier.lead_time_days) if supplier is not None else Decimal(7)


__all__ = [
    "BatchLookups", "BulkOrder", "BulkResult", "Cancellation", "FeedbackEntry", "ReturnOpening", "ReturnReceipt", "cancel_orders", "create_customers", "create_products", "create_purchase_orders",
    "deliver_shipments", "record_exceptions",
    "open_returns", "record_feedbacks",
    "place_orders", "receive_returns",
    "receive_purchase_orders", "receive_stock", "refund_returns", "ship_orders", "transfer_stock",
]
