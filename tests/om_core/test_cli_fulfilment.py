"""The fulfilment, returns, feedback and outbox commands of `storeom`, driven through click's CliRunner.

Each test gets its own SQLite file in its own STOREOM_HOME (labels and .eml files land there too),
copied from a template migrated with `storeom db upgrade` and filled with the store of store.py.
Time is frozen at T0 while commands run (in-process), so promises, delays and pickup holds are exact.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from om_core.cli import main
from om_core.clock import frozen_at
from om_core.db import Database
from om_core.models import OutboxMessage, ReturnRequest, TrackingEvent
from tests.om_core.store import build_store

T0 = datetime(2030, 3, 4, 15, 0, tzinfo=UTC)
DAY = timedelta(days=1)
WEB = ["order", "place", "--channel", "web", "--customer", "1", "--token", "tok_visa"]


class Cli:
    """`storeom ...` in-process with this test's STOREOM_HOME and database."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.url = f"sqlite:///{home}/storeom.db"
        self.runner = CliRunner(env={"STOREOM_HOME": str(home), "STOREOM_DATABASE_URL": self.url,
                                     "STOREOM_SMTP_HOST": None, "STOREOM_RETURN_WINDOW_DAYS": None})

    def run(self, *args: str) -> Result:
        return self.runner.invoke(main, list(args), catch_exceptions=False)

    def ok(self, *args: str) -> Any:
        result = self.run(*args)
        assert result.exit_code == 0, f"storeom {' '.join(args)} exited {result.exit_code}:\n{result.stderr}"
        assert result.stderr == ""
        return json.loads(result.stdout)

    def refused(self, *args: str, code: str) -> str:
        """Exit 1 with `error [code]: ...` on stderr and nothing on stdout; returns the message line."""
        result = self.run(*args)
        assert result.exit_code == 1, f"expected exit 1, got {result.exit_code}:\n{result.stdout}\n{result.stderr}"
        assert result.stdout == ""
        first = result.stderr.partition("\n")[0]
        assert first.startswith(f"error [{code}]: "), result.stderr
        return first

    def count(self, model: type, *where: Any) -> int:
        database = Database(self.url)
        try:
            with database.read() as s:
                return s.scalar(select(func.count()).select_from(model).where(*where))
        finally:
            database.dispose()


@pytest.fixture(scope="module")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cli = Cli(tmp_path_factory.mktemp("cli-fulfilment"))
    result = cli.run("db", "upgrade")
    assert result.exit_code == 0, result.stderr
    database = Database(cli.url)
    try:
        build_store(database)
    finally:
        database.dispose()
    return cli.home / "storeom.db"


@pytest.fixture
def cli(tmp_path: Path, store_template: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("STOREOM_HOME", str(tmp_path))  # belt and braces: nothing may land in the repository
    shutil.copy(store_template, tmp_path / "storeom.db")
    return Cli(tmp_path)


@pytest.fixture(autouse=True)
def clock():
    with frozen_at(T0):
        yield


def test_ship_deliver_return_refund_exchange_and_feedback(cli: Cli) -> None:
    # TEE-S 1 + MUG 1 to Ada in New York: 32.50 + 4.95 shipping + 8.875% tax (1.78 + 1.11 + 0.44) = 40.78
    placed = cli.ok(*WEB, "--shipping-method", "standard", "--line", "TEE-S:1", "--line", "MUG:1")
    number = placed["number"]
    assert placed["total"] == "40.78"

    routed = cli.ok("order", "route", number)
    assert routed["number"] == number and routed["routing_reason"]
    assert [[(r["location"], r["quantity"]) for r in l["reservations"] if r["status"] == "active"] for l in routed["lines"]] == [
        [("WH-EAST", 1)], [("WH-EAST", 1)]]

    [created] = cli.ok("shipment", "create", number)
    sh = created["number"]
    assert (created["location"], created["kind"], created["status"], created["carrier"]) == ("WH-EAST", "ship", "pending", "usps")

    picks = cli.ok("picklist", "WH-EAST")
    assert picks["skus"] == [{"sku": "MUG", "name": "Coffee mug", "quantity": 1}, {"sku": "TEE-S", "name": "T-shirt S", "quantity": 1}]
    assert picks["shipments"] == [{"shipment": sh, "order": number, "lines": [{"sku": "TEE-S", "quantity": 1}, {"sku": "MUG", "quantity": 1}]}]

    packed = cli.ok("shipment", "pack", sh, "--package", "1.2:30x20x10")
    assert (packed["status"], Decimal(packed["weight_kg"])) == ("packed", Decimal("1.2"))

    shipped = cli.ok("shipment", "ship", sh)
    label = Path(shipped["label_path"])
    assert label == cli.home / "labels" / f"{sh}.pdf"
    assert label.read_bytes().startswith(b"%PDF")
    tracking = shipped["tracking_number"]
    assert tracking.startswith("US") and shipped["status"] == "dispatched"
    assert cli.ok("order", "show", number)["payment"]["captured"] == "40.78"

    delivered = cli.ok("shipment", "track", tracking, "--event", "delivered", "--id", "x1")
    assert (delivered["status"], delivered["delivered_at"]) == ("delivered", T0.isoformat())
    assert cli.ok("shipment", "track", tracking, "--event", "delivered", "--id", "x1")["status"] == "delivered"
    assert cli.count(TrackingEvent, TrackingEvent.carrier_event_id == "x1") == 1, "the same scan twice is one row"
    assert cli.ok("order", "show", number)["status"] == "delivered"

    with frozen_at(T0 + DAY):
        opened = cli.ok("return", "open", number, "--line", "1:1", "--reason", "damaged")
        rma = opened["number"]
        assert (opened["status"], opened["lines"][0]["sku"], opened["lines"][0]["reason_code"]) == ("open", "TEE-S", "damaged")

        received = cli.ok("return", "receive", rma, "--location", "WH-EAST", "--condition", "1:damaged")
        assert (received["status"], received["lines"][0]["condition"]) == ("received", "damaged")
        stock = cli.ok("stock", "show", "TEE-S", "--location", "WH-EAST")
        assert stock["locations"][0]["on_hand"] == 9, "10 - 1 sold; the damaged one came back and was written off"

        # Our fault: 21.78 + its share of shipping with tax, 5.39 x 21.78 / 35.39 = 3.32 -> 25.10
        refunded = cli.ok("return", "refund", rma)
        assert (refunded["status"], refunded["refund_amount"]) == ("closed", "25.10")
        assert cli.ok("order", "show", number)["payment"]["refunded"] == "25.10"

        exchange = cli.ok("return", "exchange", rma, "--line", "TEE-S:1")
        assert (exchange["total"], exchange["status"], exchange["payment"]) == ("0.00", "placed", None)
        assert exchange["lines"][0]["reservations"] == [{"location": "WH-EAST", "quantity": 1, "status": "active"}]
        assert cli.ok("return", "show", rma)["exchange_order"] == exchange["number"]

        feedback = cli.ok("feedback", number, "--rating", "5", "--recommend", "9", "--tag", "delivery_speed")
        assert (feedback["rating"], feedback["would_recommend"], feedback["tags"]) == (5, 9, ["delivery_speed"])

    pending = cli.count(OutboxMessage, OutboxMessage.status == "pending")
    assert pending == 6
    with frozen_at(T0 + DAY):
        assert cli.ok("outbox", "dispatch") == {"sent": 6, "failed": 0, "dead": 0}
        files = sorted(p.name.split("-", 1)[1] for p in (cli.home / "outbox").glob("*.eml"))
        assert files == sorted(["order_confirmed.eml", "shipped.eml", "delivered.eml", "feedback_request.eml",
                                "return_received.eml", "refund_issued.eml"])
        assert tracking in next((cli.home / "outbox").glob("*-shipped.eml")).read_text()
        assert cli.ok("outbox", "dispatch") == {"sent": 0, "failed": 0, "dead": 0}
    assert cli.count(OutboxMessage, OutboxMessage.status == "sent") == 6

    assert cli.ok("db", "verify") == {"consistent": True, "problems": []}


def test_delays_and_expired_pickups(cli: Cli) -> None:
    parcel = cli.ok(*WEB, "--shipping-method", "standard", "--line", "MUG:1")["number"]
    [sh] = cli.ok("shipment", "create", parcel)
    cli.ok("shipment", "ship", sh["number"])

    pickup = cli.ok(*WEB, "--delivery", "pickup", "--pickup-location", "ST-NYC", "--line", "MUG:2")
    assert pickup["lines"][0]["reservations"] == [{"location": "ST-NYC", "quantity": 2, "status": "active"}]
    [counter] = cli.ok("shipment", "create", pickup["number"])
    assert counter["kind"] == "pickup"
    cli.refused("shipment", "ship", counter["number"], code="invalid_transition")
    assert cli.ok("shipment", "ready", counter["number"])["status"] == "ready_for_pickup"

    assert cli.ok("shipment", "delays") == {"delayed": []}
    assert cli.ok("shipment", "expire-pickups") == {"expired": []}
    with frozen_at(T0 + 6 * DAY):  # standard promises 5 days
        assert cli.ok("shipment", "delays") == {"delayed": [sh["number"]]}
        assert cli.ok("shipment", "delays") == {"delayed": []}
        assert cli.ok("shipment", "show", sh["number"])["delayed"] is True
    with frozen_at(T0 + 8 * DAY):  # held 7 days
        assert cli.ok("shipment", "expire-pickups") == {"expired": [counter["number"]]}
        assert cli.ok("shipment", "expire-pickups") == {"expired": []}
    expired = cli.ok("order", "show", pickup["number"])
    assert (expired["status"], expired["payment"]["open_authorization"]) == ("cancelled", "0.00")
    assert cli.ok("stock", "show", "MUG", "--location", "ST-NYC")["available"] == 4
    assert cli.count(OutboxMessage, OutboxMessage.kind == "delayed") == 1
    assert cli.ok("db", "verify")["consistent"] is True


def test_pickup_collected_at_the_counter(cli: Cli) -> None:
    pickup = cli.ok(*WEB, "--delivery", "pickup", "--pickup-location", "ST-NYC", "--line", "MUG:1")
    [counter] = cli.ok("shipment", "create", pickup["number"])
    cli.ok("shipment", "ready", counter["number"])
    collected = cli.ok("shipment", "collect", counter["number"])
    assert collected["status"] == "collected"
    shown = cli.ok("order", "show", pickup["number"])
    assert (shown["status"], shown["payment"]["captured"]) == ("delivered", shown["total"])


def test_refusals_exit_1_and_write_nothing(cli: Cli) -> None:
    cli.refused("shipment", "ship", "SH-NOPE", code="unknown_shipment")
    cli.refused("shipment", "track", "ZZ12345678", "--event", "delivered", "--id", "x", code="unknown_shipment")
    cli.refused("picklist", "WH-NOWHERE", code="unknown_location")

    number = cli.ok(*WEB, "--shipping-method", "standard", "--line", "MUG:1")["number"]
    [sh] = cli.ok("shipment", "create", number)
    cli.refused("shipment", "create", number, code="invalid_transition")
    line = cli.refused("return", "open", number, "--line", "1:1", "--reason", "size_fit", code="validation_error")
    assert "lines.1" in line
    assert cli.count(ReturnRequest) == 0
    cli.ok("shipment", "ship", sh["number"])
    cli.refused("shipment", "ship", sh["number"], code="invalid_transition")
    cli.refused("return", "open", number, "--line", "1:1", "--reason", "size_fit", code="validation_error")  # on its way, not delivered
    cli.refused("feedback", number, "--rating", "5", code="invalid_transition")
    cli.refused("return", "refund", "RMA-NOPE", code="unknown_return")


@pytest.mark.parametrize("args", [
    ["shipment", "pack", "SH-X", "--package", "1.2:30x20"],
    ["return", "open", "SO-X", "--line", "one:1", "--reason", "damaged"],
    ["return", "open", "SO-X", "--line", "1:1", "--reason", "bored"],
    ["return", "receive", "RMA-X", "--location", "WH-EAST", "--condition", "damaged"],
    ["return", "refund", "RMA-X", "--restocking-fee", "ten"],
    ["shipment", "track", "ZZ12345678", "--event", "lost", "--id", "x"],
])
def test_malformed_options_are_usage_errors(cli: Cli, args: list[str]) -> None:
    assert cli.run(*args).exit_code == 2
