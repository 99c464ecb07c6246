"""Every dashboard page on the hand-built warehouse (tests/dashboards/warehouse.py), through Streamlit's AppTest:
it renders, shows the figures the fixture data gives, follows the global filters, and shows an empty state
when its assets are missing. Expected figures are computed here from the fixture frames."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select

from dashboards import layout as L
from tests.dashboards.conftest import metric, open_page, table_with, texts
from tests.dashboards.warehouse import AS_OF, COMMENT, FIRST_DAY

START = AS_OF - timedelta(days=27)  # the default range: the last 28 days
PAGES = ["overview", "fulfilment", "inventory", "returns", "forecasts", "reorder", "recommendations", "segments", "order_lookup"]


def days(df: pd.DataFrame, column: str, start, end) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    d = pd.to_datetime(df[column]).dt.date
    return df[(d >= start) & (d <= end)]


# --- Manager -------------------------------------------------------------------------------------------


def test_overview_figures_and_freshness(app, frames):
    at = app("overview")
    sales = frames["kpi_sales"][frames["kpi_sales"]["grain"] == "day"]
    now = days(sales, "period_start", START, AS_OF)
    prev = days(sales, "period_start", START - timedelta(days=28), START - timedelta(days=1))
    channels = now[now["channel"] != "ALL"]
    assert metric(at, "Revenue") == L.money(channels["revenue"].sum(), 0)
    assert metric(at, "Orders") == L.num(now.loc[now["channel"] == "ALL", "orders"].sum())
    assert metric(at, "Units") == L.num(now.loc[now["channel"] == "ALL", "units"].sum())
    revenue_tile = next(m for m in at.metric if m.label == "Revenue")
    prev_revenue = prev.loc[prev["channel"] != "ALL", "revenue"].sum()
    assert revenue_tile.delta == L.change(channels["revenue"].sum(), prev_revenue)
    assert f"Data as of {AS_OF.isoformat()}" in texts(at)


def test_overview_follows_channel_location_and_date_filters(app, frames):
    at = app("overview")
    everything = metric(at, "Orders")
    at.multiselect(key="f_channels").set_value(["web"]).run()
    sales = frames["kpi_sales"]
    web = days(sales[(sales["grain"] == "day") & (sales["channel"] == "web")], "period_start", START, AS_OF)
    assert metric(at, "Orders") == L.num(web["orders"].sum()) != everything

    at.multiselect(key="f_channels").set_value([]).run()
    at.multiselect(key="f_locations").set_value(["ST-NYC"]).run()
    lines = days(frames["stg_order_lines"], "order_date", START, AS_OF)
    nyc = lines[lines["location"] == "ST-NYC"]
    assert metric(at, "Orders") == L.num(nyc["order_id"].nunique())
    assert metric(at, "Revenue") == L.money(nyc["revenue"].sum(), 0)

    at.multiselect(key="f_locations").set_value([]).run()
    at.date_input(key="f_dates").set_value((FIRST_DAY, FIRST_DAY + timedelta(days=6))).run()
    week = days(sales[(sales["grain"] == "day") & (sales["channel"] == "ALL")], "period_start", FIRST_DAY, FIRST_DAY + timedelta(days=6))
    assert metric(at, "Orders") == L.num(week["orders"].sum())
    assert not at.exception

    at.date_input(key="f_dates").set_value((AS_OF,)).run()  # a range half picked in the browser: that one day
    last = sales[(sales["grain"] == "day") & (sales["channel"] == "ALL") & (sales["period_start"].dt.date == AS_OF)]
    assert metric(at, "Orders") == L.num(last["orders"].sum())
    assert at.date_input(key="f_dates").value == (AS_OF,)  # left as it is, for the second click


def test_overview_category_ranking(app, frames):
    at = app("overview")
    dd = days(frames["daily_demand"], "day", START, AS_OF)
    expected = dd.groupby("category")["revenue"].sum().sort_values(ascending=False)
    shown = table_with(at, "name")  # the first ranking is categories, top 5
    assert list(shown["name"]) == list(expected.index[:5])
    assert shown["revenue"].round(2).tolist() == expected.round(2).tolist()[:5]


def _on_time(weeks: pd.DataFrame) -> str:
    return L.pct(weeks["delivered_on_time"].sum() / weeks["delivered_with_promise"].sum())


def test_fulfilment_rates_follow_dates_and_locations(app, frames):
    at = app("fulfilment")
    weeks = frames["kpi_fulfilment"][frames["kpi_fulfilment"]["grain"] == "week"]
    assert metric(at, "On-time delivery") == _on_time(days(weeks, "period_start", START, AS_OF))
    assert f"Data as of {AS_OF.isoformat()}" in texts(at)  # the last day, not the start of the last week
    perfect = days(weeks, "period_start", START, AS_OF)
    assert metric(at, "Perfect orders") == L.pct(perfect["perfect_orders"].sum() / perfect["processed_orders"].sum())

    early = (FIRST_DAY, FIRST_DAY + timedelta(days=13))
    at.date_input(key="f_dates").set_value(early).run()
    assert metric(at, "On-time delivery") == _on_time(days(weeks, "period_start", *early))
    assert _on_time(days(weeks, "period_start", *early)) != _on_time(days(weeks, "period_start", START, AS_OF))

    at.multiselect(key="f_locations").set_value(["WH-WEST"]).run()
    assert table_with(at, "Location")["Location"].tolist() == ["WH-WEST"]


def test_inventory_totals_and_category_filter(app, frames):
    at = app("inventory")
    inv = frames["kpi_inventory"]
    locations = inv[inv["grain"] == "location"]
    assert metric(at, "Stock value") == L.money(locations["closing_inventory_value"].sum(), 0)
    assert metric(at, "Lost sales") == L.money(locations["lost_sales_value"].sum(), 0)
    assert f"Data as of {AS_OF.isoformat()}" in texts(at)
    at.multiselect(key="f_categories").set_value(["kitchen"]).run()
    kitchen = inv[(inv["grain"] == "category") & (inv["key"] == "kitchen")].iloc[0]
    assert metric(at, "Stock value") == L.money(kitchen["closing_inventory_value"], 0)
    assert metric(at, "Turnover") == L.num(kitchen["cogs"] / kitchen["avg_inventory_value"], 2)


def test_returns_and_feedback(app, frames):
    at = app("returns")
    cats = frames["kpi_returns"][frames["kpi_returns"]["grain"] == "category"]
    assert metric(at, "Return rate") == L.pct(cats["returned_units"].sum() / cats["units_fulfilled"].sum())
    assert metric(at, "Refunds") == L.money(cats["refund_amount"].sum())
    weeks = days(frames["kpi_feedback"][frames["kpi_feedback"]["grain"] == "week"], "period_start", START, AS_OF)
    assert metric(at, "CSAT") == L.pct(weeks["satisfied"].sum() / weeks["responses"].sum())
    assert table_with(at, "comment")["comment"].tolist() == [COMMENT]  # the test order's feedback, from the database
    at.multiselect(key="f_categories").set_value(["apparel"]).run()
    apparel = cats[cats["key"] == "apparel"].iloc[0]
    assert metric(at, "Return rate") == L.pct(apparel["returned_units"] / apparel["units_fulfilled"])
    at.multiselect(key="f_channels").set_value(["app"]).run()  # the commented order came in on the web
    assert "No comments in this period." in texts(at)


# --- Merchandiser --------------------------------------------------------------------------------------


def test_forecasts_series_accuracy_and_filters(app, frames):
    at = app("forecasts")
    fc, bt = frames["demand_forecast"], frames["forecast_backtest"]
    sku = sorted(bt["sku"].unique())[0]
    assert at.selectbox(key="fc_sku").value == sku and at.selectbox(key="fc_location").value == "ALL"
    series = fc[(fc["sku"] == sku) & (fc["location"] == "ALL")]
    assert metric(at, "Next 28 days") == L.num(series["forecast"].sum(), 0) + " units"
    chosen = bt[(bt["sku"] == sku) & (bt["location"] == "ALL") & bt["selected"]].iloc[0]
    assert metric(at, "Model") == chosen["model"]
    assert metric(at, "MASE") == L.num(chosen["mase"], 2)
    assert f"Data as of {AS_OF.isoformat()}" in texts(at)  # the day before the forecast starts

    at.selectbox(key="fc_location").set_value("ST-NYC").run()
    nyc = fc[(fc["sku"] == sku) & (fc["location"] == "ST-NYC")]
    assert metric(at, "Next 28 days") == L.num(nyc["forecast"].sum(), 0) + " units"

    at.multiselect(key="f_categories").set_value(["kitchen"]).run()
    kitchen = bt[(bt["category"] == "kitchen") & bt["selected"]]
    assert at.selectbox(key="fc_sku").options == sorted(kitchen["sku"].unique())
    assert metric(at, "Model") == kitchen["model"].iloc[0]
    portfolio = table_with(at, "series_class")
    assert portfolio["category"].unique().tolist() == ["kitchen"]


def test_reorder_suggestions_and_filters(app, frames):
    at = app("reorder")
    sug = frames["reorder_suggestions"]
    assert metric(at, "Suggestions") == L.num(len(sug))
    assert metric(at, "Estimated cost") == L.money(sug["estimated_cost"].sum(), 0)
    shown = table_with(at, "reason")
    assert shown["sku"].tolist() == sug.sort_values("priority_rank")["sku"].tolist()
    at.multiselect(key="ro_priorities").set_value(["urgent", "high"]).run()
    picked = sug[sug["priority"].isin(["urgent", "high"])]
    assert metric(at, "Units to order") == L.num(picked["suggested_qty"].sum())
    at.multiselect(key="f_locations").set_value(["ST-NYC"]).run()
    assert table_with(at, "reason")["sku"].tolist() == picked.loc[picked["location"] == "ST-NYC", "sku"].tolist()
    assert "Policy backtest" in texts(at)


# --- Marketing -----------------------------------------------------------------------------------------


def _opted_in(path) -> set[int]:  # type: ignore[no-untyped-def]
    """Marketing consent as the core database has it (the feed and offer lists go by it)."""
    from om_core.db import Database
    from om_core.models import Customer

    db = Database(f"sqlite:///{path / 'storeom.db'}")
    try:
        with db.read() as s:
            return set(s.scalars(select(Customer.id).where(Customer.marketing_consent.is_(True))))
    finally:
        db.dispose()


def test_recommendations_customer_related_and_feed(app, frames, home):
    at = app("recommendations")
    recs = frames["recommendations"]
    assert at.number_input(key="rc_customer").value == recs["customer_id"].min()
    first = recs[recs["customer_id"] == recs["customer_id"].min()].sort_values("rank")
    assert table_with(at, "reason")["sku"].tolist() == first["sku"].tolist()
    at.number_input(key="rc_customer").set_value(2).run()
    assert table_with(at, "reason")["sku"].tolist() == recs[recs["customer_id"] == 2].sort_values("rank")["sku"].tolist()
    history = frames["stg_order_lines"]
    assert len(table_with(at, "order_id")) == min(50, (history["customer_id"] == 2).sum())

    related = frames["related_products"]
    assert table_with(at, "related_sku")["related_sku"].tolist() == related.sort_values("rank")["related_sku"].tolist()
    consenting = _opted_in(home.path)
    feed = recs[recs["customer_id"].isin(consenting)]
    assert 0 < len(feed) < len(recs)
    assert f"{feed['customer_id'].nunique():,} customers, {len(feed):,} rows" in texts(at)
    assert any(b.proto.label.startswith("Download the consent-filtered feed") for b in at.get("download_button"))


def test_segments_and_offer_targets(app, frames, home):
    at = app("segments")
    seg = frames["customer_segments"]
    assert metric(at, "Customers with an order") == L.num(len(seg))
    assert metric(at, "Champions") == L.num((seg["segment"] == "champions").sum())
    offers = frames["offer_targets"]
    consenting = _opted_in(home.path)
    for promotion in sorted(offers["promotion_id"].unique()):
        at.selectbox(key="of_promotion").set_value(promotion).run()
        targets = offers[offers["promotion_id"] == promotion]
        assert metric(at, "Targeted customers") == L.num(len(targets))
        assert metric(at, "Reachable (opted in)") == L.num(targets["customer_id"].isin(consenting).sum())


# --- Operations ----------------------------------------------------------------------------------------


def test_order_lookup_by_number_and_customer(app, home):
    from om_core.db import Database
    from om_core.models import Order, OrderEvent

    db = Database(f"sqlite:///{home.path / 'storeom.db'}")
    try:
        with db.read() as s:
            order = s.scalar(select(Order).where(Order.number == home.order))
            kinds = [k.replace("_", " ") for k in s.scalars(select(OrderEvent.kind).where(OrderEvent.order_id == order.id))]
            s.expunge(order)
    finally:
        db.dispose()
    at = app("order_lookup")
    at.text_input(key="ol_query").set_value(home.order).run()
    assert metric(at, "Status") == order.status.replace("_", " ")
    assert metric(at, "Total") == L.money(order.total)
    timeline = table_with(at, "what")
    assert sorted(timeline.loc[timeline["source"] == "order", "what"]) == sorted(kinds)
    assert {"shipment", "tracking"} <= set(timeline["source"])  # shipped, then the carrier's delivered scan
    assert "delivered" in timeline.loc[timeline["source"] == "tracking", "what"].tolist()

    at.text_input(key="ol_query").set_value(str(order.id)).run()  # the order's id finds it too
    assert metric(at, "Total") == L.money(order.total)

    at.radio(key="ol_by").set_value("Customer").run()
    at.text_input(key="ol_query").set_value(str(order.customer_id)).run()
    assert home.order in table_with(at, "placed_at")["order"].tolist()
    at.text_input(key="ol_query").set_value("ada@example.com").run()
    assert home.order in table_with(at, "placed_at")["order"].tolist()
    at.text_input(key="ol_query").set_value("nobody@example.com").run()
    assert "No customer matches 'nobody@example.com'" in texts(at)
    at.radio(key="ol_by").set_value("Order").run()
    at.text_input(key="ol_query").set_value("SO-NOPE").run()
    assert "No order matches 'SO-NOPE'" in texts(at)


# --- empty states --------------------------------------------------------------------------------------


def test_every_page_has_an_empty_state(tmp_path, monkeypatch):
    """No warehouse and no database: a clear message naming what to run, never a traceback."""
    at = open_page(monkeypatch, tmp_path)(PAGES[0])
    for page in PAGES:
        at.switch_page(f"app_pages/{page}.py").run()
        said = texts(at)
        assert not at.exception and not at.error, page
        assert ("storeom pipeline run" in said) if page != "order_lookup" else ("storeom demo" in said), page


def test_one_missing_asset_leaves_the_rest_of_the_page(tmp_path, monkeypatch, frames):
    from tests.dashboards import warehouse

    warehouse.write(tmp_path, frames, skip=("kpi_returns", "reorder_policy_backtest"))
    at = open_page(monkeypatch, tmp_path)("returns")
    assert "No return figures yet — run `storeom pipeline run` (builds `kpi_returns`)." in texts(at)
    assert metric(at, "CSAT")
    at.switch_page("app_pages/reorder.py").run()
    assert not at.exception
    assert "No policy backtest yet" in texts(at) and metric(at, "Suggestions") == L.num(len(frames["reorder_suggestions"]))


def test_a_rewritten_asset_shows_at_the_next_run(tmp_path, monkeypatch, frames):
    from tests.dashboards import warehouse

    warehouse.write(tmp_path, frames)
    at = open_page(monkeypatch, tmp_path)("reorder")
    assert metric(at, "Suggestions") == L.num(len(frames["reorder_suggestions"]))
    warehouse.write(tmp_path, {"reorder_suggestions": frames["reorder_suggestions"].head(1)})
    at.run()
    assert metric(at, "Suggestions") == "1"


# --- the Approve action --------------------------------------------------------------------------------


def _purchase_orders(path):  # type: ignore[no-untyped-def]
    from om_core.db import Database
    from om_core.models import Location, PurchaseOrder, PurchaseOrderLine, Supplier

    db = Database(f"sqlite:///{path / 'storeom.db'}")
    try:
        with db.read() as s:
            return s.execute(select(PurchaseOrder.number, PurchaseOrder.status, Supplier.code, Location.code, PurchaseOrderLine.quantity_ordered,
                                    func.count().over(partition_by=PurchaseOrder.id))
                             .join(Supplier, Supplier.id == PurchaseOrder.supplier_id).join(Location, Location.id == PurchaseOrder.location_id)
                             .join(PurchaseOrderLine, PurchaseOrderLine.purchase_order_id == PurchaseOrder.id)
                             .order_by(PurchaseOrder.id)).all()
    finally:
        db.dispose()


@pytest.fixture
def approve_home(tmp_path, frames, sqlite_template):
    from tests.dashboards import warehouse

    warehouse.write(tmp_path, frames)
    warehouse.store_database(tmp_path, sqlite_template)
    return tmp_path


def test_approve_creates_draft_purchase_orders(approve_home, monkeypatch, frames):
    at = open_page(monkeypatch, approve_home)("reorder")
    sug = frames["reorder_suggestions"]
    button = at.button(key="ro_approve")
    assert button.disabled  # nothing selected yet
    at.checkbox(key="ro_all").check().run()
    at.button(key="ro_approve").click().run()
    assert not at.exception and not at.error
    pos = _purchase_orders(approve_home)
    groups = sug.groupby(["supplier", "location"])
    assert len({p[0] for p in pos}) == groups.ngroups
    assert {p[1] for p in pos} == {"draft"}
    assert sorted((p[2], p[3], p[4]) for p in pos) == sorted(zip(sug["supplier"], sug["location"], sug["suggested_qty"], strict=True))
    success = at.success[0].value
    assert all(p[0] in success for p in pos) and f"{int(sug['suggested_qty'].sum())} units" in success
    assert metric(at, "Suggestions") == "0"  # approved rows are hidden until the next pipeline run


def test_approve_one_priority_then_again_is_refused(approve_home, monkeypatch, frames):
    sug = frames["reorder_suggestions"]
    urgent = sug[sug["priority"] == "urgent"]
    at = open_page(monkeypatch, approve_home)("reorder", ro_priorities=["urgent"])
    at.checkbox(key="ro_all").check().run()
    at.button(key="ro_approve").click().run()
    pos = _purchase_orders(approve_home)
    assert [(p[3], p[4]) for p in pos] == list(zip(urgent["location"], urgent["suggested_qty"], strict=True))

    # A new session still sees the suggestion (the warehouse is not rebuilt yet): approving it again orders nothing.
    again = open_page(monkeypatch, approve_home)("reorder", ro_priorities=["urgent"])
    again.checkbox(key="ro_all").check().run()
    again.button(key="ro_approve").click().run()
    assert "Nothing was ordered" in again.error[0].value
    assert _purchase_orders(approve_home) == pos


def test_approve_the_selected_rows_only(approve_home, monkeypatch, frames):
    at = open_page(monkeypatch, approve_home)("reorder")
    table = next(d for d in at.dataframe if "reason" in d.value.columns)
    shown = table.value
    at.session_state[table.key] = {"selection": {"rows": [1, 2], "columns": [], "cells": []}}  # what a click on two rows sets
    at.run()
    at.button(key="ro_approve").click().run()
    picked = shown.iloc[[1, 2]]
    pos = _purchase_orders(approve_home)
    assert sorted((p[3], p[4]) for p in pos) == sorted(zip(picked["location"], picked["suggested_qty"], strict=True))
    assert metric(at, "Suggestions") == L.num(len(shown) - 2)


def test_a_choice_gone_from_a_rebuilt_warehouse_is_dropped(tmp_path, monkeypatch, frames):
    from tests.dashboards import warehouse

    warehouse.write(tmp_path, frames)
    at = open_page(monkeypatch, tmp_path)("overview")
    at.multiselect(key="f_locations").set_value(["ST-NYC", "WH-WEST"]).run()
    inv = frames["kpi_inventory"]
    warehouse.write(tmp_path, {"kpi_inventory": inv[~((inv["grain"] == "location") & (inv["key"] == "ST-NYC"))]})
    at.run()
    assert not at.exception
    assert at.multiselect(key="f_locations").value == ["WH-WEST"]
