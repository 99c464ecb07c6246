"""API keys: who may call the HTTP API and what they may touch.

A key looks like `som_<prefix>_<secret>`. Only the prefix (the key's public id) and the SHA-256 of
the whole key are stored, so the key is shown once, at creation, and a copy of the database does not
let anyone in. Revoking sets `revoked_at`; the row stays for the record.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from om_core.clock import utcnow
from om_core.errors import NotFound, ValidationError
from om_core.models import ApiKey, Channel
from om_core.services.locations import get_channel, get_location
from om_core.validation import Code, Input, parse

ROLES = ("channel", "store_ops", "merchandiser", "manager", "marketing", "admin")
Role = Literal["channel", "store_ops", "merchandiser", "manager", "marketing", "admin"]
KEY_PATTERN = re.compile(r"^som_([a-z0-9]{12})_([A-Za-z0-9_-]{20,80})$")


class UnknownApiKey(NotFound):
    code = "unknown_api_key"


class ApiKeyIn(Input):
    role: Role
    name: str | None = Field(default=None, max_length=120)
    channel: Code | None = None
    locations: list[Code] = Field(default_factory=list, max_length=200)


@dataclass(frozen=True)
class Principal:
    """The caller behind a verified key: its role and, for channel and store_ops keys, its scope."""

    key_id: int
    prefix: str
    role: str
    channel: str | None = None
    locations: frozenset[str] = field(default_factory=frozenset)

    @property
    def actor(self) -> str:
        return f"api:{self.prefix}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(session: Session, data: ApiKeyIn | dict[str, Any]) -> tuple[ApiKey, str]:
    """A new key and its clear text (to show once). A channel key needs a channel; a store_ops key
    needs at least one location; other roles take neither."""
    req = parse(ApiKeyIn, data)
    errors = []
    if req.role == "channel" and not req.channel:
        errors.append({"field": "channel", "reason": "a channel key is bound to one channel"})
    if req.role != "channel" and req.channel:
        errors.append({"field": "channel", "reason": f"only channel keys are bound to a channel, not {req.role}"})
    if req.role == "store_ops" and not req.locations:
        errors.append({"field": "locations", "reason": "a store_ops key is bound to at least one location"})
    if req.role != "store_ops" and req.locations:
        errors.append({"field": "locations", "reason": f"only store_ops keys are bound to locations, not {req.role}"})
    if errors:
        raise ValidationError("Invalid API key: " + "; ".join(f"{e['field']}: {e['reason']}" for e in errors), errors=errors)
    channel_id = get_channel(session, req.channel).id if req.channel else None
    codes = [get_location(session, code).code for code in dict.fromkeys(req.locations)]
    prefix = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    key = f"som_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(prefix=prefix, key_hash=hash_key(key), name=req.name, role=req.role, channel_id=channel_id,
                 locations=codes, created_at=utcnow())
    session.add(row)
    session.flush()
    return row, key


def verify_key(session: Session, key: str) -> Principal | None:
    """The principal for a presented key, or None when it is malformed, unknown or revoked."""
    match = KEY_PATTERN.match(key or "")
    if not match:
        return None
    row = session.execute(
        select(ApiKey.id, ApiKey.prefix, ApiKey.key_hash, ApiKey.role, ApiKey.revoked_at, ApiKey.locations, Channel.code)
        .outerjoin(Channel, Channel.id == ApiKey.channel_id)
        .where(ApiKey.prefix == match.group(1))
    ).first()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, hash_key(key)):
        return None
    return Principal(key_id=row.id, prefix=row.prefix, role=row.role, channel=row.code, locations=frozenset(row.locations or []))


def get_api_key(session: Session, prefix: str) -> ApiKey:
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None:
        raise UnknownApiKey(f"No API key {prefix!r}", prefix=prefix)
    return row


def revoke_api_key(session: Session, prefix: str) -> ApiKey:
    """Revoke a key (idempotent: revoking twice keeps the first time)."""
    row = get_api_key(session, prefix)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    session.flush()
    return row


def list_api_keys(session: Session, *, include_revoked: bool = True) -> list[ApiKey]:
    stmt = select(ApiKey).order_by(ApiKey.id)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(stmt))


def key_view(session: Session, row: ApiKey) -> dict[str, Any]:
    """What lists show about a key: never the key or its hash."""
    channel = session.get(Channel, row.channel_id).code if row.channel_id else None  # type: ignore[union-attr]
    return {"prefix": row.prefix, "name": row.name, "role": row.role, "channel": channel, "locations": list(row.locations or []),
            "created_at": row.created_at.isoformat(), "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None}


__all__ = ["ROLES", "ApiKeyIn", "Principal", "UnknownApiKey", "create_api_key", "get_api_key", "hash_key", "key_view",
           "list_api_keys", "revoke_api_key", "verify_key"]
