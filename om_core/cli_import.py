"""`storeom import products|locations|stock|customers|orders FILE`: load master data, current stock and
order history from CSV (or .csv.gz) files.

    storeom import products products.csv.gz --map sku=product_id,name=product_type
    storeom import orders online_retail.csv --map order_id=InvoiceNo,sku=StockCode --map quantity=Quantity \\
        --map unit_price=UnitPrice,ordered_at=InvoiceDate,customer_id=CustomerID,description=Description,country=Country \\
        --skip-bad-rows --rejects rejects.csv

The report is printed as JSON. A file with bad rows prints `error [import_rejected]: ...` and the bad
rows (the first 50) as JSON on stderr, imports nothing and exits 1; with --skip-bad-rows the good rows
are imported and the bad ones written to a rejects file. Malformed options are usage errors (exit 2).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from om_core.cli_common import database, emit, refuse
from om_core.errors import StoreOMError

MAX_ERRORS_SHOWN = 50


def parse_mapping(specs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`canonical=source` pairs from repeatable, comma-separated --map options."""
    mapping: dict[str, str] = {}
    for spec in specs:
        for item in spec.split(","):
            if not item.strip():
                continue
            canonical, sep, source = item.partition("=")
            canonical, source = canonical.strip(), source.strip()
            if not sep or not canonical or not source:
                raise click.BadParameter(f"takes canonical=source pairs, got {item!r}", param_hint="--map")
            if canonical in mapping and mapping[canonical] != source:
                raise click.BadParameter(f"{canonical} is mapped twice ({mapping[canonical]!r} and {source!r})", param_hint="--map")
            mapping[canonical] = source
    return mapping


def _shown(errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"errors": errors[:MAX_ERRORS_SHOWN], "error_count": len(errors), "errors_shown": min(len(errors), MAX_ERRORS_SHOWN)}


def _run(kind: str, file: Path, mapping: tuple[str, ...], skip_bad_rows: bool, rejects: Path | None, date_format: str | None,
         encoding: str, actor: str) -> None:
    from om_core.services.importing import ImportRejected, import_file

    pairs = parse_mapping(mapping)
    db = database()
    try:
        report = import_file(db, kind, file, mapping=pairs, skip_bad_rows=skip_bad_rows, rejects_path=rejects,
                             actor=actor, date_format=date_format, encoding=encoding)
    except ImportRejected as exc:
        refuse(exc, {k: v for k, v in exc.details.items() if k != "errors"} | _shown(exc.errors))
    except StoreOMError as exc:
        refuse(exc)
    finally:
        db.dispose()
    data = report.to_dict()
    data |= _shown(data.pop("errors"))
    emit(data)


def _import_command(kind: str, help_text: str) -> Callable[..., None]:
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--map", "mapping", multiple=True, metavar="CANONICAL=SOURCE[,...]",
                  help="Read a canonical column from the file's column SOURCE (repeatable, or comma-separated).")
    @click.option("--skip-bad-rows", is_flag=True, help="Import the good rows; write the bad ones to a rejects file.")
    @click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
                  help="Where --skip-bad-rows writes the bad rows (default: <name>.rejects.csv next to FILE).")
    @click.option("--date-format", help="strftime format of the timestamps, when not ISO 8601 (e.g. '%d/%m/%Y %H:%M').")
    @click.option("--encoding", default="utf-8-sig", show_default=True, help="Text encoding of the file.")
    @click.option("--actor", default="import", show_default=True, help="Recorded on stock movements and returns.")
    def command(file: Path, mapping: tuple[str, ...], skip_bad_rows: bool, rejects: Path | None, date_format: str | None,
                encoding: str, actor: str) -> None:
        _run(kind, file, mapping, skip_bad_rows, rejects, date_format, encoding, actor)

    command.__doc__ = help_text
    return command


@click.group("import")
def import_group() -> None:
    """Import master data, current stock and order history from CSV files (.csv or .csv.gz)."""


import_group.command("products")(_import_command(
    "products", "Products by sku (name, category, price, cost, brand, ...); existing SKUs are updated."))
import_group.command("locations")(_import_command(
    "locations", "Locations by code (kind, name, address, capabilities); existing codes are updated."))
import_group.command("customers")(_import_command(
    "customers", "Customers by customer_id (external reference) or email, with an optional address."))
import_group.command("stock")(_import_command(
    "stock", "On hand per sku x location, set through the ledger (adjustments 'initial' or 'count')."))
import_group.command("orders")(_import_command(
    "orders", "Historical order lines (order_id, sku, quantity, unit_price, ordered_at, customer_id, ...) "
              "imported as delivered orders; negative quantities return earlier purchases."))

__all__ = ["import_group", "parse_mapping"]
