"""The `storeom` command line, driven through click's CliRunner against a private SQLite file per test.

Every command prints JSON on success; a refused request prints `error [code]: message` plus the
details as JSON on stderr, exits 1 and writes nothing; malformed options are click usage errors (exit 2).

The store every test starts from is built through the CLI itself (see `store`): supplier ACME;
MUG 12.50 (kitchen) and TEE 20.00 (apparel); warehouse WH-EAST (NJ) and pickup store ST-NYC (NY),
both behind channel `web`; tax 5% in the US and 8.875% in NY; `standard` shipping 4.95, free over 50;
20 MUG and 10 TEE at WH-EAST, 4 MUG at ST-NYC; customer 1 (Ada) with a New York address.
"""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from om_core.cli import main
from om_core.db import Database
from om_core.models import Order, Product, PurchaseOrder, Stock, StockMovement
from tests.om_core.helpers import row_counts

WEB_ORDER = ["--channel", "web", "--customer", "1", "--shipping-method", "standard"]


class Cli:
    """Runs `storeom ...` in-process with this test's STOREOM_HOME and database."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.url = f"sqlite:///{home}/storeom.db"
        self.runner = CliRunner(env={"STOREOM_HOME": str(home), "STOREOM_DATABASE_URL": self.url})

    def run(self, *args: str, input: str | None = None) -> Result:
        return self.runner.invoke(main, list(args), input=input, catch_exceptions=False)

    def ok(self, *args: str, input: str | None = None) -> Any:
        """Run a command that must succeed and return its JSON output."""
        result = self.run(*args, input=input)
        assert result.exit_code == 0, f"storeom {' '.join(args)} exited {result.exit_code}:\n{result.stderr}"
        assert result.stderr == ""
        return json.loads(result.stdout)

    def refused(self, *args: str, code: str) -> tuple[str, Any]:
        """Run a command the core must refuse: exit 1, `error [code]` on stderr; returns (message line, details)."""
        result = self.run(*args)
        assert result.exit_code == 1, f"expected exit 1, got {result.exit_code}:\n{result.stdout}\n{result.stderr}"
        assert result.stdout == ""
        first, _, rest = result.stderr.partition("\n")
        assert first.startswith(f"error [{code}]: "), result.stderr
        return first, (json.loads(rest) if rest.strip() else None)

    def database(self) -> Database:
        return Database(self.url)

    def count(self, model: type) -> int:
        database = self.database()
        try:
            with database.read() as s:
                return s.scalar(select(func.count()).select_from(model))
        finally:
            database.dispose()


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture(scope="module")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate an empty database and set up the store described in the module docstring, all through the CLI.
    Built once per module; each test gets a copy of the file (see `store`)."""
    cli = Cli(tmp_path_factory.mktemp("cli-store"))
    result = cli.run("db", "upgrade")
    assert result.exit_code == 0, result.stderr
    cli.ok("supplier", "add", "ACME", "--name", "Acme Supplies", "--lead-time-days", "5")
    cli.ok("product", "add", "MUG", "--name", "Coffee mug", "--category", "kitchen", "--price", "12.50", "--cost", "4.00", "--supplier", "ACME")
    cli.ok("product", "add", "TEE", "--name", "T-shirt", "--category", "apparel", "--price", "20.00", "--cost", "8.00", "--supplier", "ACME", "--size", "M")
    cli.ok("location", "add", "WH-EAST", "--name", "East DC", "--kind", "warehouse", "--region", "NJ")
    cli.ok("location", "add", "ST-NYC", "--name", "NYC store", "--kind", "store", "--pickup", "--region", "NY", "--city", "New York")
    cli.ok("channel", "add", "web", "--name", "Web shop", "--kind", "web", "--location", "WH-EAST", "--location", "ST-NYC")
    cli.ok("tax", "set", "US", "0.05")
    cli.ok("tax", "set", "US", "0.08875", "--region", "NY")
    cli.ok("shipping", "add", "standard", "--name", "Standard", "--service-level", "standard", "--base-price", "4.95",
           "--free-over", "50", "--promised-days", "5")
    cli.ok("stock", "receive", "MUG", "WH-EAST", "20", "--reference", "opening")
    cli.ok("stock", "receive", "TEE", "WH-EAST", "10", "--reference", "opening")
    cli.ok("stock", "receive", "MUG", "ST-NYC", "4", "--reference", "opening")
    cli.ok("customer", "add", "--email", "ada@example.com", "--first-name", "Ada", "--last-name", "Lovelace", "--marketing-consent",
           "--line1", "1 Broadway", "--city", "New York", "--region", "NY", "--postal-code", "10004", "--country", "US")
    path = cli.home / "storeom.db"
    assert not path.with_name("storeom.db-wal").exists(), "every command disposes its engine, which checkpoints the WAL"
    return path


@pytest.fixture
def store(cli: Cli, store_template: Path) -> Cli:
    """This test's own copy of the store."""
    shutil.copy(store_template, cli.home / "storeom.db")
    return cli


def location_row(stock_view: dict[str, Any], code: str) -> dict[str, Any]:
    return next(row for row in stock_view["locations"] if row["location"] == code)


# --- the end-to-end script ----------------------------------------------------------------------


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from om_core.schema import alembic_config

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def test_db_upgrade_prints_the_revision_and_is_repeatable(cli: Cli) -> None:
    for _ in range(2):
        result = cli.run("db", "upgrade")
        assert result.exit_code == 0, result.stderr
        assert result.stdout.strip() == f"database at revision {head_revision()}: {cli.url}"
    assert (cli.home / "storeom.db").exists()


def test_setup_commands_print_what_they_created(cli: Cli) -> None:
    assert cli.run("db", "upgrade").exit_code == 0
    supplier = cli.ok("supplier", "add", "ACME", "--name", "Acme Supplies", "--lead-time-days", "5")
    assert supplier | {"id": None} == {"id": None, "code": "ACME", "name": "Acme Supplies", "lead_time_days": "5", "lead_time_std_days": "0"}

    mug = cli.ok("product", "add", "MUG", "--name", "Coffee mug", "--category", "kitchen", "--price", "12.50", "--cost", "4.00", "--supplier", "ACME")
    assert (mug["sku"], mug["price"], mug["cost"], mug["backorder_policy"], mug["returnable"], mug["active"]) == ("MUG", "12.50", "4.00", "deny", True, True)
    tee = cli.ok("product", "add", "TEE", "--name", "T-shirt", "--category", "apparel", "--price", "20", "--cost", "8",
                 "--size", "M", "--colour", "blue", "--backorder", "--non-returnable")
    assert (tee["backorder_policy"], tee["returnable"]) == ("allow", False)
    shown = cli.ok("product", "show", "TEE")
    assert (shown["size"], shown["colour"], shown["price"]) == ("M", "blue", "20.00")
    assert [p["sku"] for p in cli.ok("product", "list")] == ["MUG", "TEE"]
    assert [p["sku"] for p in cli.ok("product", "list", "--category", "kitchen")] == ["MUG"]

    warehouse = cli.ok("location", "add", "WH-EAST", "--name", "East DC", "--kind", "warehouse", "--region", "NJ")
    assert (warehouse["kind"], warehouse["can_ship"], warehouse["can_pickup"]) == ("warehouse", True, False)
    store = cli.ok("location", "add", "ST-NYC", "--name", "NYC store", "--kind", "store", "--pickup", "--no-ship")
    assert (store["kind"], store["can_ship"], store["can_pickup"], store["can_ship_from_store"]) == ("store", False, True, False)
    assert [(l["code"], l["can_pickup"]) for l in cli.ok("location", "list")] == [("ST-NYC", True), ("WH-EAST", False)]  # by code

    channel = cli.ok("channel", "add", "web", "--name", "Web shop", "--kind", "web", "--location", "WH-EAST")
    assert (channel["code"], channel["currency"], channel["prices_include_tax"], channel["locations"]) == ("web", "USD", False, ["WH-EAST"])
    assert cli.ok("channel", "assign", "web", "ST-NYC", "--priority", "200") == {"channel": "web", "location": "ST-NYC", "priority": 200}

    assert cli.ok("tax", "set", "US", "0.05") == {"country": "US", "region": "", "tax_class": "standard", "rate": "0.05"}
    method = cli.ok("shipping", "add", "standard", "--name", "Standard", "--service-level", "standard", "--base-price", "4.95",
                    "--free-over", "50", "--promised-days", "5")
    assert (method["code"], method["base_price"], method["free_over"], method["promised_days"]) == ("standard", "4.95", "50", 5)

    received = cli.ok("stock", "receive", "MUG", "WH-EAST", "20")
    assert received == {"sku": "MUG", "channel": None, "available": 20,
                        "locations": [{"location": "WH-EAST", "on_hand": 20, "reserved": 0, "available": 20}]}

    ada = cli.ok("customer", "add", "--email", "Ada@Example.com", "--first-name", "Ada", "--marketing-consent",
                 "--line1", "1 Broadway", "--city", "New York", "--region", "NY", "--postal-code", "10004", "--country", "US")
    assert (ada["email"], ada["first_name"], ada["marketing_consent"]) == ("ada@example.com", "Ada", True)
    shown_ada = cli.ok("customer", "show", str(ada["id"]))
    assert shown_ada["addresses"] == [{"line1": "1 Broadway", "city": "New York", "region": "NY", "postal_code": "10004", "country": "US"}]

    promo = cli.ok("promo", "add", "-", input=json.dumps({"name": "Ten off", "kind": "fixed", "scope": "order", "value": "10", "coupon_code": "TENOFF"}))
    assert (promo["kind"], promo["value"], promo["coupon_code"]) == ("fixed", "10", "TENOFF")


def test_order_lifecycle(store: Cli) -> None:
    cli = store
    quote = cli.ok("order", "quote", *WEB_ORDER, "--line", "MUG:2")
    # Ada ships to New York: 8.875% on the goods and on the shipping charge.
    assert (quote["subtotal"], quote["shipping_total"], quote["discount_total"]) == ("25.00", "4.95", "0.00")
    assert quote["lines"][0]["tax_rate"] == "0.08875"
    assert quote["lines"][0]["allocation"] == [{"location": "WH-EAST", "quantity": 2}]
    assert Decimal(quote["total"]) == Decimal(quote["subtotal"]) + Decimal(quote["shipping_total"]) + Decimal(quote["tax_total"])
    assert quote["total"] == "32.61"
    assert cli.count(Order) == 0, "a quote writes nothing"

    place = ["order", "place", *WEB_ORDER, "--line", "MUG:3", "--line", "TEE:1", "--token", "tok_visa", "--idempotency-key", "checkout-1"]
    placed = cli.ok(*place)
    number = placed["number"]
    assert placed["status"] == "placed"
    assert number.startswith("SO-")
    assert [(l["line_no"], l["sku"], l["quantity"]) for l in placed["lines"]] == [(1, "MUG", 3), (2, "TEE", 1)]
    # 57.50 goods + 3.33 + 1.78 tax (8.875%, per line); shipping is free over 50.
    assert (placed["subtotal"], placed["shipping_total"], placed["tax_total"]) == ("57.50", "0.00", "5.11")
    assert placed["payment"]["authorized"] == placed["total"] == "62.61"
    assert cli.ok(*place)["number"] == number, "a retry with the same key returns the first order"
    assert cli.count(Order) == 1

    shown = cli.ok("order", "show", number)
    assert shown["number"] == number
    assert shown["lines"][0]["reservations"] == [{"location": "WH-EAST", "quantity": 3, "status": "active"}]
    assert [e["kind"] for e in shown["events"]][:2] == ["order_placed", "payment_authorized"]
    assert location_row(cli.ok("stock", "show", "MUG", "--location", "WH-EAST"), "WH-EAST")["reserved"] == 3

    modified = cli.ok("order", "modify", number, "--set", "1:2")
    # Lowering a quantity is recorded as a partial cancellation of the line.
    assert [(l["sku"], l["quantity"], l["cancelled"]) for l in modified["lines"]] == [("MUG", 3, 1), ("TEE", 1, 0)]
    assert modified["subtotal"] == "45.00"
    assert modified["shipping_total"] == "4.95", "below the free-shipping threshold again"
    assert modified["payment"]["open_authorization"] == modified["total"]
    assert location_row(cli.ok("stock", "show", "MUG", "--location", "WH-EAST"), "WH-EAST")["reserved"] == 2

    assert cli.ok("order", "hold", number, "--reason", "address check") == {"number": number, "status": "on_hold"}
    assert cli.ok("order", "release", number) == {"number": number, "status": "placed"}

    cancelled = cli.ok("order", "cancel", number, "--reason", "customer asked")
    assert cancelled["status"] == "cancelled"
    assert [l["cancelled"] for l in cancelled["lines"]] == [3, 1]
    assert {r["status"] for l in cancelled["lines"] for r in l["reservations"]} == {"released"}
    assert cancelled["payment"]["open_authorization"] == "0.00"
    assert cancelled["events"][-1]["kind"] == "order_cancelled"
    assert cancelled["events"][-1]["data"]["reason"] == "customer asked"

    web = cli.ok("stock", "show", "MUG", "--channel", "web")
    assert web["channel"] == "web"
    assert web["available"] == 24
    assert web["locations"] == [
        {"location": "WH-EAST", "on_hand": 20, "reserved": 0, "available": 20},
        {"location": "ST-NYC", "on_hand": 4, "reserved": 0, "available": 4},
    ]

    result = cli.ok("db", "verify")
    assert result == {"consistent": True, "problems": []}


def test_payment_capture_on_a_placed_order(store: Cli) -> None:
    cli = store
    order = cli.ok("order", "place", *WEB_ORDER, "--line", "MUG:1", "--token", "tok_visa")
    assert order["status"] == "placed"
    capture = cli.ok("payment", "capture", order["number"])
    assert (capture["kind"], capture["status"], capture["amount"]) == ("capture", "succeeded", order["total"])
    payment = cli.ok("order", "show", order["number"])["payment"]
    assert (payment["captured"], payment["open_authorization"]) == (order["total"], "0.00")
    refund = cli.ok("payment", "refund", order["number"], "--amount", "5.00")
    assert (refund["kind"], refund["status"], refund["amount"]) == ("refund", "succeeded", "5.00")
    assert cli.ok("db", "verify")["consistent"] is True


def test_stock_adjust_transfer_and_movements(store: Cli) -> None:
    cli = store
    counted = cli.ok("stock", "adjust", "MUG", "ST-NYC", "--counted", "3", "--reason", "count", "--note", "shelf count")
    assert counted["change"] == -1
    assert location_row(counted, "ST-NYC")["on_hand"] == 3
    damaged = cli.ok("stock", "adjust", "MUG", "WH-EAST", "--delta", "-2", "--reason", "damage")
    assert (damaged["change"], location_row(damaged, "WH-EAST")["on_hand"]) == (-2, 18)

    transfer = cli.ok("stock", "transfer", "MUG", "WH-EAST", "ST-NYC", "5", "--reason", "rebalance")
    assert transfer | {"transfer_id": None} == {"transfer_id": None, "sku": "MUG", "from": "WH-EAST", "to": "ST-NYC", "quantity": 5}
    levels = cli.ok("stock", "show", "MUG")
    assert {r["location"]: r["on_hand"] for r in levels["locations"]} == {"WH-EAST": 13, "ST-NYC": 8}

    movements = cli.ok("stock", "movements", "MUG", "--location", "ST-NYC")
    kinds = sorted((m["kind"], m["quantity"]) for m in movements)
    assert kinds == [("adjustment", -1), ("receipt", 4), ("transfer_in", 5)]
    assert any(m["reason"] == "count: shelf count" for m in movements)
    assert cli.ok("db", "verify") == {"consistent": True, "problems": []}


def test_purchase_order_create_send_receive(store: Cli) -> None:
    cli = store
    po = cli.ok("po", "create", "--supplier", "ACME", "--location", "WH-EAST", "--line", "TEE:12", "--line", "MUG:6")
    number = po["number"]
    assert po["status"] == "draft"
    assert po["lines"] == [{"sku": "TEE", "ordered": 12, "received": 0, "unit_cost": "8.00"},
                           {"sku": "MUG", "ordered": 6, "received": 0, "unit_cost": "4.00"}]
    sent = cli.ok("po", "send", number)
    assert sent["status"] == "sent" and sent["sent_at"] is not None

    partial = cli.ok("po", "receive", number, "--line", "TEE:5")
    assert partial["status"] == "partially_received"
    received = cli.ok("po", "receive", number)
    assert received["status"] == "received"
    assert [(l["sku"], l["received"]) for l in received["lines"]] == [("TEE", 12), ("MUG", 6)]
    assert cli.ok("po", "show", number)["status"] == "received"
    assert location_row(cli.ok("stock", "show", "TEE", "--location", "WH-EAST"), "WH-EAST")["on_hand"] == 22

    other = cli.ok("po", "create", "--supplier", "ACME", "--location", "WH-EAST", "--line", "MUG:1")
    assert cli.ok("po", "cancel", other["number"])["status"] == "cancelled"
    cli.refused("po", "receive", other["number"], code="invalid_transition")
    assert cli.ok("db", "verify")["consistent"] is True


def test_coupon_from_promo_add_applies_to_a_quote(store: Cli) -> None:
    cli = store
    cli.ok("promo", "add", "-", input=json.dumps({"name": "Ten off", "kind": "fixed", "scope": "order", "value": "10", "coupon_code": "TENOFF"}))
    quote = cli.ok("order", "quote", *WEB_ORDER, "--line", "TEE:3", "--coupon", "TENOFF")
    assert (quote["subtotal"], quote["discount_total"]) == ("60.00", "10.00")


def test_order_place_with_a_json_request(store: Cli, tmp_path: Path) -> None:
    request = tmp_path / "order.json"
    request.write_text(json.dumps({"channel": "web", "customer_id": 1, "shipping_method": "standard", "payment_token": "tok_visa",
                                   "lines": [{"sku": "TEE", "quantity": 2}]}))
    placed = store.ok("order", "place", "--json", str(request))
    assert [(l["sku"], l["quantity"]) for l in placed["lines"]] == [("TEE", 2)]
    assert store.ok("order", "place", "--json", "-", input=request.read_text())["number"] != placed["number"]


# --- refusals: exit 1, a coded error on stderr, nothing written -------------------------------------


def test_unknown_sku_is_refused_and_writes_nothing(store: Cli) -> None:
    database = store.database()
    try:
        before = row_counts(database)
        first, details = store.refused("order", "place", *WEB_ORDER, "--line", "MUG:1", "--line", "NOPE:2", "--token", "tok_visa",
                                       "--idempotency-key", "k-unknown", code="unknown_sku")
        assert "NOPE" in first
        assert details == {"skus": ["NOPE"]}
        assert row_counts(database) == before
        with database.read() as s:
            assert s.scalar(select(func.count()).select_from(Order)) == 0
    finally:
        database.dispose()


def test_insufficient_stock_reports_the_shortage(store: Cli) -> None:
    before = store.count(StockMovement)
    first, details = store.refused("order", "place", *WEB_ORDER, "--line", "MUG:50", "--line", "TEE:1", "--token", "tok_visa",
                                   code="insufficient_stock")
    assert "MUG (requested 50, available 20)" in first
    [shortage] = details["shortages"]
    assert (shortage["sku"], shortage["requested"], shortage["available"]) == ("MUG", 50, 20)
    assert shortage["alternatives"]["backorder"] is False
    assert (store.count(Order), store.count(StockMovement)) == (0, before)


@pytest.mark.parametrize("line", ["MUG", "MUG:", ":2", "MUG:two", "MUG:1.5", "MUG:--1", "MUG:\u00b2"])
def test_malformed_line_is_a_usage_error(store: Cli, line: str) -> None:
    result = store.run("order", "place", *WEB_ORDER, "--line", line, "--token", "tok_visa")
    assert result.exit_code == 2
    assert "takes SKU:QUANTITY" in result.stderr
    assert store.count(Order) == 0


@pytest.mark.parametrize("option", [["--set", "MUG:2"], ["--set", "1:x"], ["--set", "1"], ["--add", "TEE"]])
def test_malformed_modify_options_are_usage_errors(store: Cli, option: list[str]) -> None:
    # `--set MUG:2` used to crash with a ValueError traceback (int() of the line number).
    order = store.ok("order", "place", *WEB_ORDER, "--line", "MUG:1", "--token", "tok_visa")
    result = store.run("order", "modify", order["number"], *option)
    assert result.exit_code == 2, result.stderr
    assert "QUANTITY, got" in result.stderr
    line = store.ok("order", "show", order["number"])["lines"][0]
    assert (line["quantity"], line["cancelled"]) == (1, 0)


def test_negative_quantity_is_a_validation_error(store: Cli) -> None:
    store.refused("order", "place", *WEB_ORDER, "--line", "MUG:-1", "--token", "tok_visa", code="validation_error")
    assert store.count(Order) == 0


def test_stock_adjust_needs_delta_or_counted(store: Cli) -> None:
    before = store.count(StockMovement)
    _, details = store.refused("stock", "adjust", "MUG", "WH-EAST", "--reason", "count", code="validation_error")
    assert details["errors"] == [{"field": "delta", "reason": "exactly one of delta/counted"}]
    store.refused("stock", "adjust", "MUG", "WH-EAST", "--delta", "1", "--counted", "3", "--reason", "count", code="validation_error")
    assert store.count(StockMovement) == before


def test_negative_price_is_refused_and_no_product_created(store: Cli) -> None:
    _, details = store.refused("product", "add", "BAD", "--name", "Bad", "--category", "kitchen", "--price", "-1.00", "--cost", "1.00",
                               code="validation_error")
    assert [e["field"] for e in details["errors"]] == ["price"]
    assert store.count(Product) == 2
    store.refused("product", "show", "BAD", code="unknown_sku")


def test_transfer_of_more_than_available_is_refused(store: Cli) -> None:
    before = store.count(StockMovement)
    _, details = store.refused("stock", "transfer", "MUG", "ST-NYC", "WH-EAST", "5", code="stock_error")
    assert details == {"available": 4, "requested": 5}
    assert store.count(StockMovement) == before


def test_state_errors_are_refused(store: Cli) -> None:
    store.refused("order", "show", "SO-NOPE", code="unknown_order")
    order = store.ok("order", "place", *WEB_ORDER, "--line", "MUG:1", "--token", "tok_visa")
    store.refused("order", "release", order["number"], code="invalid_transition")
    store.ok("order", "cancel", order["number"], "--reason", "test")
    store.refused("order", "cancel", order["number"], "--reason", "again", code="invalid_transition")
    store.refused("order", "modify", order["number"], "--set", "1:2", code="modification_not_allowed")
    store.refused("supplier", "add", "ACME", "--name", "Again", code="already_exists")


def test_malformed_po_lines_are_usage_errors(store: Cli) -> None:
    for line in ("TEE", "TEE:x", ":2"):
        result = store.run("po", "create", "--supplier", "ACME", "--location", "WH-EAST", "--line", line)
        assert result.exit_code == 2, result.stderr
        assert "takes SKU:QUANTITY" in result.stderr
    # a negative quantity parses, and the service refuses it like any other bad quantity
    result = store.run("po", "create", "--supplier", "ACME", "--location", "WH-EAST", "--line", "TEE:-1")
    assert result.exit_code == 1 and result.stderr.startswith("error [validation_error]")
    po = store.ok("po", "create", "--supplier", "ACME", "--location", "WH-EAST", "--line", "TEE:2")
    store.ok("po", "send", po["number"])
    # Used to crash with a ValueError traceback (int() of the raw text); now a usage error like `po create`.
    for line in ("TEE", "TEE:x"):
        result = store.run("po", "receive", po["number"], "--line", line)
        assert result.exit_code == 2, result.stderr
        assert "takes SKU:QUANTITY" in result.stderr
    assert store.count(PurchaseOrder) == 1
    database = store.database()
    try:
        with database.read() as s:
            assert s.scalar(select(func.sum(Stock.on_hand))) == 34
    finally:
        database.dispose()


def test_db_verify_reports_a_tampered_ledger(store: Cli) -> None:
    database = store.database()
    try:
        with database.transaction() as s:
            s.execute(Stock.__table__.update().values(on_hand=Stock.on_hand + 1))
    finally:
        database.dispose()
    result = store.run("db", "verify")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["consistent"] is False
    assert len(report["problems"]) == 3


def test_each_test_gets_its_own_database(cli: Cli, tmp_path: Path) -> None:
    assert cli.url == f"sqlite:///{tmp_path}/storeom.db"
    assert cli.run("db", "upgrade").exit_code == 0
    assert cli.count(Product) == 0
