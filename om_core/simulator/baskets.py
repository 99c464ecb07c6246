"""From expected demand to orders: how many lines sell, who buys them, in what basket, how it is delivered.

For each day and selling point the expected units (`demand.py`) become Poisson numbers of order
lines, scaled by a shock of the day (weather, local events) per point. The lines of a point are cut
into baskets (stores: about two lines, online: fewer), each basket gets co-purchased items with some
probability (a SKU's partners: one of its own category, one of a complementary one), and a customer:

* chosen by taste: an archetype is drawn in proportion to how much its members shop at this point,
  how much it likes the basket's category and how much it likes the lead item's brand (archetypes
  favour some brands across categories), then a member in proportion to activity;
* consumables are mostly re-bought by earlier buyers once their cycle has passed (repeat purchases);
* items that go with something a customer bought (the lead SKU is a partner of an earlier purchase:
  the same category's staple, or a complementary category's) are often bought by that customer a few
  days to weeks later ("goes with" follow-ups);
* POS sales are partly anonymous (no loyalty card); online customers may pick up at their home store;
* customers are only drawn between the day they join and the day they lapse; a customer who joins
  during the period places a first order within a few weeks (most sign up to buy), at their
  preferred channel (the home store's till for store shoppers), then shops like everyone else.

The shipping method depends on the segment (premium customers pay for speed), new customers use the
welcome coupon on their first online order now and then, and a few online payments are declined.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from om_core.simulator.demand import KINDS, DemandModel
from om_core.simulator.world import ARCHETYPES, CITIES, TASTE_GROUPS, World

WELCOME_COUPON = "WELCOME10"
MEAN_LINES = {"store": 2.0, "web": 1.6, "app": 1.5, "marketplace": 1.25}
PARTNER_RATE = 0.12
ANONYMOUS_POS = 0.4
PICKUP_SHARE = 0.12
DECLINE_RATE = 0.003
REPEAT_SHARE = 0.55
NEWCOMER_SHARE = 0.6  # of baskets at a point and taste group with someone who joined and has not ordered yet: theirs
FOLLOW_SHARE = 0.3  # of baskets led by an item that goes with an earlier purchase: bought by that earlier buyer (knob `follow_share`)
FOLLOW_DAYS = (2, 120)  # a follow-up comes this many days after the purchase it goes with
# how a customer with a preferred channel (web, app, marketplace, store) spreads purchases over point kinds (store, web, app, marketplace)
PREFERRED_KIND = ("web", "app", "marketplace", "store")  # world.PREFERRED_CHANNELS as selling point kinds
KIND_WEIGHTS = np.array([
    [0.15, 0.70, 0.10, 0.05],
    [0.15, 0.15, 0.65, 0.05],
    [0.10, 0.15, 0.05, 0.70],
    [0.75, 0.15, 0.07, 0.03],
])
SHIPPING_MIX = {  # by segment: standard, expedited, overnight
    0: (0.88, 0.10, 0.02), 1: (0.78, 0.18, 0.04), 2: (0.55, 0.33, 0.12), 3: (0.85, 0.12, 0.03),
}
STORE_HOURS = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 5, 7, 9, 9, 8, 8, 8, 9, 10, 9, 6, 3, 0, 0], dtype=float)
ONLINE_HOURS = np.array([2, 1, 0.6, 0.4, 0.4, 0.6, 1.2, 2.5, 3.5, 4, 4.2, 4.5, 5, 4.8, 4.5, 4.5, 4.6, 5, 5.5, 6.2, 6.8, 6.5, 5, 3.4])


@dataclass(slots=True)
class PlannedOrder:
    """One order as the customer means to place it (indices into the world's tables)."""

    seq: int
    point: int
    customer: int | None
    lines: list[tuple[int, int]]  # (sku index, quantity)
    at: datetime
    delivery: str  # ship | pickup | carry_out
    method: str | None = None
    store: int | None = None  # the POS store, or the pickup store
    coupon: str | None = None
    decline: bool = False
    allow_backorder: bool = False
    attempt: int = 0


class _Pool:
    """Customers who shop at one selling point, by taste group, with cumulative weights."""

    def __init__(self, members: np.ndarray, weights: np.ndarray, groups: np.ndarray, n_groups: int) -> None:
        self.members: list[np.ndarray] = []
        self.cum: list[np.ndarray] = []
        self.mass = np.zeros(n_groups)
        for a in range(n_groups):
            sel = groups == a
            m, w = members[sel], weights[sel]
            self.members.append(m)
            self.cum.append(np.cumsum(w))
            self.mass[a] = w.sum()


class BasketMaker:
    """Turns a day's expected demand into planned orders (see the module docstring)."""

    def __init__(self, world: World, demand: DemandModel) -> None:
        self.world, self.demand = world, demand
        cfg = world.config
        self.np_rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 3]))
        self.rng = random.Random(cfg.seed * 1_000_003 + 3)
        cust, skus = world.customers, world.skus
        self.n_groups = len(ARCHETYPES) * TASTE_GROUPS
        has_store = np.array([CITIES[c].store for c in cust.city])
        kind_w = KIND_WEIGHTS[cust.preferred] * cust.activity[:, None]
        kind_w[:, 0] *= np.where(has_store, 1.0, 0.05)
        self.pools: list[_Pool] = []
        ids = np.arange(len(cust))
        for p in demand.points:
            kind = KINDS.index(p.kind)
            if p.store is None:
                self.pools.append(_Pool(ids, kind_w[:, kind], cust.taste_group, self.n_groups))
            else:
                sel = cust.home_store == p.store
                self.pools.append(_Pool(ids[sel], kind_w[sel, kind], cust.taste_group[sel], self.n_groups))
        # per point, (n_skus, n_groups): cumulative weight of each taste group as the buyer of a SKU
        group_archetype = np.arange(self.n_groups) // TASTE_GROUPS
        self.taste = world.archetype_affinity[group_archetype][:, skus.category] * world.group_brand[:, world.sku_brand]  # (groups, skus)
        self.group_cum = [np.cumsum(pool.mass[None, :] * self.taste.T, axis=1) for pool in self.pools]
        self.buyers: dict[int, deque] = {}  # consumable SKU -> recent (customer, day)
        self.followers: dict[int, deque] = {}  # SKU -> recent (customer, day) who bought something it goes with
        self.partners = [tuple(int(x) for x in row if x >= 0) for row in skus.partners]
        self.follow_share = float(cfg.knob("follow_share", FOLLOW_SHARE))
        self.ordered_before = np.zeros(len(cust), dtype=bool)
        # sign-ups waiting for their first order, by (selling point, taste group): the preferred
        # channel's point, or the home store's till
        online = {p.kind: j for j, p in enumerate(demand.points) if p.store is None}
        till = {p.store: j for j, p in enumerate(demand.points) if p.store is not None}
        joiners = np.flatnonzero(cust.join_day >= 0)
        self.joiners = joiners[np.argsort(cust.join_day[joiners], kind="stable")].tolist()
        self.joiner_point: dict[int, int] = {}
        for c in self.joiners:
            kind = PREFERRED_KIND[int(cust.preferred[c])]
            self.joiner_point[c] = till[int(cust.home_store[c])] if kind == "store" else online[kind]
        self.next_joiner = 0
        self.newcomers: dict[tuple[int, int], deque] = {}
        self.coupon_used = np.zeros(len(cust), dtype=bool)
        self.seq = 0
        self.qty_extra = [world.categories[c].extra_qty for c in skus.category]
        self.cycle = skus.cycle_days.tolist()
        self.tz = {c.code: ZoneInfo(c.tz) for c in CITIES}
        self.store_tz = [ZoneInfo(next(c.tz for c in CITIES if c.code == world.location(s).city)) for s in world.stores]
        self.channel_code = [p.code for p in demand.points]

    # --- helpers -------------------------------------------------------------------------------

    def _eligible(self, c: int, day: int) -> bool:
        cust = self.world.customers
        return bool(cust.join_day[c] <= day < cust.lapse_day[c])

    def _customer(self, point: int, group: int, day: int) -> int | None:
        """A customer of taste group `group` at `point` (None if nobody eligible turns up): often a
        recent sign-up's first order, else a member by activity."""
        pool, rng = self.pools[point], self.rng
        waiting = self.newcomers.get((point, group))
        while waiting and rng.random() < NEWCOMER_SHARE:
            c = waiting.popleft()
            if not self.ordered_before[c] and self._eligible(c, day):
                return c
        members = pool.members[group]
        if len(members) == 0:
            return None
        w = pool.cum[group]
        for _ in range(8):
            c = int(members[min(int(np.searchsorted(w, rng.random() * w[-1], side="right")), len(members) - 1)])
            if self._eligible(c, day):
                return c
        return None

    def _repeat_buyer(self, sku: int, point: int, day: int) -> int | None:
        """An earlier buyer of a consumable whose cycle has come round, who shops at this point."""
        q = self.buyers.get(sku)
        if not q:
            return None
        cust = self.world.customers
        store = self.demand.points[point].store
        due = 0.8 * self.cycle[sku]
        for c, last in q:
            if day - last >= due and self._eligible(c, day) and (store is None or cust.home_store[c] == store):
                return c
        return None

    def _follower(self, sku: int, point: int, day: int) -> int | None:
        """An earlier buyer of something `sku` goes with, who shops at this point, now coming back for it
        (taken off the list: one follow-up per purchase)."""
        q = self.followers.get(sku)
        if not q:
            return None
        cust = self.world.customers
        store = self.demand.points[point].store
        lo, hi = FOLLOW_DAYS
        for k in range(len(q) - 1, -1, -1):
            c, bought = q[k]
            if lo <= day - bought <= hi and self._eligible(c, day) and (store is None or cust.home_store[c] == store):
                del q[k]
                return c
        return None

    def _time(self, day_start: datetime, hours: np.ndarray, tz: ZoneInfo) -> datetime:
        """A moment on the UTC day: the local hour profile shifted to UTC (the day wraps round)."""
        offset = tz.utcoffset(day_start.replace(hour=12, tzinfo=None)).total_seconds() / 3600
        local_hour = self.rng.choices(range(24), weights=hours)[0]
        utc_hour = (local_hour - offset) % 24
        seconds = int(utc_hour * 3600 + self.rng.random() * 3600)
        return day_start + timedelta(seconds=min(max(seconds, 600), 86_399))

    # --- the day ---------------------------------------------------------------------------------

    def plan_day(self, day: int, active: np.ndarray) -> list[PlannedOrder]:
        """The orders customers mean to place on `day`, in time order. `active`: SKUs on sale."""
        world, demand, nrng = self.world, self.demand, self.np_rng
        skus = world.skus
        day_start = datetime.combine(demand.date(day), time(0), tzinfo=UTC)
        cust = world.customers
        while self.next_joiner < len(self.joiners) and cust.join_day[self.joiners[self.next_joiner]] <= day:
            c = self.joiners[self.next_joiner]
            self.newcomers.setdefault((self.joiner_point[c], int(cust.taste_group[c])), deque()).append(c)
            self.next_joiner += 1
        lam = demand.expected(day) * active[:, None]
        shock = nrng.lognormal(0.0, 0.12, size=len(demand.points))
        counts = nrng.poisson(lam * shock[None, :] / demand.mean_qty[:, None] / (1 + PARTNER_RATE))
        orders: list[PlannedOrder] = []
        for j, point in enumerate(demand.points):
            sku_idx = np.repeat(np.arange(len(skus)), counts[:, j])
            if len(sku_idx) == 0:
                continue
            nrng.shuffle(sku_idx)
            # a basket: its lead line, a taste group drawn by its liking for the lead (category and
            # brand), then the rest of the basket from the day's other lines, drawn by that group's taste
            n_lines = len(sku_idx)
            cum = self.group_cum[j][sku_idx]
            group = np.minimum((cum < (nrng.random(n_lines) * cum[:, -1])[:, None]).sum(axis=1), self.n_groups - 1).tolist()
            sizes = (1 + nrng.poisson(MEAN_LINES[point.kind] - 1, size=n_lines)).tolist()
            free = np.ones(n_lines, dtype=bool)
            for i in range(n_lines):
                if not free[i]:
                    continue
                free[i] = False
                basket, g = [int(sku_idx[i])], group[i]
                if sizes[i] > 1:
                    others = np.flatnonzero(free)
                    if len(others):
                        keys = np.log(nrng.random(len(others))) / self.taste[g, sku_idx[others]]  # weighted, without replacement
                        k = min(sizes[i] - 1, len(others))
                        top = np.argpartition(-keys, k - 1)[:k] if k < len(others) else np.arange(len(others))
                        chosen = others[top[np.argsort(-keys[top], kind="stable")]]
                        free[chosen] = False
                        basket += sku_idx[chosen].tolist()
                orders.append(self._order(day, day_start, j, basket, g, active))
        orders.sort(key=lambda o: (o.at, o.seq))
        return orders

    def _order(self, day: int, day_start: datetime, point_index: int, basket: list[int], group: int, active: np.ndarray) -> PlannedOrder:
        world, rng = self.world, self.rng
        skus, cust = world.skus, world.customers
        point = self.demand.points[point_index]
        lines: dict[int, int] = {}
        for s in basket:
            q = 1
            extra = self.qty_extra[s]
            if extra > 0 and rng.random() < extra / (1 + extra) * 1.6:
                q += 1 + (rng.random() < 0.3)
            if rng.random() < 0.008:  # the odd bulk buy: intermittent, lumpy demand
                q = rng.randint(3, 10)
            lines[s] = lines.get(s, 0) + q
            if rng.random() < PARTNER_RATE:
                partner = int(skus.partners[s, int(rng.random() < 0.5)])
                if partner >= 0 and active[partner] and (point.store is None or skus.carried[partner, point.store]) and partner not in lines:
                    lines[partner] = 1
        lead = basket[0]
        customer: int | None = None
        if point.kind != "store" or rng.random() >= ANONYMOUS_POS:
            if self.cycle[lead] > 0 and rng.random() < REPEAT_SHARE:
                customer = self._repeat_buyer(lead, point_index, day)
            if customer is None and lead in self.followers and rng.random() < self.follow_share:
                customer = self._follower(lead, point_index, day)
            if customer is None:
                customer = self._customer(point_index, group, day)
        self.seq += 1
        order = PlannedOrder(seq=self.seq, point=point_index, customer=customer, lines=list(lines.items()), at=day_start, delivery="carry_out")
        if point.kind == "store":
            order.store = point.store
            order.at = self._time(day_start, STORE_HOURS, self.store_tz[point.store])  # type: ignore[index]
            return order
        if customer is None:  # nobody eligible at this point today: a guest order would need an address; drop it
            order.lines = []
            return order
        order.at = self._time(day_start, ONLINE_HOURS, self.tz[CITIES[cust.city[customer]].code])
        home = int(cust.home_store[customer])
        if (point.kind in ("web", "app") and CITIES[cust.city[customer]].store and rng.random() < PICKUP_SHARE
                and all(skus.carried[s, home] for s, _ in order.lines)):
            order.delivery, order.store = "pickup", home
        else:
            order.delivery = "ship"
            mix = SHIPPING_MIX[int(cust.segment[customer])]
            order.method = rng.choices(("standard", "expedited", "overnight"), weights=mix)[0]
        if cust.join_day[customer] >= 0 and not self.ordered_before[customer] and not self.coupon_used[customer] and rng.random() < 0.35:
            order.coupon = WELCOME_COUPON
            self.coupon_used[customer] = True
        order.decline = rng.random() < DECLINE_RATE
        return order

    def record_purchase(self, order: PlannedOrder, day: int) -> None:
        """A placed order: its consumables now come round again for this customer."""
        c = order.customer
        if c is None:
            return
        self.ordered_before[c] = True
        for s, _ in order.lines:
            if self.cycle[s] > 0:
                q = self.buyers.get(s)
                if q is None:
                    q = self.buyers[s] = deque(maxlen=60)
                q.append((c, day))
            for p in self.partners[s]:
                f = self.followers.get(p)
                if f is None:
                    f = self.followers[p] = deque(maxlen=40)
                f.append((c, day))


def expected_lines_per_order(kind: str) -> float:
    return MEAN_LINES[kind] * (1 + PARTNER_RATE)


__all__ = ["BasketMaker", "PlannedOrder", "WELCOME_COUPON", "expected_lines_per_order"]
