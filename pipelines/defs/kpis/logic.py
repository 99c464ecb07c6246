"""KPI formulas, once (see docs/kpis.md). Plain functions on the staging DataFrames; money in the
store currency, rates as fractions 0..1, durations in hours, stock in units.

Marts are long tables: `grain` says what a row is per (sku, category, location, week, ...) and `key`
names it; `period_start` is the first day of a time grain's period (null for other grains).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from pipelines.common import duck_connection

OVERSTOCK_DAYS = 90
"""Stock beyond 90 days of supply (at the average daily sales rate) is overstock."""
AGED_DAYS = 60
"""A SKU x location with stock but no sale in the last 60 days is aged inventory."""
UNKNOWN = "(unknown)"


def _div(a: pd.Series, b: pd.Series) -> pd.Series:
    a = pd.to_numeric(a, errors="coerce").astype("float64")
    b = pd.to_numeric(b, errors="coerce").astype("float64")
    return (a / b.where(b != 0)).astype("float64")


def _dates(df: pd.DataFrame, *cols: str) -> pd.DataFrame:
    for c in cols:
        df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
    return df


# --- inventory ----------------------------------------------------------------------------------------

INVENTORY_GRAINS = {"sku": "sku", "category": "category", "location": "location",
                    "week": "strftime(week, '%Y-%m-%d')"}


def kpi_inventory(snapshots: pd.DataFrame, lines: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Per SKU, category, location and week (Monday start), over the days stock is tracked:

    * cogs = Σ units sold x unit cost; avg_inventory_value = Σ daily closing value / days
    * turnover = cogs / avg_inventory_value (times in the period)
    * days_of_supply = closing_on_hand / (units_sold / days)
    * sell_through = units_sold / (units_sold + closing_on_hand)
    * stockout_rate = SKU x location days closing at <= 0 / SKU x location days tracked
    * lost_sales_units = Σ over stockout days of the SKU x location's average daily units on in-stock days;
      lost_sales_value = lost units x unit price
    * overstock_value = Σ (closing on hand - 90 x average daily units)+ x unit cost
    * aged_inventory_value = closing value of SKU x locations with no sale in the last 60 days
    * gmroi = (net revenue - cogs) / avg_inventory_value
    """
    sales = lines[lines["placed_at"].notna()][["sku", "category", "location", "order_date", "units", "net_revenue", "cogs"]].copy()
    sales["location"] = sales["location"].fillna(UNKNOWN)
    snaps = snapshots[["day", "sku", "category", "location", "on_hand", "inventory_value", "unit_cost", "unit_price"]]
    fact_sql = f"""
        WITH s AS (
            SELECT sku, any_value(category) AS category, location, CAST(order_date AS DATE) AS day,
                   SUM(units) AS units, SUM(net_revenue) AS net_revenue, SUM(cogs) AS cogs
            FROM sales GROUP BY sku, location, CAST(order_date AS DATE)
        ), j AS (
            SELECT COALESCE(n.sku, s.sku) AS sku, COALESCE(n.category, s.category) AS category,
                   COALESCE(n.location, s.location) AS location, COALESCE(CAST(n.day AS DATE), s.day) AS day,
                   n.on_hand, n.inventory_value, n.unit_cost, n.unit_price,
                   COALESCE(s.units, 0) AS units, COALESCE(s.net_revenue, 0) AS net_revenue, COALESCE(s.cogs, 0) AS cogs
            FROM snaps n FULL OUTER JOIN s ON s.sku = n.sku AND s.location = n.location AND s.day = CAST(n.day AS DATE)
        ), r AS (
            SELECT *, on_hand IS NOT NULL AS tracked, on_hand IS NOT NULL AND on_hand <= 0 AS stockout,
                   date_trunc('week', day) AS week,
                   SUM(CASE WHEN on_hand > 0 THEN units ELSE 0 END) OVER sl
                     / NULLIF(SUM(CASE WHEN on_hand > 0 THEN 1 ELSE 0 END) OVER sl, 0) AS instock_rate,
                   SUM(units) OVER sl / NULLIF(SUM(CASE WHEN on_hand IS NOT NULL THEN 1 ELSE 0 END) OVER sl, 0) AS daily_rate,
                   MAX(CASE WHEN units > 0 THEN day END) OVER (PARTITION BY sku, location ORDER BY day ROWS UNBOUNDED PRECEDING) AS last_sale
            FROM j WINDOW sl AS (PARTITION BY sku, location)
        )
        SELECT *, CASE WHEN stockout THEN COALESCE(instock_rate, 0) ELSE 0 END AS lost_units,
               CASE WHEN stockout THEN COALESCE(instock_rate, 0) * COALESCE(unit_price, 0) ELSE 0 END AS lost_value,
               GREATEST(COALESCE(on_hand, 0) - {OVERSTOCK_DAYS} * COALESCE(daily_rate, 0), 0) * COALESCE(unit_cost, 0) AS overstock_value,
               CASE WHEN on_hand > 0 AND (last_sale IS NULL OR last_sale < day - INTERVAL {AGED_DAYS} DAY)
                    THEN inventory_value ELSE 0 END AS aged_value
        FROM r
    """
    with duck_connection(sales=sales, snaps=snaps) as con:
        con.execute(f"CREATE TEMP TABLE fact AS {fact_sql}")
        parts = [con.execute(_inventory_grain_sql(grain, key)).df() for grain, key in INVENTORY_GRAINS.items()]
    df = pd.concat(parts, ignore_index=True)
    df["key"] = df["key"].astype(str)
    df["turnover"] = _div(df["cogs"], df["avg_inventory_value"])
    daily_units = _div(df["units_sold"], df["days_tracked"])
    df["days_of_supply"] = _div(df["closing_on_hand"], daily_units)
    df["sell_through"] = _div(df["units_sold"], df["units_sold"] + df["closing_on_hand"].clip(lower=0))
    df["stockout_rate"] = _div(df["stockout_days"], df["tracked_days"])
    df["gmroi"] = _div(df["net_revenue"] - df["cogs"], df["avg_inventory_value"])
    for c in ["net_revenue", "cogs", "avg_inventory_value", "closing_inventory_value", "lost_sales_value", "overstock_value",
              "aged_inventory_value"]:
        df[c] = df[c].astype("float64").round(2)
    for c in ["units_sold", "closing_on_hand", "stockout_days", "tracked_days", "days_tracked"]:
        df[c] = df[c].fillna(0).astype("int64")
    df["lost_sales_units"] = df["lost_sales_units"].astype("float64").round(2)
    return _dates(df, "period_start").sort_values(["grain", "key"]).reset_index(drop=True)


def _inventory_grain_sql(grain: str, key: str) -> str:
    """The inventory mart's rows of one grain from the daily SKU x location table `fact`."""
    return f"""
            WITH g AS (SELECT *, {key} AS key FROM fact),
            last AS (SELECT key, MAX(day) AS last_day FROM g WHERE tracked GROUP BY key)
            SELECT '{grain}' AS grain, g.key, {"MIN(CAST(g.week AS DATE))" if grain == "week" else "NULL::DATE"} AS period_start,
                   COUNT(DISTINCT CASE WHEN tracked THEN g.day END) AS days_tracked,
                   SUM(units) AS units_sold, SUM(net_revenue) AS net_revenue, SUM(cogs) AS cogs,
                   SUM(COALESCE(inventory_value, 0)) / NULLIF(COUNT(DISTINCT CASE WHEN tracked THEN g.day END), 0) AS avg_inventory_value,
                   SUM(CASE WHEN g.day = last.last_day THEN on_hand ELSE 0 END) AS closing_on_hand,
                   SUM(CASE WHEN g.day = last.last_day THEN inventory_value ELSE 0 END) AS closing_inventory_value,
                   SUM(CASE WHEN stockout THEN 1 ELSE 0 END) AS stockout_days, SUM(CASE WHEN tracked THEN 1 ELSE 0 END) AS tracked_days,
                   SUM(lost_units) AS lost_sales_units, SUM(lost_value) AS lost_sales_value,
                   SUM(CASE WHEN g.day = last.last_day THEN overstock_value ELSE 0 END) AS overstock_value,
                   SUM(CASE WHEN g.day = last.last_day THEN aged_value ELSE 0 END) AS aged_inventory_value
            FROM g LEFT JOIN last USING (key) GROUP BY g.key
        """


# --- fulfilment ---------------------------------------------------------------------------------------

def _hours(a: pd.Series, b: pd.Series) -> pd.Series:
    return (b - a).dt.total_seconds() / 3600.0


def kpi_fulfilment(orders: pd.DataFrame, lines: pd.DataFrame, shipments: pd.DataFrame) -> pd.DataFrame:
    """Per location, channel, carrier and week (of the order):

    * order_cycle_hours = mean (last delivery/collection - placed) of orders fully delivered
    * click_to_ship_hours = mean (first dispatch - placed) of shipped orders
    * on_time_rate = shipments delivered by their promise / delivered shipments with a promise
    * fill_rate_lines = lines fulfilled in full / lines; fill_rate_units = units fulfilled / units ordered,
      over processed orders (something fulfilled) not cancelled
    * perfect_order_rate = processed orders fulfilled in full, every shipment on time, no delay, no return / processed orders
    * split_shipment_rate = orders with 2+ shipments / orders with a shipment
    * shipping_cost_per_order = Σ carrier cost / orders with a shipment
    * pickup_ready_hours = mean (ready for pickup - placed) of pickup shipments
    * carrier_delay_rate = delayed shipments (exception scan, late, or in transit past the promise) / dispatched shipments
    Orders count toward the location and carrier of their first shipment (else the pickup store).
    """
    o = orders[["order_id", "channel", "placed_at", "pickup_location", "status"]].copy()
    s = shipments[shipments["status"] != "cancelled"].merge(o[["order_id", "channel", "placed_at"]], on="order_id", how="inner")
    s["click_to_ship_hours"] = _hours(s["placed_at"], s["dispatched_at"])
    s["pickup_ready_hours"] = np.where(s["kind"].eq("pickup"), _hours(s["placed_at"], s["ready_at"]), np.nan)
    s["dispatched"] = s["dispatched_at"].notna() | s["ready_at"].notna()
    s["carrier"] = s["carrier"].fillna("(none)")
    s["undelivered"] = s["delivered_at"].isna().astype("int64")
    s["late"] = (s["on_time"] == 0).astype("int64")
    s = s.sort_values(["order_id", "created_at"])
    first = s.groupby("order_id").agg(ship_location=("location", "first"), carrier=("carrier", "first"),
                                      shipments=("shipment_id", "nunique"), first_dispatch=("dispatched_at", "min"),
                                      last_delivery=("delivered_at", "max"), undelivered=("undelivered", "sum"),
                                      late=("late", "sum"), delayed=("delayed", "sum"),
                                      shipping_cost=("shipping_cost", "sum"))
    l = lines[lines["placed_at"].notna()]
    lg = l.assign(full=(l["quantity_fulfilled"] >= l["units"]) & (l["units"] > 0), active=l["units"] > 0).groupby("order_id").agg(
        lines=("active", "sum"), lines_filled=("full", "sum"), units_ordered=("quantity", "sum"), units_active=("units", "sum"),
        units_fulfilled=("quantity_fulfilled", "sum"), returned=("quantity_returned", "sum"))
    of = o.merge(first, how="left", left_on="order_id", right_index=True).merge(lg, how="left", left_on="order_id", right_index=True)
    of["location"] = of["ship_location"].fillna(of["pickup_location"]).fillna(UNKNOWN)
    of["carrier"] = of["carrier"].fillna("(none)")
    of["shipments"] = of["shipments"].fillna(0)
    of["processed"] = (of["units_fulfilled"].fillna(0) > 0) & (of["units_active"].fillna(0) > 0)
    delivered_all = of["processed"] & (of["units_fulfilled"] >= of["units_active"]) & (of["undelivered"].fillna(0) == 0)
    done_at = of["last_delivery"].where(of["shipments"] > 0)
    of["cycle_hours"] = np.where(delivered_all & done_at.notna(), _hours(of["placed_at"], done_at), np.nan)
    of["click_to_ship_hours"] = _hours(of["placed_at"], of["first_dispatch"])
    of["perfect"] = (of["processed"] & (of["lines_filled"] >= of["lines"]) & (of["late"].fillna(0) == 0)
                     & (of["delayed"].fillna(0) == 0) & (of["returned"].fillna(0) == 0) & (of["units_ordered"] == of["units_active"]))
    of["week"] = of["placed_at"].dt.to_period("W-SUN").dt.start_time
    s["week"] = s["placed_at"].dt.to_period("W-SUN").dt.start_time
    parts = []
    for grain in ["location", "channel", "carrier", "week"]:
        okey = of[grain] if grain != "week" else of["week"].dt.strftime("%Y-%m-%d")
        skey = s[grain] if grain != "week" else s["week"].dt.strftime("%Y-%m-%d")
        p = of[of["processed"]]
        pk = okey[of["processed"]]
        g = pd.DataFrame({
            "orders": of.groupby(okey)["order_id"].count(),
            "processed_orders": p.groupby(pk)["order_id"].count(),
            "order_cycle_hours": of.groupby(okey)["cycle_hours"].mean(),
            "click_to_ship_hours": of.groupby(okey)["click_to_ship_hours"].mean(),
            "lines": p.groupby(pk)["lines"].sum(), "lines_filled": p.groupby(pk)["lines_filled"].sum(),
            "units_ordered": p.groupby(pk)["units_active"].sum(), "units_fulfilled": p.groupby(pk)["units_fulfilled"].sum(),
            "perfect_orders": p.groupby(pk)["perfect"].sum(),
            "shipped_orders": of[of["shipments"] > 0].groupby(okey[of["shipments"] > 0])["order_id"].count(),
            "split_orders": of[of["shipments"] > 1].groupby(okey[of["shipments"] > 1])["order_id"].count(),
        })
        sg = pd.DataFrame({
            "shipments": s.groupby(skey)["shipment_id"].count(),
            "delivered_with_promise": s.groupby(skey)["on_time"].count(),
            "delivered_on_time": s.groupby(skey)["on_time"].sum(),
            "dispatched_shipments": s.groupby(skey)["dispatched"].sum(),
            "delayed_shipments": s[s["dispatched"]].groupby(skey[s["dispatched"]])["delayed"].sum(),
            "shipping_cost": s.groupby(skey)["shipping_cost"].sum(),
            "pickup_ready_hours": s.groupby(skey)["pickup_ready_hours"].mean(),
        })
        g = g.join(sg, how="outer")
        g.index.name = "key"
        g = g.reset_index()
        g.insert(0, "grain", grain)
        parts.append(g)
    df = pd.concat(parts, ignore_index=True)
    counts = ["orders", "processed_orders", "lines", "lines_filled", "units_ordered", "units_fulfilled", "perfect_orders",
              "shipped_orders", "split_orders", "shipments", "delivered_with_promise", "delivered_on_time", "dispatched_shipments",
              "delayed_shipments"]
    for c in counts:
        df[c] = df[c].fillna(0).astype("int64")
    df["shipping_cost"] = df["shipping_cost"].fillna(0).astype("float64").round(2)
    df["on_time_rate"] = _div(df["delivered_on_time"], df["delivered_with_promise"])
    df["fill_rate_lines"] = _div(df["lines_filled"], df["lines"])
    df["fill_rate_units"] = _div(df["units_fulfilled"], df["units_ordered"])
    df["perfect_order_rate"] = _div(df["perfect_orders"], df["processed_orders"])
    df["split_shipment_rate"] = _div(df["split_orders"], df["shipped_orders"])
    df["shipping_cost_per_order"] = _div(df["shipping_cost"], df["shipped_orders"]).round(2)
    df["carrier_delay_rate"] = _div(df["delayed_shipments"], df["dispatched_shipments"])
    df["period_start"] = pd.to_datetime(df["key"].where(df["grain"] == "week"), errors="coerce")
    return _dates(df, "period_start").sort_values(["grain", "key"]).reset_index(drop=True)


# --- sales --------------------------------------------------------------------------------------------

def kpi_sales(lines: pd.DataFrame) -> pd.DataFrame:
    """Per day, week (Monday) and month, for all channels (`channel` = 'ALL') and each channel:

    * revenue = Σ line totals of lines not fully cancelled (currency, as charged incl. tax where charged)
    * net_revenue = revenue - tax; orders = orders with a line not fully cancelled; units = Σ (quantity - cancelled)
    * aov = revenue / orders; units_per_order = units / orders
    * gross_margin = net_revenue - cogs (cogs = units x unit cost); gross_margin_rate = gross_margin / net_revenue
    * discount_share = discounts / (revenue + discounts)
    * promo_uplift = Σ units on SKU-days sold with a discount / Σ of the SKU's average units on days sold
      without one - 1 (SKUs with both kinds of days)
    * channel_share = channel revenue / revenue of all channels in the period
    """
    l = lines[lines["placed_at"].notna() & (lines["units"] > 0)].copy()
    l["promoted"] = l["discount_total"] > 0
    l["day"] = l["order_date"]
    sku_day = l.groupby(["sku", "day"]).agg(units=("units", "sum"), promoted=("promoted", "max")).reset_index()
    base = sku_day[~sku_day["promoted"]].groupby("sku")["units"].mean()
    sku_day["baseline"] = sku_day["sku"].map(base)
    promo = sku_day[sku_day["promoted"] & sku_day["baseline"].notna()]
    periods = {"day": "D", "week": "W-SUN", "month": "M"}
    parts = []
    for grain, freq in periods.items():
        l["period_start"] = l["day"].dt.to_period(freq).dt.start_time
        pr = promo.assign(period_start=promo["day"].dt.to_period(freq).dt.start_time)
        uplift = pr.groupby("period_start").agg(promo_units=("units", "sum"), baseline_units=("baseline", "sum"))
        for channel_all in (True, False):
            keys = ["period_start"] if channel_all else ["period_start", "channel"]
            g = l.groupby(keys).agg(revenue=("revenue", "sum"), net_revenue=("net_revenue", "sum"), orders=("order_id", "nunique"),
                                    units=("units", "sum"), cogs=("cogs", "sum"), discounts=("discount_total", "sum")).reset_index()
            if channel_all:
                g["channel"] = "ALL"
                g = g.merge(uplift, how="left", left_on="period_start", right_index=True)
            g["grain"] = grain
            parts.append(g)
    df = pd.concat(parts, ignore_index=True)
    for c in ["revenue", "net_revenue", "cogs", "discounts"]:
        df[c] = df[c].astype("float64").round(2)
    df["key"] = df["period_start"].dt.strftime("%Y-%m-%d")
    df["aov"] = _div(df["revenue"], df["orders"]).round(2)
    df["units_per_order"] = _div(df["units"], df["orders"])
    df["gross_margin"] = (df["net_revenue"] - df["cogs"]).round(2)
    df["gross_margin_rate"] = _div(df["gross_margin"], df["net_revenue"])
    df["discount_share"] = _div(df["discounts"], df["revenue"] + df["discounts"])
    df["promo_uplift"] = _div(df.get("promo_units"), df.get("baseline_units")) - 1
    totals = df[df["channel"] == "ALL"].set_index(["grain", "period_start"])["revenue"]
    df["channel_share"] = _div(df["revenue"], pd.Series(totals.reindex(pd.MultiIndex.from_frame(df[["grain", "period_start"]])).values))
    df["orders"] = df["orders"].astype("int64")
    df["units"] = df["units"].astype("int64")
    return _dates(df, "period_start").sort_values(["grain", "period_start", "channel"]).reset_index(drop=True)


def revenue_reconciliation(sales: pd.DataFrame, lines: pd.DataFrame) -> dict:
    """The sales mart's daily all-channel revenue against Σ line_total of the lines not fully cancelled."""
    mart = int(round(sales.loc[(sales["grain"] == "day") & (sales["channel"] == "ALL"), "revenue"].sum() * 100))
    l = lines[(lines["quantity"] - lines["quantity_cancelled"]) > 0]
    expected = int(round((l["line_total"] * 100).round().sum()))
    return {"mart_cents": mart, "lines_cents": expected, "difference_cents": mart - expected, "passed": mart == expected}


# --- returns ------------------------------------------------------------------------------------------

def kpi_returns(returns: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """Per category, SKU and reason (reason rows use all units sold as the base):

    * return_rate = units returned / units fulfilled; refund_amount = Σ refunds (currency)
    * restock_units (condition resellable), write_off_units (damaged or wrong item), pending_units (not inspected);
      restock_rate = restock_units / returned units; write_off_value = write-off units x unit cost
    """
    r = returns[returns["status"] != "cancelled"].copy()
    r["category"] = r["category"].fillna(UNKNOWN)
    r["write_off_value"] = np.where(r["disposition"] == "write_off", r["quantity"] * r["unit_cost"].fillna(0), 0.0)
    for d in ["restock", "write_off", "pending"]:
        r[f"{d}_units"] = np.where(r["disposition"] == d, r["quantity"], 0)
    l = lines[lines["placed_at"].notna()].copy()
    l["category"] = l["category"].fillna(UNKNOWN)
    parts = []
    for grain, col in [("category", "category"), ("sku", "sku"), ("reason", "reason_code")]:
        g = r.groupby(col).agg(returned_units=("quantity", "sum"), returns=("return_id", "nunique"), refund_amount=("refund_amount", "sum"),
                               restock_units=("restock_units", "sum"), write_off_units=("write_off_units", "sum"),
                               pending_units=("pending_units", "sum"), write_off_value=("write_off_value", "sum"))
        if grain == "reason":
            g["units_fulfilled"] = int(l["quantity_fulfilled"].sum())
        else:
            sold = l.groupby(col)["quantity_fulfilled"].sum()
            g = g.join(sold.rename("units_fulfilled"), how="outer")
        g.index.name = "key"
        g = g.reset_index()
        g.insert(0, "grain", grain)
        parts.append(g)
    df = pd.concat(parts, ignore_index=True)
    for c in ["returned_units", "returns", "restock_units", "write_off_units", "pending_units", "units_fulfilled"]:
        df[c] = df[c].fillna(0).astype("int64")
    for c in ["refund_amount", "write_off_value"]:
        df[c] = df[c].fillna(0).astype("float64").round(2)
    df["return_rate"] = _div(df["returned_units"], df["units_fulfilled"])
    df["restock_rate"] = _div(df["restock_units"], df["returned_units"])
    df["key"] = df["key"].astype(str)
    return df.sort_values(["grain", "key"]).reset_index(drop=True)


# --- customers ----------------------------------------------------------------------------------------

SEGMENTS = [  # first match wins: (name, rule on r, f, m scores 1..5)
    ("champions", lambda r, f, m: (r >= 4) & (f >= 4)),
    ("loyal", lambda r, f, m: (r >= 3) & (f >= 4)),
    ("new", lambda r, f, m: (r >= 4) & (f <= 1)),
    ("potential_loyalist", lambda r, f, m: (r >= 3) & (f >= 2)),
    ("at_risk", lambda r, f, m: (r <= 2) & (f >= 3)),
    ("hibernating", lambda r, f, m: r <= 2),
]


def _score(values: pd.Series) -> pd.Series:
    """1..5 by quintile of rank (ties share the average rank); 5 is best (higher value)."""
    if values.empty:
        return values.astype("int64")
    pct = values.rank(method="average", pct=True)
    return np.ceil(pct * 5).clip(1, 5).astype("int64")


def customer_segments(customers: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """RFM per customer with an order: recency_days = as-of day - last order day; frequency = orders;
    monetary = Σ order totals; each scored 1-5 by quintile (recency: more recent is better); segment from the scores."""
    c = customers[customers["orders"] > 0].copy()
    c["last_order_date"] = c["last_order_at"].dt.normalize()
    c["recency_days"] = (pd.Timestamp(as_of) - c["last_order_date"]).dt.days.astype("int64")
    c["frequency"] = c["orders"].astype("int64")
    c["monetary"] = c["revenue"].round(2)
    c["r_score"] = _score(-c["recency_days"])
    c["f_score"] = _score(c["frequency"])
    c["m_score"] = _score(c["monetary"])
    c["rfm"] = c["r_score"].astype(str) + c["f_score"].astype(str) + c["m_score"].astype(str)
    seg = pd.Series("needs_attention", index=c.index)
    decided = pd.Series(False, index=c.index)
    for name, rule in SEGMENTS:
        hit = rule(c["r_score"], c["f_score"], c["m_score"]) & ~decided
        seg[hit] = name
        decided |= hit
    c["segment"] = seg
    return _dates(c, "last_order_date").sort_values("customer_id").reset_index(drop=True)


def customer_cohorts(orders: pd.DataFrame) -> pd.DataFrame:
    """Per first-purchase month x months since: active customers, retention = active / cohort size,
    revenue, ltv_to_date = cumulative revenue / cohort size, repeat_rate = cohort customers with 2+ orders /
    cohort size (by then); est_ltv_12m = month-0 revenue per customer + 11 x average later-month retention (all
    cohorts) x average revenue per active customer-month (all cohorts, months >= 1)."""
    o = orders[orders["customer_id"].notna() & (orders["status"] != "cancelled")].copy()
    o["month"] = o["placed_at"].dt.to_period("M")
    first = o.groupby("customer_id")["month"].min().rename("cohort")
    o = o.join(first, on="customer_id")
    ordinal = lambda p: p.dt.year * 12 + p.dt.month  # noqa: E731
    o["months_since"] = (ordinal(o["month"]) - ordinal(o["cohort"])).astype("int64")
    o = o.sort_values("placed_at")
    o["order_no"] = o.groupby("customer_id").cumcount() + 1
    size = first.value_counts().rename("cohort_size")
    g = o.groupby(["cohort", "months_since"]).agg(active_customers=("customer_id", "nunique"), orders=("order_id", "count"),
                                                  revenue=("total", "sum")).reset_index()
    repeaters = o[o["order_no"] == 2].groupby(["cohort", "months_since"])["customer_id"].nunique().rename("new_repeaters")
    g = g.merge(repeaters, how="left", left_on=["cohort", "months_since"], right_index=True).join(size, on="cohort")
    g = g.sort_values(["cohort", "months_since"])
    g["new_repeaters"] = g["new_repeaters"].fillna(0).astype("int64")
    g["retention"] = _div(g["active_customers"], g["cohort_size"])
    g["repeat_rate"] = _div(g.groupby("cohort")["new_repeaters"].cumsum(), g["cohort_size"])
    g["ltv_to_date"] = _div(g.groupby("cohort")["revenue"].cumsum(), g["cohort_size"]).round(2)
    later = g[g["months_since"] >= 1]
    avg_ret = later["retention"].mean() if len(later) else 0.0
    active_months = later["active_customers"].sum() if len(later) else 0
    arpa = float(later["revenue"].sum() / active_months) if active_months else 0.0
    m0 = g[g["months_since"] == 0].set_index("cohort")
    est = (_div(m0["revenue"], m0["cohort_size"]) + 11 * (avg_ret if not pd.isna(avg_ret) else 0.0) * arpa).round(2)
    g["est_ltv_12m"] = g["cohort"].map(est)
    g["revenue"] = g["revenue"].round(2)
    g["cohort_month"] = g["cohort"].dt.start_time
    g["period_start"] = (g["cohort"] + g["months_since"]).dt.start_time
    g["cohort_size"] = g["cohort_size"].astype("int64")
    return _dates(g, "cohort_month", "period_start").reset_index(drop=True)


# --- feedback -----------------------------------------------------------------------------------------

def kpi_feedback(feedback: pd.DataFrame) -> pd.DataFrame:
    """Per week, channel and overall ('all'): csat = ratings 4-5 / ratings; avg_rating (1-5);
    nps = % promoters (9-10) - % detractors (0-6) of answers to 'would recommend', in points (-100..100)."""
    f = feedback.copy()
    f["week"] = f["created_at"].dt.to_period("W-SUN").dt.start_time.dt.strftime("%Y-%m-%d")
    f["all"] = "all"
    f["channel"] = f["channel"].fillna(UNKNOWN)
    f["satisfied"] = f["rating"] >= 4
    f["promoter"] = (f["would_recommend"] >= 9).astype("float64").where(f["would_recommend"].notna())
    f["detractor"] = (f["would_recommend"] <= 6).astype("float64").where(f["would_recommend"].notna())
    parts = []
    for grain in ["all", "week", "channel"]:
        g = f.groupby(grain).agg(responses=("feedback_id", "count"), avg_rating=("rating", "mean"), satisfied=("satisfied", "sum"),
                                 nps_responses=("promoter", "count"), promoters=("promoter", "sum"), detractors=("detractor", "sum"))
        g.index.name = "key"
        g = g.reset_index()
        g.insert(0, "grain", grain)
        parts.append(g)
    df = pd.concat(parts, ignore_index=True)
    for c in ["responses", "satisfied", "nps_responses", "promoters", "detractors"]:
        df[c] = df[c].fillna(0).astype("int64")
    df["csat"] = _div(df["satisfied"], df["responses"])
    df["nps"] = (100 * _div(df["promoters"] - df["detractors"], df["nps_responses"])).round(1)
    df["period_start"] = pd.to_datetime(df["key"].where(df["grain"] == "week"), errors="coerce")
    return _dates(df, "period_start").sort_values(["grain", "key"]).reset_index(drop=True)
