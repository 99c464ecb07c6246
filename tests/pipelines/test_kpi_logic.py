"""Known answers on tiny hand-built frames, and the checks failing on deliberately broken data."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from pipelines import checks as C
from pipelines.defs.demand.logic import daily_demand
from pipelines.defs.kpis import logic as K
from pipelines.defs.staging.logic import inventory_snapshots
from pipelines.resources import read_parquet, write_parquet

T = pd.Timestamp


def lines(rows):
    cols = ["line_id", "order_id", "sku", "category", "location", "channel", "placed_at", "quantity", "quantity_cancelled",
            "quantity_fulfilled", "quantity_returned", "unit_cost", "discount_total", "tax_amount", "line_total"]
    df = pd.DataFrame(rows, columns=cols)
    df["placed_at"] = pd.to_datetime(df["placed_at"])
    df["order_date"] = df["placed_at"].dt.normalize()
    df["units"] = df["quantity"] - df["quantity_cancelled"]
    df["revenue"] = df["line_total"].where(df["units"] > 0, 0.0)
    df["net_revenue"] = (df["line_total"] - df["tax_amount"]).where(df["units"] > 0, 0.0)
    df["cogs"] = df["units"] * df["unit_cost"]
    df["customer_id"] = 1
    df["sku_known"] = True
    return df


LINES = lines([
    # id, order, sku, cat, loc, channel, placed, qty, cancelled, fulfilled, returned, cost, discount, tax, total
    (1, 1, "A", "cat1", "L1", "web", "2024-01-01 10:00", 2, 0, 2, 0, 4.0, 0.0, 0.0, 20.00),
    (2, 1, "B", "cat2", "L1", "web", "2024-01-01 10:00", 1, 0, 1, 1, 10.0, 5.0, 0.0, 25.00),
    (3, 2, "A", "cat1", "L1", "pos", "2024-01-02 12:00", 3, 0, 3, 0, 4.0, 0.0, 0.0, 30.00),
    (4, 3, "A", "cat1", "L1", "web", "2024-01-02 13:00", 1, 1, 0, 0, 4.0, 0.0, 0.0, 10.00),  # cancelled
])


def test_sales_known_answers():
    s = K.kpi_sales(LINES)
    day1 = s[(s.grain == "day") & (s.key == "2024-01-01") & (s.channel == "ALL")].iloc[0]
    assert (day1.revenue, day1.orders, day1.units, day1.aov) == (45.0, 1, 3, 45.0)
    assert day1.cogs == 18.0 and day1.gross_margin == 27.0 and day1.gross_margin_rate == pytest.approx(0.6)
    assert day1.discounts == 5.0 and day1.discount_share == pytest.approx(5 / 50)
    day2 = s[(s.grain == "day") & (s.key == "2024-01-02") & (s.channel == "ALL")].iloc[0]
    assert (day2.revenue, day2.orders, day2.units) == (30.0, 1, 3)  # the cancelled line counts for nothing
    month = s[(s.grain == "month") & (s.channel == "ALL")].iloc[0]
    assert (month.key, month.revenue, month.orders, month.units_per_order) == ("2024-01-01", 75.0, 2, 3.0)
    web = s[(s.grain == "month") & (s.channel == "web")].iloc[0]
    assert web.channel_share == pytest.approx(45 / 75)
    assert K.revenue_reconciliation(s, LINES) == {"mart_cents": 7500, "lines_cents": 7500, "difference_cents": 0, "passed": True}


def test_promo_uplift():
    l = lines([
        (1, 1, "A", "c", "L", "web", "2024-01-01", 2, 0, 2, 0, 1.0, 0.0, 0.0, 10.0),
        (2, 2, "A", "c", "L", "web", "2024-01-02", 2, 0, 2, 0, 1.0, 0.0, 0.0, 10.0),
        (3, 3, "A", "c", "L", "web", "2024-01-03", 3, 0, 3, 0, 1.0, 1.0, 0.0, 14.0),
    ])
    s = K.kpi_sales(l)
    row = s[(s.grain == "day") & (s.key == "2024-01-03") & (s.channel == "ALL")].iloc[0]
    assert row.promo_uplift == pytest.approx(3 / 2 - 1)


def test_reconciliation_fails_on_a_broken_mart():
    s = K.kpi_sales(LINES)
    s.loc[(s.grain == "day") & (s.channel == "ALL"), "revenue"] += 0.01 / 2 + 0.005  # one cent off in total
    r = K.revenue_reconciliation(s, LINES)
    assert not r["passed"] and r["difference_cents"] != 0


def movements(rows):
    df = pd.DataFrame(rows, columns=["stock_id", "sku", "category", "location", "unit_cost", "unit_price", "kind", "quantity",
                                     "reserved_change", "at"])
    df["at"] = df["at"].astype(str)
    return df


MOVES = movements([
    (1, "A", "cat1", "L1", 4.0, 10.0, "receipt", 10, 0, "2024-01-01 08:00:00"),
    (1, "A", "cat1", "L1", 4.0, 10.0, "sale", -2, 0, "2024-01-01 18:00:00"),
    (1, "A", "cat1", "L1", 4.0, 10.0, "sale", -8, 0, "2024-01-02 18:00:00"),
    (1, "A", "cat1", "L1", 4.0, 10.0, "receipt", 5, 0, "2024-01-04 08:00:00"),
])


def test_snapshots_from_the_ledger():
    snap = inventory_snapshots(MOVES, date(2024, 1, 5))
    assert snap.day.dt.strftime("%m-%d").tolist() == ["01-01", "01-02", "01-03", "01-04", "01-05"]
    assert snap.on_hand.tolist() == [8, 0, 0, 5, 5]
    assert snap.stockout.tolist() == [False, True, True, False, False]
    assert snap.units_in.tolist() == [10, 0, 0, 5, 0] and snap.units_shipped.tolist() == [2, 8, 0, 0, 0]
    assert snap.inventory_value.tolist() == [32.0, 0.0, 0.0, 20.0, 20.0]
    # nothing after the as-of day
    assert inventory_snapshots(MOVES, date(2024, 1, 2)).on_hand.tolist() == [8, 0]


def test_inventory_known_answers():
    snap = inventory_snapshots(MOVES, date(2024, 1, 5))
    l = lines([
        (1, 1, "A", "cat1", "L1", "web", "2024-01-01 18:00", 2, 0, 2, 0, 4.0, 0.0, 0.0, 20.0),
        (2, 2, "A", "cat1", "L1", "web", "2024-01-02 18:00", 8, 0, 8, 0, 4.0, 0.0, 0.0, 80.0),
    ])
    inv = K.kpi_inventory(snap, l, date(2024, 1, 5))
    sku = inv[(inv.grain == "sku") & (inv.key == "A")].iloc[0]
    # cogs 10 x 4 = 40; daily values 32, 0, 0, 20, 20 -> average 14.4
    assert sku.cogs == 40.0 and sku.avg_inventory_value == 14.4
    assert sku.turnover == pytest.approx(40 / 14.4)
    assert sku.closing_on_hand == 5 and sku.days_of_supply == pytest.approx(5 / (10 / 5))
    assert sku.sell_through == pytest.approx(10 / 15)
    assert (sku.stockout_days, sku.tracked_days) == (2, 5) and sku.stockout_rate == pytest.approx(0.4)
    # in-stock days 01-01, 01-04, 01-05 sold 2 units in total -> 2/3 a day lost on each of the 2 stockout days
    assert sku.lost_sales_units == pytest.approx(round(4 / 3, 2)) and sku.lost_sales_value == pytest.approx(round(4 / 3 * 10, 2))
    assert sku.gmroi == pytest.approx((100 - 40) / 14.4)
    assert sku.overstock_value == 0 and sku.aged_inventory_value == 0
    weeks = inv[inv.grain == "week"]
    assert weeks.key.tolist() == ["2024-01-01"]  # 2024-01-01 is a Monday
    demand = daily_demand(l, snap)
    assert demand.closing_on_hand.tolist() == [8, 0] and demand.stockout.tolist() == [False, True]
    assert demand.units.tolist() == [2, 8] and demand.revenue.tolist() == [20.0, 80.0]


def test_returns_known_answers():
    r = pd.DataFrame({"return_id": [1, 1, 2], "sku": ["A", "B", "A"], "category": ["cat1", "cat2", "cat1"], "quantity": [1, 1, 2],
                      "reason_code": ["damaged", "size_fit", "damaged"], "status": ["refunded", "refunded", "cancelled"],
                      "disposition": ["write_off", "restock", "pending"], "refund_amount": [10.0, 25.0, 20.0], "unit_cost": [4.0, 10.0, 4.0]})
    out = K.kpi_returns(r, LINES)
    a = out[(out.grain == "sku") & (out.key == "A")].iloc[0]
    assert (a.returned_units, a.units_fulfilled, a.refund_amount, a.write_off_units, a.write_off_value) == (1, 5, 10.0, 1, 4.0)
    assert a.return_rate == pytest.approx(1 / 5)
    reason = out[(out.grain == "reason") & (out.key == "size_fit")].iloc[0]
    assert reason.restock_units == 1 and reason.restock_rate == 1.0 and reason.units_fulfilled == 6


def test_feedback_csat_and_nps():
    f = pd.DataFrame({"feedback_id": range(5), "channel": ["web"] * 5, "rating": [5, 4, 3, 2, 5],
                      "would_recommend": pd.array([10, 9, 7, 3, None], dtype="Int64"),
                      "created_at": pd.to_datetime(["2024-01-01"] * 5)})
    out = K.kpi_feedback(f)
    row = out[out.grain == "all"].iloc[0]
    assert row.csat == pytest.approx(3 / 5) and row.avg_rating == pytest.approx(19 / 5)
    assert row.nps == pytest.approx(100 * (2 - 1) / 4)


def test_rfm_segments_and_cohorts():
    customers = pd.DataFrame({"customer_id": [1, 2, 3, 4, 5], "orders": [10, 1, 5, 0, 2],
                              "revenue": [500.0, 20.0, 200.0, 0.0, 50.0],
                              "last_order_at": pd.to_datetime(["2024-03-30", "2024-03-29", "2024-01-01", None, "2024-02-01"])})
    seg = K.customer_segments(customers, date(2024, 3, 31))
    assert seg.customer_id.tolist() == [1, 2, 3, 5]
    assert seg.recency_days.tolist() == [1, 2, 90, 59]
    assert seg.rfm.tolist() == ["555", "422", "244", "333"]
    assert seg.set_index("customer_id").segment.to_dict() == {1: "champions", 2: "potential_loyalist", 3: "at_risk", 5: "potential_loyalist"}
    orders = pd.DataFrame({"order_id": [1, 2, 3, 4], "customer_id": pd.array([1, 1, 2, 1], dtype="Int64"),
                           "status": ["delivered"] * 4, "total": [10.0, 20.0, 30.0, 40.0],
                           "placed_at": pd.to_datetime(["2024-01-05", "2024-01-20", "2024-01-07", "2024-02-03"])})
    co = K.customer_cohorts(orders)
    m0 = co[co.months_since == 0].iloc[0]
    assert (m0.cohort_size, m0.active_customers, m0.revenue, m0.retention, m0.repeat_rate) == (2, 2, 60.0, 1.0, 0.5)
    m1 = co[co.months_since == 1].iloc[0]
    assert (m1.active_customers, m1.retention, m1.ltv_to_date) == (1, 0.5, 50.0)
    # est 12m = 30 (month-0 revenue per customer) + 11 x 0.5 x 40
    assert m0.est_ltv_12m == pytest.approx(30 + 11 * 0.5 * 40)


def test_fulfilment_known_answers():
    orders = pd.DataFrame({"order_id": [1, 2], "channel": ["web", "web"], "placed_at": pd.to_datetime(["2024-01-01 00:00", "2024-01-01 00:00"]),
                           "pickup_location": [None, None], "status": ["delivered", "delivered"]})
    l = lines([
        (1, 1, "A", "c", "L1", "web", "2024-01-01", 2, 0, 2, 0, 1.0, 0.0, 0.0, 10.0),
        (2, 1, "B", "c", "L1", "web", "2024-01-01", 1, 0, 1, 0, 1.0, 0.0, 0.0, 10.0),
        (3, 2, "A", "c", "L1", "web", "2024-01-01", 4, 0, 3, 0, 1.0, 0.0, 0.0, 10.0),
    ])
    sh = pd.DataFrame({"shipment_id": [1, 2, 3], "order_id": [1, 1, 2], "location": ["L1", "L2", "L1"], "kind": ["ship"] * 3,
                       "carrier": ["ups", "ups", "dhl"], "status": ["delivered"] * 3, "shipping_cost": [5.0, 4.0, 6.0],
                       "created_at": pd.to_datetime(["2024-01-01 01:00", "2024-01-01 02:00", "2024-01-01 01:00"]),
                       "dispatched_at": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 12:00", "2024-01-01 20:00"]),
                       "ready_at": pd.NaT, "delivered_at": pd.to_datetime(["2024-01-03 00:00", "2024-01-04 00:00", "2024-01-05 00:00"]),
                       "promised_at": pd.to_datetime(["2024-01-03 12:00", "2024-01-03 12:00", "2024-01-06 00:00"]),
                       "on_time": [1.0, 0.0, 1.0], "delayed": [False, True, False]})
    out = K.kpi_fulfilment(orders, l, sh)
    web = out[(out.grain == "channel") & (out.key == "web")].iloc[0]
    assert web.orders == 2 and web.split_shipment_rate == 0.5 and web.shipping_cost_per_order == 7.5
    assert web.fill_rate_lines == pytest.approx(2 / 3) and web.fill_rate_units == pytest.approx(6 / 7)
    assert web.on_time_rate == pytest.approx(2 / 3) and web.carrier_delay_rate == pytest.approx(1 / 3)
    assert web.perfect_order_rate == 0.0  # order 1 late and delayed, order 2 short one unit
    assert web.click_to_ship_hours == pytest.approx((10 + 20) / 2)
    assert web.order_cycle_hours == pytest.approx(72)  # only order 1 is complete: 3 days to its last delivery
    ups = out[(out.grain == "carrier") & (out.key == "ups")].iloc[0]
    assert ups.shipments == 2 and ups.delayed_shipments == 1


def test_checks_fail_on_broken_data():
    assert C.no_negative_stock(pd.DataFrame({"on_hand": [1, -2, 0]}), "on_hand")[0] is False
    passed, md = C.no_negative_stock(pd.DataFrame({"on_hand": [1, 0]}), "on_hand")
    assert passed and md["actual_negative_rows"] == 0
    orphan = LINES.copy()
    orphan.loc[0, "placed_at"] = pd.NaT
    orphan.loc[0, "order_id"] = 99
    orphan.loc[1, "sku_known"] = False
    passed, md = C.lines_join(orphan, pd.DataFrame({"order_id": [1, 2, 3]}))
    assert not passed and (md["actual_lines_without_order"], md["actual_lines_without_sku"]) == (1, 1)
    passed, md = C.no_rows_after(pd.DataFrame({"day": pd.to_datetime(["2024-01-01", "2024-01-03"])}), ["day"], date(2024, 1, 2))
    assert not passed and md["actual_rows_after_as_of"] == 1
    assert C.no_rows_after(pd.DataFrame({"day": pd.to_datetime(["2024-01-02 23:59"])}), ["day"], date(2024, 1, 2))[0]
    assert C.volume(pd.DataFrame({"a": []}))[0] is False


def test_parquet_is_replaced_atomically(tmp_path):
    url = str(tmp_path / "wh" / "x.parquet")
    write_parquet(pd.DataFrame({"a": [1]}), url)
    write_parquet(pd.DataFrame({"a": [1, 2]}), url)
    assert read_parquet(url).a.tolist() == [1, 2]
    assert [p.name for p in (tmp_path / "wh").iterdir()] == ["x.parquet"]
    write_parquet(pd.DataFrame({"a": [3]}), "memory://wh/x.parquet")  # any fsspec URL works the same
    assert read_parquet("memory://wh/x.parquet").a.tolist() == [3]
