"""The retail simulator: reproducible, consistent with the core's invariants, and with the promised structure.

Database runs are small (six weeks at scale 0.08, a few seconds each) and built once per module;
the demand model is checked without a database over two years.
"""

from __future__ import annotations

import fcntl
import json
import shutil
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from om_core.cli_simulate import simulate as simulate_command
from om_core.clock import frozen_at
from om_core.db import Database
from om_core.services.inventory import verify_ledger
from om_core.simulator.config import BASE_CUSTOMERS, BASE_SKUS, DEFAULT_DAYS, NET_LINE_SHARE, SimulationConfig, yesterday_utc
from om_core.simulator.demand import DemandModel, retail_events
from om_core.simulator.run import SimulationReport, simulate
from om_core.simulator.world import CATEGORY_INDEX, CITIES, generate_world

SMALL = SimulationConfig(seed=11, start=date(2024, 11, 4), days=42, scale=0.08)
TIMING_FIELDS = {"seconds", "setup_seconds", "lines_per_second", "timings"}


def _run(template: Path, directory: Path, config: SimulationConfig) -> SimulationReport:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, directory / "sim.db")
    db = Database(f"sqlite:///{directory / 'sim.db'}")
    try:
        return simulate(db, config, progress=False)
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def runs(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Any:
    """The small simulation twice with the same seed (another seed: see test_demand_is_deterministic).

    Built once per test session and shared by the xdist workers (the tests only read these databases)."""
    root = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    cache = root / "simulator-small"
    with open(root / "simulator-small.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cache / "reports.json").exists():
            reports = [_run(sqlite_template, cache / name, SMALL).to_dict() for name in ("a", "b")]
            (cache / "reports.json").write_text(json.dumps(reports))
        fcntl.flock(lock, fcntl.LOCK_UN)
    reports = [SimulationReport(**r) for r in json.loads((cache / "reports.json").read_text())]
    dbs = [Database(f"sqlite:///{cache / name / 'sim.db'}") for name in ("a", "b")]
    yield list(zip(dbs, reports))
    for db in dbs:
        db.dispose()


@pytest.fixture(scope="module")
def sim(runs: Any) -> tuple[Database, SimulationReport]:
    return runs[0]


def frame(db: Database, sql: str) -> pd.DataFrame:
    with db.engine.connect() as conn:
        return pd.read_sql(text(sql), conn)


def history(db: Database) -> dict[str, pd.DataFrame]:
    """What a simulation recorded, without the identifiers drawn at random (order/shipment numbers, tracking)."""
    return {
        "orders": frame(db, "SELECT o.id, c.code AS channel, o.customer_id, o.status, o.delivery_method, o.placed_at, o.subtotal, "
                            "o.discount_total, o.shipping_total, o.tax_total, o.total, o.pickup_location_id, o.ship_postal_code "
                            "FROM orders o JOIN channels c ON c.id = o.channel_id ORDER BY o.id"),
        "lines": frame(db, "SELECT order_id, line_no, sku, quantity, quantity_cancelled, quantity_fulfilled, quantity_delivered, "
                           "quantity_returned, quantity_backordered, unit_price, discount_total, tax_rate, tax_amount, line_total "
                           "FROM order_lines ORDER BY order_id, line_no"),
        "stock": frame(db, "SELECT product_id, location_id, on_hand FROM stock ORDER BY product_id, location_id"),
        "movements": frame(db, "SELECT stock_id, kind, quantity, reserved_change, at FROM stock_movements ORDER BY id"),
        "purchase_orders": frame(db, "SELECT p.supplier_id, p.location_id, p.status, p.created_at, p.expected_at, l.product_id, "
                                     "l.quantity_ordered, l.quantity_received FROM purchase_orders p "
                                     "JOIN purchase_order_lines l ON l.purchase_order_id = p.id ORDER BY p.id, l.id"),
        "shipments": frame(db, "SELECT order_id, location_id, kind, status, service_level, created_at, delivered_at, delayed "
                               "FROM shipments ORDER BY id"),
        "returns": frame(db, "SELECT r.order_id, r.reason_code, r.status, r.refund_amount, l.order_line_id, l.quantity, l.condition "
                             "FROM returns r JOIN return_lines l ON l.return_id = r.id ORDER BY r.id, l.id"),
        "feedback": frame(db, "SELECT order_id, rating, would_recommend FROM feedback ORDER BY order_id"),
        "promotions": frame(db, "SELECT name, kind, scope, target, value, starts_at, ends_at FROM promotions ORDER BY id"),
        "customers": frame(db, "SELECT id, email, segment, marketing_consent, created_at FROM customers ORDER BY id"),
        "products": frame(db, "SELECT sku, name, category, price, cost, active FROM products ORDER BY sku"),
    }


def counts(report: SimulationReport) -> dict[str, Any]:
    return {k: v for k, v in report.to_dict().items() if k not in TIMING_FIELDS}


# --- reproducibility ----------------------------------------------------------------------------


def test_same_seed_gives_the_same_history(runs: Any) -> None:
    (db_a, report_a), (db_b, report_b) = runs
    assert report_a.orders > 100 and report_a.order_lines > report_a.orders
    assert counts(report_a) == counts(report_b)
    a, b = history(db_a), history(db_b)
    for name in a:
        # rows written in one batch may come in the order of their random numbers: compare as sorted tables
        left, right = (t.sort_values(list(t.columns), kind="stable").reset_index(drop=True) for t in (a[name], b[name]))
        pd.testing.assert_frame_equal(left, right, obj=name)


# --- invariants -------------------------------------------------------------------------------


def test_the_ledger_re_derives_every_stock_row_and_nothing_is_negative(sim: Any) -> None:
    db, _ = sim
    with db.read() as s:
        assert verify_ledger(s) == []
    stock = frame(db, "SELECT s.id, s.on_hand, COALESCE(SUM(r.quantity), 0) AS reserved FROM stock s "
                      "LEFT JOIN reservations r ON r.stock_id = s.id AND r.status = 'active' GROUP BY s.id, s.on_hand")
    assert (stock.on_hand >= 0).all()
    assert (stock.reserved <= stock.on_hand).all(), "never promised more than is on the shelf"


def test_every_order_adds_up(sim: Any) -> None:
    db, _ = sim
    orders = frame(db, "SELECT id, prices_include_tax, subtotal, discount_total, shipping_total, tax_total, total FROM orders")
    assert not orders.prices_include_tax.any(), "US channels price without tax"
    money = lambda col: orders[col].map(lambda v: Decimal(str(v)))  # noqa: E731
    expected = money("subtotal") - money("discount_total") + money("shipping_total") + money("tax_total")
    assert (money("total") == expected).all()
    lines = frame(db, "SELECT order_id, quantity, unit_price, discount_total, tax_amount, line_total FROM order_lines")
    d = lambda col: lines[col].map(lambda v: Decimal(str(v)))  # noqa: E731
    assert (d("line_total") == d("unit_price") * lines.quantity.map(Decimal) - d("discount_total") + d("tax_amount")).all()
    per_order = lines.assign(gross=d("unit_price") * lines.quantity.map(Decimal), disc=d("discount_total")).groupby("order_id")[["gross", "disc"]].sum()
    joined = orders.set_index("id").join(per_order)
    assert (joined.subtotal.map(lambda v: Decimal(str(v))) == joined.gross).all()
    assert (joined.discount_total.map(lambda v: Decimal(str(v))) == joined.disc).all()


def test_quantities_follow_the_goods(sim: Any) -> None:
    db, _ = sim
    lines = frame(db, "SELECT id, quantity, quantity_cancelled, quantity_fulfilled, quantity_delivered, quantity_returned FROM order_lines")
    assert (lines.quantity_returned <= lines.quantity_delivered).all(), "returns never exceed deliveries"
    assert (lines.quantity_delivered <= lines.quantity_fulfilled).all()
    assert (lines.quantity_cancelled + lines.quantity_fulfilled <= lines.quantity).all()
    returned = frame(db, "SELECT l.order_line_id AS id, SUM(l.quantity) AS units FROM return_lines l JOIN returns r ON r.id = l.return_id "
                         "WHERE r.status != 'cancelled' GROUP BY l.order_line_id")
    merged = returned.merge(lines, on="id")
    assert (merged.units <= merged.quantity_delivered).all()
    nonreturnable = frame(db, "SELECT COUNT(*) AS n FROM return_lines rl JOIN order_lines l ON l.id = rl.order_line_id "
                              "JOIN products p ON p.id = l.product_id WHERE p.returnable = 0")
    assert nonreturnable.n[0] == 0


def test_payments_never_capture_or_refund_more_than_authorized(sim: Any) -> None:
    db, _ = sim
    pay = frame(db, "SELECT payment_id, kind, SUM(amount) AS amount FROM payment_transactions WHERE status = 'succeeded' GROUP BY payment_id, kind")
    wide = pay.pivot(index="payment_id", columns="kind", values="amount").fillna(0).astype(float)
    for col in ("authorize", "capture", "void", "refund"):
        if col not in wide:
            wide[col] = 0.0
    assert (wide.capture + wide.void <= wide.authorize + 1e-9).all()
    assert (wide.refund <= wide.capture + 1e-9).all()


def test_report_matches_the_database(sim: Any) -> None:
    db, report = sim
    n = frame(db, "SELECT (SELECT COUNT(*) FROM orders) AS orders, (SELECT COUNT(*) FROM order_lines) AS lines, "
                  "(SELECT COUNT(*) FROM purchase_orders) AS pos, (SELECT COUNT(*) FROM returns) AS returns, "
                  "(SELECT COUNT(*) FROM feedback) AS feedback, (SELECT COUNT(*) FROM transfers) AS transfers, "
                  "(SELECT COUNT(*) FROM customers) AS customers, (SELECT COUNT(*) FROM products) AS products").iloc[0]
    assert (n.orders, n.lines) == (report.orders, report.order_lines)
    assert (n.pos, n.returns, n.feedback, n.transfers) == (report.purchase_orders, report.returns, report.feedback, report.transfers)
    assert (n.customers, n.products) == (report.customers, report.skus)
    assert report.path in ("bulk", "per-order")


def test_simulated_orders_leave_the_outbox_alone(sim: Any) -> None:
    db, report = sim
    if report.path != "bulk":
        pytest.skip("the per-order fallback cannot switch confirmations off")
    confirmations = frame(db, "SELECT COUNT(*) AS n FROM outbox WHERE kind = 'order_confirmed'")
    assert confirmations.n[0] == 0


# --- the history has the promised operations ------------------------------------------------------


def test_history_has_stockouts_lost_sales_and_replenishment(sim: Any) -> None:
    db, report = sim
    assert report.stockout_days > 0 and report.lost_sales_lines > 0
    received = frame(db, "SELECT COUNT(*) AS n FROM purchase_orders WHERE status IN ('received', 'partially_received')")
    assert received.n[0] > 0, "purchase orders arrive after their lead time"
    lead = frame(db, "SELECT p.created_at, MIN(m.at) AS first_receipt FROM purchase_orders p "
                     "JOIN stock_movements m ON m.reference = 'po:' || p.number AND m.kind = 'receipt' GROUP BY p.id, p.created_at")
    days = (pd.to_datetime(lead.first_receipt) - pd.to_datetime(lead.created_at)).dt.total_seconds() / 86400
    assert (days > 0).all() and days.max() >= 3
    assert report.transfers > 0
    assert frame(db, "SELECT COUNT(*) AS n FROM stock_movements WHERE kind = 'transfer_in'").n[0] == report.transfers


def test_history_has_channels_fulfilment_returns_and_feedback(sim: Any) -> None:
    db, report = sim
    by_channel = frame(db, "SELECT c.kind, o.delivery_method, COUNT(*) AS n FROM orders o JOIN channels c ON c.id = o.channel_id "
                           "GROUP BY c.kind, o.delivery_method")
    kinds = set(by_channel.kind)
    assert {"web", "app", "pos", "marketplace"} <= kinds
    assert set(by_channel[by_channel.kind == "pos"].delivery_method) == {"carry_out"}
    assert "pickup" in set(by_channel.delivery_method)
    shipments = frame(db, "SELECT kind, status, delayed, service_level FROM shipments")
    assert {"delivered", "collected"} <= set(shipments.status)
    assert shipments.delayed.any(), "carriers are late now and then"
    assert frame(db, "SELECT COUNT(*) AS n FROM tracking_events WHERE kind = 'exception'").n[0] > 0
    assert report.returns > 0 and report.feedback > 0
    reasons = frame(db, "SELECT DISTINCT reason_code FROM return_lines")
    assert len(reasons) >= 2
    assert frame(db, "SELECT COUNT(*) AS n FROM returns WHERE refund_amount IS NOT NULL").n[0] > 0


def test_customers_come_back_for_their_consumables(sim: Any) -> None:
    db, _ = sim
    repeat = frame(db, "SELECT o.customer_id, l.sku, COUNT(DISTINCT o.id) AS n FROM orders o JOIN order_lines l ON l.order_id = o.id "
                       "JOIN products p ON p.id = l.product_id WHERE o.customer_id IS NOT NULL "
                       "AND p.category IN ('grocery', 'coffee-tea', 'snacks', 'beverages', 'pet-supplies', 'personal-care') "
                       "GROUP BY o.customer_id, l.sku HAVING COUNT(DISTINCT o.id) > 1")
    assert len(repeat) > 0


def _planned(config: SimulationConfig) -> tuple[Any, pd.DataFrame]:
    """The identified customers' order lines the basket maker plans over the period (no database)."""
    from om_core.simulator.baskets import BasketMaker

    world = generate_world(config)
    demand = DemandModel(world)
    baskets = BasketMaker(world, demand)
    rows = []
    for day in range(demand.n_days):
        active = (world.skus.launch_day <= day) & (world.skus.eol_day > day)
        for order in baskets.plan_day(day, active):
            if order.lines and order.customer is not None:
                baskets.record_purchase(order, day)
                rows += [(order.customer, s, order.seq, day) for s, _ in order.lines]
    lines = pd.DataFrame(rows, columns=["customer", "sku", "order", "day"])
    lines["brand"], lines["category"] = world.sku_brand[lines.sku], world.skus.category[lines.sku]
    lines["style"] = world.skus.style[lines.sku]
    return world, lines


def _same_brand_rate(lines: pd.DataFrame) -> float:
    """Of the pairs of a customer's purchases in one category (different styles, different orders),
    the share of the same brand."""
    one = lines.drop_duplicates(["customer", "style"])
    pairs = one.merge(one, on=["customer", "category"])
    pairs = pairs[(pairs.style_x < pairs.style_y) & (pairs.order_x != pairs.order_y)]
    assert len(pairs) > 150
    return float((pairs.brand_x == pairs.brand_y).mean())


def _follow_up_share(world: Any, lines: pd.DataFrame) -> float:
    """Share of lines whose SKU goes with (is a partner of) something the customer bought in the 120 days before."""
    goes_with: dict[int, set[int]] = {}
    for s, row in enumerate(world.skus.partners):
        for p in row[row >= 0]:
            goes_with.setdefault(int(p), set()).add(s)
    last: dict[int, dict[int, int]] = {}
    hits = 0
    for c, s, day in lines.sort_values("day", kind="stable")[["customer", "sku", "day"]].itertuples(index=False):
        bought = last.setdefault(c, {})
        hits += any(0 < day - bought.get(q, -10**6) <= 120 for q in goes_with.get(s, ()))
        bought[s] = day
    return hits / len(lines)


def test_customers_have_item_level_taste() -> None:
    """Beyond category affinity: a customer's purchases in a category keep to a few brands, and items
    that go with an earlier purchase come back as follow-ups, more than with category affinity alone."""
    config = SimulationConfig(seed=2, start=date(2024, 1, 1), days=180, scale=0.3)
    world, lines = _planned(config)
    plain_world, plain = _planned(SimulationConfig(seed=2, start=date(2024, 1, 1), days=180, scale=0.3,
                                                   extra={"brand_taste": 0.0, "follow_share": 0.0}))
    assert _same_brand_rate(lines) > _same_brand_rate(plain) + 0.1
    assert _follow_up_share(world, lines) > 3 * _follow_up_share(plain_world, plain)


# --- the demand model (no database) -----------------------------------------------------------------


@pytest.fixture(scope="module")
def model() -> DemandModel:
    return DemandModel(generate_world(SimulationConfig(seed=5, start=date(2023, 1, 2), days=730, scale=0.3)))


def test_demand_is_deterministic() -> None:
    config = SimulationConfig(seed=3, start=date(2024, 1, 1), days=120, scale=0.1)
    a, b = DemandModel(generate_world(config)), DemandModel(generate_world(config))
    assert np.array_equal(a.daily_totals(by="sku"), b.daily_totals(by="sku"))
    assert a.world.skus.code == b.world.skus.code and a.world.customers.email == b.world.customers.email
    assert [p.name for p in a.promotions] == [p.name for p in b.promotions]
    other = generate_world(SimulationConfig(seed=4, start=date(2024, 1, 1), days=120, scale=0.1))
    c = DemandModel(other)
    assert not np.array_equal(a.daily_totals(by="point")[:, 0], c.daily_totals(by="point")[:, 0])
    assert a.world.skus.name != other.skus.name


def test_weekly_seasonality(model: DemandModel) -> None:
    totals = model.daily_totals()
    stores = [j for j, p in enumerate(model.points) if p.kind == "store"]
    web = next(j for j, p in enumerate(model.points) if p.kind == "web")
    wd = model.weekday
    store = totals[:, stores].sum(axis=1)
    assert store[wd >= 5].mean() / store[wd <= 3].mean() > 1.3, "Saturday and Sunday are the stores' days"
    assert totals[wd == 0, web].mean() > 1.1 * totals[wd == 5, web].mean(), "the web's best day is Monday"


def test_yearly_seasonality_and_holidays(model: DemandModel) -> None:
    totals = model.daily_totals().sum(axis=1)
    dates = pd.to_datetime([model.date(d) for d in range(model.n_days)])
    assert totals[dates.month == 12].mean() > 1.2 * totals[dates.month == 2].mean()
    by_sku = model.daily_totals(by="sku")
    outerwear = by_sku[:, model.world.skus.category == CATEGORY_INDEX["outerwear"]].sum(axis=1)
    assert outerwear[dates.month.isin([12, 1])].mean() > 3 * outerwear[dates.month.isin([6, 7])].mean()
    stores = [j for j, p in enumerate(model.points) if p.kind == "store"]
    web = next(j for j, p in enumerate(model.points) if p.kind == "web")
    per_point = model.daily_totals()
    ev = retail_events(2023)
    bf, tg, cm = (ev[k] - model.start for k in ("black_friday", "thanksgiving", "cyber_monday"))
    assert per_point[bf.days, stores].sum() > 2 * per_point[bf.days - 7, stores].sum()
    assert per_point[tg.days, stores].sum() == 0 and per_point[(date(2023, 12, 25) - model.start).days, stores].sum() == 0
    assert per_point[cm.days, web] > 2 * per_point[cm.days - 7, web]


def test_promotions_lift_demand_and_leave_a_dip(model: DemandModel) -> None:
    by_sku = model.daily_totals(by="sku")
    lifts, dips = [], []
    consumable = model.world.skus.cycle_days > 0
    for ev in model.promotions:
        if ev.scope != "sku" or ev.start_day < 21 or ev.end_day + 7 > model.n_days:
            continue
        s = ev.skus[0]
        before = by_sku[ev.start_day - 14:ev.start_day - 7, s].sum()  # the same weekdays, two weeks earlier
        during = by_sku[ev.start_day:ev.end_day, s].sum()
        if before > 0:
            lifts.append(during / before)
        if consumable[s] and before > 0:
            dips.append(by_sku[ev.end_day:ev.end_day + 3, s].sum() / by_sku[ev.start_day - 14:ev.start_day - 11, s].sum())
    assert len(lifts) > 20
    assert np.median(lifts) > 1.4, "a promotion sells more than the same weekdays without one"
    assert dips and np.median(dips) < 0.95, "customers stocked up: a dip follows"
    assert {ev.scope for ev in model.promotions} == {"sku", "category"}


def test_prices_life_cycle_and_long_tail(model: DemandModel) -> None:
    skus = model.world.skus
    by_sku = model.daily_totals(by="sku")
    launched = np.flatnonzero((skus.launch_day > 30) & (skus.launch_day < model.n_days - 60))
    assert len(launched) > 0
    for s in launched[:10]:
        lo = int(skus.launch_day[s])
        assert by_sku[:lo, s].sum() == 0 and by_sku[lo + 40:lo + 60, s].sum() > by_sku[lo:lo + 3, s].sum() / 3
    ended = np.flatnonzero(skus.eol_day < model.n_days)
    assert len(ended) > 0 and all(by_sku[int(skus.eol_day[s]):, s].sum() == 0 for s in ended)
    cuts = [c for c in model.price_changes if c.reason == "competitive price cut" and 7 <= c.day < model.n_days - 7]
    assert cuts and all(model.sku_factor[c.sku, c.day] > model.sku_factor[c.sku, c.day - 1] for c in cuts
                        if model.promo_percent[c.sku, c.day - 1] == model.promo_percent[c.sku, c.day] == 0
                        and skus.launch_day[c.sku] < c.day - 60 and skus.eol_day[c.sku] > c.day + 80)
    mean_daily = by_sku.mean(axis=0)
    assert (mean_daily < 0.05).mean() > 0.2, "a long tail of slow, intermittent SKUs"
    assert mean_daily.max() > 50 * np.median(mean_daily)


def test_stores_differ(model: DemandModel) -> None:
    world = model.world
    by_point = np.zeros((len(model.points), len(world.categories)))
    for d in range(0, model.n_days, 7):
        e = model.expected(d)
        for c in range(len(world.categories)):
            by_point[:, c] += e[world.skus.category == c].sum(axis=0)
    share = by_point / by_point.sum(axis=1, keepdims=True)
    point = {p.code: j for j, p in enumerate(model.points)}
    outer = CATEGORY_INDEX["outerwear"]
    assert share[point["pos-bos"], outer] > 2 * share[point["pos-dal"], outer]
    assert share[point["marketplace"], CATEGORY_INDEX["electronics"]] > share[point["pos-nyc"], CATEGORY_INDEX["electronics"]]


# --- the world and the config -------------------------------------------------------------------------


def test_the_default_world() -> None:
    config = SimulationConfig()
    assert config.n_days == DEFAULT_DAYS and config.end_date == yesterday_utc()
    assert (config.n_skus, config.n_customers) == (BASE_SKUS, BASE_CUSTOMERS)
    big = SimulationConfig(scale=10)
    assert big.n_customers == 10 * BASE_CUSTOMERS and BASE_SKUS < big.n_skus < 5 * BASE_SKUS
    sized = SimulationConfig(start=date(2024, 1, 1), days=100, lines_target=50_000).resolved()
    assert sized.lines_target is None and 0 < sized.scale and round(sized.lines_per_day * NET_LINE_SHARE * 100) == 50_000
    world = generate_world(SimulationConfig(seed=1, start=date(2024, 1, 1), days=30, scale=0.2))
    assert len(world.warehouses) == 2 and len(world.stores) == 8
    assert {ch.kind for ch in world.channels} == {"web", "app", "marketplace", "pos"}
    assert sum(ch.kind == "pos" for ch in world.channels) == 8
    assert len(world.categories) >= 20 and len(set(world.skus.code)) == len(world.skus)
    assert len({s.lead_time_days for s in world.suppliers}) >= 4
    grocery = world.skus.category == CATEGORY_INDEX["grocery"]
    assert not world.skus.returnable[grocery].any() and world.skus.returnable.mean() > 0.6
    assert all(0 < c < p for c, p in zip(world.skus.cost, world.skus.price))
    cust = world.customers
    assert all(e.endswith("@example.com") for e in cust.email) and len(set(cust.email)) == len(cust)
    assert 0.5 < cust.consent.mean() < 0.7
    import zipcodes

    for i in range(0, len(cust), max(1, len(cust) // 50)):
        found = zipcodes.matching(cust.postal_code[i])
        assert found and found[0]["state"] == CITIES[cust.city[i]].state


# --- the command -------------------------------------------------------------------------------------


def test_simulate_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOREOM_HOME", str(tmp_path))
    monkeypatch.setenv("STOREOM_DATABASE_URL", f"sqlite:///{tmp_path}/storeom.db")
    runner = CliRunner()
    args = ["--scale", "0.01", "--seed", "3", "--start", "2024-03-04", "--days", "8", "--no-progress"]
    result = runner.invoke(simulate_command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)
    assert (first["start"], first["end"], first["days"], first["seed"]) == ("2024-03-04", "2024-03-11", 8, 3)
    assert first["orders"] > 0
    again = runner.invoke(simulate_command, args)
    assert again.exit_code != 0 and "already holds a store" in again.output
    fresh = runner.invoke(simulate_command, [*args, "--fresh"], catch_exceptions=False)
    assert fresh.exit_code == 0, fresh.output
    assert {k: v for k, v in json.loads(fresh.stdout).items() if k not in TIMING_FIELDS} == {k: v for k, v in first.items() if k not in TIMING_FIELDS}
    bad = runner.invoke(simulate_command, ["--start", "2024-01-01", "--end", "2024-02-01", "--days", "3"])
    assert bad.exit_code == 2


def test_default_period_ends_yesterday() -> None:
    config = SimulationConfig(days=10).resolved()
    assert config.end == yesterday_utc() and config.start == yesterday_utc() - timedelta(days=9)


@pytest.mark.slow
def test_the_per_order_services_record_the_same_orders_as_the_batched_path(sqlite_template: Path, tmp_path: Path) -> None:
    """The adapter's fallback (one service call per order) and the core's bulk path agree order for order."""
    from om_core.simulator.run import Recorder, Simulation

    config = SimulationConfig(seed=21, start=date(2024, 5, 6), days=10, scale=0.03)
    tables = []
    for use_bulk in (True, False):
        directory = tmp_path / ("bulk" if use_bulk else "single")
        directory.mkdir()
        shutil.copy(sqlite_template, directory / "sim.db")
        db = Database(f"sqlite:///{directory / 'sim.db'}")
        try:
            report = Simulation(db, config, progress=False, recorder=Recorder(use_bulk=use_bulk)).run()
            assert report.path == ("bulk" if use_bulk else "per-order")
            with db.read() as s:
                assert verify_ledger(s) == []
            h = history(db)
            tables.append((report, {k: h[k] for k in ("orders", "lines", "stock", "returns")}))
        finally:
            db.dispose()
    (bulk_report, bulk), (single_report, single) = tables
    assert counts(bulk_report) | {"path": ""} == counts(single_report) | {"path": ""}
    for name in bulk:
        pd.testing.assert_frame_equal(bulk[name], single[name], obj=name)


def test_batched_set_up_helpers_when_the_core_offers_them(sqlite_template: Path, tmp_path: Path) -> None:
    """`create_customers`, `receive_stock` and `transfer_stock` in om_core.services.bulk are used when present
    (signatures as below); the orders recorded are the same as with one service call each."""
    from om_core.services import customers, inventory
    from om_core.simulator.run import Recorder, Simulation

    calls: dict[str, int] = {}

    def create_customers(session: Any, items: list[dict[str, Any]], *, created_at: list[Any]) -> list[int]:
        calls["create_customers"] = calls.get("create_customers", 0) + 1
        ids = []
        for item, at in zip(items, created_at):
            with frozen_at(at):
                ids.append(customers.create_customer(session, item).id)
        return ids

    def receive_stock(session: Any, items: list[dict[str, Any]], *, actor: str | None = None) -> None:
        calls["receive_stock"] = calls.get("receive_stock", 0) + 1
        for item in items:
            inventory.receive_stock(session, item, actor=actor)

    def transfer_stock(session: Any, items: list[dict[str, Any]], *, actor: str | None = None) -> None:
        calls["transfer_stock"] = calls.get("transfer_stock", 0) + 1
        for item in items:
            inventory.transfer_stock(session, item, actor=actor)

    helpers = {"create_customers": create_customers, "receive_stock": receive_stock, "transfer_stock": transfer_stock}

    class WithHelpers(Recorder):
        def bulk_helper(self, name: str) -> Any:
            return helpers.get(name)

    config = SimulationConfig(seed=8, start=date(2024, 6, 3), days=21, scale=0.03)
    results = []
    for recorder in (Recorder(), WithHelpers()):
        directory = tmp_path / type(recorder).__name__
        directory.mkdir()
        shutil.copy(sqlite_template, directory / "sim.db")
        db = Database(f"sqlite:///{directory / 'sim.db'}")
        try:
            report = Simulation(db, config, progress=False, recorder=recorder).run()
            with db.read() as s:
                assert verify_ledger(s) == []
            h = history(db)
            results.append((report, h["orders"], h["lines"], h["stock"]))
        finally:
            db.dispose()
    assert set(calls) == set(helpers) and calls["create_customers"] > 1
    (plain, *plain_tables), (helped, *helped_tables) = results
    assert counts(plain) == counts(helped)
    for a, b in zip(plain_tables, helped_tables):
        pd.testing.assert_frame_equal(a, b)


# --- on each backend ------------------------------------------------------------------------------------

TINY = SimulationConfig(seed=5, start=date(2024, 3, 4), days=28, scale=0.05, extra={"return_factor": 6.0})


def _invariants(db: Database, report: SimulationReport) -> None:
    with db.read() as s:
        assert verify_ledger(s) == []
    stock = frame(db, "SELECT s.id, s.on_hand, COALESCE(SUM(r.quantity), 0) AS reserved FROM stock s "
                      "LEFT JOIN reservations r ON r.stock_id = s.id AND r.status = 'active' GROUP BY s.id, s.on_hand")
    assert (stock.on_hand >= 0).all() and (stock.on_hand - stock.reserved >= 0).all(), "no oversell"
    n = frame(db, "SELECT (SELECT COUNT(*) FROM orders) AS orders, (SELECT COUNT(*) FROM order_lines) AS lines").iloc[0]
    assert (n.orders, n.lines) == (report.orders, report.order_lines) and report.orders > 20 and report.order_lines >= report.orders


def test_the_simulation_holds_its_invariants_on_each_backend(db: Database, sqlite_template: Path, tmp_path: Path) -> None:
    report = simulate(db, TINY, progress=False)
    _invariants(db, report)
    # store customers bring till purchases back to the store they bought them in
    till = frame(db, "SELECT r.status, r.received_location_id, l.code AS sold_at FROM returns r JOIN orders o ON o.id = r.order_id "
                     "JOIN channel_locations cl ON cl.channel_id = o.channel_id JOIN locations l ON l.id = cl.location_id "
                     "WHERE o.delivery_method = 'carry_out'")
    assert len(till) > 0 and set(till.status) == {"closed"}
    stores = frame(db, "SELECT id, code FROM locations").set_index("id").code
    assert (till.received_location_id.map(stores) == till.sold_at).all()
    if db.dialect == "sqlite":  # the same seed again, into another database: the same history
        again = _run(sqlite_template, tmp_path / "again", TINY)
        assert counts(again) == counts(report)
        other = Database(f"sqlite:///{tmp_path / 'again' / 'sim.db'}")
        try:
            a, b = history(db), history(other)
        finally:
            other.dispose()
        for name in a:
            left, right = (t.sort_values(list(t.columns), kind="stable").reset_index(drop=True) for t in (a[name], b[name]))
            pd.testing.assert_frame_equal(left, right, obj=name)


def test_a_run_puts_the_garbage_collector_back_as_it_found_it():
    import gc

    from om_core.simulator import run

    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), run._long_lived_heap() as freeze:
        assert gc.get_threshold() == run.GC_THRESHOLD and gc.get_freeze_count() > 0
        freeze()
        raise RuntimeError("a day failed")
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    gc.freeze()  # a server that froze its heap before forking workers keeps it frozen
    try:
        with run._long_lived_heap() as freeze:
            freeze()
        assert gc.get_freeze_count() > 0 and gc.get_threshold() == before
    finally:
        gc.unfreeze()
