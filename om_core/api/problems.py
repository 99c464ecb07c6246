"""One error shape for every refusal: RFC 9457 problem details (`application/problem+json`).

    {"type": "urn:storeom:problem:insufficient_stock", "title": "Conflict", "status": 409,
     "detail": "Not enough stock for: MUG (requested 5, available 2)", "code": "insufficient_stock",
     "errors": [{"field": "lines.0.quantity", "reason": "..."}], ...details}

A service's typed error (om_core.errors) keeps its `code` and `details`; pydantic's request errors
become 422 with one entry per field (a body that is not JSON at all is 400).
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from om_core.errors import StoreOMError

log = logging.getLogger("storeom.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def dumps(data: Any) -> bytes:
    """JSON with money as strings and timestamps as ISO 8601 (never floats for Decimal)."""
    return json.dumps(data, default=_default, separators=(",", ":")).encode()


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content)


def ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSON:
    return JSON(data, status_code=status, headers=headers)


class ApiProblem(StarletteHTTPException):
    """A refusal decided by the API layer itself (auth, limits, missing header)."""

    def __init__(self, status: int, code: str, detail: str, *, errors: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.code = code
        self.errors = errors or []
        self.extra = extra or {}


def problem(status: int, code: str, detail: str, *, errors: list[dict[str, str]] | None = None,
            extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:storeom:problem:{code}", "title": HTTPStatus(status).phrase, "status": status, "detail": detail,
        "code": code, "errors": errors or [],
    }
    for key, value in (extra or {}).items():
        body.setdefault(key, value)
    return Response(dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
               409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_error",
               429: "rate_limited"}


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, rest = parts[0], parts[1:]
        return ".".join(rest) if where == "body" and rest else ".".join([where, *rest]) if rest else where
    return ".".join(parts) or "(body)"


async def _store_error(_: Request, exc: StoreOMError) -> Response:
    details = {k: v for k, v in exc.details.items() if k != "errors"}
    errors = list(getattr(exc, "errors", []) or [])
    return problem(exc.http_status, exc.code, exc.message, errors=errors, extra=details)


async def _request_validation(_: Request, exc: RequestValidationError) -> Response:
    raw = exc.errors()
    if any(e.get("type") == "json_invalid" for e in raw):
        return problem(400, "malformed_json", "The request body is not valid JSON",
                       errors=[{"field": "(body)", "reason": str(e.get("ctx", {}).get("error", e.get("msg")))} for e in raw])
    errors = [{"field": _field(e.get("loc", ())), "reason": str(e.get("msg", ""))} for e in raw]
    summary = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:10])
    return problem(422, "validation_error", f"Invalid request: {summary}", errors=errors)


async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
    code = getattr(exc, "code", None) or _HTTP_CODES.get(exc.status_code, "error")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem(exc.status_code, code, detail, errors=getattr(exc, "errors", None), headers=getattr(exc, "headers", None),
                   extra=getattr(exc, "extra", None))


async def _data_error(_: Request, exc: DataError) -> Response:
    """The database refused a value the schema let through (e.g. a number beyond its integer range)."""
    return problem(422, "invalid_value", "A value is out of range or of the wrong kind for the database; nothing was written")


async def _integrity_error(_: Request, exc: IntegrityError) -> Response:
    """A constraint caught what a concurrent request made true first (e.g. the same code twice at once)."""
    return problem(409, "conflict", "The request conflicts with the current data (a constraint refused it); nothing was written")


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "internal_error", "An unexpected error occurred; nothing was written")


def install(app: FastAPI) -> None:
    app.add_exception_handler(StoreOMError, _store_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _request_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(DataError, _data_error)  # type: ignore[arg-type]
    app.add_exception_handler(IntegrityError, _integrity_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)


__all__ = ["JSON", "PROBLEM_MEDIA_TYPE", "ApiProblem", "dumps", "install", "ok", "problem"]
