"""Order routing: which location ships which units of an order. Pure functions, no database.

The service layer gathers the channel's locations as `Site`s (preference order as `priority`, distance
from the ship-to address when it is known, see om_core.geo), the available units per
(product_id, location_id), unit weights, and which products are dropshipped by which supplier
location; `plan_route` decides. The rules, in the retailer's terms:

* Dropship lines go to their supplier, and only there; every other line ships from our own
  (non-dropship) locations.
* One shipment is better than two: when one location can fill every line, it ships the whole order.
  `nearest_with_stock` takes the nearest such location, `fewest_shipments` the same (ties by
  distance, then priority), `lowest_cost` the cheapest by `estimate_shipment_cost`.
* The order is split only when no single location can fill it, or, with `lowest_cost`, when a split
  is strictly cheaper (heavy goods much closer elsewhere). Splits: `nearest_with_stock` gives each
  line to the nearest location that can fill it whole, else splits it nearest-first;
  `fewest_shipments` is a greedy set cover (the location covering the most remaining units first,
  ties by distance); `lowest_cost` builds several candidate plans (the other two, a cost-greedy one
  and local improvements of each) and keeps the cheapest.
* Ranking is by distance; an unknown distance sorts after every known one, then by channel priority,
  then by the order `sites` were given. With no distances at all the ranking is the channel priority,
  which is exactly the allocator this module replaces.
* What no location can supply is reported in `short` (product_id -> units); when some units of a
  product are missing everywhere, "fill every line" means "supply everything that exists".

Quantities of the same product on several demand lines are added together (allocations are per product).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from om_core.money import to_money

STRATEGIES = ("nearest_with_stock", "fewest_shipments", "lowest_cost")

# --- carrier-cost model ---------------------------------------------------------------------
# One parcel shipment costs
#     3.50 + 0.004 per km + weight_kg x (0.40 + 0.50 per 1,000 km)
# i.e. a handling fee, a distance charge, and a weight charge that grows with distance (as zoned
# parcel rates do). The weight x distance term is what makes a split worth it for heavy goods: with
# a purely additive weight charge the weight would cost the same from anywhere and only the extra
# handling fee of a second parcel would count. Unknown distance: 800 km is assumed (a mid zone).
# 1 kg over 10 km is about 3.94; 1 kg coast to coast (3,900 km) about 21.45; 50 kg coast to coast 136.60.
BASE_FEE = Decimal("3.50")
PER_KM = Decimal("0.004")
PER_KG = Decimal("0.40")
PER_KG_PER_1000_KM = Decimal("0.50")
UNKNOWN_DISTANCE_KM = Decimal("800")
DEFAULT_UNIT_WEIGHT_KG = Decimal("0.5")  # Product.weight_kg's default, for products missing from `weights`

# float mirror of the model, used only to search; plans are compared and reported in Decimal
_F_BASE, _F_KM, _F_KG, _F_KG_KM, _F_UNKNOWN = 3.5, 0.004, 0.40, 0.0005, 800.0
_EPS = 1e-9


@dataclass(frozen=True)
class Site:
    """A location that may ship the order: `priority` is the channel's preference (lower first),
    `distance_km` from the ship-to address, None when unknown."""

    location_id: int
    code: str
    kind: str
    priority: int
    distance_km: float | None


@dataclass
class RoutePlan:
    allocations: dict[int, list[tuple[int, int]]]  # product_id -> [(location_id, qty)]
    short: dict[int, int]  # product_id -> units nobody can supply
    reason: str
    estimated_cost: Decimal  # sum of estimate_shipment_cost over the shipments (one per location used)
    locations: list[int]  # locations used, nearest (best ranked) first, dropship suppliers last


def estimate_shipment_cost(distance_km: float | None, weight_kg: Decimal) -> Decimal:
    """Estimated carrier cost of one shipment (see the model above), rounded half-up to the cent."""
    if distance_km is None:
        km = UNKNOWN_DISTANCE_KM
    else:
        km = Decimal(repr(float(distance_km)))
    kg = weight_kg if isinstance(weight_kg, Decimal) else Decimal(str(weight_kg))
    if not km.is_finite() or not kg.is_finite() or km < 0 or kg < 0:
        raise ValueError(f"distance and weight must be finite and non-negative: {distance_km!r} km, {weight_kg!r} kg")
    return to_money(BASE_FEE + PER_KM * km + kg * (PER_KG + PER_KG_PER_1000_KM * km / 1000))


def _fcost(distance: float, weight: float) -> float:
    return _F_BASE + _F_KM * distance + weight * (_F_KG + _F_KG_KM * distance)


def _rank_key(site: Site) -> tuple[bool, float, int]:
    d = site.distance_km
    return (d is None, 0.0 if d is None else d, site.priority)


# --- the problem, in index form ----------------------------------------------------------------

Parts = list[list[tuple[int, int]]]  # per line: [(site index, qty)]


class _Problem:
    """Regular (non-dropship) lines against the sites that hold any of them, best ranked first."""

    __slots__ = ("sites", "dist", "n", "qty", "target", "w", "avail")

    def __init__(self, lines: list[tuple[int, int, float]], pool: list[Site], available: dict[tuple[int, int], int]):
        ids = [s.location_id for s in pool]
        get = available.get
        rows = [[max(0, get((pid, lid), 0) or 0) for lid in ids] for pid, _, _ in lines]
        keep = [j for j in range(len(pool)) if any(row[j] for row in rows)]
        self.sites = [pool[j] for j in keep]
        self.dist = [_F_UNKNOWN if s.distance_km is None else float(s.distance_km) for s in self.sites]
        self.n = len(self.sites)
        self.avail = [[row[j] for j in keep] for row in rows]
        self.qty = [q for _, q, _ in lines]
        self.w = [w for _, _, w in lines]
        self.target = [min(q, sum(row)) for q, row in zip(self.qty, self.avail)]

    def singles(self) -> list[int]:
        """Sites that can supply every line's target on their own, in rank order."""
        if not any(self.target):
            return []
        t = self.target
        return [j for j in range(self.n) if all(row[j] >= need for row, need in zip(self.avail, t))]

    def whole(self, j: int) -> Parts:
        return [[(j, need)] if need else [] for need in self.target]

    def fcost(self, parts: Parts) -> float:
        load: dict[int, float] = {}
        for i, ps in enumerate(parts):
            for j, q in ps:
                load[j] = load.get(j, 0.0) + q * self.w[i]
        return sum(_fcost(self.dist[j], wt) for j, wt in load.items())

    # -- split heuristics --

    def nearest_split(self) -> Parts:
        parts: Parts = []
        for row, qty, need in zip(self.avail, self.qty, self.target):
            j = next((j for j in range(self.n) if row[j] >= qty), None)
            if j is not None:
                parts.append([(j, qty)])
                continue
            ps = []
            for j in range(self.n):
                if need == 0:
                    break
                take = min(need, row[j])
                if take:
                    ps.append((j, take))
                    need -= take
            parts.append(ps)
        return parts

    def set_cover(self) -> Parts:
        need = list(self.target)
        parts: Parts = [[] for _ in need]
        lines = range(len(need))
        taken = [False] * self.n  # a location ships once, everything it can
        while True:
            best_j, best_units = -1, 0
            for j in range(self.n):
                if taken[j]:
                    continue
                units = 0
                for i in lines:
                    if need[i]:
                        a = self.avail[i][j]
                        units += a if a < need[i] else need[i]
                if units > best_units:
                    best_j, best_units = j, units
            if best_j < 0:
                return parts
            taken[best_j] = True
            for i in lines:
                take = min(need[i], self.avail[i][best_j])
                if take:
                    parts[i].append((best_j, take))
                    need[i] -= take

    def cost_greedy(self) -> Parts:
        """Heaviest line first, each to the location where it adds the least cost."""
        load = [0.0] * self.n
        used = [False] * self.n
        parts: Parts = [[] for _ in self.target]

        def added(j: int, weight: float) -> float:
            before = _fcost(self.dist[j], load[j]) if used[j] else 0.0
            return _fcost(self.dist[j], load[j] + weight) - before

        for i in sorted(range(len(self.target)), key=lambda i: -self.target[i] * self.w[i]):
            need, row, wi = self.target[i], self.avail[i], self.w[i]
            if not need:
                continue
            best, best_inc = -1, 0.0
            for j in range(self.n):
                if row[j] >= need:
                    inc = added(j, need * wi)
                    if best < 0 or inc < best_inc - _EPS:
                        best, best_inc = j, inc
            if best >= 0:
                choices = [(best, need)]
            else:  # nobody has the whole line: cheapest per unit first
                choices, left = [], dict((j, row[j]) for j in range(self.n) if row[j])
                while need and left:
                    j = min(left, key=lambda j: added(j, min(need, left[j]) * wi) / min(need, left[j]))
                    take = min(need, left.pop(j))
                    choices.append((j, take))
                    load[j] += take * wi
                    used[j] = True
                    need -= take
                parts[i] = choices
                continue
            parts[i] = choices
            load[best] += need * wi
            used[best] = True
        return parts

    def improve(self, parts: Parts) -> Parts:
        """Local search: move one whole line, or every line of one location, to another location
        while that lowers the cost."""
        parts = [list(ps) for ps in parts]
        load = [0.0] * self.n
        count = [0] * self.n
        for i, ps in enumerate(parts):
            for j, q in ps:
                load[j] += q * self.w[i]
                count[j] += 1

        def cost(j: int, c: int, wt: float) -> float:
            return _fcost(self.dist[j], wt) if c > 0 else 0.0

        for _ in range(4 * len(parts) + 4):
            best_delta, best_move = -_EPS, None
            # move one whole line
            for i, ps in enumerate(parts):
                if len(ps) != 1:
                    continue
                j, q = ps[0]
                wq = q * self.w[i]
                out = cost(j, count[j] - 1, load[j] - wq) - cost(j, count[j], load[j])
                row = self.avail[i]
                for k in range(self.n):
                    if k != j and row[k] >= q:
                        delta = out + cost(k, count[k] + 1, load[k] + wq) - cost(k, count[k], load[k])
                        if delta < best_delta:
                            best_delta, best_move = delta, ((i,), k)
            # close one location: all of its lines to another location
            for j in range(self.n):
                if count[j] < 2:
                    continue
                group = [i for i, ps in enumerate(parts) if ps and ps[0][0] == j and len(ps) == 1]
                if len(group) != count[j]:
                    continue  # holds a piece of a split line; leave it
                wg = load[j]
                out = -cost(j, count[j], wg)
                for k in range(self.n):
                    if k != j and all(self.avail[i][k] >= parts[i][0][1] for i in group):
                        delta = out + cost(k, count[k] + len(group), load[k] + wg) - cost(k, count[k], load[k])
                        if delta < best_delta:
                            best_delta, best_move = delta, (tuple(group), k)
            if best_move is None:
                break
            group, k = best_move
            for i in group:
                j, q = parts[i][0]
                wq = q * self.w[i]
                load[j] -= wq
                count[j] -= 1
                load[k] += wq
                count[k] += 1
                parts[i] = [(k, q)]
        return parts


# --- planning --------------------------------------------------------------------------------


def _km(distance: float | None) -> str:
    return "distance unknown" if distance is None else f"{distance:,.0f} km"


def _site_list(sites: list[Site]) -> str:
    return ", ".join(f"{s.code} {_km(s.distance_km)}" if s.distance_km is not None else f"{s.code} (distance unknown)"
                     for s in sites)


def plan_route(
    strategy: str,
    demand: list[tuple[int, int]],
    sites: list[Site],
    available: dict[tuple[int, int], int],
    weights: dict[int, Decimal] | None = None,
    dropship: dict[int, int] | None = None,
    *,
    skus: dict[int, str] | None = None,
) -> RoutePlan:
    """Route `demand` ([(product_id, qty)]) over `sites` with `available[(product_id, location_id)]` units.

    `weights`: unit weight in kg per product (missing: 0.5 kg). `dropship`: product_id -> the supplier
    location that ships it (a location missing from `sites` is used with unknown distance).
    `skus`: product_id -> SKU, only for the wording of `reason`. Unknown strategy: ValueError.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown routing strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    weights = weights or {}
    dropship = dropship or {}
    skus = skus or {}

    wanted: dict[int, int] = {}
    for pid, qty in demand:
        if qty < 0:
            raise ValueError(f"negative quantity {qty} for product {pid}")
        wanted[pid] = wanted.get(pid, 0) + qty

    by_id: dict[int, Site] = {}
    for s in sorted(sites, key=_rank_key):
        by_id.setdefault(s.location_id, s)
    ranked = list(by_id.values())
    rank = {s.location_id: n for n, s in enumerate(ranked)}

    unit_weight = {pid: Decimal(weights.get(pid, DEFAULT_UNIT_WEIGHT_KG)) for pid in wanted}
    allocations: dict[int, list[tuple[int, int]]] = {pid: [] for pid in wanted}
    short: dict[int, int] = {}

    # dropship lines: their supplier, nobody else
    ds_lines: dict[int, list[int]] = {}
    for pid, qty in wanted.items():
        if pid not in dropship or qty == 0:
            continue
        loc = dropship[pid]
        if loc not in by_id:
            by_id[loc] = Site(loc, f"location {loc}", "dropship", 1 << 30, None)
        ds_lines.setdefault(loc, []).append(pid)
        take = min(qty, max(0, available.get((pid, loc), 0) or 0))
        if take:
            allocations[pid] = [(loc, take)]
        if qty > take:
            short[pid] = qty - take

    # regular lines: own locations only
    regular = [(pid, qty) for pid, qty in wanted.items() if pid not in dropship and qty > 0]
    pool = [s for s in ranked if s.kind != "dropship"]
    regular_reason = ""
    if regular:
        problem = _Problem([(pid, qty, float(unit_weight[pid])) for pid, qty in regular], pool, available)
        parts, regular_reason = _choose(strategy, problem, regular, unit_weight)
        for (pid, qty), ps in zip(regular, parts):
            got = sorted(((problem.sites[j].location_id, q) for j, q in ps), key=lambda p: rank[p[0]])
            allocations[pid] = got
            missing = qty - sum(q for _, q in got)
            if missing:
                short[pid] = missing

    short = {pid: short[pid] for pid in wanted if pid in short}  # in demand order

    # shipments, cost, wording
    shipment_weight: dict[int, Decimal] = {}
    for pid, got in allocations.items():
        for loc, q in got:
            shipment_weight[loc] = shipment_weight.get(loc, Decimal(0)) + q * unit_weight[pid]
    own = sorted((loc for loc in shipment_weight if loc not in ds_lines), key=rank.__getitem__)
    suppliers = [loc for loc in ds_lines if loc in shipment_weight]
    locations = own + suppliers
    estimated = sum((estimate_shipment_cost(by_id[loc].distance_km, shipment_weight[loc]) for loc in locations),
                    Decimal("0.00"))

    phrases = [regular_reason] if regular_reason else []
    if ds_lines:
        phrases.append("dropship: " + ", ".join(
            f"{', '.join(skus.get(pid, f'product {pid}') for pid in pids)} from {by_id[loc].code}"
            for loc, pids in ds_lines.items()))
    if short:
        phrases.append("short: " + ", ".join(f"{n} of {skus.get(pid, f'product {pid}')}" for pid, n in short.items()))
    return RoutePlan(allocations=allocations, short=short, reason="; ".join(phrases) or "nothing to route",
                     estimated_cost=to_money(estimated), locations=locations)


def _decimal_cost(problem: _Problem, parts: Parts, regular: list[tuple[int, int]],
                  unit_weight: dict[int, Decimal]) -> Decimal:
    load: dict[int, Decimal] = {}
    for (pid, _), ps in zip(regular, parts):
        for j, q in ps:
            load[j] = load.get(j, Decimal(0)) + q * unit_weight[pid]
    return sum((estimate_shipment_cost(problem.sites[j].distance_km, wt) for j, wt in load.items()), Decimal("0.00"))


def _used(parts: Parts) -> list[int]:
    return sorted({j for ps in parts for j, _ in ps})


def _choose(strategy: str, p: _Problem, regular: list[tuple[int, int]],
            unit_weight: dict[int, Decimal]) -> tuple[Parts, str]:
    if not any(p.target):
        return [[] for _ in regular], "no location has stock for this order"
    complete = p.target == p.qty
    singles = p.singles()

    if strategy == "lowest_cost":
        single, single_cost = None, None
        if singles:
            fc = {j: p.fcost(p.whole(j)) for j in singles}
            floor = min(fc.values())
            for j in singles:  # exact comparison among the (near-)cheapest; ties go to the best ranked
                if fc[j] <= floor + 0.02:
                    c = _decimal_cost(p, p.whole(j), regular, unit_weight)
                    if single_cost is None or c < single_cost:
                        single, single_cost = j, c
        starts = [p.cost_greedy(), p.nearest_split(), p.set_cover()]
        if single is not None:
            starts.append(p.whole(single))
        best, best_key = None, None
        for parts in starts + [p.improve(parts) for parts in starts]:
            key = (_decimal_cost(p, parts, regular, unit_weight), len(_used(parts)))
            if best_key is None or key < best_key:
                best, best_key = parts, key
        assert best is not None and best_key is not None
        if single is not None and single_cost is not None and not best_key[0] < single_cost:
            s = p.sites[single]
            what = "everything" if complete else "all the stock there is"
            return p.whole(single), (f"lowest cost: {s.code} ships {what} in one shipment, "
                                     f"{_km(s.distance_km)}, est. ${single_cost}")
        used = [p.sites[j] for j in _used(best)]
        if single is not None and single_cost is not None:
            why = f"cheaper than one shipment from {p.sites[single].code}: ${best_key[0]} vs ${single_cost}"
        else:
            why = "no single location has everything"
        return best, f"split across {len(used)} locations ({why}): {_site_list(used)}, est. ${best_key[0]}"

    if singles:
        s = p.sites[singles[0]]  # sites are in rank order: nearest, then priority
        if strategy == "nearest_with_stock":
            what = "full stock" if complete else "all the stock there is"
            if s.distance_km is None:
                reason = f"first location in channel priority with {what}: {s.code}, distance unknown"
                return p.whole(singles[0]), reason
            return p.whole(singles[0]), f"nearest location with {what}: {s.code}, {_km(s.distance_km)}"
        what = "everything" if complete else "all the stock there is"
        return p.whole(singles[0]), f"fewest shipments: {s.code} has {what}, {_km(s.distance_km)}"

    parts = p.nearest_split() if strategy == "nearest_with_stock" else p.set_cover()
    used = [p.sites[j] for j in _used(parts)]
    prefix = "fewest shipments: " if strategy == "fewest_shipments" else ""
    return parts, f"{prefix}split across {len(used)} locations (no single location has everything): {_site_list(used)}"
