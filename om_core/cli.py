"""The `storeom` command line: what store and warehouse staff, scripts and `make demo` run.

Every command prints JSON on success; a refused request prints `error [code]: message` (and the
details as JSON) on stderr and exits 1, having written nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from om_core import __version__
from om_core.cli_common import (
    database,
    emit,
    in_transaction,
    model_dict,
    parse_pair,
    read_json,
    sku_lines,
)
from om_core.config import get_settings
from om_core.models import Shipment


@click.group()
@click.version_option(version=__version__, prog_name="storeom")
def main() -> None:
    """StoreOM: store order management and retail analytics."""


# --- db -------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema (SQLite in STOREOM_HOME, or STOREOM_DATABASE_URL)."""
    from om_core.schema import current_revision, upgrade

    url = get_settings().database_url
    upgrade(url, revision)
    click.echo(f"database at revision {current_revision(url)}: {_safe_url(url)}")


@db.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (developers)."""
    from om_core.schema import new_revision

    new_revision(get_settings().database_url, message)


@db.command("verify")
def db_verify() -> None:
    """Re-derive every stock row from the movement ledger; exit 1 if any disagrees."""
    from om_core.services.inventory import verify_ledger

    database_ = database()
    with database_.read() as session:
        problems = verify_ledger(session)
    emit({"consistent": not problems, "problems": problems})
    if problems:
        sys.exit(1)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# --- catalog and network ----------------------------------------------------------------------


@main.group()
def supplier() -> None:
    """Suppliers."""


@supplier.command("add")
@click.argument("code")
@click.option("--name", required=True)
@click.option("--email")
@click.option("--lead-time-days", type=Decimal, default=Decimal(7), show_default=True)
@click.option("--lead-time-std-days", type=Decimal, default=Decimal(0), show_default=True)
@in_transaction
def supplier_add(session: Session, code: str, name: str, email: str | None, lead_time_days: Decimal, lead_time_std_days: Decimal) -> dict[str, Any]:
    from om_core.services.catalog import create_supplier

    s = create_supplier(session, {"code": code, "name": name, "email": email, "lead_time_days": lead_time_days, "lead_time_std_days": lead_time_std_days})
    return model_dict(s, "id", "code", "name", "lead_time_days", "lead_time_std_days")


PRODUCT_FIELDS = ("id", "sku", "name", "category", "price", "cost", "tax_class", "pack_size", "min_order_qty", "returnable", "backorder_policy", "active")


@main.group()
def product() -> None:
    """Catalog: products and SKUs."""


@product.command("add")
@click.argument("sku")
@click.option("--name", required=True)
@click.option("--category", required=True)
@click.option("--price", required=True)
@click.option("--cost", required=True)
@click.option("--supplier")
@click.option("--tax-class", default="standard", show_default=True)
@click.option("--size")
@click.option("--colour")
@click.option("--pack-size", type=int, default=1, show_default=True)
@click.option("--weight-kg", default="0.5", show_default=True)
@click.option("--backorder/--no-backorder", default=False, help="Allow backorders when out of stock.")
@click.option("--non-returnable", is_flag=True)
@in_transaction
def product_add(session: Session, sku: str, **opts: Any) -> dict[str, Any]:
    from om_core.services.catalog import create_product

    data = {k: v for k, v in opts.items() if v is not None and k not in ("backorder", "non_returnable")}
    data |= {"sku": sku, "backorder_policy": "allow" if opts["backorder"] else "deny", "returnable": not opts["non_returnable"]}
    return model_dict(create_product(session, data), *PRODUCT_FIELDS)


@product.command("show")
@click.argument("sku")
@in_transaction
def product_show(session: Session, sku: str) -> dict[str, Any]:
    from om_core.services.catalog import get_product

    return model_dict(get_product(session, sku), *PRODUCT_FIELDS, "size", "colour", "attributes", "weight_kg")


@product.command("list")
@click.option("--category")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@in_transaction
def product_list(session: Session, category: str | None, limit: int) -> list[dict[str, Any]]:
    from om_core.services.catalog import list_products

    return [model_dict(p, *PRODUCT_FIELDS) for p in list_products(session, category=category, limit=limit)]


@main.group()
def location() -> None:
    """Warehouses, stores and dropship suppliers."""


@location.command("add")
@click.argument("code")
@click.option("--name", required=True)
@click.option("--kind", type=click.Choice(["warehouse", "store", "dropship"]), required=True)
@click.option("--lat", "latitude", type=float)
@click.option("--lon", "longitude", type=float)
@click.option("--city")
@click.option("--region")
@click.option("--postal-code")
@click.option("--country", default="US", show_default=True)
@click.option("--pickup", "can_pickup", is_flag=True, help="Offers in-store pickup.")
@click.option("--ship-from-store", "can_ship_from_store", is_flag=True)
@click.option("--no-ship", is_flag=True, help="Does not ship online orders.")
@click.option("--supplier", help="The supplier behind a dropship location.")
@in_transaction
def location_add(session: Session, code: str, no_ship: bool, **opts: Any) -> dict[str, Any]:
    from om_core.services.locations import create_location

    data = {k: v for k, v in opts.items() if v not in (None, False)} | {"code": code, "can_ship": not no_ship}
    loc = create_location(session, data)
    return model_dict(loc, "id", "code", "name", "kind", "can_ship", "can_pickup", "can_ship_from_store")


@location.command("list")
@in_transaction
def location_list(session: Session) -> list[dict[str, Any]]:
    from om_core.services.locations import list_locations

    return [model_dict(l, "code", "name", "kind", "city", "country", "can_ship", "can_pickup", "can_ship_from_store") for l in list_locations(session)]


@main.group()
def channel() -> None:
    """Sales channels and the locations whose stock they sell."""


@channel.command("add")
@click.argument("code")
@click.option("--name", required=True)
@click.option("--kind", type=click.Choice(["web", "app", "pos", "marketplace"]), required=True)
@click.option("--prices-include-tax", is_flag=True)
@click.option("--currency", default="USD", show_default=True)
@click.option("--location", "locations", multiple=True, help="Location code, in preference order (repeatable).")
@in_transaction
def channel_add(session: Session, code: str, **opts: Any) -> dict[str, Any]:
    from om_core.services.locations import create_channel

    ch = create_channel(session, {"code": code, **opts, "locations": list(opts["locations"])})
    return model_dict(ch, "id", "code", "name", "kind", "prices_include_tax", "currency") | {"locations": list(opts["locations"])}


@channel.command("assign")
@click.argument("channel_code")
@click.argument("location_code")
@click.option("--priority", type=int, default=100, show_default=True)
@in_transaction
def channel_assign(session: Session, channel_code: str, location_code: str, priority: int) -> dict[str, Any]:
    from om_core.services.locations import assign_location

    assign_location(session, channel_code, location_code, priority=priority)
    return {"channel": channel_code, "location": location_code, "priority": priority}


# --- stock ------------------------------------------------------------------------------------


@main.group()
def stock() -> None:
    """On hand, receipts, counts, transfers and availability."""


@stock.command("receive")
@click.argument("sku")
@click.argument("location_code")
@click.argument("quantity", type=int)
@click.option("--reference")
@click.option("--actor", default="cli")
@in_transaction
def stock_receive(session: Session, sku: str, location_code: str, quantity: int, reference: str | None, actor: str) -> dict[str, Any]:
    from om_core.services.inventory import available_to_promise, receive_stock

    receive_stock(session, {"sku": sku, "location": location_code, "quantity": quantity, "reference": reference}, actor=actor)
    return available_to_promise(session, sku, location=location_code)


@stock.command("adjust")
@click.argument("sku")
@click.argument("location_code")
@click.option("--delta", type=int, help="Signed change of on hand.")
@click.option("--counted", type=int, help="Quantity found in a count (sets on hand).")
@click.option("--reason", type=click.Choice(["count", "damage", "theft", "found", "expired", "correction", "initial"]), required=True)
@click.option("--note")
@click.option("--actor", default="cli")
@in_transaction
def stock_adjust(session: Session, sku: str, location_code: str, actor: str, **opts: Any) -> dict[str, Any]:
    from om_core.services.inventory import adjust_stock, available_to_promise

    movement = adjust_stock(session, {"sku": sku, "location": location_code, **{k: v for k, v in opts.items() if v is not None}}, actor=actor)
    return {"change": movement.quantity, **available_to_promise(session, sku, location=location_code)}


@stock.command("transfer")
@click.argument("sku")
@click.argument("from_location")
@click.argument("to_location")
@click.argument("quantity", type=int)
@click.option("--reason")
@click.option("--actor", default="cli")
@in_transaction
def stock_transfer(session: Session, sku: str, from_location: str, to_location: str, quantity: int, reason: str | None, actor: str) -> dict[str, Any]:
    from om_core.services.inventory import transfer_stock

    t = transfer_stock(session, {"sku": sku, "from_location": from_location, "to_location": to_location, "quantity": quantity, "reason": reason}, actor=actor)
    return {"transfer_id": t.id, "sku": sku, "from": from_location, "to": to_location, "quantity": quantity}


@stock.command("show")
@click.argument("sku")
@click.option("--channel", "channel_code")
@click.option("--location", "location_code")
@in_transaction
def stock_show(session: Session, sku: str, channel_code: str | None, location_code: str | None) -> dict[str, Any]:
    """Available to promise per location (and in total) for a SKU."""
    from om_core.services.inventory import available_to_promise

    return available_to_promise(session, sku, channel=channel_code, location=location_code)


@stock.command("movements")
@click.argument("sku")
@click.option("--location", "location_code")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@in_transaction
def stock_movements(session: Session, sku: str, location_code: str | None, limit: int) -> list[dict[str, Any]]:
    from om_core.services.inventory import movements_for

    return [model_dict(m, "id", "kind", "quantity", "reserved_change", "reason", "reference", "actor", "at") for m in movements_for(session, sku, location_code, limit)]


# --- customers, pricing rules -----------------------------------------------------------------


@main.group()
def customer() -> None:
    """Customers."""


@customer.command("add")
@click.option("--email")
@click.option("--first-name")
@click.option("--last-name")
@click.option("--phone")
@click.option("--external-ref")
@click.option("--marketing-consent", is_flag=True)
@click.option("--line1")
@click.option("--city")
@click.option("--region")
@click.option("--postal-code")
@click.option("--country")
@in_transaction
def customer_add(session: Session, line1: str | None, city: str | None, region: str | None, postal_code: str | None, country: str | None, **opts: Any) -> dict[str, Any]:
    from om_core.services.customers import create_customer

    data: dict[str, Any] = {k: v for k, v in opts.items() if v not in (None, False)}
    if line1 or city or postal_code or country:
        data["address"] = {k: v for k, v in dict(line1=line1, city=city, region=region, postal_code=postal_code, country=country).items() if v is not None}
    c = create_customer(session, data)
    return model_dict(c, "id", "email", "first_name", "last_name", "phone", "marketing_consent")


@customer.command("show")
@click.argument("customer_id", type=int)
@in_transaction
def customer_show(session: Session, customer_id: int) -> dict[str, Any]:
    from om_core.services.customers import get_customer

    c = get_customer(session, customer_id)
    return model_dict(c, "id", "email", "first_name", "last_name", "phone", "marketing_consent", "segment") | {
        "addresses": [model_dict(a, "line1", "city", "region", "postal_code", "country") for a in c.addresses]
    }


@main.group()
def tax() -> None:
    """Tax rates."""


@tax.command("set")
@click.argument("country")
@click.argument("rate")
@click.option("--region", default="")
@click.option("--tax-class", default="standard", show_default=True)
@in_transaction
def tax_set(session: Session, country: str, rate: str, region: str, tax_class: str) -> dict[str, Any]:
    from om_core.services.taxes import set_tax_rate

    r = set_tax_rate(session, {"country": country, "region": region, "tax_class": tax_class, "rate": rate})
    return model_dict(r, "country", "region", "tax_class", "rate")


@main.group()
def shipping() -> None:
    """Shipping methods and their charges."""


@shipping.command("add")
@click.argument("code")
@click.option("--name", required=True)
@click.option("--service-level", type=click.Choice(["standard", "expedited", "overnight"]), required=True)
@click.option("--base-price", required=True)
@click.option("--price-per-kg", default="0", show_default=True)
@click.option("--free-over")
@click.option("--promised-days", type=int, required=True)
@in_transaction
def shipping_add(session: Session, code: str, **opts: Any) -> dict[str, Any]:
    from om_core.services.shipping import create_shipping_method

    m = create_shipping_method(session, {"code": code, **{k: v for k, v in opts.items() if v is not None}})
    return model_dict(m, "code", "name", "service_level", "base_price", "price_per_kg", "free_over", "promised_days")


@main.group()
def promo() -> None:
    """Promotions and coupon codes."""


@promo.command("add")
@click.argument("source", metavar="JSON_FILE|-")
@in_transaction
def promo_add(session: Session, source: str) -> dict[str, Any]:
    """Create a promotion from JSON (see om_core.services.promotions.PromotionIn)."""
    from om_core.services.promotions import create_promotion

    p = create_promotion(session, read_json(source))
    return model_dict(p, "id", "name", "kind", "scope", "target", "value", "coupon_code", "priority", "stackable")


# --- orders -----------------------------------------------------------------------------------


def _order_request(source: str | None, opts: dict[str, Any]) -> dict[str, Any]:
    if source:
        return read_json(source)
    lines = sku_lines(opts["lines"])
    request = {
        "channel": opts["channel"], "lines": lines, "customer_id": opts["customer_id"], "email": opts["email"],
        "delivery": opts["delivery"], "shipping_method": opts["shipping_method"], "pickup_location": opts["pickup_location"],
        "location": opts["store"], "coupon_codes": list(opts["coupons"]), "payment_token": opts["token"],
        "allow_backorder": opts["allow_backorder"],
    }
    return {k: v for k, v in request.items() if v not in (None, [], False)}


def order_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--json", "source", metavar="FILE|-", help="The whole request as JSON instead of options."),
        click.option("--channel"),
        click.option("--line", "lines", multiple=True, metavar="SKU:QTY"),
        click.option("--customer", "customer_id", type=int),
        click.option("--email"),
        click.option("--delivery", type=click.Choice(["ship", "pickup", "carry_out"]), default="ship", show_default=True),
        click.option("--shipping-method"),
        click.option("--pickup-location"),
        click.option("--store", help="Selling store for carry_out."),
        click.option("--coupon", "coupons", multiple=True),
        click.option("--token", help="Payment token from the gateway."),
        click.option("--allow-backorder", is_flag=True),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@main.group()
def order() -> None:
    """Quote, place, modify, cancel and show orders."""


@order.command("quote")
@order_options
@in_transaction
def order_quote(session: Session, source: str | None, **opts: Any) -> dict[str, Any]:
    """Price and allocate an order without placing it."""
    from om_core.services.orders import quote

    return quote(session, _order_request(source, opts)).to_dict()


@order.command("place")
@order_options
@click.option("--idempotency-key", help="Retrying with the same key returns the first result.")
@click.option("--actor", default="cli")
@in_transaction
def order_place(session: Session, source: str | None, idempotency_key: str | None, actor: str, **opts: Any) -> dict[str, Any]:
    from om_core.services.orders import order_view, place_order

    return order_view(session, place_order(session, _order_request(source, opts), idempotency_key=idempotency_key, actor=actor))


@order.command("show")
@click.argument("number")
@in_transaction
def order_show(session: Session, number: str) -> dict[str, Any]:
    from om_core.services.orders import get_order, order_view

    return order_view(session, get_order(session, number))


@order.command("modify")
@click.argument("number")
@click.option("--json", "source", metavar="FILE|-", help="Changes as JSON (ModifyOrderIn).")
@click.option("--set", "set_quantities", multiple=True, metavar="LINE_NO:QTY")
@click.option("--add", "add_lines", multiple=True, metavar="SKU:QTY")
@click.option("--remove", "remove_lines", multiple=True, type=int, metavar="LINE_NO")
@click.option("--shipping-method")
@click.option("--idempotency-key")
@click.option("--actor", default="cli")
@in_transaction
def order_modify(session: Session, number: str, source: str | None, set_quantities: tuple[str, ...], add_lines: tuple[str, ...],
                 remove_lines: tuple[int, ...], shipping_method: str | None, idempotency_key: str | None, actor: str) -> dict[str, Any]:
    from om_core.services.orders import modify_order, order_view

    if source:
        changes = read_json(source)
    else:
        changes = {
            "set_quantities": {int(k): q for k, q in (parse_pair(spec, numeric_key=True) for spec in set_quantities)},
            "add_lines": sku_lines(add_lines),
            "remove_lines": list(remove_lines),
        } | ({"shipping_method": shipping_method} if shipping_method else {})
    return order_view(session, modify_order(session, number, changes, idempotency_key=idempotency_key, actor=actor))


@order.command("cancel")
@click.argument("number")
@click.option("--reason", required=True)
@click.option("--actor", default="cli")
@in_transaction
def order_cancel(session: Session, number: str, reason: str, actor: str) -> dict[str, Any]:
    from om_core.services.orders import cancel_order, order_view

    return order_view(session, cancel_order(session, number, reason=reason, actor=actor))


@order.command("hold")
@click.argument("number")
@click.option("--reason", required=True)
@click.option("--actor", default="cli")
@in_transaction
def order_hold(session: Session, number: str, reason: str, actor: str) -> dict[str, Any]:
    from om_core.services.orders import hold_order

    o = hold_order(session, number, reason=reason, actor=actor)
    return {"number": o.number, "status": o.status}


@order.command("release")
@click.argument("number")
@click.option("--actor", default="cli")
@in_transaction
def order_release(session: Session, number: str, actor: str) -> dict[str, Any]:
    from om_core.services.orders import release_order

    o = release_order(session, number, actor=actor)
    return {"number": o.number, "status": o.status}


@order.command("fill-backorders")
@click.option("--sku", help="Only this SKU.")
@click.option("--actor", default="cli")
@in_transaction
def order_fill_backorders(session: Session, sku: str | None, actor: str) -> dict[str, Any]:
    """Reserve stock that has arrived for backordered lines, oldest order first."""
    from om_core.services.orders import fill_backorders

    return {"reserved": fill_backorders(session, sku=sku, actor=actor)}


@main.group()
def payment() -> None:
    """Capture, void and refund an order's payment."""


def _payment_command(kind: str) -> None:
    @payment.command(kind)
    @click.argument("number")
    @click.option("--amount", help="Default: everything open (capture/void).", required=kind == "refund")
    @click.option("--idempotency-key")
    @click.option("--actor", default="cli")
    @in_transaction
    def command(session: Session, number: str, amount: str | None, idempotency_key: str | None, actor: str) -> dict[str, Any]:
        from om_core.services import payments

        tx = getattr(payments, kind)(session, number, Decimal(amount) if amount else None, idempotency_key=idempotency_key, actor=actor)
        return model_dict(tx, "id", "kind", "amount", "status", "gateway_reference", "at")


for _kind in ("capture", "void", "refund"):
    _payment_command(_kind)


# --- purchase orders --------------------------------------------------------------------------


@main.group()
def po() -> None:
    """Purchase orders to suppliers."""


def _po_view(p: Any) -> dict[str, Any]:
    return model_dict(p, "number", "status", "expected_at", "created_at", "sent_at") | {
        "lines": [{"sku": l.product.sku, "ordered": l.quantity_ordered, "received": l.quantity_received, "unit_cost": l.unit_cost} for l in p.lines]
    }


@po.command("create")
@click.option("--supplier", required=True)
@click.option("--location", "location_code", required=True)
@click.option("--line", "lines", multiple=True, required=True, metavar="SKU:QTY")
@click.option("--actor", default="cli")
@in_transaction
def po_create(session: Session, supplier: str, location_code: str, lines: tuple[str, ...], actor: str) -> dict[str, Any]:
    from om_core.services.purchasing import create_purchase_order

    return _po_view(create_purchase_order(session, {"supplier": supplier, "location": location_code, "lines": sku_lines(lines)}, actor=actor))


@po.command("send")
@click.argument("number")
@in_transaction
def po_send(session: Session, number: str) -> dict[str, Any]:
    from om_core.services.purchasing import send_purchase_order

    return _po_view(send_purchase_order(session, number))


@po.command("receive")
@click.argument("number")
@click.option("--line", "lines", multiple=True, metavar="SKU:QTY", help="Default: everything outstanding.")
@click.option("--actor", default="cli")
@in_transaction
def po_receive(session: Session, number: str, lines: tuple[str, ...], actor: str) -> dict[str, Any]:
    from om_core.services.purchasing import receive_purchase_order

    return _po_view(receive_purchase_order(session, number, sku_lines(lines) if lines else None, actor=actor))


@po.command("cancel")
@click.argument("number")
@in_transaction
def po_cancel(session: Session, number: str) -> dict[str, Any]:
    from om_core.services.purchasing import cancel_purchase_order

    return _po_view(cancel_purchase_order(session, number))


@po.command("show")
@click.argument("number")
@in_transaction
def po_show(session: Session, number: str) -> dict[str, Any]:
    from om_core.services.purchasing import get_purchase_order

    return _po_view(get_purchase_order(session, number))


# --- fulfilment -------------------------------------------------------------------------------


@order.command("route")
@click.argument("number")
@click.option("--strategy", type=click.Choice(["nearest_with_stock", "fewest_shipments", "lowest_cost"]), help="Default: the channel's.")
@click.option("--actor", default="cli")
@in_transaction
def order_route(session: Session, number: str, strategy: str | None, actor: str) -> dict[str, Any]:
    """Choose (again) the locations that fulfil an order and move its reservations there."""
    from om_core.services.orders import order_view, route_order

    order = route_order(session, number, strategy=strategy, actor=actor)
    return {"routing_reason": order.routing_reason, **order_view(session, order)}


@main.group()
def shipment() -> None:
    """Shipments: create, pack, ship, track, deliver; in-store pickup."""


@shipment.command("create")
@click.argument("order_number")
@click.option("--actor", default="cli")
@in_transaction
def shipment_create(session: Session, order_number: str, actor: str) -> list[dict[str, Any]]:
    """One shipment per location for the order's reserved units."""
    from om_core.services import fulfilment

    return [fulfilment.shipment_view(session, s) for s in fulfilment.create_shipments(session, order_number, actor=actor)]


@main.command("picklist")
@click.argument("location_code")
@in_transaction
def picklist(session: Session, location_code: str) -> dict[str, Any]:
    """What to pick at a location: totals per SKU and lines per shipment."""
    from om_core.services.fulfilment import pick_list

    return pick_list(session, location_code)


@shipment.command("pack")
@click.argument("number")
@click.option("--package", "packages", multiple=True, metavar="KG[:LxWxH]", help="One per box (cm); default: one box of the goods' weight.")
@click.option("--actor", default="cli")
@in_transaction
def shipment_pack(session: Session, number: str, packages: tuple[str, ...], actor: str) -> dict[str, Any]:
    from om_core.services import fulfilment

    parsed = []
    for spec in packages:
        weight, _, dims = spec.partition(":")
        box: dict[str, Any] = {"weight_kg": weight}
        if dims:
            parts = dims.lower().split("x")
            if len(parts) != 3:
                raise click.BadParameter(f"--package takes KG or KG:LxWxH, got {spec!r}")
            box |= dict(zip(("length_cm", "width_cm", "height_cm"), parts, strict=True))
        parsed.append(box)
    return fulfilment.shipment_view(session, fulfilment.pack_shipment(session, number, parsed or None, actor=actor))


@shipment.command("ship")
@click.argument("number")
@click.option("--carrier")
@click.option("--tracking-number")
@click.option("--actor", default="cli")
@in_transaction
def shipment_ship(session: Session, number: str, carrier: str | None, tracking_number: str | None, actor: str) -> dict[str, Any]:
    """Dispatch: prints the label path and the tracking number."""
    from om_core.services import fulfilment

    s = fulfilment.dispatch_shipment(session, number, carrier=carrier, tracking_number=tracking_number, actor=actor)
    return {"label_path": s.label_path, "tracking_number": s.tracking_number, **fulfilment.shipment_view(session, s)}


@shipment.command("track")
@click.argument("tracking_number")
@click.option("--event", "kind", type=click.Choice(["label_created", "picked_up", "in_transit", "out_for_delivery", "delivered", "exception"]), required=True)
@click.option("--id", "carrier_event_id", required=True, help="The carrier's event id (makes ingestion idempotent).")
@click.option("--at", "at", help="ISO timestamp with time zone (default: now).")
@click.option("--location")
@click.option("--description")
@click.option("--estimated-delivery", help="ISO timestamp with time zone.")
@in_transaction
def shipment_track(session: Session, tracking_number: str, kind: str, carrier_event_id: str, at: str | None, **opts: Any) -> dict[str, Any]:
    """Record a carrier tracking event."""
    from om_core.clock import utcnow
    from om_core.services import fulfilment

    data = {"tracking_number": tracking_number, "kind": kind, "carrier_event_id": carrier_event_id, "at": at or utcnow().isoformat(),
            **{k: v for k, v in opts.items() if v is not None}}
    fulfilment.record_tracking_event(session, data)
    s = session.scalar(select(Shipment).where(Shipment.tracking_number == tracking_number))
    return fulfilment.shipment_view(session, s)


def _shipment_step(name: str, service: str, doc: str) -> None:
    """`storeom shipment <name> NUMBER`: one fulfilment step on one shipment, printing the shipment."""

    @shipment.command(name, help=doc)
    @click.argument("number")
    @click.option("--actor", default="cli")
    @in_transaction
    def command(session: Session, number: str, actor: str) -> dict[str, Any]:
        from om_core.services import fulfilment

        return fulfilment.shipment_view(session, getattr(fulfilment, service)(session, number, actor=actor))


for _name, _service, _doc in (
    ("deliver", "mark_delivered", "Delivered without a carrier scan (own van, proof entered by staff)."),
    ("ready", "mark_ready_for_pickup", "An in-store pickup is ready at the counter (the customer is told)."),
    ("collect", "collect_pickup", "The customer collected an in-store pickup."),
):
    _shipment_step(_name, _service, _doc)


@shipment.command("show")
@click.argument("number")
@in_transaction
def shipment_show(session: Session, number: str) -> dict[str, Any]:
    from om_core.services import fulfilment

    return fulfilment.shipment_view(session, fulfilment.get_shipment(session, number))


@shipment.command("delays")
@in_transaction
def shipment_delays(session: Session) -> dict[str, Any]:
    """Flag parcels past their promise and tell their customers."""
    from om_core.services import fulfilment

    return {"delayed": fulfilment.detect_delays(session)}


@shipment.command("expire-pickups")
@in_transaction
def shipment_expire_pickups(session: Session) -> dict[str, Any]:
    """Release uncollected pickups past their hold."""
    from om_core.services import fulfilment

    return {"expired": fulfilment.expire_pickups(session)}


@main.group("return")
def return_() -> None:
    """Returns and exchanges."""


@return_.command("open")
@click.argument("order_number")
@click.option("--line", "lines", multiple=True, required=True, metavar="LINE_NO:QTY")
@click.option("--reason", required=True, type=click.Choice(["damaged", "defective", "wrong_item", "not_as_described", "late_delivery", "size_fit", "no_longer_needed", "other"]))
@click.option("--note")
@click.option("--actor", default="cli")
@in_transaction
def return_open(session: Session, order_number: str, lines: tuple[str, ...], reason: str, note: str | None, actor: str) -> dict[str, Any]:
    from om_core.services import returns

    parsed = [{"line_no": int(k), "quantity": q} for k, q in (parse_pair(spec, numeric_key=True) for spec in lines)]
    rma = returns.open_return(session, order_number, {"reason_code": reason, "lines": parsed, "note": note}, actor=actor)
    return returns.return_view(session, rma)


@return_.command("receive")
@click.argument("number")
@click.option("--location", "location_code", required=True)
@click.option("--condition", "conditions", multiple=True, metavar="LINE_NO:CONDITION", help="resellable (default), damaged or wrong_item.")
@click.option("--actor", default="cli")
@in_transaction
def return_receive(session: Session, number: str, location_code: str, conditions: tuple[str, ...], actor: str) -> dict[str, Any]:
    from om_core.services import returns

    inspections = []
    for spec in conditions:
        line_no, _, condition = spec.partition(":")
        if not line_no.isdecimal() or not condition:
            raise click.BadParameter(f"--condition takes LINE_NO:CONDITION, got {spec!r}")
        inspections.append({"line_no": int(line_no), "condition": condition})
    return returns.return_view(session, returns.receive_return(session, number, location_code, inspections, actor=actor))


@return_.command("refund")
@click.argument("number")
@click.option("--restocking-fee", default="0", show_default=True, help="Fraction of the goods' value kept, e.g. 0.10.")
@click.option("--idempotency-key")
@click.option("--actor", default="cli")
@in_transaction
def return_refund(session: Session, number: str, restocking_fee: str, idempotency_key: str | None, actor: str) -> dict[str, Any]:
    from om_core.services import returns

    try:
        rate = Decimal(restocking_fee)
    except ArithmeticError:
        raise click.BadParameter(f"--restocking-fee takes a number, got {restocking_fee!r}") from None
    rma = returns.refund_return(session, number, restocking_fee_rate=rate, idempotency_key=idempotency_key, actor=actor)
    return returns.return_view(session, rma)


@return_.command("exchange")
@click.argument("number")
@click.option("--line", "lines", multiple=True, required=True, metavar="SKU:QTY")
@click.option("--actor", default="cli")
@in_transaction
def return_exchange(session: Session, number: str, lines: tuple[str, ...], actor: str) -> dict[str, Any]:
    """A no-charge replacement order for a return."""
    from om_core.services import returns
    from om_core.services.orders import order_view

    return order_view(session, returns.create_exchange(session, number, sku_lines(lines), actor=actor))


@return_.command("show")
@click.argument("number")
@in_transaction
def return_show(session: Session, number: str) -> dict[str, Any]:
    from om_core.services import returns

    return returns.return_view(session, returns.get_return(session, number))


@main.command("feedback")
@click.argument("order_number")
@click.option("--rating", type=int, required=True)
@click.option("--recommend", "would_recommend", type=int, help="0-10")
@click.option("--comment")
@click.option("--tag", "tags", multiple=True)
@in_transaction
def feedback(session: Session, order_number: str, rating: int, would_recommend: int | None, comment: str | None, tags: tuple[str, ...]) -> dict[str, Any]:
    """Record a customer's feedback on a delivered order."""
    from om_core.services.feedback import record_feedback

    f = record_feedback(session, order_number, {"rating": rating, "would_recommend": would_recommend, "comment": comment, "tags": list(tags)})
    return model_dict(f, "id", "rating", "would_recommend", "comment", "tags", "created_at")


@main.group()
def outbox() -> None:
    """Customer messages waiting to be sent."""


@outbox.command("dispatch")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=10_000, show_default=True)
def outbox_dispatch(limit: int) -> None:
    """Send due messages (SMTP when STOREOM_SMTP_HOST is set, else .eml files in STOREOM_HOME/outbox)."""
    from om_core.services.notifications import dispatch

    db = database()
    try:
        report = dispatch(db, limit=limit)
    finally:
        db.dispose()
    emit({"sent": report.sent, "failed": report.failed, "dead": report.dead})


# --- demo -------------------------------------------------------------------------------------


def _register_subcommands() -> None:
    """Command groups that live in their own modules."""
    from om_core.cli_api import apikey, serve, webhooks
    from om_core.cli_dashboards import dashboards
    from om_core.cli_demo import demo
    from om_core.cli_import import import_group
    from om_core.cli_pipeline import pipeline_group
    from om_core.cli_recommend import recommendations_group
    from om_core.cli_reorder import reorder_group
    from om_core.cli_simulate import simulate

    main.add_command(serve, "serve")
    main.add_command(apikey, "apikey")
    main.add_command(webhooks, "webhooks")
    main.add_command(import_group, "import")
    main.add_command(pipeline_group, "pipeline")
    main.add_command(recommendations_group, "recommendations")
    main.add_command(reorder_group, "reorder")
    main.add_command(simulate, "simulate")
    main.add_command(demo, "demo")
    main.add_command(dashboards, "dashboards")


_register_subcommands()


if __name__ == "__main__":
    main()
