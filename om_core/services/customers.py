"""Customers and their addresses. Contact data is validated on the way in; marketing consent is
kept apart from transactional contact (an order confirmation never needs consent, a newsletter always does)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from pydantic import Field, ValidationInfo, field_validator, model_validator
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from om_core.clock import utcnow
from om_core.db import read_rows
from om_core.errors import AlreadyExists, UnknownCustomer
from om_core.models import Address, Customer
from om_core.validation import CountryCode, Input, parse

POSTAL_CODE_PATTERNS: dict[str, str] = {
    "US": r"\d{5}(-\d{4})?",
    "CA": r"[A-Z]\d[A-Z] ?\d[A-Z]\d",
    "GB": r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}",
    "DE": r"\d{5}",
    "FR": r"\d{5}",
    "IT": r"\d{5}",
    "ES": r"\d{5}",
    "NL": r"\d{4} ?[A-Z]{2}",
    "BE": r"\d{4}",
    "AT": r"\d{4}",
    "CH": r"\d{4}",
    "DK": r"\d{4}",
    "SE": r"\d{3} ?\d{2}",
    "NO": r"\d{4}",
    "FI": r"\d{5}",
    "PL": r"\d{2}-\d{3}",
    "PT": r"\d{4}-\d{3}",
    "IE": r"[A-Z]\d[\dW] ?[A-Z\d]{4}",
    "AU": r"\d{4}",
    "JP": r"\d{3}-?\d{4}",
    "BR": r"\d{5}-?\d{3}",
    "IN": r"\d{6}",
    "MX": r"\d{5}",
}
KNOWN_COUNTRIES = frozenset(phonenumbers.SUPPORTED_REGIONS) | {"US"}


_PLAIN_EMAIL = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")


def normalize_email(value: str) -> str:
    """The address in lower case, if email-validator (no DNS look-up) accepts it.

    Plain addresses (ASCII letters, digits and `._+-` before the @, a dotted domain with an alphabetic
    top-level domain that is not a special-use one) are accepted here without it: they are nearly all
    addresses, email-validator accepts every one of them unchanged, and it costs ~100 µs an address,
    which imports and the simulator pay hundreds of thousands of times. Everything else is its call."""
    if len(value) <= 254 and _PLAIN_EMAIL.fullmatch(value):
        local, _, domain = value.partition("@")
        if (len(local) <= 64 and len(domain) <= 253 and "--" not in domain
                and domain.rpartition(".")[2].lower() not in SPECIAL_USE_DOMAIN_NAMES):
            return value.lower()
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address ({exc})") from None


@lru_cache(maxsize=4096)
def normalize_phone(value: str, country: str = "US") -> str:
    """E.164 form (+15551234567); national numbers are read in the customer's country. Remembered:
    parsing costs ~80 µs, and a store's customers share switchboards and households."""
    try:
        number = phonenumbers.parse(value, None if value.startswith("+") else country)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number ({exc})") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError("not a possible phone number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class AddressIn(Input):
    name: str | None = Field(default=None, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=120)
    region: str | None = Field(default=None, max_length=64)
    postal_code: str = Field(min_length=1, max_length=16)
    country: CountryCode

    @field_validator("country", "region", mode="before")
    @classmethod
    def _upper_codes(cls, value: Any) -> Any:
        """Country and region codes are matched against tax rates: store them in one case."""
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _postal_code_fits_country(self) -> AddressIn:
        if self.country not in KNOWN_COUNTRIES:
            raise ValueError(f"unknown country code {self.country!r}")
        postal = self.postal_code.upper()
        pattern = POSTAL_CODE_PATTERNS.get(self.country, r"[A-Z0-9][A-Z0-9 \-]{1,9}")
        if not re.fullmatch(pattern, postal):
            raise ValueError(f"postal code {self.postal_code!r} is not valid for {self.country}")
        object.__setattr__(self, "postal_code", postal)
        return self


class CustomerIn(Input):
    email: str | None = None
    first_name: str | None = Field(default=None, max_length=120)
    last_name: str | None = Field(default=None, max_length=120)
    external_ref: str | None = Field(default=None, max_length=64)
    marketing_consent: bool = False
    segment: str | None = Field(default=None, max_length=32)
    address: AddressIn | None = None
    phone: str | None = None  # after `address`: a national number is read in the address's country

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return normalize_email(value) if value else None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A field validator (not a model validator) so a bad number is reported under `phone`.
        if not value:
            return value
        address = info.data.get("address")
        return normalize_phone(value, address.country if address else "US")

    @model_validator(mode="after")
    def _email_or_ref(self) -> CustomerIn:
        if not (self.email or self.external_ref):
            raise ValueError("a customer needs an email or an external reference")
        return self


def create_customer(session: Session, data: CustomerIn | dict[str, Any]) -> Customer:
    data = parse(CustomerIn, data)
    if data.email and session.scalar(select(Customer.id).where(Customer.email == data.email)) is not None:
        raise AlreadyExists(f"A customer with email {data.email} already exists", email=data.email)
    if data.external_ref and session.scalar(select(Customer.id).where(Customer.external_ref == data.external_ref)):
        raise AlreadyExists(f"Customer {data.external_ref} already exists", external_ref=data.external_ref)
    customer = Customer(
        **data.model_dump(exclude={"address"}), marketing_consent_at=utcnow() if data.marketing_consent else None
    )
    if data.address:
        customer.addresses.append(Address(**data.address.model_dump(), is_default=True))
    session.add(customer)
    session.flush()
    return customer


def set_marketing_consent(session: Session, customer_id: int, consent: bool) -> Customer:
    customer = get_customer(session, customer_id)
    customer.marketing_consent = consent
    customer.marketing_consent_at = utcnow()
    session.flush()
    return customer


def get_customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise UnknownCustomer(f"Unknown customer {customer_id}", customer_id=customer_id)
    return customer


def find_customer(session: Session, *, email: str | None = None, external_ref: str | None = None) -> Customer:
    if email:
        customer = session.scalar(select(Customer).where(Customer.email == email.strip().lower()))
    else:
        customer = session.scalar(select(Customer).where(Customer.external_ref == external_ref))
    if customer is None:
        raise UnknownCustomer(f"Unknown customer {email or external_ref!r}")
    return customer


_DEFAULT_ADDRESS = Address.__table__.alias("default_address")
_CUSTOMER_WITH_ADDRESS = (
    select(Customer.__table__, *[c.label(f"addr_{c.name}") for c in _DEFAULT_ADDRESS.c])
    .outerjoin(_DEFAULT_ADDRESS, (_DEFAULT_ADDRESS.c.customer_id == Customer.id) & _DEFAULT_ADDRESS.c.is_default.is_(True))
    .where(Customer.id == bindparam("customer_id"))
    .order_by(_DEFAULT_ADDRESS.c.id)
    .limit(1)
)


_CUSTOMERS_WITH_ADDRESS = (
    select(Customer.__table__, *[c.label(f"addr_{c.name}") for c in _DEFAULT_ADDRESS.c])
    .outerjoin(_DEFAULT_ADDRESS, (_DEFAULT_ADDRESS.c.customer_id == Customer.id) & _DEFAULT_ADDRESS.c.is_default.is_(True))
    .where(Customer.id.in_(bindparam("ids", expanding=True)))
    .order_by(Customer.id, _DEFAULT_ADDRESS.c.id)
)
_ADDRESS_FIELDS = ("name", "line1", "line2", "city", "region", "postal_code", "country")


def customers_with_addresses(session: Session, customer_ids: list[int]) -> dict[int, tuple[Any, AddressIn | None]]:
    """`customer_with_address` for many customers in one read (unknown ids are simply absent)."""
    found: dict[int, tuple[Any, AddressIn | None]] = {}
    for row in read_rows(session, _CUSTOMERS_WITH_ADDRESS, {"ids": list(customer_ids)}):
        if row.id not in found:
            address = None if row.addr_id is None else AddressIn.model_construct(**{k: getattr(row, f"addr_{k}") for k in _ADDRESS_FIELDS})
            found[row.id] = (row, address)
    return found


def customer_with_address(session: Session, customer_id: int) -> tuple[Any, Any | None]:
    """(customer row, default address row or None) in one read, for pricing and shipping an order."""
    found = read_rows(session, _CUSTOMER_WITH_ADDRESS, {"customer_id": customer_id})
    if not found:
        raise UnknownCustomer(f"Unknown customer {customer_id}", customer_id=customer_id)
    row = found[0]
    if row.addr_id is None:
        return row, None
    return row, AddressIn(**{k: getattr(row, f"addr_{k}") for k in ("name", "line1", "line2", "city", "region", "postal_code", "country")})


def default_address(customer: Customer) -> Address | None:
    return next((a for a in customer.addresses if a.is_default), customer.addresses[0] if customer.addresses else None)
