"""Admin only: API keys (shown once at creation) and webhook subscriptions with their delivery log."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from om_core.api.routers._common import Id, Limit, Offset, allow, database, ok, page, write
from om_core.db import Database
from om_core.services import apikeys, webhooks
from om_core.services.apikeys import Principal

router = APIRouter(tags=["admin"])
ADMIN = allow()


@router.post("/api-keys", status_code=201, summary="Create an API key (the key is in this answer only)")
def create_key(body: apikeys.ApiKeyIn, db: Database = Depends(database), _: Principal = Depends(ADMIN)):
    with write(db) as s:
        row, key = apikeys.create_api_key(s, body)
        view = {"key": key, **apikeys.key_view(s, row)}
    return ok(view, 201)


@router.get("/api-keys", summary="List API keys (never the keys themselves)")
def list_keys(db: Database = Depends(database), _: Principal = Depends(ADMIN)):
    with db.read() as s:
        return ok({"items": [apikeys.key_view(s, k) for k in apikeys.list_api_keys(s)]})


@router.delete("/api-keys/{prefix}", summary="Revoke an API key")
def revoke_key(prefix: str, request: Request, db: Database = Depends(database), _: Principal = Depends(ADMIN)):
    with write(db) as s:
        view = apikeys.key_view(s, apikeys.revoke_api_key(s, prefix))
    request.app.state.keys.clear()
    return ok(view)


@router.post("/webhooks", status_code=201, summary="Subscribe an endpoint to event types (the secret is in this answer only)")
def create_webhook(body: webhooks.SubscriptionIn, db: Database = Depends(database), _: Principal = Depends(ADMIN)):
    with write(db) as s:
        sub = webhooks.create_subscription(s, body)
        view = webhooks.subscription_view(sub) | {"secret": sub.secret}
    return ok(view, 201)


@router.get("/webhooks", summary="List webhook subscriptions")
def list_webhooks(db: Database = Depends(database), _: Principal = Depends(ADMIN)):
    with db.read() as s:
        return ok({"items": [webhooks.subscription_view(x) for x in webhooks.list_subscriptions(s)], "event_types": list(webhooks.EVENT_TYPES)})


@router.delete("/webhooks/{subscription_id}", summary="Remove a webhook subscription")
def remove_webhook(subscription_id: Id, db: Database = Depends(database), _: Principal = Depends(ADMIN)):
    with write(db) as s:
        view = webhooks.subscription_view(webhooks.remove_subscription(s, subscription_id))
    return ok(view)


@router.get("/webhooks/{subscription_id}/deliveries", summary="The delivery log of a subscription (newest first)")
def deliveries(subscription_id: Id, limit: Limit = 100, offset: Offset = 0, db: Database = Depends(database),
               _: Principal = Depends(ADMIN)):
    with db.read() as s:
        webhooks.get_subscription(s, subscription_id)
        return ok(page(webhooks.delivery_log(s, subscription_id, limit=limit, offset=offset), limit, offset))
