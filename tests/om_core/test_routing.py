"""Order routing: known answers for each strategy on hand-built sites, the cost model, geo helpers,
and properties (never allocate more than is available; allocated + short == demanded)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from om_core.geo import coordinates, haversine_km
from om_core.services.routing import STRATEGIES, RoutePlan, Site, estimate_shipment_cost, plan_route

D = Decimal

# products
A, B, C, SOFA = 101, 102, 103, 900
SKUS = {A: "A-TEE", B: "B-MUG", C: "C-CAP", SOFA: "SOFA"}

# locations (customer in New York)
ST_NYC = Site(3, "ST-NYC", "store", 3, 5.0)
WH_EAST = Site(1, "WH-EAST", "warehouse", 2, 12.0)
WH_X = Site(4, "WH-X", "warehouse", 4, 100.0)
WH_WEST = Site(2, "WH-WEST", "warehouse", 1, 3900.0)
DS_DROP = Site(9, "DS-DROP", "dropship", 9, 1.0)


def stock(**by_site: dict[int, int]) -> dict[tuple[int, int], int]:
    ids = {"ST_NYC": 3, "WH_EAST": 1, "WH_X": 4, "WH_WEST": 2, "DS_DROP": 9}
    return {(pid, ids[name]): qty for name, levels in by_site.items() for pid, qty in levels.items()}


def route(strategy: str, demand, sites, available, **kw) -> RoutePlan:
    return plan_route(strategy, demand, sites, available, skus=SKUS, **kw)


# --- one location can fill everything ----------------------------------------------------------


def test_nearest_with_stock_takes_the_nearest_full_location_over_channel_priority():
    sites = [WH_WEST, WH_EAST, ST_NYC]  # WH-WEST has the best channel priority, WH-EAST is nearer
    avail = stock(WH_WEST={A: 10, B: 10}, WH_EAST={A: 10, B: 10}, ST_NYC={A: 10})  # the store lacks B
    plan = route("nearest_with_stock", [(A, 2), (B, 1)], sites, avail)
    assert plan.allocations == {A: [(1, 2)], B: [(1, 1)]}
    assert plan.short == {}
    assert plan.locations == [1]
    assert plan.reason == "nearest location with full stock: WH-EAST, 12 km"
    assert plan.estimated_cost == estimate_shipment_cost(12.0, D("1.5"))  # 3 units x 0.5 kg default


def test_fewest_shipments_single_location_and_its_tie_breaks():
    sites = [WH_WEST, WH_EAST, ST_NYC]
    avail = stock(WH_WEST={A: 10, B: 10}, WH_EAST={A: 10, B: 10}, ST_NYC={A: 10, B: 10})
    plan = route("fewest_shipments", [(A, 2), (B, 1)], sites, avail)
    assert plan.allocations == {A: [(3, 2)], B: [(3, 1)]}
    assert plan.reason == "fewest shipments: ST-NYC has everything, 5 km"
    # same distance: the channel's priority decides
    near_a, near_b = Site(7, "ST-A", "store", 5, 5.0), Site(8, "ST-B", "store", 2, 5.0)
    avail = {(A, 7): 1, (A, 8): 1}
    assert route("fewest_shipments", [(A, 1)], [near_a, near_b], avail).locations == [8]


def test_lowest_cost_single_location_is_the_cheapest():
    sites = [WH_WEST, WH_EAST]
    avail = stock(WH_WEST={A: 10, B: 10}, WH_EAST={A: 10, B: 10})
    plan = route("lowest_cost", [(A, 2), (B, 1)], sites, avail, weights={A: D("1"), B: D("2")})
    assert plan.allocations == {A: [(1, 2)], B: [(1, 1)]}
    cost = estimate_shipment_cost(12.0, D("4"))
    assert plan.estimated_cost == cost == D("5.17")  # 3.50 + 0.048 + 4 x 0.406 = 5.172
    assert plan.reason == f"lowest cost: WH-EAST ships everything in one shipment, 12 km, est. ${cost}"


def test_one_shipment_beats_a_nearer_split_for_nearest_with_stock():
    # the store is nearest and has A, but only WH-EAST has both: one parcel from WH-EAST
    avail = stock(ST_NYC={A: 5}, WH_EAST={A: 5, B: 5})
    plan = route("nearest_with_stock", [(A, 1), (B, 1)], [ST_NYC, WH_EAST], avail)
    assert plan.locations == [1]


# --- splits -------------------------------------------------------------------------------------


def test_nearest_with_stock_split_fills_each_line_from_the_nearest_whole_location_else_nearest_first():
    sites = [WH_WEST, WH_EAST, ST_NYC]
    avail = stock(
        ST_NYC={A: 3, B: 4, C: 2},  # nearest: has B whole, only some of A and C
        WH_EAST={A: 5, C: 3},  # has A whole
        WH_WEST={C: 4},  # nobody has 6 of C: split nearest-first
    )
    plan = route("nearest_with_stock", [(A, 5), (B, 4), (C, 6)], sites, avail)
    assert plan.allocations == {A: [(1, 5)], B: [(3, 4)], C: [(3, 2), (1, 3), (2, 1)]}
    assert plan.short == {}
    assert plan.locations == [3, 1, 2]
    assert plan.reason == ("split across 3 locations (no single location has everything): "
                           "ST-NYC 5 km, WH-EAST 12 km, WH-WEST 3,900 km")


def test_split_reason_two_locations():
    avail = stock(WH_EAST={A: 1}, WH_WEST={B: 1})
    plan = route("nearest_with_stock", [(A, 1), (B, 1)], [WH_WEST, WH_EAST], avail)
    assert plan.allocations == {A: [(1, 1)], B: [(2, 1)]}
    assert plan.reason == ("split across 2 locations (no single location has everything): "
                           "WH-EAST 12 km, WH-WEST 3,900 km")


def test_fewest_shipments_set_cover_uses_fewer_parcels_than_nearest():
    sites = [ST_NYC, WH_EAST, WH_X, WH_WEST]
    avail = stock(ST_NYC={A: 1}, WH_EAST={B: 1}, WH_WEST={B: 1, C: 1}, WH_X={A: 1, C: 1})
    demand = [(A, 1), (B, 1), (C, 1)]
    nearest = route("nearest_with_stock", demand, sites, avail)
    assert nearest.allocations == {A: [(3, 1)], B: [(1, 1)], C: [(4, 1)]}
    assert len(nearest.locations) == 3
    fewest = route("fewest_shipments", demand, sites, avail)
    # WH-X and WH-WEST both cover 2 units: the nearer WH-X first; then B from the nearer WH-EAST
    assert fewest.allocations == {A: [(4, 1)], B: [(1, 1)], C: [(4, 1)]}
    assert fewest.locations == [1, 4]
    assert fewest.reason == ("fewest shipments: split across 2 locations (no single location has everything): "
                             "WH-EAST 12 km, WH-X 100 km")


def test_lowest_cost_prefers_a_cheaper_split_for_heavy_goods():
    # WH-WEST has everything but is 3,900 km away; the store down the road has the heavy sofa-bed
    sites = [WH_WEST, ST_NYC]
    avail = stock(WH_WEST={A: 5, B: 5}, ST_NYC={B: 5})
    weights = {A: D("0.5"), B: D("50")}
    one = estimate_shipment_cost(3900.0, D("50.5"))
    split = estimate_shipment_cost(5.0, D("50")) + estimate_shipment_cost(3900.0, D("0.5"))
    assert (one, split) == (D("137.78"), D("43.93"))
    plan = route("lowest_cost", [(A, 1), (B, 1)], sites, avail, weights=weights)
    assert plan.allocations == {A: [(2, 1)], B: [(3, 1)]}
    assert plan.estimated_cost == split
    assert plan.locations == [3, 2]
    assert plan.reason == ("split across 2 locations (cheaper than one shipment from WH-WEST: $43.93 vs $137.78): "
                           "ST-NYC 5 km, WH-WEST 3,900 km, est. $43.93")
    # the other strategies keep it to one parcel
    for strategy in ("nearest_with_stock", "fewest_shipments"):
        assert route(strategy, [(A, 1), (B, 1)], sites, avail, weights=weights).locations == [2]
    # light goods: the second parcel's fee is not worth it
    light = route("lowest_cost", [(A, 1), (B, 1)], sites, avail, weights={A: D("0.5"), B: D("0.5")})
    assert light.locations == [2]
    assert light.reason.startswith("lowest cost: WH-WEST ships everything in one shipment, 3,900 km")


def test_lowest_cost_split_consolidates_when_no_single_location_can_fill():
    sites = [ST_NYC, WH_EAST, WH_WEST]
    avail = stock(ST_NYC={A: 1}, WH_EAST={B: 1}, WH_WEST={A: 1, C: 1})
    weights = {A: D("1"), B: D("1"), C: D("1")}
    demand = [(A, 1), (B, 1), (C, 1)]
    nearest = route("nearest_with_stock", demand, sites, avail, weights=weights)
    assert nearest.locations == [3, 1, 2] and nearest.estimated_cost == D("29.32")
    cheap = route("lowest_cost", demand, sites, avail, weights=weights)
    # A rides along with C from WH-WEST instead of paying for a third parcel from the store
    assert cheap.allocations == {A: [(2, 1)], B: [(1, 1)], C: [(2, 1)]}
    assert cheap.estimated_cost == estimate_shipment_cost(12.0, D("1")) + estimate_shipment_cost(3900.0, D("2"))
    assert cheap.estimated_cost == D("27.75")  # 3.95 + 23.80
    assert cheap.reason.startswith("split across 2 locations (no single location has everything): "
                                   "WH-EAST 12 km, WH-WEST 3,900 km")


# --- dropship -------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_dropship_lines_go_to_their_supplier_and_only_there(strategy):
    sites = [DS_DROP, WH_EAST, WH_WEST]
    # our warehouse happens to hold a sofa, and the (nearer) supplier happens to list the T-shirt
    avail = stock(DS_DROP={SOFA: 10, A: 10}, WH_EAST={SOFA: 3, A: 10})
    plan = route(strategy, [(A, 2), (SOFA, 1)], sites, avail, dropship={SOFA: 9}, weights={SOFA: D("40")})
    assert plan.allocations == {A: [(1, 2)], SOFA: [(9, 1)]}
    assert plan.locations == [1, 9]
    assert plan.estimated_cost == estimate_shipment_cost(12.0, D("1.0")) + estimate_shipment_cost(1.0, D("40"))
    assert "dropship: SOFA from DS-DROP" in plan.reason


def test_dropship_short_at_the_supplier_is_not_filled_from_our_stock():
    avail = stock(DS_DROP={SOFA: 1}, WH_EAST={SOFA: 10})
    plan = route("nearest_with_stock", [(SOFA, 3)], [DS_DROP, WH_EAST], avail, dropship={SOFA: 9})
    assert plan.allocations == {SOFA: [(9, 1)]}
    assert plan.short == {SOFA: 2}
    assert plan.reason == "dropship: SOFA from DS-DROP; short: 2 of SOFA"


def test_only_dropship_sites_do_not_ship_regular_lines():
    plan = route("fewest_shipments", [(A, 1)], [DS_DROP], stock(DS_DROP={A: 5}))
    assert plan.allocations == {A: []}
    assert plan.short == {A: 1}
    assert plan.reason == "no location has stock for this order; short: 1 of A-TEE"


# --- unknown distances -----------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_unknown_distances_fall_back_to_channel_priority(strategy):
    sites = [Site(1, "WH1", "warehouse", 3, None), Site(2, "WH2", "warehouse", 1, None),
             Site(3, "WH3", "warehouse", 2, None)]
    avail = {(A, 1): 5, (A, 2): 5, (A, 3): 5}
    plan = route(strategy, [(A, 2)], sites, avail)
    assert plan.allocations == {A: [(2, 2)]}
    assert "WH2" in plan.reason and "distance unknown" in plan.reason
    if strategy == "nearest_with_stock":
        assert plan.reason == "first location in channel priority with full stock: WH2, distance unknown"
    # 800 km assumed: 3.50 + 3.20 + 1 x 0.80
    assert plan.estimated_cost == estimate_shipment_cost(None, D("1.0")) == D("7.50")


def test_known_distance_sorts_before_unknown_and_unknowns_by_priority():
    sites = [Site(1, "WH1", "warehouse", 1, None), Site(2, "FAR", "warehouse", 9, 3900.0),
             Site(3, "WH3", "warehouse", 2, None)]
    avail = {(A, 1): 1, (A, 2): 1, (A, 3): 1}
    assert route("nearest_with_stock", [(A, 1)], sites, avail).locations == [2]
    avail = {(A, 1): 1, (A, 3): 1, (B, 3): 1, (B, 2): 1}
    plan = route("nearest_with_stock", [(A, 1), (B, 1)], sites, avail)
    assert plan.locations == [3]  # the only one with both
    avail = {(A, 1): 1, (A, 3): 1, (B, 2): 1}
    plan = route("nearest_with_stock", [(A, 1), (B, 1)], sites, avail)
    assert plan.allocations == {A: [(1, 1)], B: [(2, 1)]}
    assert plan.reason == ("split across 2 locations (no single location has everything): "
                           "FAR 3,900 km, WH1 (distance unknown)")


def _legacy_plan_allocation(demand, candidates, available):
    """The allocator routing replaces (om_core.services.orders.plan_allocation), kept here as the reference."""
    for loc in candidates:
        if all(available.get((pid, loc), 0) >= qty for pid, qty in demand):
            return {pid: [(loc, qty)] for pid, qty in demand}, {}
    left = dict(available)
    plan, short = {}, {}
    for pid, qty in demand:
        whole = next((loc for loc in candidates if left.get((pid, loc), 0) >= qty), None)
        if whole is not None:
            plan[pid] = [(whole, qty)]
            left[(pid, whole)] -= qty
            continue
        need, parts = qty, []
        for loc in candidates:
            take = min(need, left.get((pid, loc), 0))
            if take > 0:
                parts.append((loc, take))
                left[(pid, loc)] -= take
                need -= take
            if need == 0:
                break
        plan[pid] = parts
        if need:
            short[pid] = need
    return plan, short


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_without_distances_nearest_with_stock_matches_the_old_allocator(data):
    n_sites = data.draw(st.integers(1, 5))
    products = data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=4, unique=True))
    demand = [(p, data.draw(st.integers(1, 5))) for p in products]
    available = {(p, loc): data.draw(st.integers(0, 6)) for p in products for loc in range(1, n_sites + 1)}
    for p, qty in demand:  # the old allocator and the new one differ (on purpose) only when some units exist nowhere
        if sum(available[(p, loc)] for loc in range(1, n_sites + 1)) < qty:
            available[(p, 1)] += qty
    sites = [Site(loc, f"L{loc}", "warehouse", loc * 10, None) for loc in range(n_sites, 0, -1)]
    plan = plan_route("nearest_with_stock", demand, sites, available)
    old_plan, old_short = _legacy_plan_allocation(demand, list(range(1, n_sites + 1)), available)
    assert plan.allocations == old_plan
    assert plan.short == old_short == {}


# --- shorts, reasons, errors -------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_shorts_are_reported_and_everything_that_exists_is_allocated(strategy):
    sites = [ST_NYC, WH_EAST]
    avail = stock(ST_NYC={A: 2}, WH_EAST={A: 5, B: 1})
    plan = route(strategy, [(A, 10), (B, 1), (C, 4)], sites, avail)
    assert plan.allocations == {A: [(3, 2), (1, 5)], B: [(1, 1)], C: []}
    assert plan.short == {A: 3, C: 4}
    assert plan.reason.endswith("; short: 3 of A-TEE, 4 of C-CAP")


def test_one_location_with_all_the_stock_there_is_ships_alone_despite_a_short():
    avail = stock(ST_NYC={A: 1, B: 1}, WH_EAST={A: 3})
    plan = route("nearest_with_stock", [(A, 5), (B, 1)], [ST_NYC, WH_EAST], avail)
    assert plan.allocations == {A: [(3, 1), (1, 3)], B: [(3, 1)]}  # nobody has all of it: split
    assert plan.short == {A: 1}
    # here WH-EAST has all the A there is and B, so it ships alone
    avail = stock(ST_NYC={A: 1}, WH_EAST={A: 3, B: 1})
    plan = route("nearest_with_stock", [(A, 4), (B, 1)], [ST_NYC, WH_EAST], avail)
    assert plan.short == {}
    assert plan.allocations == {A: [(3, 1), (1, 3)], B: [(1, 1)]}
    avail = stock(WH_EAST={A: 3, B: 1})
    plan = route("nearest_with_stock", [(A, 5), (B, 1)], [ST_NYC, WH_EAST], avail)
    assert plan.allocations == {A: [(1, 3)], B: [(1, 1)]}
    assert plan.reason == "nearest location with all the stock there is: WH-EAST, 12 km; short: 2 of A-TEE"


def test_duplicate_demand_lines_are_added_up_and_empty_demand_routes_nothing():
    plan = route("nearest_with_stock", [(A, 1), (A, 2)], [WH_EAST], stock(WH_EAST={A: 3}))
    assert plan.allocations == {A: [(1, 3)]}
    empty = route("lowest_cost", [], [WH_EAST], {})
    assert (empty.allocations, empty.short, empty.locations, empty.estimated_cost) == ({}, {}, [], D("0.00"))
    assert empty.reason == "nothing to route"


def test_reason_names_products_without_skus_by_id():
    plan = plan_route("nearest_with_stock", [(SOFA, 1)], [DS_DROP], {(SOFA, 9): 1}, dropship={SOFA: 9})
    assert plan.reason == "dropship: product 900 from DS-DROP"


def test_unknown_strategy_is_a_value_error():
    with pytest.raises(ValueError, match="unknown routing strategy 'cheapest'"):
        plan_route("cheapest", [(A, 1)], [WH_EAST], {(A, 1): 1})


# --- the cost model -------------------------------------------------------------------------------


def test_estimate_shipment_cost_known_values():
    assert estimate_shipment_cost(0.0, D("0")) == D("3.50")
    assert estimate_shipment_cost(10.0, D("1")) == D("3.95")  # 3.50 + 0.04 + 1 x 0.405
    assert estimate_shipment_cost(3900.0, D("1")) == D("21.45")  # 3.50 + 15.60 + 1 x 2.35
    assert estimate_shipment_cost(3900.0, D("50")) == D("136.60")
    assert estimate_shipment_cost(None, D("0.5")) == estimate_shipment_cost(800.0, D("0.5")) == D("7.10")
    assert estimate_shipment_cost(5000.0, D("10")) > estimate_shipment_cost(50.0, D("10"))
    with pytest.raises(ValueError):
        estimate_shipment_cost(-1.0, D("1"))


# --- geo ------------------------------------------------------------------------------------------


def test_haversine_new_york_to_los_angeles():
    assert haversine_km((40.7128, -74.0060), (34.0522, -118.2437)) == pytest.approx(3936, abs=5)
    assert haversine_km((40.7128, -74.0060), (40.7128, -74.0060)) == 0.0
    assert haversine_km((0.0, 0.0), (0.0, 180.0)) == pytest.approx(20015, abs=2)  # half the circumference


def test_coordinates_from_us_zip_codes():
    lat, lon = coordinates("10004", "US")
    assert lat == pytest.approx(40.71, abs=0.01) and lon == pytest.approx(-74.01, abs=0.01)
    assert coordinates("10004-1234", "us") == (lat, lon)
    assert coordinates("10004", None) == (lat, lon)  # no country: the store's default, US
    assert coordinates("00000", "US") is None  # not a ZIP
    assert coordinates("99999", "US") is None
    assert coordinates("ABC", "US") is None  # malformed: None, never an exception
    assert coordinates("", "US") is None and coordinates(None, "US") is None
    assert coordinates("10004", "DE") is None  # other countries: pass coordinates explicitly


def test_zip_index_gives_what_one_by_one_look_ups_give(monkeypatch):
    """After SCANS_BEFORE_INDEX distinct ZIPs the whole database becomes an index: same answers."""
    import zipcodes

    from om_core import geo

    sample = [z["zip_code"] for z in zipcodes.list_all()[::97]] + ["00000", "99999", "10004"]
    monkeypatch.setattr(geo, "_points", {})
    monkeypatch.setattr(geo, "_index", None)
    monkeypatch.setattr(geo, "SCANS_BEFORE_INDEX", 10**9)
    one_by_one = {z: coordinates(z, "US") for z in sample}
    assert geo._index is None and len(geo._points) == len(sample)
    monkeypatch.setattr(geo, "_points", {})
    monkeypatch.setattr(geo, "SCANS_BEFORE_INDEX", 5)
    indexed = {z: coordinates(z, "US") for z in sample}
    assert geo._index is not None and len(geo._points) == 5
    assert indexed == one_by_one
    assert sum(p is not None for p in indexed.values()) > 400


# --- properties -----------------------------------------------------------------------------------


@st.composite
def routing_cases(draw):
    n_sites = draw(st.integers(0, 7))
    sites = [
        Site(loc, f"L{loc}", draw(st.sampled_from(["warehouse", "store", "dropship"])), draw(st.integers(0, 5)),
             draw(st.one_of(st.none(), st.floats(0, 5000, allow_nan=False))))
        for loc in range(1, n_sites + 1)
    ]
    products = draw(st.lists(st.integers(1, 8), max_size=6))  # duplicates allowed: lines of the same product
    demand = [(p, draw(st.integers(0, 9))) for p in products]
    available = {(p, s.location_id): draw(st.integers(-1, 9))
                 for p in set(products) for s in sites if draw(st.booleans())}
    dropship_sites = [s.location_id for s in sites if s.kind == "dropship"] + [99]
    dropship = {p: draw(st.sampled_from(dropship_sites)) for p in set(products) if draw(st.integers(0, 3)) == 0}
    weights = {p: D(draw(st.sampled_from(["0", "0.2", "1", "25", "80"]))) for p in set(products)}
    return demand, sites, available, dropship, weights


@settings(max_examples=300, deadline=None)
@given(routing_cases(), st.sampled_from(STRATEGIES))
def test_never_allocates_more_than_available_and_allocated_plus_short_is_demanded(case, strategy):
    demand, sites, available, dropship, weights = case
    plan = plan_route(strategy, demand, sites, available, weights=weights, dropship=dropship)
    demanded: dict[int, int] = {}
    for pid, qty in demand:
        demanded[pid] = demanded.get(pid, 0) + qty
    assert set(plan.allocations) == set(demanded)
    kinds = {s.location_id: s.kind for s in sites}
    used: set[int] = set()
    for pid, parts in plan.allocations.items():
        assert all(qty > 0 for _, qty in parts)
        assert len({loc for loc, _ in parts}) == len(parts)
        for loc, qty in parts:
            assert qty <= available.get((pid, loc), 0)
            if pid in dropship:
                assert loc == dropship[pid]
            else:
                assert kinds[loc] != "dropship"
            used.add(loc)
        assert sum(q for _, q in parts) + plan.short.get(pid, 0) == demanded[pid]
    assert all(n > 0 for n in plan.short.values())
    assert sorted(plan.locations) == sorted(used) and len(plan.locations) == len(used)
    # nothing that exists is left short
    for pid, missing in plan.short.items():
        pool = [dropship[pid]] if pid in dropship else [s.location_id for s in sites if s.kind != "dropship"]
        exists = sum(max(0, available.get((pid, loc), 0)) for loc in pool)
        assert sum(q for _, q in plan.allocations[pid]) == min(demanded[pid], exists)
    assert plan.estimated_cost >= 0 and plan.reason


@settings(max_examples=200, deadline=None)
@given(routing_cases())
def test_lowest_cost_is_never_dearer_than_the_other_strategies(case):
    demand, sites, available, dropship, weights = case
    plans = {s: plan_route(s, demand, sites, available, weights=weights, dropship=dropship) for s in STRATEGIES}
    cheapest = plans["lowest_cost"].estimated_cost
    assert cheapest <= plans["nearest_with_stock"].estimated_cost
    assert cheapest <= plans["fewest_shipments"].estimated_cost
    assert plans["lowest_cost"].short == plans["nearest_with_stock"].short == plans["fewest_shipments"].short
