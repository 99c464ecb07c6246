"""GET /v1/health: the one route that needs no key (load balancers and uptime checks)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import text

from om_core import __version__
from om_core.api.routers._common import database, ok
from om_core.db import Database

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness and database reachability")
def health(db: Database = Depends(database)):
    with db.read() as session:
        session.execute(text("select 1"))
    return ok({"status": "ok", "version": __version__, "database": db.dialect})
