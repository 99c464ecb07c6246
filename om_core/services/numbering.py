"""Document numbers for returns (RMA-...), shipments (SH-...), purchase orders (PO-yymmdd-...) and
tracking numbers a carrier did not give; order numbers (SO-...) are drawn in orders.py and checked here.

A prefix and a random part: the number tells a customer or a supplier nothing of the retailer's volumes,
and no counter row makes every writer queue. The random part meets a twin far sooner than its size suggests
(the birthday bound: the 8 hex digits of an RMA number after ~77,000 returns, as a 5-million-line
simulation found), so every new number is checked against those already given before it is used.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from om_core.db import read_rows_in

_TAKEN: dict[str, Any] = {}


def rma_number() -> str:
    return f"RMA-{secrets.token_hex(4).upper()}"


def shipment_number() -> str:
    return f"SH-{secrets.token_hex(5).upper()}"


def purchase_order_number(now: datetime) -> str:
    return f"PO-{now:%y%m%d}-{secrets.token_hex(3).upper()}"


def tracking_number(carrier: str) -> str:
    """A placeholder for the carrier's own number: its initials and 16 digits."""
    return f"{carrier[:2].upper()}{secrets.randbelow(10**16):016d}"


def new_numbers(session: Session, column: Any, make: Callable[[], str], count: int = 1) -> list[str]:
    """`count` numbers from `make()`, none already in `column` (a unique column of documents) and no two
    alike. A clash is drawn again; with the widths above that is rare, so it costs one look-up a batch."""
    numbers = [make() for _ in range(count)]
    accepted: set[str] = set()
    pending = list(range(count))
    while pending:
        taken = _taken(session, column, sorted({numbers[i] for i in pending}))
        retry = []
        for i in pending:
            if numbers[i] in taken or numbers[i] in accepted:
                numbers[i] = make()
                retry.append(i)
            else:
                accepted.add(numbers[i])
        pending = retry
    return numbers


def _taken(session: Session, column: Any, candidates: list[str]) -> set[str]:
    key = f"{column.table.name}.{column.name}"
    stmt = _TAKEN.get(key)
    if stmt is None:
        stmt = _TAKEN[key] = select(column).where(column.in_(bindparam("numbers", expanding=True)))
    return {row[0] for row in read_rows_in(session, stmt, "numbers", candidates)}


class NumberPool:
    """New numbers for a batch that learns how many it needs as it goes (a refused request's second try
    needs a fresh one): drawn and checked `size` at a time through `new_numbers`, none handed out twice."""

    def __init__(self, session: Session, column: Any, make: Callable[[], str], size: int) -> None:
        self._session, self._column, self._make, self._size = session, column, make, max(size, 1)
        self._left: list[str] = []
        self._given: set[str] = set()

    def __call__(self) -> str:
        while True:
            if not self._left:
                self._left = new_numbers(self._session, self._column, self._make, self._size)[::-1]
                self._size = 16
            number = self._left.pop()
            if number not in self._given:
                self._given.add(number)
                return number
