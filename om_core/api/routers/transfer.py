"""CSV import and export over the API.

Import: `POST /v1/imports/{kind}` with the file as the body (CSV, or gzip-compressed CSV), the same
importer, validation and report as `storeom import` (om_core.services.importing). Export: history for a
date range (orders, order_lines, shipments, returns, stock_movements) and master data (products,
locations, stock, customers) as CSV or Parquet (om_core.services.exports).
"""

from __future__ import annotations

import csv
import tempfile
import zlib
from datetime import date
from pathlib import Path
from typing import Literal

import pyarrow as pa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from om_core.api.routers._common import ApiProblem, allow, database, forbid, ok
from om_core.db import Database
from om_core.errors import ValidationError
from om_core.services import exports
from om_core.services.apikeys import Principal

router = APIRouter(tags=["import/export"])
UNREADABLE = (EOFError, OSError, zlib.error, UnicodeError, csv.Error, pa.ArrowException)
"""What reading a broken upload raises (a truncated gzip, bytes that are not text, a malformed CSV)."""
MAX_ERRORS_SHOWN = 50
ImportKind = Literal["products", "locations", "stock", "customers", "orders"]


def _mapping(specs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for spec in specs:
        for item in spec.split(","):
            canonical, sep, source = (part.strip() for part in item.partition("="))
            if not item.strip():
                continue
            if not sep or not canonical or not source:
                raise ValidationError(f"map takes canonical=source pairs, got {item!r}", errors=[{"field": "query.map", "reason": f"not canonical=source: {item!r}"}])
            mapping[canonical] = source
    return mapping


def _shown(errors: list[dict]) -> dict:
    return {"errors": errors[:MAX_ERRORS_SHOWN], "error_count": len(errors), "errors_shown": min(len(errors), MAX_ERRORS_SHOWN)}


def _run_import(db: Database, kind: str, body: bytes, mapping: dict[str, str], skip_bad_rows: bool, date_format: str | None,
                encoding: str, actor: str) -> dict:
    from om_core.services.importing import ImportRejected, import_file

    with tempfile.TemporaryDirectory(prefix="storeom-import-") as folder:
        path = Path(folder) / f"{kind}.csv"
        path.write_bytes(body)
        try:
            report = import_file(db, kind, path, mapping=mapping, skip_bad_rows=skip_bad_rows, rejects_path=Path(folder) / "rejects.csv",
                                 actor=actor, date_format=date_format, encoding=encoding)
        except UNREADABLE as exc:
            raise ApiProblem(422, "unreadable_file", f"The file cannot be read as {kind} CSV: {type(exc).__name__}: {exc}"[:500],
                             errors=[{"field": "(body)", "reason": "not a readable CSV or .csv.gz file"}]) from None
        except ImportRejected as exc:
            details = {k: v for k, v in exc.details.items() if k != "errors"} | _shown(exc.errors)
            errors = [{"field": f"row {e.get('row')}: {e.get('column')}", "reason": str(e.get("reason"))} for e in details.pop("errors")]
            raise ApiProblem(422, exc.code, exc.message, errors=errors, extra=details) from None
        except ValidationError as exc:  # a file-level problem: name the upload, not the server's temporary path
            exc.message = exc.message.replace(str(path), f"the uploaded {kind} file")
            raise
    data = report.to_dict()
    data.pop("rejects_path", None)
    data["source"] = f"upload:{kind}"
    return data | _shown(data.pop("errors"))


@router.post("/imports/{kind}", summary="Import a CSV (or .csv.gz) file: products, locations, stock, customers or order history",
             openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}},
                                                                           "application/gzip": {"schema": {"type": "string", "format": "binary"}}}}})
async def import_csv(kind: ImportKind, request: Request,
                     map: list[str] = Query(default_factory=list, max_length=50, description="canonical=source[,...]"),  # noqa: A002
                     skip_bad_rows: bool = False, date_format: str | None = Query(None, max_length=64),
                     encoding: str = Query("utf-8-sig", max_length=32), db: Database = Depends(database),
                     who: Principal = Depends(allow("merchandiser", "manager"))):
    if who.role == "merchandiser" and kind != "products":
        raise forbid(f"The merchandiser role may import products only, not {kind}")
    body = await request.body()
    if not body:
        raise ApiProblem(400, "empty_body", "Send the CSV file as the request body", errors=[{"field": "(body)", "reason": "empty"}])
    data = await run_in_threadpool(_run_import, db, kind, body, _mapping(map), skip_bad_rows, date_format, encoding, who.actor)
    return ok(data)


MEDIA = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


@router.get("/exports/{dataset}", summary="Export history for a date range, or master data, as CSV or Parquet",
            responses={200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}}})
def export(dataset: exports.Dataset, start: date | None = Query(None, description="First day (UTC), for history"),
           end: date | None = Query(None, description="Last day (UTC), inclusive"), format: Literal["csv", "parquet"] = "csv",  # noqa: A002
           db: Database = Depends(database), who: Principal = Depends(allow("merchandiser", "manager"))):
    if who.role == "merchandiser" and dataset not in ("products", "stock", "stock_movements", "order_lines"):
        raise forbid(f"The merchandiser role may not export {dataset}")
    with db.read() as s:
        body = exports.export(s, dataset, format, start=start, end=end)
    name = f"{dataset}" + (f"_{start}_{end}" if start and end else "") + f".{format}"
    return Response(body, media_type=MEDIA[format], headers={"Content-Disposition": f'attachment; filename="{name}"'})
