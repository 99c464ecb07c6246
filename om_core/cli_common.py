"""What every `storeom` command shares: JSON output, the database, one transaction per command,
and the error style (`error [code]: message` on stderr, exit 1, nothing written)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from decimal import Decimal
from functools import wraps
from pathlib import Path
from typing import Any, NoReturn

import click

from om_core.config import get_settings
from om_core.db import Database
from om_core.errors import StoreOMError


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=_json_default))


def database() -> Database:
    return Database(get_settings().database_url)


def in_transaction(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run the command body in one write transaction; print the result or the error."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        db = database()
        try:
            with db.transaction() as session:
                result = fn(session, *args, **kwargs)
            if result is not None:
                emit(result)
        except StoreOMError as exc:
            refuse(exc)
        finally:
            db.dispose()

    return wrapper


def refuse(exc: StoreOMError, details: dict[str, Any] | None = None) -> NoReturn:
    """Print a refused request the one way every command does, and exit 1."""
    click.echo(f"error [{exc.code}]: {exc.message}", err=True)
    details = exc.details if details is None else details
    if details:
        click.echo(json.dumps(details, indent=2, default=_json_default), err=True)
    sys.exit(1)


def read_json(source: str) -> Any:
    text = sys.stdin.read() if source == "-" else Path(source).read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}") from None


def parse_pair(spec: str, *, numeric_key: bool = False) -> tuple[str, int]:
    """`KEY:QUANTITY` from a repeatable option; anything else is a usage error (exit 2)."""
    key, _, qty = spec.rpartition(":")
    digits = qty if numeric_key else qty.removeprefix("-")  # a negative quantity is the service's to refuse
    if not key or not digits.isdecimal() or not digits.isascii() or (numeric_key and not key.isdecimal()):
        raise click.BadParameter(f"takes {'LINE_NO' if numeric_key else 'SKU'}:QUANTITY, got {spec!r}")
    return key, int(qty)


def sku_lines(specs: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
    return [{"sku": sku, "quantity": qty} for sku, qty in map(parse_pair, specs)]


def model_dict(obj: Any, *fields: str) -> dict[str, Any]:
    return {f: getattr(obj, f) for f in fields}
