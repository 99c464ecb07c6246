"""Who is calling: API keys (header `X-API-Key` or `Authorization: Bearer ...`), roles, and the per-key
rate limit. Every route but the health check depends on `allow(...)`, which names the roles it serves
(admin is always among them)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader

from om_core.api.problems import ApiProblem
from om_core.db import Database
from om_core.services.apikeys import Principal, hash_key, verify_key

_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key from `storeom apikey create`.")


class KeyCache:
    """Verified keys for a few seconds, so a request does not read the key table every time. A revoke
    through this API clears it at once; a revoke from the CLI takes effect within `ttl` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def cached(self, key: str) -> Principal | None:
        entry = self._entries.get(hash_key(key))
        return entry[0] if entry is not None and entry[1] > time.monotonic() else None

    def get(self, db: Database, key: str) -> Principal | None:
        digest = hash_key(key)
        now = time.monotonic()
        entry = self._entries.get(digest)
        if entry is not None and entry[1] > now:
            return entry[0]
        with db.read() as session:
            principal = verify_key(session, key)
        with self._lock:
            if principal is None:
                self._entries.pop(digest, None)
            elif self.ttl > 0:
                self._entries[digest] = (principal, now + self.ttl)
        return principal

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per key, in this process: `rate` requests a second on average, bursts of `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[int, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key_id: int) -> float:
        """0 when the request may go ahead, else the seconds to wait."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = _Bucket(float(self.burst), now)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate


def _presented_key(request: Request, header_key: str | None) -> str | None:
    if header_key:
        return header_key.strip()
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def authenticated(request: Request, header_key: str | None = Depends(_key_header)) -> Principal:
    """Async so a cached key costs no thread hop; a key not in the cache is looked up in a worker thread."""
    key = _presented_key(request, header_key)
    if not key:
        raise ApiProblem(401, "unauthorized", "An API key is required (header X-API-Key or Authorization: Bearer)",
                         headers={"WWW-Authenticate": "Bearer"})
    state = request.app.state
    principal = state.keys.cached(key) or await run_in_threadpool(state.keys.get, state.db, key)
    if principal is None:
        raise ApiProblem(401, "unauthorized", "Unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    wait = state.limiter.take(principal.key_id)
    if wait > 0:
        raise ApiProblem(429, "rate_limited", f"Too many requests for this key; retry in {wait:.2f} s",
                         headers={"Retry-After": str(max(1, round(wait + 0.5)))})
    request.state.principal = principal
    return principal


def allow(*roles: str) -> Callable[..., Principal]:
    """A dependency that lets through only `roles` (and admin)."""
    allowed = frozenset(roles) | {"admin"}

    async def dependency(request: Request, header_key: str | None = Depends(_key_header)) -> Principal:
        principal = await authenticated(request, header_key)  # called, not nested: one dependency less to solve
        if principal.role not in allowed:
            raise ApiProblem(403, "forbidden", f"The {principal.role} role may not do this")
        return principal

    dependency.allowed = allowed  # type: ignore[attr-defined]
    return dependency


async def database(request: Request) -> Database:
    return request.app.state.db


def forbid(detail: str) -> ApiProblem:
    return ApiProblem(403, "forbidden", detail)


__all__ = ["KeyCache", "RateLimiter", "allow", "authenticated", "database", "forbid"]
