"""The HTTP API's app factory: `create_app(database=None, settings=None)`.

One FastAPI app, versioned under /v1, a thin layer over the core's services: parse the request,
call the service inside `Database.transaction()`, answer JSON (money as strings, UTC ISO 8601
timestamps). Refusals are problem details (om_core.api.problems) and write nothing.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from om_core import __version__
from om_core.api import problems
from om_core.api.auth import KeyCache, RateLimiter
from om_core.api.logs import install_redaction
from om_core.config import get_settings
from om_core.db import Database

log = logging.getLogger("storeom.api")


@dataclass(frozen=True)
class ApiSettings:
    """Limits of the API (environment: STOREOM_API_RATE, _BURST, _MAX_BODY, _MAX_IMPORT, _KEY_CACHE)."""

    rate_per_second: float = 100.0
    burst: int = 200
    max_body_bytes: int = 1 << 20
    max_import_bytes: int = 64 << 20
    key_cache_seconds: float = 5.0
    access_log: bool = True

    @classmethod
    def from_env(cls) -> ApiSettings:
        env = os.environ.get
        return cls(
            rate_per_second=float(env("STOREOM_API_RATE", cls.rate_per_second)),
            burst=int(env("STOREOM_API_BURST", cls.burst)),
            max_body_bytes=int(env("STOREOM_API_MAX_BODY", cls.max_body_bytes)),
            max_import_bytes=int(env("STOREOM_API_MAX_IMPORT", cls.max_import_bytes)),
            key_cache_seconds=float(env("STOREOM_API_KEY_CACHE", cls.key_cache_seconds)),
            access_log=env("STOREOM_API_ACCESS_LOG", "1") not in ("0", "false", "no"),
        )


IMPORT_PREFIX = "/v1/imports/"


class BodyLimit:
    """Refuse bodies over the limit with 413 before the app reads them (Content-Length), or as soon as
    the streamed bytes pass it. Imports get their own, larger limit."""

    def __init__(self, app: Any, settings: ApiSettings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.settings.max_import_bytes if scope["path"].startswith(IMPORT_PREFIX) else self.settings.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit:
                    return await _send_problem(send, 413, "payload_too_large", f"The request body is over the limit of {limit} bytes")
                break
        seen = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise problems.ApiProblem(413, "payload_too_large", f"The request body is over the limit of {limit} bytes")
            return message

        return await self.app(scope, limited_receive, send)


async def _send_problem(send: Any, status: int, code: str, detail: str) -> None:
    response = problems.problem(status, code, detail)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


class AccessLog:
    """One line per request on `storeom.api` (redacted like every API log): method, path, status, key, ms."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            principal = scope.get("state", {}).get("principal")
            query = scope.get("query_string", b"").decode("latin-1")
            log.info("%s %s%s %s key=%s %.1fms", scope["method"], scope["path"], f"?{query}" if query else "", status,
                     principal.prefix if principal else "-", (time.perf_counter() - started) * 1000)


def create_app(database: Database | None = None, settings: ApiSettings | None = None) -> FastAPI:
    """The API over `database` (default: the configured STOREOM database) with `settings` (default: from
    the environment)."""
    from om_core.api.routers import ROUTERS

    settings = settings or ApiSettings.from_env()
    db = database or Database(get_settings().database_url)
    install_redaction()
    app = FastAPI(
        title="StoreOM API", version=__version__, openapi_url="/openapi.json", docs_url="/docs", redoc_url=None,
        description="Sales channels and ERP/CRM integration: catalog, customers, availability, orders, fulfilment, returns, "
                    "purchasing, stock, webhooks and CSV import/export. Errors are RFC 9457 problem details.",
        default_response_class=problems.JSON,
    )
    app.state.db = db
    app.state.settings = settings
    app.state.keys = KeyCache(settings.key_cache_seconds)
    app.state.limiter = RateLimiter(settings.rate_per_second, settings.burst)
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router, prefix="/v1")
    app.add_middleware(BodyLimit, settings=settings)
    if settings.access_log:
        app.add_middleware(AccessLog)
    return app


def serve_app() -> FastAPI:
    """`create_app()` for a server process (`storeom serve`, each worker): the objects made while starting
    (modules, the app, its routes and schemas) are frozen out of the garbage collector, so its collections
    during requests walk only what requests create."""
    app = create_app()
    gc.collect()
    gc.freeze()
    return app


__all__ = ["ApiSettings", "create_app", "serve_app"]
