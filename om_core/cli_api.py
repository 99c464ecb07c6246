"""`storeom serve`, `storeom apikey ...` and `storeom webhooks ...`: run the HTTP API, manage its keys
and the ERP/CRM webhook subscriptions.

    storeom serve --host 127.0.0.1 --port 8000 --workers 2
    storeom apikey create --role channel --channel web --name "web shop"     # prints the key once
    storeom apikey create --role store_ops --location ST-NYC --location WH-EAST
    storeom apikey list | storeom apikey revoke PREFIX
    storeom webhooks add https://erp.example.com/hooks --event order.placed --event refund.issued
    storeom webhooks list | storeom webhooks remove ID | storeom webhooks deliver
"""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.orm import Session

from om_core.cli_common import database, emit, in_transaction
from om_core.services.apikeys import ROLES


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Server processes.")
@click.option("--log-level", default="info", show_default=True, type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(host: str, port: int, workers: int, log_level: str) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, interactive docs at /docs)."""
    import copy

    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    log_config = copy.deepcopy(LOGGING_CONFIG)  # plus StoreOM's own (redacted) access log on stderr
    log_config["loggers"]["storeom"] = {"handlers": ["default"], "level": log_level.upper(), "propagate": False}
    uvicorn.run("om_core.api:serve_app", factory=True, host=host, port=port, workers=workers, log_level=log_level,
                log_config=log_config, access_log=False, server_header=False)


@click.group("apikey")
def apikey() -> None:
    """API keys: create (shown once), list, revoke."""


@apikey.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--channel", help="The channel a channel key sells on.")
@click.option("--location", "locations", multiple=True, help="A location of a store_ops key (repeatable).")
@click.option("--name", help="Who or what uses the key.")
@in_transaction
def apikey_create(session: Session, role: str, channel: str | None, locations: tuple[str, ...], name: str | None) -> dict[str, Any]:
    """Create a key and print it: this is the only time it is shown."""
    from om_core.services.apikeys import create_api_key, key_view

    row, key = create_api_key(session, {"role": role, "channel": channel, "locations": list(locations), "name": name})
    click.echo("Store this key now: it is not shown again.", err=True)
    return {"key": key, **key_view(session, row)}


@apikey.command("list")
@click.option("--active", is_flag=True, help="Leave out revoked keys.")
@in_transaction
def apikey_list(session: Session, active: bool) -> list[dict[str, Any]]:
    from om_core.services.apikeys import key_view, list_api_keys

    return [key_view(session, k) for k in list_api_keys(session, include_revoked=not active)]


@apikey.command("revoke")
@click.argument("prefix")
@in_transaction
def apikey_revoke(session: Session, prefix: str) -> dict[str, Any]:
    """Revoke a key by its prefix (running servers stop accepting it within a few seconds)."""
    from om_core.services.apikeys import key_view, revoke_api_key

    return key_view(session, revoke_api_key(session, prefix))


@click.group("webhooks")
def webhooks() -> None:
    """Webhook subscriptions for ERP/CRM systems, and delivering them."""


@webhooks.command("add")
@click.argument("url")
@click.option("--event", "events", multiple=True, required=True, help="Event type (repeatable), e.g. order.placed.")
@click.option("--secret", help="Signing secret (default: a new random one, printed once).")
@click.option("--description")
@in_transaction
def webhooks_add(session: Session, url: str, events: tuple[str, ...], secret: str | None, description: str | None) -> dict[str, Any]:
    from om_core.services.webhooks import create_subscription, subscription_view

    sub = create_subscription(session, {"url": url, "event_types": list(events), "secret": secret, "description": description})
    return subscription_view(sub) | {"secret": sub.secret}


@webhooks.command("list")
@in_transaction
def webhooks_list(session: Session) -> list[dict[str, Any]]:
    from om_core.services.webhooks import list_subscriptions, subscription_view

    return [subscription_view(s) for s in list_subscriptions(session)]


@webhooks.command("remove")
@click.argument("subscription_id", type=int)
@in_transaction
def webhooks_remove(session: Session, subscription_id: int) -> dict[str, Any]:
    from om_core.services.webhooks import remove_subscription, subscription_view

    return subscription_view(remove_subscription(session, subscription_id))


@webhooks.command("deliver")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=10_000, show_default=True)
@click.option("--timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True, help="Seconds per HTTP request.")
@click.option("--low-stock", "low_stock", type=click.IntRange(0, 1_000_000), default=5, show_default=True,
              help="Available units at or below which stock.low is sent (once a day per SKU and location).")
def webhooks_deliver(limit: int, timeout: float, low_stock: int) -> None:
    """One delivery pass: look for low stock, then POST due webhook messages (failures retry with backoff)."""
    from om_core.services.webhooks import deliver

    db = database()
    try:
        report = deliver(db, limit=limit, timeout=timeout, low_stock_threshold=low_stock)
    finally:
        db.dispose()
    emit(report.to_dict())


__all__ = ["apikey", "serve", "webhooks"]
