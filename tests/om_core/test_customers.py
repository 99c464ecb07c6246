"""Customers: contact data validated and normalised on the way in; marketing consent kept apart."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from om_core.clock import frozen_at
from om_core.db import Database
from om_core.errors import AlreadyExists, UnknownCustomer, ValidationError
from om_core.models import Address, Base, Customer
from om_core.services import customers

US_ADDRESS = {"line1": "1 Broadway", "city": "New York", "region": "NY", "postal_code": "10004", "country": "US"}
GB_ADDRESS = {"line1": "10 Downing St", "city": "London", "postal_code": "SW1A 2AA", "country": "GB"}


def row_counts(db: Database) -> dict[str, int]:
    """Rows per table, read in a fresh session: the 'nothing was written' check."""
    with db.read() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables}


def fields(exc: ValidationError) -> list[str]:
    return [e["field"] for e in exc.errors]


# --- creation and normalisation --------------------------------------------------------------


def test_create_customer_normalises_email_phone_and_address(db: Database) -> None:
    with db.transaction() as s:
        created = customers.create_customer(s, {
            "email": "  Grace.Hopper@Example.COM ", "first_name": "Grace", "last_name": "Hopper",
            "phone": "(212) 555-0199",  # a national number, read in the address's country (US)
            "address": {**US_ADDRESS, "country": "us", "postal_code": "10004-1234"},
        })
        customer_id = created.id

    with db.read() as s:
        customer = customers.get_customer(s, customer_id)
        assert customer.email == "grace.hopper@example.com"
        assert customer.phone == "+12125550199"
        assert (customer.first_name, customer.last_name) == ("Grace", "Hopper")
        [address] = customer.addresses
        assert (address.country, address.postal_code, address.is_default) == ("US", "10004-1234", True)
        assert customers.default_address(customer) is address
        # Lookup by email is case-insensitive too.
        assert customers.find_customer(s, email=" GRACE.HOPPER@example.com").id == customer_id


def test_gb_postal_code_and_national_phone_read_in_the_address_country(db: Database) -> None:
    with db.transaction() as s:
        created = customers.create_customer(s, {
            "email": "alan@example.co.uk", "phone": "020 7946 0000",
            "address": {**GB_ADDRESS, "postal_code": "sw1a 1aa", "country": "gb"},
        })
        customer_id = created.id
    with db.read() as s:
        customer = customers.get_customer(s, customer_id)
        assert customer.phone == "+442079460000"  # GB national number -> E.164 with +44
        assert customer.addresses[0].postal_code == "SW1A 1AA"  # upper-cased
        assert customer.addresses[0].country == "GB"


def test_customer_with_external_ref_only(db: Database) -> None:
    with db.transaction() as s:
        customer_id = customers.create_customer(s, {"external_ref": "POS-0001", "first_name": "Walk-in"}).id
    with db.read() as s:
        customer = customers.find_customer(s, external_ref="POS-0001")
        assert customer.id == customer_id
        assert customer.email is None
        assert customer.addresses == []
        assert customers.default_address(customer) is None


BAD_CUSTOMERS: list[tuple[str, dict[str, Any], list[str], str]] = [
    ("bad email", {"email": "not-an-email"}, ["email"], "not a valid email"),
    ("email without domain dot", {"email": "ada@"}, ["email"], "not a valid email"),
    ("impossible phone", {"email": "x@example.com", "phone": "12"}, ["phone"], "phone"),
    ("phone not a number", {"email": "x@example.com", "phone": "call me maybe"}, ["phone"], "phone"),
    ("US postal code too short", {"email": "x@example.com", "address": {**US_ADDRESS, "postal_code": "1234"}},
     ["address"], "postal code '1234' is not valid for US"),
    ("GB postal code in US format", {"email": "x@example.com", "address": {**GB_ADDRESS, "postal_code": "12345"}},
     ["address"], "not valid for GB"),
    ("unknown country", {"email": "x@example.com", "address": {**US_ADDRESS, "country": "XX"}},
     ["address"], "unknown country code 'XX'"),
    ("country not two letters", {"email": "x@example.com", "address": {**US_ADDRESS, "country": "USA"}},
     ["address.country"], "pattern"),
    ("address without line1", {"email": "x@example.com", "address": {k: v for k, v in US_ADDRESS.items() if k != "line1"}},
     ["address.line1"], "required"),
    ("neither email nor external_ref", {"first_name": "Nobody", "phone": "+1 212 555 0100"},
     ["(body)"], "needs an email or an external reference"),
    ("unknown field", {"email": "x@example.com", "password": "hunter2"}, ["password"], "Extra inputs"),
    ("consent not a boolean", {"email": "x@example.com", "marketing_consent": "perhaps"}, ["marketing_consent"], "boolean"),
]


@pytest.mark.parametrize(("data", "bad_fields", "reason"), [c[1:] for c in BAD_CUSTOMERS], ids=[c[0] for c in BAD_CUSTOMERS])
def test_bad_customer_input_is_refused_and_nothing_written(db: Database, data: dict[str, Any], bad_fields: list[str], reason: str) -> None:
    before = row_counts(db)
    with pytest.raises(ValidationError) as caught, db.transaction() as s:
        customers.create_customer(s, data)
    assert fields(caught.value) == bad_fields
    assert any(reason in e["reason"] for e in caught.value.errors), caught.value.errors
    assert caught.value.code == "validation_error"
    assert row_counts(db) == before


def test_every_bad_field_is_named_at_once(db: Database) -> None:
    before = row_counts(db)
    with pytest.raises(ValidationError) as caught, db.transaction() as s:
        customers.create_customer(s, {"email": "nope", "phone": "12", "address": {**US_ADDRESS, "postal_code": "1234"}})
    assert sorted(fields(caught.value)) == ["address", "email", "phone"]
    assert row_counts(db) == before


# --- uniqueness ------------------------------------------------------------------------------


def test_duplicate_email_is_refused_case_insensitively(db: Database) -> None:
    with db.transaction() as s:
        customers.create_customer(s, {"email": "ada@example.com", "first_name": "Ada"})
    before = row_counts(db)
    with pytest.raises(AlreadyExists) as caught, db.transaction() as s:
        customers.create_customer(s, {"email": "ADA@Example.com", "first_name": "Impostor", "address": US_ADDRESS})
    assert caught.value.details == {"email": "ada@example.com"}
    assert row_counts(db) == before
    with db.read() as s:
        assert s.scalars(select(Customer.first_name)).all() == ["Ada"]


def test_duplicate_external_ref_is_refused(db: Database) -> None:
    with db.transaction() as s:
        customers.create_customer(s, {"external_ref": "LOYALTY-7"})
    before = row_counts(db)
    with pytest.raises(AlreadyExists) as caught, db.transaction() as s:
        customers.create_customer(s, {"external_ref": "LOYALTY-7", "email": "new@example.com"})
    assert caught.value.details == {"external_ref": "LOYALTY-7"}
    assert row_counts(db) == before


# --- marketing consent ------------------------------------------------------------------------


def test_marketing_consent_is_off_by_default_and_contact_data_still_kept(db: Database) -> None:
    with db.transaction() as s:
        customer_id = customers.create_customer(s, {"email": "bob@example.com", "phone": "+1 415 555 0100"}).id
    with db.read() as s:
        customer = customers.get_customer(s, customer_id)
        assert customer.marketing_consent is False
        assert customer.marketing_consent_at is None
        assert customer.email == "bob@example.com"  # transactional contact does not depend on consent


def test_marketing_consent_flag_and_timestamp_are_recorded_separately(db: Database) -> None:
    t1 = datetime(2030, 3, 1, 9, 30, tzinfo=UTC)
    t2 = datetime(2030, 6, 15, 18, 0, tzinfo=UTC)
    t3 = datetime(2030, 7, 1, 8, 0, tzinfo=UTC)
    with frozen_at(t1), db.transaction() as s:
        customer_id = customers.create_customer(s, {"email": "ada@example.com", "marketing_consent": True}).id
    with db.read() as s:
        customer = customers.get_customer(s, customer_id)
        assert customer.marketing_consent is True
        assert customer.marketing_consent_at == t1
        assert customer.marketing_consent_at.tzinfo is not None
        assert customer.created_at == t1

    # Withdrawing consent keeps the customer and records when it changed.
    with frozen_at(t2), db.transaction() as s:
        customers.set_marketing_consent(s, customer_id, False)
    with db.read() as s:
        customer = customers.get_customer(s, customer_id)
        assert (customer.marketing_consent, customer.marketing_consent_at) == (False, t2)
        assert customer.created_at == t1
        assert customer.email == "ada@example.com"

    # Giving it again moves the timestamp once more.
    with frozen_at(t3), db.transaction() as s:
        customers.set_marketing_consent(s, customer_id, True)
    with db.read() as s:
        customer = customers.get_customer(s, customer_id)
        assert (customer.marketing_consent, customer.marketing_consent_at) == (True, t3)


def test_set_marketing_consent_for_unknown_customer(db: Database) -> None:
    before = row_counts(db)
    with pytest.raises(UnknownCustomer) as caught, db.transaction() as s:
        customers.set_marketing_consent(s, 999, True)
    assert caught.value.details == {"customer_id": 999}
    assert row_counts(db) == before


def test_unknown_customer_lookups(db: Database) -> None:
    with db.read() as s:
        with pytest.raises(UnknownCustomer):
            customers.get_customer(s, 1)
        with pytest.raises(UnknownCustomer):
            customers.find_customer(s, email="nobody@example.com")
        with pytest.raises(UnknownCustomer):
            customers.find_customer(s, external_ref="nothing")


def test_addresses_are_stored_with_the_customer(db: Database) -> None:
    with db.transaction() as s:
        customers.create_customer(s, {"email": "a@example.com", "address": US_ADDRESS})
        customers.create_customer(s, {"email": "b@example.com"})
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Address)) == 1
        assert s.scalar(select(func.count()).select_from(Customer)) == 2


def _email_validator_says(value: str) -> str | None:
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


def _ours(value: str) -> str | None:
    try:
        return customers.normalize_email(value)
    except ValueError:
        return None


_PIECES = st.sampled_from(["a", "Z", "0", "_", "+", "-", ".", "@", "xn--", "ab--", "--", "example", "com", "test", "local",
                           "localhost", "co", "uk", "1", "123", "q" * 63, "é", " ", "\"", "!", "a.", ".b"])


@settings(max_examples=3000, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=14).map("".join))
@example("Jane.Doe+news@Mail.Example.COM")
@example("a@b.c")
@example("a@b.test")
@example("a@ab--cd.com")
@example("a@xn--bcher-kva.example")
@example("a@1.com")
@example("a@b.c0m")
@example("a..b@example.com")
@example(("l" * 65) + "@example.com")
@example("a@" + ".".join(["d" * 63] * 4) + ".com")
def test_email_normalisation_agrees_with_email_validator(value: str) -> None:
    """The fast path for plain addresses accepts and normalises exactly as email-validator does."""
    assert _ours(value) == _email_validator_says(value)
