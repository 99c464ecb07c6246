"""Idempotency keys: a retried request with the same key gets the first answer and writes nothing.

The key row is written in the same transaction as the work it guards, so either both exist or neither.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel
from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from om_core.clock import utcnow
from om_core.db import read_rows, write_rows
from om_core.errors import IdempotencyConflict, ValidationError
from om_core.models import IdempotencyKey

_RECALL = select(IdempotencyKey.request_hash, IdempotencyKey.response).where(
    IdempotencyKey.scope == bindparam("scope"), IdempotencyKey.key == bindparam("key")
)
_REMEMBER = insert(IdempotencyKey.__table__)


def request_hash(request: BaseModel | dict[str, Any]) -> str:
    body = request.model_dump(mode="json") if isinstance(request, BaseModel) else request
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def check_key(key: str | None) -> None:
    if key is not None and not (1 <= len(key) <= 128):
        raise ValidationError("Idempotency key must be 1-128 characters", errors=[{"field": "idempotency_key", "reason": "1-128 characters"}])


def recall(session: Session, scope: str, key: str | None, digest: str) -> dict[str, Any] | None:
    """The stored response for this key, or None if the key is new; a different body is a conflict."""
    if key is None:
        return None
    check_key(key)
    found = read_rows(session, _RECALL, {"scope": scope, "key": key})
    row = found[0] if found else None
    if row is None:
        return None
    if row.request_hash != digest:
        raise IdempotencyConflict(
            f"Idempotency key {key!r} was already used with a different request", scope=scope, key=key
        )
    return row.response


def remember(session: Session, scope: str, key: str | None, digest: str, response: dict[str, Any]) -> None:
    if key is not None:
        write_rows(session, _REMEMBER, dict(scope=scope, key=key, request_hash=digest, response=response, created_at=utcnow()))
