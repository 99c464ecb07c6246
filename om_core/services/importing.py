"""History importer: master data, current stock and order history from CSV files (optionally gzipped).

`import_file(db, kind, source)` reads one file of one kind:

* ``products``  -- upsert by ``sku``; ``locations`` -- upsert by ``code``; ``customers`` -- upsert by
  ``customer_id`` (the customer's external reference) or, without one, by ``email``. A re-import of
  the same file changes nothing; changed values update. Columns absent from the file, and empty
  cells, leave existing values alone (a new record takes the default: a product's name is its SKU,
  its category 'imported', its price and cost 0).
* ``stock``     -- sets on hand per ``sku`` x ``location`` (both must exist) through the ledger: one
  'adjustment' movement per changed row, reason 'initial' for a stock row without history, else
  'count'; a re-import of the same file writes no movement.
* ``orders``    -- order lines (``order_id, sku, quantity, unit_price, ordered_at, customer_id`` and
  optional ``description, category, location, channel, country, line_total, discount``), grouped by
  ``order_id`` into historical orders: status 'delivered' with their original timestamps, no
  reservations, stock movements, payments or events. Negative quantities return earlier purchases.

Columns are canonical names; ``mapping`` ({canonical: source column}) renames the file's columns;
other columns are ignored. An unknown mapping target, a mapped column missing from the file or a
missing required column is a ValidationError raised after reading the header only.

Every row is validated before anything is written. A file with bad rows raises `ImportRejected`
naming each bad row {row, column, reason} and writes nothing; with ``skip_bad_rows`` the good rows
are imported and the bad ones written to a rejects CSV (the original columns plus ``error``; by
default ``<name>.rejects.csv`` next to the source). ``row`` is the line in the file, the header
being line 1 (blank lines are skipped but counted; a quoted cell spanning lines counts as one).

Values: quantities are whole numbers ("3" or "3.0"), orders' non-zero and at most 1,000,000, stock
counts >= 0; money is read as Decimal (never float) and rounded half-up to the cent after
multiplying; codes (SKUs, locations, channels) are non-empty codes; emails, phones and postal codes
go through the customers validators. Timestamps are ISO 8601 -- a timestamp without a zone is read
as UTC, one with an offset converted to UTC -- unless no value of the file is: then the format is
recognised from the first value (month first when ambiguous), or pass ``date_format``. A timestamp
more than a day in the future is a bad row.

Orders in detail: the order's ``external_ref`` is the file's ``order_id`` and its number
``H-<order_id>`` (a hash of channel and order id when that is taken or too long); an order already
imported on the same channel is skipped (counted in ``duplicates``) -- re-importing a file imports
nothing twice, and a later line for an imported order is not added to it. The order's customer,
location and channel come from its first line; a line naming another is a bad row. Unknown SKUs
(named by the latest description, priced at the latest unit price, category 'imported', cost 0,
returnable), customers (``external_ref`` = ``customer_id``, no email), locations (stores) and
channels (``pos`` when its lines have a location, else ``web``; ``history`` without a channel) are
created. An empty ``customer_id`` is an anonymous sale. ``line_total`` is what was paid for the line
after its ``discount``; without it, it is ``unit_price * quantity - discount``; the order's subtotal
is the sum of ``line_total + discount``, its total the sum of ``line_total`` (no tax, no shipping),
and ``unit_price``, when absent, is ``(line_total + discount) / quantity``. With a location the
order was carried out at that store (``pickup_location_id``); without, it was shipped.

A negative line returns units of the most recent earlier imported line(s) of the same customer and
SKU that still have units not returned (in this file or imported before): one closed `ReturnRequest`
(reason 'other', received at the row's time and location, refund = the row's value) per original
order, numbered ``HR-<order_id>-<n>``; the orders' status follows (partially_)returned. A negative
line without such a purchase is a bad row.

Writing: master data in one transaction, then the orders in transactions of 20,000, then the
returns; SQLite gets plain driver executemany with constants inlined, PostgreSQL gets COPY. If a
write fails half way, the complete batches stay and running the import again finishes it.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from itertools import repeat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from pydantic import TypeAdapter
from sqlalchemy import JSON, Table, bindparam, func, insert, select, text, update
from sqlalchemy.engine import Connection

from om_core.clock import utcnow
from om_core.config import get_settings
from om_core.db import Database, read_rows_in
from om_core.errors import Conflict, ValidationError
from om_core.models import (
    Address,
    Channel,
    Customer,
    Location,
    Order,
    OrderLine,
    Product,
    ReturnLine,
    ReturnRequest,
    Stock,
    StockMovement,
    Supplier,
)
from om_core.money import allocate_pro_rata
from om_core.services.catalog import ProductIn
from om_core.services.customers import KNOWN_COUNTRIES, POSTAL_CODE_PATTERNS, CustomerIn
from om_core.services.inventory import MAX_MOVEMENT
from om_core.services.locations import LocationIn
from om_core.services.orders import derive_status
from om_core.validation import parse

KINDS = ("products", "locations", "stock", "customers", "orders")
MAX_IMPORT_QUANTITY = MAX_MOVEMENT
"""Largest quantity on one imported line (history has bulk and weighed goods, so more than an order line allows)."""
ORDERS_PER_TRANSACTION = 20_000
DEFAULT_CHANNEL = "history"
DEFAULT_CATEGORY = "imported"
MAX_ERRORS_IN_MESSAGE = 5
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-/]*")
_INT = re.compile(r"[+-]?\d+(?:\.0*)?")
_AMOUNT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?")
_ADVISORY_LOCK = 0x53544F52494D5054  # serializes concurrent order imports on PostgreSQL


class ImportRejected(ValidationError):
    """The file has bad rows and nothing was imported. ``errors`` lists {row, column, reason}."""

    code = "import_rejected"


@dataclass
class ImportReport:
    """What an import did. For orders, ``imported`` counts new orders, ``lines`` their lines, ``returns``
    the return lines recorded, ``duplicates`` the orders already imported earlier (skipped) and
    ``created`` the master data the file introduced."""

    kind: str
    source: str
    rows_read: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejects_path: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    lines: int = 0
    returns: int = 0
    duplicates: int = 0
    duplicate_returns: int = 0
    created: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        return data


@dataclass(frozen=True)
class _Spec:
    required: tuple[str, ...]
    optional: tuple[str, ...]
    any_of: tuple[tuple[str, ...], ...] = ()

    @property
    def known(self) -> tuple[str, ...]:
        return self.required + self.optional


SPECS: dict[str, _Spec] = {
    "products": _Spec(("sku",), ("name", "category", "price", "cost", "description", "brand", "tax_class", "size", "colour",
                                 "pack_size", "min_order_qty", "weight_kg", "supplier", "returnable", "backorder_policy", "active")),
    "locations": _Spec(("code", "kind"), ("name", "latitude", "longitude", "address_line1", "city", "region", "postal_code",
                                          "country", "can_ship", "can_pickup", "can_ship_from_store", "supplier",
                                          "daily_capacity", "cutoff_hour_utc", "active")),
    "customers": _Spec((), ("customer_id", "email", "first_name", "last_name", "phone", "marketing_consent", "segment",
                            "line1", "line2", "city", "region", "postal_code", "country"), any_of=(("customer_id", "email"),)),
    "stock": _Spec(("sku", "location", "quantity"), ()),
    "orders": _Spec(("order_id", "sku", "quantity", "ordered_at", "customer_id"),
                    ("unit_price", "line_total", "discount", "description", "category", "location", "channel", "country"),
                    any_of=(("unit_price", "line_total"),)),
}


# --- reading ----------------------------------------------------------------------------------


@dataclass
class _Column:
    """One column as integer codes per row into its distinct (stripped) values."""

    source: str
    codes: np.ndarray
    uniques: list[str]

    def values(self) -> np.ndarray:
        return np.asarray(self.uniques, dtype=object)[self.codes]

    def empty(self) -> np.ndarray:
        return np.asarray([u == "" for u in self.uniques], dtype=bool)[self.codes] if self.uniques else np.zeros(0, bool)


@dataclass
class _Table:
    kind: str
    path: Path
    header: list[str]
    columns: dict[str, _Column]
    rows: np.ndarray  # the file row (line) of each record, header = 1
    originals: Callable[[Sequence[int]], list[list[str]]]
    parse_errors: list[tuple[int, str, str]] = field(default_factory=list)  # (record index, column, reason)

    @property
    def n(self) -> int:
        return len(self.rows)

    def has(self, name: str) -> bool:
        return name in self.columns

    def col(self, name: str) -> _Column:
        return self.columns[name]

    def source(self, name: str) -> str:
        return self.columns[name].source if name in self.columns else name


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _open_text(path: Path, encoding: str) -> io.TextIOBase:
    if _is_gzip(path):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=encoding, newline="")
    return path.open("r", encoding=encoding, newline="")


def _read_header(path: Path, encoding: str) -> list[str]:
    try:
        with _open_text(path, encoding) as fh:
            header = next(csv.reader(fh), None)
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{path.name} is not {encoding} text ({exc.reason}); pass its encoding",
                              errors=[{"field": "(file)", "reason": f"not {encoding}"}]) from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ValidationError(f"Cannot read {path}: {exc}", errors=[{"field": "(file)", "reason": str(exc)}]) from None
    if not header or not any(h.strip() for h in header):
        raise ValidationError(f"{path.name} is empty: a header row is required", errors=[{"field": "(file)", "reason": "no header"}])
    return [h.strip() for h in header]


def _resolve_columns(kind: str, header: list[str], mapping: dict[str, str] | None) -> dict[str, str]:
    """{canonical: source header} after the mapping; file-level problems are a ValidationError."""
    spec = SPECS[kind]
    mapping = {k.strip(): v.strip() for k, v in (mapping or {}).items()}
    errors = []
    unknown = sorted(k for k in mapping if k not in spec.known)
    for k in unknown:
        errors.append({"field": k, "reason": f"not a column of the {kind} import (known: {', '.join(spec.known)})"})
    lowered = {h.lower(): h for h in reversed(header)}
    resolved: dict[str, str] = {}
    for canonical, source in mapping.items():
        if canonical in unknown:
            continue
        found = source if source in header else lowered.get(source.lower())
        if found is None:
            errors.append({"field": canonical, "reason": f"mapped to column {source!r}, which is not in the file"})
        else:
            resolved[canonical] = found
    mapped_from = set(resolved.values())
    for canonical in spec.known:  # a column named like a canonical one is read as that, unless mapped to another
        if canonical not in resolved and canonical not in mapping:
            found = canonical if canonical in header else lowered.get(canonical.lower())
            if found is not None and found not in mapped_from:
                resolved[canonical] = found
    missing = [c for c in spec.required if c not in resolved and c not in mapping]
    for c in missing:
        errors.append({"field": c, "reason": "required column missing (rename a column with --map " f"{c}=<column>)"})
    for group in spec.any_of:
        if not any(c in resolved or c in mapping for c in group):
            errors.append({"field": group[0], "reason": f"the file needs one of the columns {', '.join(group)}"})
    if errors:
        summary = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
        raise ValidationError(f"Cannot import {kind}: {summary}", errors=errors)
    return resolved


def _encode(values: Iterable[str], codes: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """Factorize stripped strings: (codes, distinct values)."""
    raw = list(values)
    stripped = [v.strip() for v in raw]
    if codes is None:
        new_codes, uniques = pd.factorize(np.asarray(stripped, dtype=object))
        return new_codes.astype(np.int64), list(uniques)
    if stripped == raw and len(set(raw)) == len(raw):
        return codes.astype(np.int64), raw
    remap, uniques = pd.factorize(np.asarray(stripped, dtype=object))
    return remap[codes].astype(np.int64), list(uniques)


def _read_arrow(path: Path, header: list[str], encoding: str) -> tuple[pa.Table, bool]:
    invalid: list[Any] = []

    def on_invalid(row: Any) -> str:
        invalid.append(row)
        return "skip"

    names = [f"c{i}" for i in range(len(header))]
    source: Any = pa.input_stream(str(path), compression="gzip" if _is_gzip(path) else None)
    try:
        table = pcsv.read_csv(
            source,
            read_options=pcsv.ReadOptions(use_threads=False, column_names=names, skip_rows=1,
                                          encoding="utf8" if encoding.lower().replace("-", "") in ("utf8", "utf8sig") else encoding,
                                          block_size=1 << 24),
            parse_options=pcsv.ParseOptions(ignore_empty_lines=False, newlines_in_values=True, invalid_row_handler=on_invalid),
            convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=False,
                                                quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return pa.table({}), False
    finally:
        source.close()
    return table, not invalid


def _read_python(path: Path, header: list[str], encoding: str) -> tuple[list[list[str]], list[tuple[int, str, str]]]:
    """The exact, slower reader: used when a record has the wrong number of fields."""
    records: list[list[str]] = []
    problems: list[tuple[int, str, str]] = []
    width = len(header)
    try:
        with _open_text(path, encoding) as fh:
            reader = csv.reader(fh)
            next(reader, None)
            for rec in reader:
                if len(rec) != width and any(v.strip() for v in rec):
                    problems.append((len(records), "(row)", f"has {len(rec)} fields, the header has {width}"))
                    rec = (rec + [""] * width)[:width]
                elif len(rec) != width:
                    rec = [""] * width
                records.append(rec)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValidationError(f"Cannot read {path.name}: {exc}", errors=[{"field": "(file)", "reason": str(exc)}]) from None
    return records, problems


def read_table(kind: str, source: str | Path, mapping: dict[str, str] | None = None, *, encoding: str = "utf-8-sig") -> _Table:
    """Read a CSV (or .csv.gz) file into canonical columns. Mapping problems raise before the body is read."""
    if kind not in SPECS:
        raise ValidationError(f"Unknown import kind {kind!r} (one of {', '.join(KINDS)})", errors=[{"field": "kind", "reason": "unknown"}])
    path = Path(source)
    if not path.is_file():
        raise ValidationError(f"No such file: {path}", errors=[{"field": "(file)", "reason": "not found"}])
    header = _read_header(path, encoding)
    resolved = _resolve_columns(kind, header, mapping)
    index = {h: i for i, h in reversed(list(enumerate(header)))}
    table, clean = _read_arrow(path, header, encoding)
    parse_errors: list[tuple[int, str, str]] = []
    if clean:
        n = table.num_rows
        blank = np.ones(n, dtype=bool)
        for column in table.columns:
            blank &= pc.equal(pc.utf8_trim_whitespace(column), "").to_numpy(zero_copy_only=False)
        encoded: dict[int, tuple[np.ndarray, list[str]]] = {}
        for i in {index[s] for s in resolved.values()}:
            dictionary = pc.dictionary_encode(table.column(i)).combine_chunks()
            codes = dictionary.indices.to_numpy(zero_copy_only=False)
            encoded[i] = _encode(dictionary.dictionary.to_pylist(), codes)

        def originals(indices: Sequence[int]) -> list[list[str]]:
            rows = table.take(pa.array(list(indices), type=pa.int64())).to_pylist()
            return [[r[f"c{i}"] for i in range(len(header))] for r in rows]
    else:
        records, parse_errors = _read_python(path, header, encoding)
        n = len(records)
        blank = np.array([not any(v.strip() for v in rec) for rec in records], dtype=bool)
        encoded = {i: _encode(rec[i] for rec in records) for i in {index[s] for s in resolved.values()}}

        def originals(indices: Sequence[int]) -> list[list[str]]:
            return [records[i] for i in indices]

    keep = np.flatnonzero(~blank)
    columns = {}
    for canonical, src in resolved.items():
        codes, uniques = encoded[index[src]]
        columns[canonical] = _Column(src, codes[keep], uniques)
    position = {int(old): new for new, old in enumerate(keep)} if parse_errors else {}
    errors = [(position[i], c, r) for i, c, r in parse_errors if i in position]
    kept = keep.copy()
    return _Table(kind, path, header, columns, rows=keep + 2,
                  originals=lambda idx: originals([int(kept[i]) for i in idx]), parse_errors=errors)


# --- errors -----------------------------------------------------------------------------------


class _Errors:
    """Bad rows found so far: (record index, source column, reason)."""

    def __init__(self, table: _Table) -> None:
        self.table = table
        self.bad = np.zeros(table.n, dtype=bool)
        self.items: list[tuple[int, str, str]] = []
        for i, column, reason in table.parse_errors:
            self.add(i, column, reason)

    def add(self, index: int, column: str, reason: str) -> None:
        self.bad[index] = True
        self.items.append((int(index), column, reason))

    def add_unique(self, column: _Column, reasons: list[str | None], where: np.ndarray | None = None) -> None:
        """Flag every row whose value's reason is not None (only rows in `where`, when given)."""
        flags = np.asarray([r is not None for r in reasons], dtype=bool)
        if not flags.any():
            return
        mask = flags[column.codes]
        if where is not None:
            mask &= where
        for i in np.flatnonzero(mask):
            self.add(i, column.source, reasons[column.codes[i]])  # type: ignore[arg-type]

    def add_mask(self, mask: np.ndarray, column: str, reason: Callable[[int], str]) -> None:
        for i in np.flatnonzero(mask):
            self.add(i, column, reason(int(i)))

    def report(self) -> list[dict[str, Any]]:
        order = {c: n for n, c in enumerate(self.table.header)}
        rows = self.table.rows
        return [
            {"row": int(rows[i]), "column": column, "reason": reason}
            for i, column, reason in sorted(self.items, key=lambda e: (e[0], order.get(e[1], -1)))
        ]

    def __bool__(self) -> bool:
        return bool(self.items)


def _reject(table: _Table, errors: _Errors) -> ImportRejected:
    found = errors.report()
    bad_rows = int(errors.bad.sum())
    sample = "; ".join(f"row {e['row']} {e['column']}: {e['reason']}" for e in found[:MAX_ERRORS_IN_MESSAGE])
    more = f" (and {len(found) - MAX_ERRORS_IN_MESSAGE} more)" if len(found) > MAX_ERRORS_IN_MESSAGE else ""
    return ImportRejected(
        f"{table.path.name}: {bad_rows} bad row(s), nothing imported: {sample}{more}",
        errors=found, rows_read=table.n, bad_rows=bad_rows, file=str(table.path),
    )


def _write_rejects(table: _Table, errors: _Errors, path: Path) -> None:
    by_row: dict[int, list[str]] = defaultdict(list)
    for i, column, reason in errors.items:
        by_row[i].append(f"{column}: {reason}")
    indices = sorted(by_row)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow([*table.header, "error"])
        for i, original in zip(indices, table.originals(indices)):
            out.writerow([*original, f"row {int(table.rows[i])}: " + "; ".join(by_row[i])])


def default_rejects_path(source: Path) -> Path:
    name = source.name
    for suffix in (".gz", ".csv", ".txt"):
        name = name.removesuffix(suffix)
    return source.with_name(f"{name}.rejects.csv")


# --- values -----------------------------------------------------------------------------------


def _per_unique(uniques: list[str], check: Callable[[str], tuple[Any, str | None]]) -> tuple[list[Any], list[str | None]]:
    values, reasons = [], []
    for u in uniques:
        value, reason = check(u)
        values.append(value)
        reasons.append(reason)
    return values, reasons


def _code_reason(value: str, *, required: bool = True, max_length: int = 64) -> str | None:
    if value == "":
        return "required" if required else None
    if len(value) > max_length:
        return f"longer than {max_length} characters"
    if not _CODE.fullmatch(value):
        return f"{value!r} is not a code (letters, digits and . _ - /, starting with a letter or digit)"
    return None


def _ref_reason(value: str, *, required: bool = True, max_length: int = 64) -> str | None:
    if value == "":
        return "required" if required else None
    if len(value) > max_length:
        return f"longer than {max_length} characters"
    return None


def _int_value(value: str) -> tuple[int, str | None]:
    if value == "":
        return 0, "required"
    if not _INT.fullmatch(value):
        return 0, f"{value!r} is not a whole number"
    number = int(value.split(".", 1)[0])
    if abs(number) > MAX_IMPORT_QUANTITY:
        return 0, f"{number} is more than {MAX_IMPORT_QUANTITY}"
    return number, None


E4 = 10_000
MAX_AMOUNT_E4 = 10**12 * E4


def _amount_e4(value: str, *, negative: bool = False, required: bool = True) -> tuple[int, str | None]:
    """An amount as an integer number of 1/10,000 (exact for any price with up to 4 decimals)."""
    if value == "":
        return 0, ("required" if required else None)
    if not _AMOUNT.fullmatch(value):
        return 0, f"{value!r} is not an amount"
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return 0, f"{value!r} is not an amount"
    if amount < 0 and not negative:
        return 0, f"{value} is negative"
    scaled = int((amount * E4).to_integral_value(rounding=ROUND_HALF_UP))
    if abs(scaled) >= MAX_AMOUNT_E4:
        return 0, f"{value} is too large"
    return scaled, None


def _round_e4_to_cents(values: np.ndarray) -> np.ndarray:
    """Half-up (away from zero) rounding of 1/10,000 amounts to cents."""
    sign = np.sign(values)
    return sign * ((np.abs(values) + 50) // 100)


_COUNTRY_ALIASES = {"uk": "GB", "great britain": "GB", "england": "GB", "eire": "IE", "usa": "US", "united states of america": "US",
                    "u.s.a.": "US", "rsa": "ZA", "czech republic": "CZ", "korea": "KR", "unspecified": ""}
_country_names: dict[str, str] | None = None


def _country(value: str) -> tuple[str | None, str | None]:
    global _country_names
    if value == "":
        return None, None
    if len(value) == 2 and value.upper() in KNOWN_COUNTRIES:
        return value.upper(), None
    if _country_names is None:
        from phonenumbers.geocoder import _region_display_name

        _country_names = {_region_display_name(code, "en").lower(): code for code in KNOWN_COUNTRIES}
        _country_names = {k: v for k, v in _country_names.items() if k}
    code = _COUNTRY_ALIASES.get(value.lower(), _country_names.get(value.lower()))
    if code is None:
        return None, f"unknown country {value!r} (an ISO 3166 code or English name)"
    return code or None, None


def _timestamps(uniques: list[str], date_format: str | None) -> tuple[np.ndarray, list[str | None]]:
    """Nanoseconds since the epoch (UTC) per distinct value, and a reason per bad one."""
    series = pd.Series(uniques, dtype=object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if date_format:
            parsed = pd.to_datetime(series, format=date_format, utc=True, errors="coerce")
        else:
            parsed = pd.to_datetime(series, format="ISO8601", utc=True, errors="coerce")
            left = (parsed.isna() & (series != "")).to_numpy()
            if left.any() and left.sum() == (series != "").sum():  # nothing is ISO 8601: recognise the file's format
                from pandas.tseries.api import guess_datetime_format

                guessed = guess_datetime_format(str(series[left].iloc[0]), dayfirst=False)
                if guessed:
                    again = pd.to_datetime(series[left], format=guessed, utc=True, errors="coerce")
                    parsed = parsed.where(~left, again)
    ns = parsed.array.asi8.copy() if len(parsed) else np.zeros(0, np.int64)
    missing = parsed.isna().to_numpy()
    horizon = pd.Timestamp(utcnow() + timedelta(days=1)).value
    expected = f"format {date_format}" if date_format else "ISO 8601, e.g. 2024-03-01 14:30:00"
    reasons: list[str | None] = []
    for u, gone, value in zip(uniques, missing, ns):
        if u == "":
            reasons.append("required")
        elif gone:
            reasons.append(f"{u!r} is not a timestamp ({expected})")
        elif value > horizon:
            reasons.append(f"{u} is in the future")
        else:
            reasons.append(None)
    ns[missing] = 0
    return ns, reasons


def _datetimes(ns: np.ndarray) -> list[datetime]:
    return pd.DatetimeIndex(ns.astype("datetime64[ns]"), tz=UTC).to_pydatetime().tolist() if len(ns) else []


def _truncate(value: str, length: int) -> str:
    return value if len(value) <= length else value[: length - 1] + "…"


# --- writing ----------------------------------------------------------------------------------


class _Bulk:
    """Multi-row inserts through one connection.

    SQLite: one INSERT run as the driver's executemany over tuples, with each column's bind processor
    applied column-wise, constants written into the statement as literals and a list given for two
    columns bound once (numbered parameters): the per-row cost is binding the values that vary.
    Other backends: a Core executemany (insertmanyvalues).
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect
        self.sqlite = self.dialect.name == "sqlite"

    def insert(self, table: Table, columns: dict[str, Any], n: int) -> None:
        """`columns` maps a column to a list of n values or to a constant (`_Const`)."""
        if n == 0:
            return
        if not self.sqlite:
            self._copy(table, columns, n)
            return
        placeholders, prepared = [], []
        slot_of: dict[int, int] = {}
        for key, values in columns.items():
            proc = table.c[key].type.dialect_impl(self.dialect).bind_processor(self.dialect)
            if isinstance(values, _Const):
                placeholders.append(_sqlite_literal(proc(values.value) if proc else values.value))
                continue
            if id(values) not in slot_of:
                prepared.append(values if isinstance(values, _Raw) or proc is None else list(map(proc, values)))
                slot_of[id(values)] = len(prepared)
            placeholders.append(f"?{slot_of[id(values)]}")
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(placeholders)})"
        self.conn.exec_driver_sql(sql, list(zip(*prepared)))

    def _copy(self, table: Table, columns: dict[str, Any], n: int) -> None:
        """PostgreSQL: COPY ... FROM STDIN through the session's own (psycopg) connection and transaction."""
        series = []
        for key, values in columns.items():
            if isinstance(table.c[key].type, JSON):
                values = _Const(json.dumps(values.value)) if isinstance(values, _Const) else [json.dumps(v) for v in values]
            series.append(repeat(values.value, n) if isinstance(values, _Const) else values)
        raw = self.conn.connection.dbapi_connection
        with raw.cursor() as cursor:  # type: ignore[union-attr]
            with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in zip(*series):
                    copy.write_row(row)

    def new_ids(self, table: Table, n: int) -> list[int]:
        """Primary keys for n new rows, taken before the insert (so the rows need no reading back).
        SQLite: after the largest id (the write transaction holds the database lock); PostgreSQL: from the sequence."""
        if n == 0:
            return []
        if self.sqlite:
            top = self.conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
            return list(range(top + 1, top + n + 1))
        return list(self.conn.execute(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"), {"t": table.name, "n": n}).scalars())


def _sqlite_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQLite literal for {type(value).__name__}")


@dataclass(frozen=True)
class _Const:
    value: Any


class _Raw(list):  # type: ignore[type-arg]
    """Values already in the driver's form (SQLite only)."""


def _sqlite_datetimes(ns: np.ndarray) -> list[str]:
    """SQLAlchemy's SQLite DATETIME storage form, computed in bulk."""
    strings = np.datetime_as_string(ns.astype("datetime64[ns]").astype("datetime64[us]"), unit="us")
    return np.char.replace(strings, "T", " ").tolist()


def _db_datetimes(bulk: _Bulk, ns: np.ndarray) -> list[Any]:
    return _Raw(_sqlite_datetimes(ns)) if bulk.sqlite else _datetimes(ns)


def _money(bulk: _Bulk, cents: np.ndarray) -> list[Any]:
    if bulk.sqlite:  # SQLite stores Numeric as REAL: the float nearest the cents, like to_float(Decimal) gives
        return _Raw((cents / 100).tolist())
    return [Decimal(int(c)).scaleb(-2) for c in cents.tolist()]


def _rows_by(conn: Connection, table: Table, column: str, keys: Sequence[Any]) -> dict[Any, Any]:
    """Existing rows of `table` whose natural key `column` is among `keys`, by that key."""
    stmt = select(table).where(table.c[column].in_(bindparam("keys", expanding=True)))
    return {getattr(r, column): r for r in read_rows_in(conn, stmt, "keys", keys)}


def _short_hash(*parts: str, length: int = 14) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:length].upper()


# --- orders -----------------------------------------------------------------------------------

_PRODUCTS_BY_SKU = select(Product.id, Product.sku, Product.name).where(Product.sku.in_(bindparam("keys", expanding=True)))
_CUSTOMERS_BY_REF = select(Customer.id, Customer.external_ref).where(Customer.external_ref.in_(bindparam("keys", expanding=True)))
_LOCATIONS_BY_CODE = select(Location.id, Location.code, Location.country, Location.region).where(
    Location.code.in_(bindparam("keys", expanding=True)))
_CHANNELS_BY_CODE = select(Channel.id, Channel.code, Channel.currency, Channel.prices_include_tax).where(
    Channel.code.in_(bindparam("keys", expanding=True)))
_ORDERS_BY_REF = select(Order.external_ref).where(
    Order.channel_id == bindparam("channel_id"), Order.external_ref.in_(bindparam("keys", expanding=True)))
_ORDERS_ON_CHANNEL = select(func.count()).select_from(Order).where(Order.channel_id == bindparam("channel_id"))
_REFS_ON_CHANNEL = select(Order.external_ref).where(Order.channel_id == bindparam("channel_id"))
_HISTORY_RANGE = (Order.number >= "H-", Order.number < "H.")
_HISTORY_NUMBER_COUNT = select(func.count()).select_from(Order).where(*_HISTORY_RANGE)
_HISTORY_NUMBERS = select(Order.number).where(*_HISTORY_RANGE)
_ORDER_NUMBERS = select(Order.number).where(Order.number.in_(bindparam("keys", expanding=True)))
_RETURNS_BY_NUMBER = select(ReturnRequest.number, ReturnRequest.note).where(ReturnRequest.number.in_(bindparam("keys", expanding=True)))
_OPEN_HISTORY_LINES = (
    select(OrderLine.id, OrderLine.order_id, OrderLine.sku, OrderLine.quantity_fulfilled - OrderLine.quantity_returned,
           Order.placed_at, Customer.external_ref)
    .join(Order, Order.id == OrderLine.order_id)
    .join(Customer, Customer.id == Order.customer_id)
    .where(Customer.external_ref.in_(bindparam("keys", expanding=True)), Order.number.like("H-%"),
           OrderLine.quantity_fulfilled > OrderLine.quantity_returned)
)
_LINE_IDS = select(OrderLine.id, OrderLine.order_id, OrderLine.line_no).where(OrderLine.order_id.in_(bindparam("keys", expanding=True)))
_LINE_STATE = select(OrderLine.order_id, OrderLine.quantity, OrderLine.quantity_cancelled, OrderLine.quantity_fulfilled,
                     OrderLine.quantity_returned, OrderLine.quantity_delivered, OrderLine.quantity_backordered).where(
    OrderLine.order_id.in_(bindparam("keys", expanding=True)))
_ORDER_STATE = select(Order.id, Order.hold, Order.updated_at).where(Order.id.in_(bindparam("keys", expanding=True)))
_ADD_RETURNED = (update(OrderLine.__table__).where(OrderLine.id == bindparam("line_id"))
                 .values(quantity_returned=OrderLine.quantity_returned + bindparam("returned")))
_SET_STATUS = update(Order.__table__).where(Order.id == bindparam("order_id")).values(status=bindparam("new_status"),
                                                                                       updated_at=bindparam("new_updated_at"))


def _return_note(channel: str, order_id: str) -> str:
    return f"history import: {channel}/{order_id}"


def _return_numbers(channel: str, order_id: str, k: int) -> tuple[str | None, str]:
    primary = f"HR-{order_id}-{k}"
    return (primary if len(primary) <= 32 else None), f"HR-{_short_hash(channel, order_id, str(k), length=20)}"


def _import_orders(db: Database, t: _Table, report: ImportReport, *, skip_bad_rows: bool, actor: str | None,
                   date_format: str | None, rejects_path: Path | None) -> None:
    n = t.n
    E = _Errors(t)
    currency = get_settings().currency

    # per-row values, validated once per distinct value
    oid = t.col("order_id")
    E.add_unique(oid, [_ref_reason(u) for u in oid.uniques])
    sku = t.col("sku")
    E.add_unique(sku, [_code_reason(u) for u in sku.uniques])
    qcol = t.col("quantity")
    qvals, qreasons = _per_unique(qcol.uniques, _int_value)
    qreasons = [r if r else ("must not be 0" if v == 0 else None) for v, r in zip(qvals, qreasons)]
    E.add_unique(qcol, qreasons)
    qty = np.asarray(qvals, dtype=np.int64)[qcol.codes] if qvals else np.zeros(n, np.int64)
    ts_col = t.col("ordered_at")
    ts_u, ts_reasons = _timestamps(ts_col.uniques, date_format)
    E.add_unique(ts_col, ts_reasons)
    ts = ts_u[ts_col.codes] if len(ts_u) else np.zeros(n, np.int64)
    cust = t.col("customer_id")
    E.add_unique(cust, [_ref_reason(u, required=False) for u in cust.uniques])
    loc = t.columns.get("location")
    if loc is not None:
        E.add_unique(loc, [_code_reason(u, required=False) for u in loc.uniques])
    chan = t.columns.get("channel")
    if chan is not None:
        E.add_unique(chan, [_code_reason(u, required=False) for u in chan.uniques])
        chan_codes, chan_names = _encode([u or DEFAULT_CHANNEL for u in chan.uniques])
        chan_codes = chan_codes[chan.codes]
    else:
        chan_codes, chan_names = np.zeros(n, np.int64), [DEFAULT_CHANNEL]
    country = t.columns.get("country")
    country_u: list[str | None] = []
    if country is not None:
        country_u, reasons = _per_unique(country.uniques, _country)
        E.add_unique(country, reasons)
    category = t.columns.get("category")
    if category is not None:
        E.add_unique(category, ["longer than 120 characters" if len(u) > 120 else None for u in category.uniques])

    # money, in 1/10,000 then cents; per row, a line_total wins over unit_price * quantity
    absq = np.abs(qty)
    zeros, nowhere = np.zeros(n, np.int64), np.zeros(n, dtype=bool)
    money: dict[str, np.ndarray] = {}
    given: dict[str, np.ndarray] = {}
    for name, negative in (("unit_price", False), ("line_total", True), ("discount", False)):
        column = t.columns.get(name)
        if column is None:
            continue
        vals, reasons = _per_unique(column.uniques, lambda u, neg=negative: _amount_e4(u, negative=neg, required=False))
        E.add_unique(column, reasons)
        money[name] = np.asarray(vals, dtype=np.int64)[column.codes] if vals else zeros
        given[name] = ~column.empty()
    has_unit, has_total = given.get("unit_price", nowhere), given.get("line_total", nowhere)
    price_column = t.source("unit_price") if t.has("unit_price") else t.source("line_total")
    E.add_mask(~has_unit & ~has_total & ~E.bad, price_column, lambda i: "required (a unit_price or a line_total)")
    unit_e4, total_e4 = money.get("unit_price", zeros), money.get("line_total", zeros)
    if unit_e4.size and int(np.abs(unit_e4).max(initial=0)) * int(absq.max(initial=0)) >= 2**62:
        raise ValidationError("Amounts too large to import", errors=[{"field": "unit_price", "reason": "too large"}])
    E.add_mask((total_e4 < 0) & (qty > 0) & has_total & ~E.bad, t.source("line_total"),
               lambda i: "is negative on a sale (positive quantity)")
    discount = _round_e4_to_cents(money.get("discount", zeros))
    net = np.where(has_total, _round_e4_to_cents(np.abs(total_e4)), _round_e4_to_cents(unit_e4 * absq) - discount)
    E.add_mask((net < 0) & ~E.bad, t.source("discount"), lambda i: "is larger than the line's value")
    gross = net + discount
    safe = np.maximum(absq, 1)
    unit = np.where(has_unit, _round_e4_to_cents(unit_e4), (2 * gross + safe) // (2 * safe))  # else half-up of gross / quantity

    # orders: one per (channel, order_id); the first good row carries the order's values
    order_key = chan_codes * max(len(oid.uniques), 1) + oid.codes
    order_idx, _ = pd.factorize(order_key)
    n_orders = int(order_idx.max()) + 1 if n else 0
    ok = ~E.bad
    okrows = np.flatnonzero(ok)
    first = np.full(n_orders, -1, dtype=np.int64)
    keys_seen, first_pos = np.unique(order_idx[okrows], return_index=True)
    first[keys_seen] = okrows[first_pos]
    head = first[order_idx]
    for name, column in (("customer_id", cust), ("location", loc)):
        if column is None:
            continue
        clash = ok & (column.codes != column.codes[np.maximum(head, 0)])
        E.add_mask(clash, column.source, lambda i, c=column: (
            f"order {oid.uniques[oid.codes[i]]} has {c.source} {c.uniques[c.codes[head[i]]]!r} on row {int(t.rows[head[i]])}"))
    ok = ~E.bad

    # read what exists
    sales = ok & (qty > 0)
    backs = ok & (qty < 0)
    with db.read() as session:
        conn = session.connection()
        used_channels = sorted({chan_names[c] for c in np.unique(chan_codes[ok])})
        channels = {r.code: r for r in read_rows_in(conn, _CHANNELS_BY_CODE, "keys", used_channels)}
        cust_used = [cust.uniques[c] for c in np.unique(cust.codes[ok]) if cust.uniques[c]]
        customers = {r.external_ref: r.id for r in read_rows_in(conn, _CUSTOMERS_BY_REF, "keys", cust_used)}
        sku_used = [sku.uniques[c] for c in np.unique(sku.codes[ok])]
        products = {r.sku: r for r in read_rows_in(conn, _PRODUCTS_BY_SKU, "keys", sku_used)}
        locations: dict[str, Any] = {}
        if loc is not None:
            loc_used = [loc.uniques[c] for c in np.unique(loc.codes[ok]) if loc.uniques[c]]
            locations = {r.code: r for r in read_rows_in(conn, _LOCATIONS_BY_CODE, "keys", loc_used)}

        # duplicates: orders already imported on the channel, return groups already recorded
        dup_order = np.zeros(n_orders, dtype=bool)
        sale_orders = np.unique(order_idx[sales])
        by_channel: dict[int, list[int]] = defaultdict(list)
        for o in sale_orders:
            by_channel[int(chan_codes[first[o]])].append(int(o))
        for c, olist in by_channel.items():
            channel = channels.get(chan_names[c])
            if channel is None or not olist:
                continue
            refs = {oid.uniques[oid.codes[first[o]]]: o for o in olist}
            for ref in _existing_refs(conn, channel.id, list(refs)):
                dup_order[refs[ref]] = True
        dup_back = np.zeros(n_orders, dtype=bool)
        back_orders = np.unique(order_idx[backs])
        if back_orders.size:
            wanted: dict[str, tuple[int, str]] = {}
            for o in back_orders:
                c, ref = chan_names[int(chan_codes[first[o]])], oid.uniques[oid.codes[first[o]]]
                primary, hashed = _return_numbers(c, ref, 1)
                for number in (primary, hashed):
                    if number:
                        wanted[number] = (int(o), _return_note(c, ref))
            for number, note in read_rows_in(conn, _RETURNS_BY_NUMBER, "keys", list(wanted)):
                o, expected = wanted[number]
                if note == expected:
                    dup_back[o] = True

        # returns: match each negative line with the most recent earlier purchase(s) of its customer and SKU
        write_back = backs & ~dup_back[order_idx]
        no_customer = write_back & cust.empty()
        E.add_mask(no_customer, cust.source, lambda i: "a return needs the customer, to find the earlier purchase")
        write_back &= ~no_customer
        n_sku = max(len(sku.uniques), 1)
        pair = cust.codes * n_sku + sku.codes
        back_pairs = np.unique(pair[write_back])
        write_sale = sales & ~dup_order[order_idx]
        relevant_sales = np.flatnonzero(write_sale & np.isin(pair, back_pairs))
        back_customers = sorted({cust.uniques[c] for c in np.unique(cust.codes[write_back])})
        back_skus = {sku.uniques[c] for c in np.unique(sku.codes[write_back])}
        history = [r for r in read_rows_in(conn, _OPEN_HISTORY_LINES, "keys", back_customers) if r.sku in back_skus]
        watermark = _max_order_id(conn)
    cust_index = {u: i for i, u in enumerate(cust.uniques)}
    sku_index = {u: i for i, u in enumerate(sku.uniques)}

    events: list[tuple[int, int, int, Any]] = []  # (time, 0 sale / 1 return, tiebreak, what)
    for r in history:
        key = cust_index[r.external_ref] * n_sku + sku_index[r.sku]
        events.append((pd.Timestamp(r.placed_at).value, 0, -1, ("db", key, int(r[3]), r.id, r.order_id)))
    for i in relevant_sales:
        events.append((int(ts[i]), 0, int(i), ("row", int(pair[i]), int(qty[i]), int(i), None)))
    for i in np.flatnonzero(write_back):
        events.append((int(ts[i]), 1, int(i), None))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    stacks: dict[int, list[list[Any]]] = defaultdict(list)
    allocations: dict[int, list[tuple[Any, int]]] = {}  # return row -> [(target, units)]
    for _, is_return, i, what in events:
        if not is_return:
            _, key, units, ref, order_db_id = what
            stacks[key].append([units, ("db", ref, order_db_id) if what[0] == "db" else ("row", ref)])
            continue
        need = int(-qty[i])
        stack = stacks.get(int(pair[i]), [])
        taken: list[tuple[Any, int]] = []
        for entry in reversed(stack):
            if need == 0:
                break
            take = min(entry[0], need)
            if take:
                entry[0] -= take
                need -= take
                taken.append((entry, take))
        if need:
            for entry, take in taken:  # undo: the row is rejected
                entry[0] += take
            have = sum(t_ for _, t_ in taken)
            E.add(i, qcol.source, "return without an earlier purchase in the history" if have == 0 else
                  f"returns {-int(qty[i])} but only {have} unit(s) bought earlier by this customer are not yet returned")
            continue
        while stack and stack[-1][0] == 0:
            stack.pop()
        allocations[i] = [(entry[1], take) for entry, take in taken]

    report.rows_read = n
    if E and not skip_bad_rows:
        raise _reject(t, E)
    ok = ~E.bad
    write_sale = ok & (qty > 0) & ~dup_order[order_idx]
    write_back = ok & (qty < 0) & ~dup_back[order_idx]
    report.duplicates = int(np.unique(order_idx[ok & (qty > 0) & dup_order[order_idx]]).size)
    report.duplicate_returns = int((ok & (qty < 0) & dup_back[order_idx]).sum())

    # what the file introduces
    sale_rows = np.flatnonzero(write_sale)
    new_skus = sorted({int(c) for c in np.unique(sku.codes[sale_rows]) if sku.uniques[c] not in products})
    new_customers = [cust.uniques[c] for c in np.unique(cust.codes[sale_rows]) if cust.uniques[c] and cust.uniques[c] not in customers]
    used_locs: list[str] = []
    if loc is not None:
        used_locs = [loc.uniques[c] for c in np.unique(loc.codes[write_sale | write_back]) if loc.uniques[c]]
    new_locations = [c for c in used_locs if c not in locations]
    sale_channel_codes = np.unique(chan_codes[sale_rows])
    new_channels = []
    for c in sale_channel_codes:
        name = chan_names[int(c)]
        if name not in channels:
            has_location = loc is not None and bool((~loc.empty()[write_sale & (chan_codes == c)]).any())
            new_channels.append((name, "pos" if has_location else "web"))

    # new products: the latest sale gives the price, the latest description the name
    product_rows = []
    if new_skus:
        candidates = sale_rows[np.isin(sku.codes[sale_rows], new_skus)]
        order = candidates[np.lexsort((candidates, ts[candidates], sku.codes[candidates]))]
        last = order[np.r_[sku.codes[order][1:] != sku.codes[order][:-1], True]]
        desc = t.columns.get("description")
        names: dict[int, str] = {}
        categories: dict[int, str] = {}
        for column, target in ((desc, names), (category, categories)):
            if column is None:
                continue
            has = order[~column.empty()[order]]
            if has.size:
                latest = has[np.r_[sku.codes[has][1:] != sku.codes[has][:-1], True]]
                for i in latest:
                    target[int(sku.codes[i])] = column.uniques[column.codes[i]]
        now = utcnow()
        for i in last:
            code = int(sku.codes[i])
            product_rows.append(dict(
                sku=sku.uniques[code], name=_truncate(names.get(code, sku.uniques[code]), 300),
                category=categories.get(code, DEFAULT_CATEGORY), price=Decimal(int(unit[i])).scaleb(-2), cost=Decimal("0.00"),
                tax_class="standard", attributes={}, pack_size=1, min_order_qty=1, weight_kg=Decimal("0.5"), returnable=True,
                backorder_policy="deny", active=True, created_at=now,
            ))

    # write: master data first, then orders in batches, then returns
    now = utcnow()
    with db.transaction() as session:
        conn = session.connection()
        _lock_for_import(conn)
        if new_channels:
            conn.execute(insert(Channel.__table__), [dict(code=c, name=c, kind=k, prices_include_tax=False, currency=currency,
                                                         routing_strategy="nearest_with_stock", active=True, created_at=now)
                                                    for c, k in new_channels])
        if new_locations:
            conn.execute(insert(Location.__table__), [dict(code=c, name=c, kind="store", country="US", can_ship=True, can_pickup=False,
                                                          can_ship_from_store=False, active=True, created_at=now) for c in new_locations])
        if new_customers:
            _Bulk(conn).insert(Customer.__table__, {"external_ref": new_customers, "marketing_consent": _Const(False),
                                                    "created_at": _Const(now)}, len(new_customers))
        if product_rows:
            conn.execute(insert(Product.__table__), product_rows)
        channels |= {r.code: r for r in read_rows_in(conn, _CHANNELS_BY_CODE, "keys", [c for c, _ in new_channels])}
        locations |= {r.code: r for r in read_rows_in(conn, _LOCATIONS_BY_CODE, "keys", new_locations)}
        customers |= {r.external_ref: r.id for r in read_rows_in(conn, _CUSTOMERS_BY_REF, "keys", new_customers)}
        products |= {r.sku: r for r in read_rows_in(conn, _PRODUCTS_BY_SKU, "keys", [r["sku"] for r in product_rows])}
        report.created = {"channels": len(new_channels), "locations": len(new_locations), "customers": len(new_customers),
                          "products": len(product_rows)}

    # the orders to write, in file order, and their lines grouped per order in file order
    first_sale = np.full(n_orders, -1, dtype=np.int64)  # the order's values come from its first sale row
    order_list, first_pos = np.unique(order_idx[sale_rows], return_index=True)
    first_sale[order_list] = sale_rows[first_pos]
    order_list = order_list[np.argsort(first_sale[order_list], kind="stable")]
    position = np.full(n_orders, -1, dtype=np.int64)
    position[order_list] = np.arange(order_list.size)
    line_rows = sale_rows[np.argsort(position[order_idx[sale_rows]], kind="stable")]
    line_order_pos = position[order_idx[line_rows]]
    starts = np.searchsorted(line_order_pos, np.arange(order_list.size + 1))
    line_no = np.arange(line_rows.size) - starts[line_order_pos] + 1
    heads = first_sale[order_list]
    numbers = _choose_numbers(db, [(chan_names[int(chan_codes[h])], oid.uniques[oid.codes[h]]) for h in heads])

    sku_product = np.asarray([products[u].id if u in products else 0 for u in sku.uniques], dtype=np.int64)
    sku_names = np.asarray([products[u].name if u in products else u for u in sku.uniques], dtype=object)
    sku_strings = np.asarray(sku.uniques, dtype=object)
    desc = t.columns.get("description")
    if desc is not None:
        desc_u = np.asarray([_truncate(u, 300) for u in desc.uniques], dtype=object)
        line_names_all = np.where(desc.empty(), sku_names[sku.codes], desc_u[desc.codes])
    else:
        line_names_all = sku_names[sku.codes]
    cust_ids = np.asarray([customers.get(u) if u else None for u in cust.uniques] or [None], dtype=object)
    loc_rows = [locations.get(u) if u else None for u in loc.uniques] if loc is not None else [None]
    loc_ids = np.asarray([r.id if r is not None else None for r in loc_rows], dtype=object)
    loc_country = [r.country if r is not None else None for r in loc_rows]
    loc_region = [r.region if r is not None else None for r in loc_rows]
    chan_rows = [channels.get(c) for c in chan_names]

    subtotal = np.bincount(line_order_pos, weights=gross[line_rows], minlength=order_list.size).round().astype(np.int64)
    disc_total = np.bincount(line_order_pos, weights=discount[line_rows], minlength=order_list.size).round().astype(np.int64)
    total = np.bincount(line_order_pos, weights=net[line_rows], minlength=order_list.size).round().astype(np.int64)
    order_db_ids = np.zeros(order_list.size, dtype=np.int64)

    for start in range(0, order_list.size, ORDERS_PER_TRANSACTION):
        stop = min(start + ORDERS_PER_TRANSACTION, order_list.size)
        heads_b = heads[start:stop]
        with db.transaction() as session:
            conn = session.connection()
            _lock_for_import(conn)
            bulk = _Bulk(conn)
            if not bulk.sqlite or _max_order_id(conn) != watermark:  # someone else wrote orders since we looked
                _check_not_imported(conn, [(chan_rows[int(chan_codes[h])].id, oid.uniques[oid.codes[h]]) for h in heads_b])
            loc_code_b = loc.codes[heads_b] if loc is not None else np.zeros(heads_b.size, np.int64)
            chan_b = [chan_rows[int(c)] for c in chan_codes[heads_b]]
            carry = [loc_ids[c] is not None for c in loc_code_b]
            placed = _db_datetimes(bulk, ts[heads_b])
            if country is not None:
                countries = [country_u[c] or (loc_country[l] if k else None) for c, l, k in zip(country.codes[heads_b], loc_code_b, carry)]
            else:
                countries = [loc_country[l] if k else None for l, k in zip(loc_code_b, carry)]
            count = stop - start
            new_ids = bulk.new_ids(Order.__table__, count)
            columns = {
                "id": new_ids, "number": numbers[start:stop], "channel_id": [c.id for c in chan_b],
                "customer_id": cust_ids[cust.codes[heads_b]].tolist(),
                "external_ref": [oid.uniques[c] for c in oid.codes[heads_b]], "status": _Const("delivered"), "hold": _Const(False),
                "currency": [c.currency for c in chan_b], "prices_include_tax": [c.prices_include_tax for c in chan_b],
                "delivery_method": ["carry_out" if k else "ship" for k in carry], "pickup_location_id": loc_ids[loc_code_b].tolist(),
                "ship_from_store_allowed": _Const(True), "ship_country": countries,
                "ship_region": [loc_region[l] if k else None for l, k in zip(loc_code_b, carry)], "coupon_codes": _Const([]),
                "subtotal": _money(bulk, subtotal[start:stop]), "discount_total": _money(bulk, disc_total[start:stop]),
                "shipping_total": _Const(Decimal("0.00")), "tax_total": _Const(Decimal("0.00")), "total": _money(bulk, total[start:stop]),
                "placed_at": placed, "updated_at": placed, "fulfilment_started_at": placed,
            }
            bulk.insert(Order.__table__, columns, count)
            order_db_ids[start:stop] = new_ids
            watermark = max(new_ids)
            lo, hi = starts[start], starts[stop]
            rows_b = line_rows[lo:hi]
            q = absq[rows_b].tolist()
            bulk.insert(OrderLine.__table__, {
                "order_id": order_db_ids[line_order_pos[lo:hi]].tolist(), "line_no": line_no[lo:hi].tolist(),
                "product_id": sku_product[sku.codes[rows_b]].tolist(), "sku": sku_strings[sku.codes[rows_b]].tolist(),
                "name": line_names_all[rows_b].tolist(), "quantity": q, "quantity_cancelled": _Const(0),
                "quantity_fulfilled": q, "quantity_returned": _Const(0), "quantity_delivered": q,
                "quantity_backordered": _Const(0), "unit_price": _money(bulk, unit[rows_b]),
                "discount_total": _money(bulk, discount[rows_b]), "tax_rate": _Const(Decimal("0")), "tax_amount": _Const(Decimal("0.00")),
                "line_total": _money(bulk, net[rows_b]),
            }, hi - lo)
    report.imported = int(order_list.size)
    report.lines = int(line_rows.size)

    # returns
    back_rows = [i for i in np.flatnonzero(write_back) if i in allocations]
    if back_rows:
        line_at = np.full(n, -1, dtype=np.int64)
        line_at[line_rows] = np.arange(line_rows.size)
        targets = {target[1] for i in back_rows for target, _ in allocations[i] if target[0] == "row"}
        line_of_row = {r: (int(order_db_ids[line_order_pos[line_at[r]]]), int(line_no[line_at[r]])) for r in targets}
        report.returns = _write_returns(
            db, t, back_rows, allocations, line_of_row, order_idx=order_idx, first=first, oid=oid, chan_codes=chan_codes,
            chan_names=chan_names, ts=ts, qty=qty, net=net, loc=loc, locations=locations, actor=actor)

    report.rejected = int(E.bad.sum())
    report.errors = E.report()
    if E:
        path = rejects_path or default_rejects_path(t.path)
        _write_rejects(t, E, path)
        report.rejects_path = str(path)


def _lock_for_import(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK - 2**63 if _ADVISORY_LOCK >= 2**63 else _ADVISORY_LOCK})


def _existing_refs(conn: Connection, channel_id: int, refs: Sequence[str]) -> set[str]:
    """Which of these external refs have an order on the channel: one scan of the channel's refs when
    that is not much more than asked for (a re-import), else IN lists."""
    if not refs:
        return set()
    count = conn.execute(_ORDERS_ON_CHANNEL, {"channel_id": channel_id}).scalar_one()
    if count == 0:
        return set()
    if count <= 4 * len(refs):
        wanted = set(refs)
        return {r for (r,) in conn.execute(_REFS_ON_CHANNEL, {"channel_id": channel_id}) if r in wanted}
    return {r for (r,) in read_rows_in(conn, _ORDERS_BY_REF, "keys", list(refs), channel_id=channel_id)}


def _check_not_imported(conn: Connection, refs: list[tuple[int, str]]) -> None:
    """Inside the writing transaction (import lock held): no order of this batch may exist by now."""
    by_channel: dict[int, list[str]] = defaultdict(list)
    for channel_id, ref in refs:
        by_channel[channel_id].append(ref)
    for channel_id, values in by_channel.items():
        found = _existing_refs(conn, channel_id, values)
        if found:
            ref = sorted(found)[0]
            raise Conflict(f"Order {ref} was imported meanwhile by another import; run the import again (it skips what is in)",
                           external_ref=ref)


def _max_order_id(conn: Connection) -> int:
    return conn.execute(select(func.coalesce(func.max(Order.id), 0))).scalar_one()


def _choose_numbers(db: Database, orders: list[tuple[str, str]]) -> list[str]:
    """H-<order_id> per order unless taken (another channel, too long): then a hash of channel and order id."""
    wanted = [f"H-{ref}" if len(ref) <= 30 else None for _, ref in orders]
    with db.read() as session:
        conn = session.connection()
        asked = [w for w in wanted if w]
        count = conn.execute(_HISTORY_NUMBER_COUNT).scalar_one()
        if count == 0:
            taken: set[str] = set()
        elif count <= 4 * len(asked):
            taken = {r for (r,) in conn.execute(_HISTORY_NUMBERS)}
        else:
            taken = {r[0] for r in read_rows_in(conn, _ORDER_NUMBERS, "keys", asked)}
        numbers: list[str] = []
        fallbacks = []
        for (channel, ref), number in zip(orders, wanted):
            if number is None or number in taken:
                number = f"H-{_short_hash(channel, ref, length=20)}"
                fallbacks.append(number)
            taken.add(number)
            numbers.append(number)
        clash = {r[0] for r in read_rows_in(conn, _ORDER_NUMBERS, "keys", fallbacks)}
    if clash:
        raise Conflict(f"Order number {sorted(clash)[0]} exists already", number=sorted(clash)[0])
    if len(set(numbers)) != len(numbers):
        raise Conflict("Two imported orders would share a number", numbers=len(numbers))
    return numbers


def _write_returns(db: Database, t: _Table, back_rows: list[int], allocations: dict[int, list[tuple[Any, int]]],
                   line_of_row: dict[int, tuple[int, int]], *, order_idx: np.ndarray, first: np.ndarray, oid: _Column,
                   chan_codes: np.ndarray, chan_names: list[str], ts: np.ndarray, qty: np.ndarray, net: np.ndarray,
                   loc: _Column | None, locations: dict[str, Any], actor: str | None) -> int:
    """One closed return per (negative group, original order); its lines return the matched order lines."""
    with db.transaction() as session:
        conn = session.connection()
        _lock_for_import(conn)
        new_orders = sorted({line_of_row[target[1]][0] for i in back_rows for target, _ in allocations[i] if target[0] == "row"})
        line_ids = {(r.order_id, r.line_no): r.id for r in read_rows_in(conn, _LINE_IDS, "keys", new_orders)}

        def resolve(target: tuple[Any, ...]) -> tuple[int, int]:  # (line id, order id)
            if target[0] == "db":
                return target[1], target[2]
            order_id, line_no = line_of_row[target[1]]
            return line_ids[(order_id, line_no)], order_id

        requests: dict[tuple[int, int], dict[str, Any]] = {}
        per_group: dict[int, int] = defaultdict(int)
        lines: list[dict[str, Any]] = []
        for i in sorted(back_rows):
            group = int(order_idx[i])
            parts = [(resolve(target), units) for target, units in allocations[i]]
            refunds = allocate_pro_rata(Decimal(int(net[i])).scaleb(-2), [Decimal(u) for _, u in parts])
            for ((line_id, order_id), units), refund in zip(parts, refunds):
                key = (group, order_id)
                if key not in requests:
                    per_group[group] += 1
                    channel, ref = chan_names[int(chan_codes[first[group]])], oid.uniques[oid.codes[first[group]]]
                    primary, hashed = _return_numbers(channel, ref, per_group[group])
                    when = _datetimes(ts[i : i + 1])[0]
                    loc_code = loc.uniques[loc.codes[i]] if loc is not None else ""
                    requests[key] = dict(
                        number=primary or hashed, fallback=hashed, order_id=order_id, status="closed", reason_code="other",
                        note=_return_note(channel, ref), opened_by=actor, opened_at=when, received_at=when,
                        received_location_id=locations[loc_code].id if loc_code else None, refund_amount=Decimal("0.00"),
                        refunded_at=when,
                    )
                requests[key]["refund_amount"] += refund
                lines.append(dict(key=key, order_line_id=line_id, quantity=units, reason_code="other", refund_amount=refund))
        wanted = [r["number"] for r in requests.values()]
        taken = {r[0] for r in read_rows_in(conn, _RETURNS_BY_NUMBER, "keys", wanted)}
        for r in requests.values():  # HR-<order_id>-<n> unless another channel's return has it
            if r["number"] in taken:
                r["number"] = r["fallback"]
            taken.add(r["number"])
        rows = [{k: v for k, v in r.items() if k != "fallback"} for r in requests.values()]
        conn.execute(insert(ReturnRequest.__table__), rows)
        ids = {r.number: r.id for r in read_rows_in(conn, select(ReturnRequest.id, ReturnRequest.number).where(
            ReturnRequest.number.in_(bindparam("keys", expanding=True))), "keys", [r["number"] for r in rows])}
        conn.execute(insert(ReturnLine.__table__), [
            {"return_id": ids[requests[l["key"]]["number"]], **{k: v for k, v in l.items() if k != "key"}} for l in lines])
        returned: dict[int, int] = defaultdict(int)
        for l in lines:
            returned[l["order_line_id"]] += l["quantity"]
        conn.execute(_ADD_RETURNED, [{"line_id": k, "returned": v} for k, v in returned.items()])
        # the orders' status follows their lines (partially_returned / returned)
        touched = sorted({r["order_id"] for r in rows})
        latest: dict[int, datetime] = {}
        for r in rows:
            latest[r["order_id"]] = max(latest.get(r["order_id"], r["received_at"]), r["received_at"])
        state: dict[int, list[Any]] = defaultdict(list)
        for r in read_rows_in(conn, _LINE_STATE, "keys", touched):
            state[r.order_id].append(r)
        updates = []
        for r in read_rows_in(conn, _ORDER_STATE, "keys", touched):
            status = derive_status(SimpleNamespace(lines=state[r.id], hold=r.hold))  # type: ignore[arg-type]
            updates.append({"order_id": r.id, "new_status": status, "new_updated_at": max(r.updated_at, latest[r.id])})
        conn.execute(_SET_STATUS, updates)
    return len(lines)


# --- master data --------------------------------------------------------------------------------


def _records(t: _Table, errors: _Errors) -> list[tuple[int, dict[str, str]]]:
    """(record index, {canonical: value}) for each row without a parse error; empty cells are left out."""
    values = {name: column.values() for name, column in t.columns.items()}
    out = []
    for i in range(t.n):
        if errors.bad[i]:
            continue
        out.append((i, {name: str(v[i]) for name, v in values.items() if v[i] != ""}))
    return out


def _add_validation(errors: _Errors, t: _Table, i: int, exc: ValidationError, rename: dict[str, str] | None = None) -> None:
    for e in exc.errors:
        head = e["field"].split(".")[0]
        if head in ("(body)", ""):
            head = ""
        elif head == "address" and "." in e["field"]:
            head = e["field"].split(".")[1]
        elif head == "address":  # the address's own rules: postal code against country
            head = "postal_code" if "postal code" in e["reason"] else "country" if "country" in e["reason"] else ""
        head = (rename or {}).get(head, head)
        errors.add(i, t.source(head) if head else "(row)", e["reason"])


def _lengths(table: Table, data: dict[str, Any]) -> list[tuple[str, str]]:
    problems = []
    for key, value in data.items():
        length = getattr(table.c[key].type, "length", None) if key in table.c else None
        if isinstance(value, str) and length and len(value) > length:
            problems.append((key, f"longer than {length} characters"))
    return problems


def _same(a: Any, b: Any) -> bool:
    numbers = (Decimal, int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return Decimal(str(a)) == Decimal(str(b))
    return a == b


_BOOL = TypeAdapter(bool)


def _upsert(conn: Connection, table: Table, inserts: list[dict[str, Any]], changes: list[tuple[int, dict[str, Any]]],
            t: Any, errors: list[Any], skip_bad_rows: bool) -> None:
    """Refuse the file if it had bad rows (unless skipping them), else insert the new rows and update the changed ones."""
    if errors and not skip_bad_rows:
        raise _reject(t, errors)
    if inserts:
        conn.execute(insert(table), inserts)
    _updates(conn, table, changes)


def _updates(conn: Connection, table: Table, changes: list[tuple[int, dict[str, Any]]]) -> None:
    """UPDATE rows by id, one executemany per set of changed columns."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row_id, values in changes:
        keys = tuple(sorted(values))
        groups[keys].append({"row_id": row_id, **{f"v_{k}": values[k] for k in keys}})
    for keys, rows in groups.items():
        stmt = update(table).where(table.c.id == bindparam("row_id")).values({k: bindparam(f"v_{k}") for k in keys})
        conn.execute(stmt, rows)


def _duplicate(errors: _Errors, t: _Table, seen: dict[str, int], key: str, i: int, column: str) -> bool:
    if key in seen:
        errors.add(i, t.source(column), f"{key!r} appears again (first on row {int(t.rows[seen[key]])})")
        return True
    seen[key] = i
    return False


PRODUCT_FIELDS = ("name", "category", "price", "cost", "description", "brand", "tax_class", "size", "colour", "pack_size",
                  "min_order_qty", "weight_kg", "returnable", "backorder_policy", "active")


def _import_products(db: Database, t: _Table, report: ImportReport, *, skip_bad_rows: bool, rejects_path: Path | None, **_: Any) -> None:
    E = _Errors(t)
    records = _records(t, E)
    table = Product.__table__
    with db.transaction() as session:
        conn = session.connection()
        existing = _rows_by(conn, table, "sku", sorted({r.get("sku", "") for _, r in records}))
        suppliers = dict(conn.execute(select(Supplier.code, Supplier.id)).all()) if t.has("supplier") else {}
        seen: dict[str, int] = {}
        inserts, changes, unchanged = [], [], 0
        for i, rec in records:
            sku = rec.get("sku", "")
            if sku and _duplicate(E, t, seen, sku, i, "sku"):
                continue
            current = existing.get(sku)
            base = {f: getattr(current, f) for f in PRODUCT_FIELDS if getattr(current, f) is not None} if current else {
                "name": sku, "category": DEFAULT_CATEGORY, "price": "0", "cost": "0"}
            given = {k: v for k, v in rec.items() if k not in ("sku", "supplier")}
            supplier_id = current.supplier_id if current else None
            if "supplier" in rec:
                if rec["supplier"] not in suppliers:
                    E.add(i, t.source("supplier"), f"unknown supplier {rec['supplier']!r}")
                    continue
                supplier_id = suppliers[rec["supplier"]]
            try:
                data = parse(ProductIn, {**base, **given, "sku": sku})
            except ValidationError as exc:
                _add_validation(E, t, i, exc)
                continue
            values = data.model_dump(include=set(PRODUCT_FIELDS))
            problems = _lengths(table, {"sku": sku, **values})
            for key, reason in problems:
                E.add(i, t.source(key), reason)
            if problems:
                continue
            values["supplier_id"] = supplier_id
            if current is None:
                inserts.append({"sku": sku, **values, "attributes": {}, "created_at": utcnow()})
                continue
            changed = {k: v for k, v in values.items() if (k in given or k == "supplier_id") and not _same(getattr(current, k), v)}
            if changed:
                changes.append((current.id, changed))
            else:
                unchanged += 1
        _upsert(conn, table, inserts, changes, t, E, skip_bad_rows)
    _finish(t, E, report, rejects_path, imported=len(inserts), updated=len(changes), unchanged=unchanged)


LOCATION_FIELDS = ("name", "kind", "latitude", "longitude", "address_line1", "city", "region", "postal_code", "country",
                   "can_ship", "can_pickup", "can_ship_from_store", "daily_capacity", "cutoff_hour_utc")


def _postal_reason(postal: str | None, country: str | None) -> str | None:
    if not postal or not country:
        return None
    pattern = POSTAL_CODE_PATTERNS.get(country, r"[A-Z0-9][A-Z0-9 \-]{1,9}")
    if not re.fullmatch(pattern, postal.upper()):
        return f"postal code {postal!r} is not valid for {country}"
    return None


def _import_locations(db: Database, t: _Table, report: ImportReport, *, skip_bad_rows: bool, rejects_path: Path | None, **_: Any) -> None:
    E = _Errors(t)
    records = _records(t, E)
    table = Location.__table__
    with db.transaction() as session:
        conn = session.connection()
        existing = _rows_by(conn, table, "code", sorted({r.get("code", "") for _, r in records}))
        suppliers = dict(conn.execute(select(Supplier.code, Supplier.id)).all())
        supplier_codes = {v: k for k, v in suppliers.items()}
        seen: dict[str, int] = {}
        inserts, changes, unchanged = [], [], 0
        for i, rec in records:
            code = rec.get("code", "")
            if code and _duplicate(E, t, seen, code, i, "code"):
                continue
            current = existing.get(code)
            base: dict[str, Any] = {"name": code}
            if current is not None:
                base = {f: getattr(current, f) for f in LOCATION_FIELDS if getattr(current, f) is not None}
                if current.supplier_id:
                    base["supplier"] = supplier_codes.get(current.supplier_id)
            given = {k: v for k, v in rec.items() if k not in ("code", "active")}
            active = current.active if current is not None else True
            if "active" in rec:
                try:
                    active = _BOOL.validate_python(rec["active"])
                except Exception:
                    E.add(i, t.source("active"), f"{rec['active']!r} is not true or false")
                    continue
            if "supplier" in given and given["supplier"] not in suppliers:
                E.add(i, t.source("supplier"), f"unknown supplier {given['supplier']!r}")
                continue
            try:
                data = parse(LocationIn, {**base, **given, "code": code})
            except ValidationError as exc:
                _add_validation(E, t, i, exc)
                continue
            values = data.model_dump(include=set(LOCATION_FIELDS))
            reason = _postal_reason(values.get("postal_code"), values.get("country"))
            problems = _lengths(table, {"code": code, **values}) + ([("postal_code", reason)] if reason else [])
            for key, why in problems:
                E.add(i, t.source(key), why)
            if problems:
                continue
            values["supplier_id"] = suppliers.get(data.supplier) if data.supplier else None
            values["active"] = active
            if current is None:
                inserts.append({"code": code, **values, "created_at": utcnow()})
                continue
            asked = set(given) | ({"active"} if "active" in rec else set()) | ({"supplier_id"} if "supplier" in given else set())
            changed = {k: v for k, v in values.items() if k in asked and not _same(getattr(current, k), v)}
            if changed:
                changes.append((current.id, changed))
            else:
                unchanged += 1
        _upsert(conn, table, inserts, changes, t, E, skip_bad_rows)
    _finish(t, E, report, rejects_path, imported=len(inserts), updated=len(changes), unchanged=unchanged)


CUSTOMER_FIELDS = ("email", "first_name", "last_name", "external_ref", "marketing_consent", "segment", "phone")
ADDRESS_FIELDS = ("line1", "line2", "city", "region", "postal_code", "country")


def _import_customers(db: Database, t: _Table, report: ImportReport, *, skip_bad_rows: bool, rejects_path: Path | None, **_: Any) -> None:
    E = _Errors(t)
    records = _records(t, E)
    table, addresses = Customer.__table__, Address.__table__
    with db.transaction() as session:
        conn = session.connection()
        refs = sorted({r["customer_id"] for _, r in records if "customer_id" in r})
        emails = sorted({r["email"].lower() for _, r in records if "email" in r})
        by_ref = _rows_by(conn, table, "external_ref", refs)
        by_email = _rows_by(conn, table, "email", emails)
        known_ids = sorted({r.id for r in (*by_ref.values(), *by_email.values())})
        default_address = {}
        for r in read_rows_in(conn, select(addresses).where(addresses.c.customer_id.in_(bindparam("keys", expanding=True)))
                            .order_by(addresses.c.is_default.desc(), addresses.c.id), "keys", known_ids):
            default_address.setdefault(r.customer_id, r)
        seen_ref: dict[str, int] = {}
        seen_email: dict[str, int] = {}
        inserts: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        changes: list[tuple[int, dict[str, Any]]] = []
        address_changes: list[tuple[int, dict[str, Any]]] = []
        address_inserts: list[dict[str, Any]] = []
        address_changes_owner: list[tuple[int, dict[str, Any]]] = []
        unchanged = 0
        now = utcnow()
        for i, rec in records:
            ref = rec.get("customer_id")
            if ref and _duplicate(E, t, seen_ref, ref, i, "customer_id"):
                continue
            current = by_ref.get(ref) if ref else None
            email_key = rec["email"].lower() if "email" in rec else None
            if current is None and email_key:
                match = by_email.get(email_key)
                if match is not None and (not ref or match.external_ref in (None, ref)):
                    current = match
                elif match is not None:
                    E.add(i, t.source("email"), f"{rec['email']} belongs to customer {match.external_ref!r}")
                    continue
            base: dict[str, Any] = {}
            if current is not None:
                base = {f: getattr(current, f) for f in CUSTOMER_FIELDS if getattr(current, f) is not None}
            address_given = {k: rec[k] for k in ADDRESS_FIELDS if k in rec}
            old_address = default_address.get(current.id) if current is not None else None
            address = None
            if address_given or old_address is not None:
                address = {k: getattr(old_address, k) for k in ADDRESS_FIELDS
                           if old_address is not None and getattr(old_address, k) is not None}
                address |= address_given
            given = {("external_ref" if k == "customer_id" else k): v for k, v in rec.items() if k not in ADDRESS_FIELDS}
            try:
                data = parse(CustomerIn, {**base, **given, **({"address": address} if address is not None else {})})
            except ValidationError as exc:
                _add_validation(E, t, i, exc, rename={"external_ref": "customer_id"})
                continue
            values = data.model_dump(include=set(CUSTOMER_FIELDS))
            problems = _lengths(table, values)
            for key, why in problems:
                E.add(i, t.source("customer_id" if key == "external_ref" else key), why)
            if problems:
                continue
            if data.email:
                other = by_email.get(data.email)
                if other is not None and (current is None or other.id != current.id):
                    E.add(i, t.source("email"), f"{data.email} belongs to another customer")
                    continue
                if _duplicate(E, t, seen_email, data.email, i, "email"):
                    continue
            new_address = data.address.model_dump() if data.address is not None else None
            if current is None:
                values["marketing_consent_at"] = now if data.marketing_consent else None
                inserts.append(({**values, "created_at": now}, new_address))
                continue
            changed = {k: v for k, v in values.items() if ("customer_id" if k == "external_ref" else k) in rec
                       and not _same(getattr(current, k), v)}
            if "marketing_consent" in changed:
                changed["marketing_consent_at"] = now
            addr_changed = {}
            if new_address is not None and address_given:
                if old_address is None:
                    address_inserts.append({"customer_id": current.id, **new_address, "is_default": True})
                else:
                    addr_changed = {k: v for k, v in new_address.items() if k in ADDRESS_FIELDS and not _same(getattr(old_address, k), v)}
                    if addr_changed:
                        address_changes.append((old_address.id, addr_changed))
                        address_changes_owner.append((current.id, addr_changed))
            if changed:
                changes.append((current.id, changed))
            if not changed and not addr_changed and not (address_inserts and address_inserts[-1]["customer_id"] == current.id):
                unchanged += 1
        if E and not skip_bad_rows:
            raise _reject(t, E)
        touched = {c for c, _ in changes} | {a["customer_id"] for a in address_inserts}
        touched |= {c for c, _ in address_changes_owner}
        new_ids = _Bulk(conn).new_ids(table, len(inserts))
        if inserts:
            conn.execute(insert(table), [{"id": new_id, **values} for new_id, (values, _) in zip(new_ids, inserts)])
        for new_id, (_, address) in zip(new_ids, inserts):
            if address is not None:
                address_inserts.append({"customer_id": new_id, **address, "is_default": True})
        if address_inserts:
            conn.execute(insert(addresses), address_inserts)
        _updates(conn, table, changes)
        _updates(conn, addresses, address_changes)
    _finish(t, E, report, rejects_path, imported=len(inserts), updated=len(touched), unchanged=unchanged)


def _import_stock(db: Database, t: _Table, report: ImportReport, *, skip_bad_rows: bool, rejects_path: Path | None,
                  actor: str | None, **_: Any) -> None:
    E = _Errors(t)
    sku, loc, qcol = t.col("sku"), t.col("location"), t.col("quantity")
    E.add_unique(sku, [_code_reason(u) for u in sku.uniques])
    E.add_unique(loc, [_code_reason(u) for u in loc.uniques])
    qvals, qreasons = _per_unique(qcol.uniques, _int_value)
    qreasons = [r if r else (f"{v} is negative" if v < 0 else None) for v, r in zip(qvals, qreasons)]
    E.add_unique(qcol, qreasons)
    with db.transaction() as session:
        conn = session.connection()
        products = dict(read_rows_in(conn, select(Product.sku, Product.id).where(Product.sku.in_(bindparam("keys", expanding=True))),
                                   "keys", sku.uniques))
        locations = dict(read_rows_in(conn, select(Location.code, Location.id).where(Location.code.in_(bindparam("keys", expanding=True))),
                                    "keys", loc.uniques))
        E.add_unique(sku, [None if u in products or not u else f"unknown SKU {u!r}" for u in sku.uniques], where=~E.bad)
        E.add_unique(loc, [None if u in locations or not u else f"unknown location {u!r}" for u in loc.uniques], where=~E.bad)
        seen: dict[str, int] = {}
        wanted: list[tuple[int, int, int]] = []  # (product id, location id, on hand)
        for i in np.flatnonzero(~E.bad):
            s, l = sku.uniques[sku.codes[i]], loc.uniques[loc.codes[i]]
            if _duplicate(E, t, seen, f"{s} @ {l}", i, "sku"):
                continue
            wanted.append((products[s], locations[l], int(qvals[qcol.codes[i]])))
        if E and not skip_bad_rows:
            raise _reject(t, E)
        product_ids = sorted({p for p, _, _ in wanted})
        location_ids = sorted({l for _, l, _ in wanted})
        stock_by_key: dict[tuple[int, int], Any] = {}
        stmt = (select(Stock.id, Stock.product_id, Stock.location_id, Stock.on_hand)
                .where(Stock.product_id.in_(bindparam("keys", expanding=True)), Stock.location_id.in_(location_ids or [0]))
                .order_by(Stock.id))
        if conn.dialect.name != "sqlite":
            stmt = stmt.with_for_update()
        for r in read_rows_in(conn, stmt, "keys", product_ids):
            stock_by_key[(r.product_id, r.location_id)] = r
        missing = [(p, l) for p, l, q in wanted if (p, l) not in stock_by_key and q > 0]
        if missing:
            conn.execute(insert(Stock.__table__), [{"product_id": p, "location_id": l, "on_hand": 0} for p, l in missing])
            for r in read_rows_in(conn, stmt, "keys", sorted({p for p, _ in missing})):
                stock_by_key.setdefault((r.product_id, r.location_id), r)
        with_history = {r[0] for r in read_rows_in(conn, select(StockMovement.stock_id).where(
            StockMovement.stock_id.in_(bindparam("keys", expanding=True))).distinct(), "keys",
            [stock_by_key[(p, l)].id for p, l, _ in wanted if (p, l) in stock_by_key])}
        missing_set = set(missing)
        now = utcnow()
        reference = f"import:{t.path.name}"[:64]
        movements, on_hand = [], []
        created = updated = unchanged = 0
        for p, l, q in wanted:
            row = stock_by_key.get((p, l))
            current = 0 if row is None or (p, l) in missing_set else row.on_hand
            if row is None or q == current:
                unchanged += 1
                continue
            initial = row.id not in with_history
            movements.append({"stock_id": row.id, "kind": "adjustment", "quantity": q - current, "reserved_change": 0,
                              "reason": "initial" if initial else "count", "reference": reference, "actor": actor, "at": now})
            on_hand.append({"row_id": row.id, "v_on_hand": q})
            created += initial
            updated += not initial
        if on_hand:
            conn.execute(update(Stock.__table__).where(Stock.id == bindparam("row_id")).values(on_hand=bindparam("v_on_hand")), on_hand)
            conn.execute(insert(StockMovement.__table__), movements)
    _finish(t, E, report, rejects_path, imported=created, updated=updated, unchanged=unchanged)


def _finish(t: _Table, E: _Errors, report: ImportReport, rejects_path: Path | None, *, imported: int, updated: int, unchanged: int) -> None:
    report.rows_read = t.n
    report.imported, report.updated, report.unchanged = imported, updated, unchanged
    report.rejected = int(E.bad.sum())
    report.errors = E.report()
    if E:
        path = rejects_path or default_rejects_path(t.path)
        _write_rejects(t, E, path)
        report.rejects_path = str(path)


_IMPORTERS: dict[str, Callable[..., None]] = {
    "products": _import_products,
    "locations": _import_locations,
    "customers": _import_customers,
    "stock": _import_stock,
    "orders": _import_orders,
}


def import_file(
    db: Database,
    kind: str,
    source: str | Path,
    *,
    mapping: dict[str, str] | None = None,
    skip_bad_rows: bool = False,
    rejects_path: Path | None = None,
    actor: str | None = "import",
    date_format: str | None = None,
    encoding: str = "utf-8-sig",
) -> ImportReport:
    """Import one CSV file of `kind` (products, locations, stock, customers, orders); see the module doc.

    Raises ValidationError for file-level problems (unknown kind or `mapping` target, missing column,
    unreadable file) and ImportRejected when rows are bad and `skip_bad_rows` is off; either way
    nothing is written.
    """
    started = time.perf_counter()
    table = read_table(kind, source, mapping, encoding=encoding)
    report = ImportReport(kind=kind, source=str(source))
    _IMPORTERS[kind](db, table, report, skip_bad_rows=skip_bad_rows, rejects_path=Path(rejects_path) if rejects_path else None,
                     actor=actor, date_format=date_format)
    report.seconds = time.perf_counter() - started
    return report


__all__ = ["KINDS", "SPECS", "ImportRejected", "ImportReport", "default_rejects_path", "import_file", "read_table"]
