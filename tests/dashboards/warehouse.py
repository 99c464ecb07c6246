"""A small, hand-built warehouse for the dashboard tests, on the SKUs, locations, channels and customers of
tests/om_core/store.py `build_store` (so the Approve action and the order lookup run on a real database).

Staging tables are built row by row from a seeded generator; the KPI marts are computed from them with the
pipelines' own formulas (`pipelines.defs.kpis.logic`), and the forecasting / recommendation assets (built by
other issues) are written by hand in the shapes of /tmp/team/schemas.md. Every asset keeps exactly its
documented columns.
"""

from __future__ import annotations

import random
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

FIRST_DAY = date(2026, 2, 2)  # a Monday
AS_OF = date(2026, 3, 29)  # a Sunday: 8 full weeks
CATALOG = {  # sku: (category, price, cost)
    "TEE-S": ("apparel", 20.00, 8.00), "TEE-M": ("apparel", 20.00, 8.00), "MUG": ("kitchen", 12.50, 4.00),
    "KETTLE": ("kitchen", 49.99, 25.00), "BEANS": ("grocery", 9.99, 4.50),
}
LOCATIONS = ["WH-EAST", "WH-WEST", "ST-NYC"]
CHANNELS = {"web": ["WH-EAST", "WH-WEST"], "app": ["WH-WEST"], "pos-nyc": ["ST-NYC"]}
CARRIERS = ["ups", "usps"]


def _frame(rows: list[dict], columns: dict[str, str]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for c in columns:
        if c not in df:
            df[c] = np.nan
    return df[list(columns)]


def _ts(day: date, hour: float) -> datetime:
    return datetime(day.year, day.month, day.day) + timedelta(hours=hour)


def staging(seed: int = 8) -> dict[str, pd.DataFrame]:
    from pipelines.defs.staging.assets import (
        CUSTOMERS_COLUMNS,
        FEEDBACK_COLUMNS,
        LINES_COLUMNS,
        ORDERS_COLUMNS,
        RETURNS_COLUMNS,
        SHIPMENTS_COLUMNS,
        SNAPSHOT_COLUMNS,
    )

    rng = random.Random(seed)
    orders, lines, shipments, returns, feedback = [], [], [], [], []
    day, order_id, line_id = FIRST_DAY, 0, 0
    while day <= AS_OF:
        for _ in range(2 + rng.randrange(3)):
            order_id += 1
            channel = rng.choice(list(CHANNELS))
            location = rng.choice(CHANNELS[channel])
            customer = rng.choice([1, 2, None])
            placed = _ts(day, 8 + rng.random() * 10)
            total = 0.0
            for line_no, sku in enumerate(rng.sample(list(CATALOG), 1 + rng.randrange(2)), start=1):
                line_id += 1
                category, price, cost = CATALOG[sku]
                qty = 1 + rng.randrange(3)
                revenue = round(qty * price, 2)
                total += revenue
                returned = 1 if rng.random() < 0.1 else 0
                lines.append({"line_id": line_id, "order_id": order_id, "line_no": line_no, "product_id": list(CATALOG).index(sku) + 1,
                              "sku": sku, "sku_known": True, "category": category, "location": location, "channel": channel,
                              "customer_id": customer, "placed_at": placed, "order_date": pd.Timestamp(day), "quantity": qty,
                              "quantity_cancelled": 0, "quantity_fulfilled": qty, "quantity_returned": returned,
                              "quantity_backordered": 0, "units": qty, "unit_price": price, "unit_cost": cost, "discount_total": 0.0,
                              "tax_amount": 0.0, "line_total": revenue, "revenue": revenue, "net_revenue": revenue,
                              "cogs": round(qty * cost, 2)})
                if returned:
                    returns.append({"return_line_id": line_id, "return_id": line_id, "return_number": f"RMA-{line_id}",
                                    "order_id": order_id, "order_line_id": line_id, "sku": sku, "category": category, "quantity": 1,
                                    "reason_code": rng.choice(["damaged", "size_fit", "no_longer_needed"]),
                                    "condition": "resellable", "disposition": "restock", "refund_amount": price, "status": "refunded",
                                    "opened_at": placed + timedelta(days=5), "unit_price": price, "unit_cost": cost})
            pickup = channel == "pos-nyc"
            promised = placed + timedelta(days=3)
            delivered = placed + timedelta(hours=(6 if pickup else 30 + rng.random() * 60))
            orders.append({"order_id": order_id, "order_number": f"SO-{order_id:05d}", "channel": channel, "customer_id": customer,
                           "status": "delivered", "delivery_method": "pickup" if pickup else "ship",
                           "pickup_location": location if pickup else None, "total": round(total, 2), "subtotal": round(total, 2),
                           "discount_total": 0.0, "shipping_total": 0.0, "tax_total": 0.0, "placed_at": placed,
                           "order_date": pd.Timestamp(day)})
            shipments.append({"shipment_id": order_id, "shipment_number": f"SH-{order_id:05d}", "order_id": order_id, "location": location,
                              "kind": "pickup" if pickup else "ship", "carrier": None if pickup else rng.choice(CARRIERS),
                              "service_level": "standard", "units": 1, "shipping_cost": 0.0 if pickup else 6.5,
                              "promised_at": None if pickup else promised, "created_at": placed + timedelta(minutes=5),
                              "dispatched_at": None if pickup else placed + timedelta(hours=12),
                              "ready_at": placed + timedelta(hours=4) if pickup else None,
                              "delivered_at": delivered if delivered.date() <= AS_OF else None, "status": "delivered",
                              "on_time": None if pickup or delivered.date() > AS_OF else float(delivered <= promised),
                              "delayed": bool(not pickup and delivered > promised)})
            if customer is not None and rng.random() < 0.4:
                feedback.append({"feedback_id": order_id, "order_id": order_id, "customer_id": customer, "channel": channel,
                                 "rating": 1 + rng.randrange(5), "would_recommend": rng.randrange(11),
                                 "created_at": placed + timedelta(days=2)})
        day += timedelta(days=1)

    snaps = []
    for sku, (category, price, cost) in CATALOG.items():
        for location in LOCATIONS:
            on_hand = 5 + rng.randrange(30)
            d = FIRST_DAY
            while d <= AS_OF:
                on_hand = max(0, on_hand - rng.randrange(3)) if rng.random() < 0.9 else on_hand + 20
                snaps.append({"day": pd.Timestamp(d), "sku": sku, "category": category, "location": location, "on_hand": on_hand,
                              "reserved": 0, "available": on_hand, "units_in": 0, "units_shipped": 0, "units_other_out": 0,
                              "unit_cost": cost, "unit_price": price, "inventory_value": round(on_hand * cost, 2),
                              "stockout": on_hand <= 0})
                d += timedelta(days=1)

    o = _frame(orders, ORDERS_COLUMNS)
    by_customer = o[o["customer_id"].notna()].groupby("customer_id").agg(
        first_order_at=("placed_at", "min"), last_order_at=("placed_at", "max"), orders=("order_id", "count"), revenue=("total", "sum"))
    customers = [{"customer_id": c, "marketing_consent": c == 1, "created_at": datetime(2026, 1, 1),
                  **by_customer.loc[c].to_dict()} for c in (1, 2)]
    frames = {
        "stg_orders": o, "stg_order_lines": _frame(lines, LINES_COLUMNS), "stg_shipments": _frame(shipments, SHIPMENTS_COLUMNS),
        "stg_returns": _frame(returns, RETURNS_COLUMNS), "stg_inventory_snapshots": _frame(snaps, SNAPSHOT_COLUMNS),
        "stg_customers": _frame(customers, CUSTOMERS_COLUMNS), "stg_feedback": _frame(feedback, FEEDBACK_COLUMNS),
    }
    frames["stg_order_lines"]["customer_id"] = frames["stg_order_lines"]["customer_id"].astype("Int64")
    frames["stg_orders"]["customer_id"] = frames["stg_orders"]["customer_id"].astype("Int64")
    for c in ("delayed", "stockout"):
        for f in frames.values():
            if c in f:
                f[c] = f[c].astype(bool)
    return frames


def marts(stg: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    from pipelines.defs.demand.assets import DEMAND_COLUMNS
    from pipelines.defs.demand.logic import daily_demand
    from pipelines.defs.kpis import assets as A
    from pipelines.defs.kpis import logic as K

    lines = stg["stg_order_lines"]
    return {
        "daily_demand": daily_demand(lines, stg["stg_inventory_snapshots"])[list(DEMAND_COLUMNS)],
        "kpi_sales": K.kpi_sales(lines)[list(A.SALES_COLUMNS)],
        "kpi_inventory": K.kpi_inventory(stg["stg_inventory_snapshots"], lines, AS_OF)[list(A.INVENTORY_COLUMNS)],
        "kpi_fulfilment": K.kpi_fulfilment(stg["stg_orders"], lines, stg["stg_shipments"])[list(A.FULFILMENT_COLUMNS)],
        "kpi_returns": K.kpi_returns(stg["stg_returns"], lines)[list(A.RETURNS_COLUMNS)],
        "kpi_feedback": K.kpi_feedback(stg["stg_feedback"])[list(A.FEEDBACK_COLUMNS)],
        "customer_segments": K.customer_segments(stg["stg_customers"], AS_OF)[list(A.SEGMENTS_COLUMNS)],
        "customer_cohorts": K.customer_cohorts(stg["stg_orders"])[list(A.COHORTS_COLUMNS)],
    }


def forecasting() -> dict[str, pd.DataFrame]:
    """demand_forecast, forecast_backtest, reorder_suggestions, reorder_policy_backtest (schemas.md)."""
    days = pd.date_range(AS_OF + timedelta(days=1), periods=28, freq="D")
    fc, bt = [], []
    models = {"TEE-S": "AutoETS", "MUG": "CrostonSBA", "BEANS": "AutoETS"}
    for i, (sku, model) in enumerate(models.items()):
        category = CATALOG[sku][0]
        for location in ["ALL", "WH-EAST", "ST-NYC"]:
            level = (2.0 + i) * (3 if location == "ALL" else 1)
            for k, ds in enumerate(days):
                f = level + 0.1 * k
                fc.append({"sku": sku, "location": location, "ds": ds, "forecast": f, "lo_80": f * 0.7, "hi_80": f * 1.3,
                           "lo_95": f * 0.5, "hi_95": f * 1.5, "model": model})
            series_class = "smooth" if model == "AutoETS" else "intermittent"
            for m, mase in ((model, 0.8 + 0.1 * i), ("SeasonalNaive", 1.1 + 0.05 * i)):
                bt.append({"sku": sku, "location": location, "category": category, "series_class": series_class, "model": m,
                           "selected": m == model, "mase": mase, "rmsse": mase * 0.9, "wape": mase * 0.3, "bias": 0.02 * (i - 1),
                           "windows": 3})
    suggestions = []
    for rank, (sku, location, priority, qty) in enumerate(
            [("TEE-S", "WH-EAST", "urgent", 24), ("MUG", "ST-NYC", "high", 12), ("BEANS", "WH-EAST", "medium", 40),
             ("KETTLE", "WH-WEST", "low", 6)], start=1):
        category, price, cost = CATALOG[sku]
        suggestions.append({
            "sku": sku, "location": location, "supplier": "ACME", "category": category, "abc_class": "A", "service_level": 0.95,
            "on_hand": 2, "reserved": 0, "backordered": 0, "on_order": 0, "inventory_position": 2, "avg_daily_forecast": 1.5,
            "lead_time_days": 5.0, "lead_time_std_days": 1.5, "review_period_days": 7.0, "safety_stock": 4, "reorder_point": 12,
            "order_up_to": 2 + qty, "suggested_qty": qty, "pack_size": 1, "moq": 1, "unit_cost": cost,
            "estimated_cost": round(qty * cost, 2), "days_of_cover": 1.3 * rank,
            "expected_stockout_date": pd.Timestamp(AS_OF + timedelta(days=rank)), "priority": priority, "priority_rank": rank,
            "reason": f"Position 2 is below the reorder point 12 ({priority})"})
    policy = pd.DataFrame([
        {"policy": "forecast", "series": 9, "days": 56, "target_fill_rate": 0.95, "fill_rate": 0.96, "stockout_days": 4,
         "avg_inventory_value": 812.5, "orders_placed": 30, "units_ordered": 400},
        {"policy": "min_max", "series": 9, "days": 56, "target_fill_rate": 0.95, "fill_rate": 0.88, "stockout_days": 19,
         "avg_inventory_value": 1010.0, "orders_placed": 22, "units_ordered": 380}])
    return {"demand_forecast": pd.DataFrame(fc), "forecast_backtest": pd.DataFrame(bt),
            "reorder_suggestions": pd.DataFrame(suggestions), "reorder_policy_backtest": policy}


def recommendations() -> dict[str, pd.DataFrame]:
    recs = [{"customer_id": c, "sku": sku, "rank": r, "score": 1.0 / r, "reason": f"Bought with {other}", "kind": "new"}
            for c, skus in ((1, ["KETTLE", "BEANS", "TEE-M"]), (2, ["MUG", "TEE-S"]))
            for r, (sku, other) in enumerate(zip(skus, ["MUG", "TEE-S", "KETTLE"], strict=False), start=1)]
    related = [{"sku": "MUG", "related_sku": rel, "rank": r, "support": 0.1 / r, "confidence": 0.5 / r, "lift": 2.0 / r}
               for r, rel in enumerate(["BEANS", "KETTLE"], start=1)]
    offers = [{"promotion_id": 1, "customer_id": 1, "score": 0.9, "expected_uplift": 0.3},
              {"promotion_id": 1, "customer_id": 2, "score": 0.4, "expected_uplift": 0.1},
              {"promotion_id": 2, "customer_id": 2, "score": 0.7, "expected_uplift": 0.2}]
    evaluation = [{"model": m, "scenario": s, "precision_at_10": p, "recall_at_10": p * 2, "ndcg_at_10": p * 1.5,
                   "coverage": 0.6 if m == "model" else 0.1, "customers": 2, "cutoff": pd.Timestamp(AS_OF - timedelta(days=14)),
                   "test_days": 14}
                  for m, s, p in (("model", "new_items", 0.12), ("popularity", "new_items", 0.05),
                                  ("model", "with_repurchase", 0.2), ("popularity", "with_repurchase", 0.1))]
    return {"recommendations": pd.DataFrame(recs), "related_products": pd.DataFrame(related),
            "offer_targets": pd.DataFrame(offers), "recommendation_evaluation": pd.DataFrame(evaluation)}


def build() -> dict[str, pd.DataFrame]:
    stg = staging()
    return {**stg, **marts(stg), **forecasting(), **recommendations()}


def write(home: Path, frames: dict[str, pd.DataFrame], *, skip: tuple[str, ...] = ()) -> Path:
    warehouse = home / "warehouse"
    warehouse.mkdir(parents=True, exist_ok=True)
    for name, df in frames.items():
        if name not in skip:
            df.to_parquet(warehouse / f"{name}.parquet", index=False)
    return warehouse


COMMENT = "Quick delivery, lovely mug."


def store_database(home: Path, template: Path) -> str:
    """The test store (tests/om_core/store.py) with one web order for Ada, shipped, delivered and rated with a
    comment within the warehouse's last week, in home/storeom.db. Returns the order number."""
    from datetime import UTC

    from om_core.clock import frozen_at
    from om_core.db import Database
    from om_core.services import fulfilment, orders
    from om_core.services.feedback import record_feedback
    from tests.om_core.store import build_store, web_order

    path = home / "storeom.db"
    shutil.copy(template, path)
    db = Database(f"sqlite:///{path}")
    placed = datetime(AS_OF.year, AS_OF.month, AS_OF.day, 10, tzinfo=UTC) - timedelta(days=4)
    try:
        build_store(db)
        with frozen_at(placed), db.transaction() as s:
            number = orders.place_order(s, web_order(("MUG", 2)), actor="test").number
            [shipment] = [sh.number for sh in fulfilment.create_shipments(s, number)]
        with frozen_at(placed + timedelta(hours=5)), db.transaction() as s:
            tracking = fulfilment.dispatch_shipment(s, shipment).tracking_number
        with frozen_at(placed + timedelta(days=2)), db.transaction() as s:
            fulfilment.record_tracking_event(s, {"tracking_number": tracking, "kind": "delivered", "carrier_event_id": "d-1",
                                                 "at": placed + timedelta(days=2)})
        with frozen_at(placed + timedelta(days=3)), db.transaction() as s:
            record_feedback(s, number, {"rating": 5, "would_recommend": 10, "comment": COMMENT}, actor="web")
    finally:
        db.dispose()
    return number
