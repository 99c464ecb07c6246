"""Engine, sessions and the write transaction every service runs in.

SQLite (the embedded default) runs in WAL mode and every write transaction starts with
BEGIN IMMEDIATE, so two writers never interleave and there is no lock upgrade deadlock.
PostgreSQL runs READ COMMITTED and services lock the rows they change (SELECT ... FOR UPDATE).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, DateTime, Engine, Table, create_engine, event, func, insert, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from om_core.config import get_settings

SQLITE_BUSY_TIMEOUT_MS = 60_000
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 10_000
SQLITE_WAL_SIZE_LIMIT_BYTES = 64 << 20  # what a checkpointed WAL file is cut back to


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are stored in UTC and always come back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: StoreOM stores timezone-aware UTC timestamps only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:  # type: ignore[no-untyped-def]
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect):  # type: ignore[no-untyped-def]
        """On SQLite, one step to the stored text ('YYYY-MM-DD HH:MM:SS.ffffff', SQLAlchemy's DATETIME
        format): bulk writes bind hundreds of thousands of timestamps, and the two-step default
        (this decorator, then the dialect's formatting) was a tenth of a simulation's time."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if not isinstance(value, datetime):
                raise TypeError(f"UTCDateTime takes a datetime, not {type(value).__name__}")
            if value.tzinfo is None:
                raise ValueError("naive datetime: StoreOM stores timezone-aware UTC timestamps only")
            if value.tzinfo is not UTC:
                value = value.astimezone(UTC)
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")

        return process


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # An order placement appends ~35 pages to the WAL. Checkpointing every 1,000 pages (the default)
        # copies the same hot pages back, with an fsync, every ~30 orders, inside a commit; every 10,000
        # pages (~40 MB) copies each hot page once per ~300 orders: half the commit cost.
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
        cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_SIZE_LIMIT_BYTES}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.connection.driver_connection.execute(_BEGIN[mode])  # straight to the driver: once per transaction


_BEGIN = {"IMMEDIATE": "BEGIN IMMEDIATE", "DEFERRED": "BEGIN DEFERRED", "EXCLUSIVE": "BEGIN EXCLUSIVE"}


def make_engine(url: str | None = None, **kwargs) -> Engine:  # type: ignore[no-untyped-def]
    url = url or get_settings().database_url
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


class Database:
    """A bound engine plus the transaction discipline the services rely on."""

    def __init__(self, url: str | None = None, engine: Engine | None = None) -> None:
        self.engine = engine or make_engine(url)
        self.url = str(self.engine.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any exception.

        Services may register compensations (e.g. void a payment authorisation made at the
        gateway) with `on_rollback(session, fn)`; they run only if the transaction is not committed.
        """
        session = self._sessions()
        session.info["on_rollback"] = []
        committed = False
        try:
            yield session
            session.commit()
            committed = True
        finally:
            if not committed:
                session.rollback()
                for compensate in reversed(session.info["on_rollback"]):
                    compensate()
            session.close()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (SQLite: a deferred transaction, so readers never block writers)."""
        session = Session(self.engine.execution_options(sqlite_begin="DEFERRED"), expire_on_commit=False)
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def on_rollback(session: Session, compensate: Callable[[], None]) -> None:
    session.info.setdefault("on_rollback", []).append(compensate)


def lock_rows(session: Session, stmt):  # type: ignore[no-untyped-def]
    """SELECT ... FOR UPDATE on PostgreSQL; on SQLite the IMMEDIATE transaction already serializes writers."""
    if session.get_bind().dialect.name != "sqlite":
        stmt = stmt.with_for_update(of=stmt.column_descriptions[0]["entity"])
    return session.scalars(stmt)


def _connection(session: Session) -> Connection:
    """`session.connection()`, remembered for the rest of the session's transaction: the hot paths run a
    dozen plain statements per transaction, and asking the session each time costs more than most of them."""
    root = session.get_transaction()
    cached = session.info.get(_CONNECTION)
    if root is not None and cached is not None and cached[0] is root and root.is_active:
        return cached[1]
    conn = session.connection()
    session.info[_CONNECTION] = (session.get_transaction(), conn)
    return conn


_CONNECTION = "om_core.db.connection"


def read_rows(session: Session, stmt, params: dict | None = None) -> list:  # type: ignore[no-untyped-def]
    """Plain rows through the session's connection, no ORM identity map: the fast path for what a
    request only reads. Rows answer attribute access like the model (`row.sku`).

    Pass statements built once at import time with bind parameters: building a statement per call
    costs more than running it. A `.with_for_update()` statement locks on PostgreSQL; SQLite ignores
    it (its IMMEDIATE transaction already serializes writers).
    """
    return list(_connection(session).execute(stmt, params or {}).all())


IN_LIST_SIZE = 5000


def read_rows_in(source: Session | Connection, stmt, name: str, values, **params) -> list:  # type: ignore[no-untyped-def]
    """`read_rows` for every value of `values`, bound to the expanding parameter `name` (`IN (...)`) a few
    thousand at a time: a batch may look up more keys than one statement may bind (PostgreSQL takes 65,535
    parameters, SQLite's default build 32,766). `params` bind the statement's other parameters."""
    conn = source if isinstance(source, Connection) else _connection(source)
    values = list(values)
    return [row for i in range(0, len(values), IN_LIST_SIZE)
            for row in conn.execute(stmt, {name: values[i:i + IN_LIST_SIZE], **params}).all()]


def write_rows(session: Session, stmt, rows: list[dict] | dict):  # type: ignore[no-untyped-def]
    """Core insert/update through the session's connection (multi-row `rows` run as executemany)."""
    return _connection(session).execute(stmt, rows)


def insert_with_ids(session: Session, table: Table, rows: list[dict]) -> list[int]:
    """Insert `rows` into `table` (integer primary key `id`) and return their new ids in the order of `rows`.

    PostgreSQL returns them from one INSERT ... RETURNING. SQLite cannot promise RETURNING's order for a
    multi-row INSERT, so SQLAlchemy would send one statement per row; there the ids are handed out here:
    a write transaction holds SQLite's write lock (BEGIN IMMEDIATE), so max(id)+1, +2, ... are exactly
    the ids SQLite would give, and the rows go in one executemany."""
    if not rows:
        return []
    conn = _connection(session)
    statements = _INSERTS.get(table)
    if statements is None:
        statements = _INSERTS[table] = (insert(table).returning(table.c.id, sort_by_parameter_order=True),
                                        select(func.coalesce(func.max(table.c.id), 0)), insert(table))
    returning, last_id, plain = statements
    if conn.dialect.name != "sqlite":
        return [r[0] for r in conn.execute(returning, rows)]
    first = conn.execute(last_id).scalar_one() + 1
    ids = list(range(first, first + len(rows)))
    conn.execute(plain, [{**row, "id": i} for row, i in zip(rows, ids)])
    return ids


_INSERTS: dict[Table, tuple] = {}


__all__ = ["read_rows", "write_rows", "insert_with_ids", "Database", "UTCDateTime", "make_engine", "on_rollback", "lock_rows", "select"]
