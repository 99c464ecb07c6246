"""Sales tax by destination (country, optionally region) and product tax class.

A region-specific rate wins over the country rate; no configured rate means no tax (rate 0),
which is recorded on the line so the choice is visible.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import Field, field_validator
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from om_core.db import read_rows
from om_core.models import TaxRate
from om_core.money import to_money
from om_core.validation import CountryCode, Input, parse

SHIPPING_TAX_CLASS = "shipping"


class TaxRateIn(Input):
    country: CountryCode
    region: str = Field(default="", max_length=64)
    tax_class: str = Field(default="standard", min_length=1, max_length=32)
    rate: Decimal = Field(ge=0, lt=1, decimal_places=5)

    @field_validator("country", "region", mode="before")
    @classmethod
    def _upper_codes(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value


def set_tax_rate(session: Session, data: TaxRateIn | dict[str, Any]) -> TaxRate:
    data = parse(TaxRateIn, data)
    row = session.scalar(
        select(TaxRate).where(
            TaxRate.country == data.country, TaxRate.region == data.region, TaxRate.tax_class == data.tax_class
        )
    )
    if row is None:
        row = TaxRate(**data.model_dump())
        session.add(row)
    else:
        row.rate = data.rate
    session.flush()
    return row


_RATES_FOR_COUNTRY = select(TaxRate.__table__).where(TaxRate.country == bindparam("country"))


class TaxTable:
    """The rates for one destination, loaded once per quote."""

    def __init__(self, session: Session, country: str, region: str | None) -> None:
        rows = read_rows(session, _RATES_FOR_COUNTRY, {"country": country})
        self._rates: dict[str, Decimal] = {}
        for row in sorted(rows, key=lambda r: r.region != ""):  # country rates first, region overrides
            if row.region in ("", (region or "").upper()):
                self._rates[row.tax_class] = Decimal(row.rate)

    def rate(self, tax_class: str) -> Decimal:
        return self._rates.get(tax_class, Decimal(0))

    def shipping_rate(self) -> Decimal:
        return self._rates.get(SHIPPING_TAX_CLASS, self.rate("standard"))


def tax_on(amount: Decimal, rate: Decimal, *, inclusive: bool) -> Decimal:
    """Tax contained in (inclusive) or owed on top of (exclusive) a net amount, rounded half-up to the cent."""
    if rate == 0:
        return Decimal("0.00")
    if inclusive:
        return to_money(amount * rate / (1 + rate))
    return to_money(amount * rate)
