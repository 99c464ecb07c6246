"""The plain-row helpers of om_core/db.py that the batched services share."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from om_core.db import Database, read_rows_in
from om_core.models import Product

SKUS_BY_SKU = select(Product.sku).where(Product.sku.in_(bindparam("skus", expanding=True)))
ACTIVE_SKUS_BY_SKU = SKUS_BY_SKU.where(Product.active == bindparam("active"))


def test_read_rows_in_looks_up_more_keys_than_one_statement_may_bind(store: Database) -> None:
    """70,000 keys: more than PostgreSQL's 65,535 parameters per statement, so only chunking answers."""
    with store.read() as s:
        skus = sorted(s.scalars(select(Product.sku)))
        asked = [f"NO-SUCH-{i}" for i in range(35_000)] + skus + [f"NO-SUCH-{i}" for i in range(35_000, 70_000)]
        found = [r.sku for r in read_rows_in(s, SKUS_BY_SKU, "skus", asked)]
        with store.engine.connect() as conn:  # a Connection answers the same as a Session
            also = [r.sku for r in read_rows_in(conn, SKUS_BY_SKU, "skus", asked)]
    assert len(skus) > 1 and sorted(found) == skus and sorted(also) == skus


def test_read_rows_in_binds_the_other_parameters_in_every_chunk(store: Database) -> None:
    with store.transaction() as s:
        skus = sorted(s.scalars(select(Product.sku)))
        s.execute(Product.__table__.update().where(Product.sku == skus[0]).values(active=False))
    with store.read() as s:
        asked = [f"NO-SUCH-{i}" for i in range(12_000)] + skus
        inactive = [r.sku for r in read_rows_in(s, ACTIVE_SKUS_BY_SKU, "skus", asked, active=False)]
        empty = read_rows_in(s, SKUS_BY_SKU, "skus", [])
    assert inactive == [skus[0]] and empty == []
