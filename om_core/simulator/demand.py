"""Expected demand: units per day for every SKU at every selling point. Pure numpy, no database.

A selling point is a channel where it sells: each store's POS (its own store), and the web, app and
marketplace channels (online, fulfilled from the warehouses and ship-from-store stores). For day `d`
(0 = the first simulated day) the expected units of SKU `s` at point `p` are

    static[s, p]                      popularity x category share of the channel x store size and
                                      store-by-category taste x the store's assortment
  x trend[kind(p), d]                 online grows, stores stagnate
  x weekly[kind(p), weekday(d)]       Saturday is the stores' day, Monday the web's
  x yearly[category(s), day of year]  a retail year plus each category's own season
  x holiday[d, kind(p), category(s)]  Black Friday, Cyber Monday, Christmas, July 4th, Easter...
  x sku_factor[s, d]                  promotion uplift and post-promotion dip, price elasticity
                                      (list price changes, clearance), launch ramp, end-of-life decay

Everything is deterministic given the world (itself from the seed). The realisation (Poisson draws,
day-to-day shocks, baskets and customers) is `baskets.py`'s job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import numpy as np

from om_core.simulator.world import CATEGORY_INDEX, World, price_point

KINDS = ("store", "web", "app", "marketplace")
KIND_SHARE = np.array([0.45, 0.32, 0.15, 0.08])
KIND_GROWTH = np.array([-0.02, 0.08, 0.22, 0.12])  # per year, log
WEEKLY = np.array([  # Monday .. Sunday
    [0.80, 0.78, 0.85, 0.95, 1.15, 1.45, 1.22],
    [1.12, 1.06, 1.02, 1.00, 0.91, 0.88, 1.01],
    [1.00, 0.97, 0.98, 1.00, 0.97, 1.04, 1.04],
    [1.06, 1.03, 1.00, 1.00, 0.95, 0.96, 1.00],
])
WEEKLY = WEEKLY / WEEKLY.mean(axis=1, keepdims=True)
MONTHLY = np.array([0.86, 0.86, 0.95, 1.0, 1.01, 0.98, 0.97, 1.03, 0.95, 0.98, 1.08, 1.33])  # a retail year, mid-month values
GIFT = ("toys", "electronics", "beauty", "accessories", "home-decor", "books", "kitchen")
PROMO_FEATURE = 1.15  # a promoted item also gets a better place on the page and the shelf


@dataclass(frozen=True)
class Point:
    code: str  # the channel code
    kind: str  # store | web | app | marketplace
    store: int | None  # index into World.stores for a POS point


@dataclass(frozen=True)
class PromotionEvent:
    """A promotion on the calendar: created through the promotions service before it starts."""

    name: str
    scope: str  # category | sku
    target: str  # category code or SKU code
    percent: int
    start_day: int  # first day (index) it applies
    end_day: int  # first day it no longer applies
    skus: tuple[int, ...]


@dataclass(frozen=True)
class PriceChange:
    day: int
    sku: int
    price: Decimal
    reason: str


# --- the calendar ---------------------------------------------------------------------------


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based; -1 = last) `weekday` (Monday = 0) of a month."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def easter(year: int) -> date:
    """Western Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l) // 451
    month = (h + l - 7 * m + 114) // 31
    return date(year, month, (h + l - 7 * m + 114) % 31 + 1)


def thanksgiving(year: int) -> date:
    return nth_weekday(year, 11, 3, 4)


def retail_events(year: int) -> dict[str, date]:
    """The US holidays and retail events of a year that move demand."""
    tg = thanksgiving(year)
    return {
        "new_years_day": date(year, 1, 1), "mlk_day": nth_weekday(year, 1, 0, 3), "super_bowl": nth_weekday(year, 2, 6, 2),
        "valentines_day": date(year, 2, 14), "presidents_day": nth_weekday(year, 2, 0, 3), "easter": easter(year),
        "mothers_day": nth_weekday(year, 5, 6, 2), "memorial_day": nth_weekday(year, 5, 0, -1), "fathers_day": nth_weekday(year, 6, 6, 3),
        "independence_day": date(year, 7, 4), "summer_deals": nth_weekday(year, 7, 1, 2), "labor_day": nth_weekday(year, 9, 0, 1),
        "halloween": date(year, 10, 31), "veterans_day": date(year, 11, 11), "thanksgiving": tg, "black_friday": tg + timedelta(days=1),
        "cyber_monday": tg + timedelta(days=4), "christmas": date(year, 12, 25),
    }


def _holiday_table(start: date, n_days: int, n_cats: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_days, 4 kinds) and (n_days, n_cats) multipliers for holidays and retail events."""
    kind = np.ones((n_days, len(KINDS)))
    cat = np.ones((n_days, n_cats))
    end = start + timedelta(days=n_days - 1)

    def at(day: date) -> int | None:
        i = (day - start).days
        return i if 0 <= i < n_days else None

    def k(day: date, mult: tuple[float, float, float, float]) -> None:
        i = at(day)
        if i is not None:
            kind[i] *= mult

    def c(day: date, category: str, mult: float) -> None:
        i = at(day)
        if i is not None:
            cat[i, CATEGORY_INDEX[category]] *= mult

    def span(first: date, days: int, category: str, peak: float, ramp: bool = False) -> None:
        for j in range(days):
            c(first + timedelta(days=j), category, 1 + (peak - 1) * ((j + 1) / days if ramp else 1.0))

    for year in range(start.year - 1, end.year + 2):
        ev = retail_events(year)
        k(ev["new_years_day"], (0.45, 0.85, 0.9, 0.9))
        k(ev["mlk_day"], (1.1, 1.05, 1.05, 1.0))
        for j in range(1, 7):
            d = ev["super_bowl"] - timedelta(days=j)
            c(d, "snacks", 1.5), c(d, "beverages", 1.5), c(d, "electronics", 1.2)
        k(ev["super_bowl"], (0.85, 0.95, 0.95, 0.95))
        for cat_code, peak in (("beauty", 1.4), ("snacks", 1.35), ("accessories", 1.25)):
            span(ev["valentines_day"] - timedelta(days=7), 8, cat_code, peak, ramp=True)
        for j in (-2, -1, 0):
            k(ev["presidents_day"] + timedelta(days=j), (1.15, 1.08, 1.08, 1.0))
        k(ev["easter"], (0.3, 0.9, 0.9, 0.95))
        span(ev["easter"] - timedelta(days=7), 7, "snacks", 1.6, ramp=True)
        span(ev["easter"] - timedelta(days=7), 7, "kids-apparel", 1.3)
        for cat_code, peak in (("beauty", 1.5), ("home-decor", 1.35), ("accessories", 1.3), ("kitchen", 1.2), ("bedding-bath", 1.15)):
            span(ev["mothers_day"] - timedelta(days=10), 10, cat_code, peak, ramp=True)
        for j in (-2, -1, 0):
            d = ev["memorial_day"] + timedelta(days=j)
            k(d, (1.25, 1.12, 1.12, 1.05))
            c(d, "garden", 1.4), c(d, "sports-outdoor", 1.3), c(d, "beverages", 1.3)
        for cat_code, peak in (("electronics", 1.3), ("sports-outdoor", 1.3), ("mens-apparel", 1.25)):
            span(ev["fathers_day"] - timedelta(days=10), 10, cat_code, peak, ramp=True)
        k(ev["independence_day"], (0.55, 0.8, 0.85, 0.85))
        for j in (1, 2, 3):
            d = ev["independence_day"] - timedelta(days=j)
            c(d, "beverages", 1.5), c(d, "snacks", 1.4), c(d, "grocery", 1.2), c(d, "sports-outdoor", 1.2)
        for j in (0, 1):
            k(ev["summer_deals"] + timedelta(days=j), (1.0, 1.25, 1.25, 2.2))
            c(ev["summer_deals"] + timedelta(days=j), "electronics", 1.3)
        for j in range(45):  # back to school, peaking mid-August
            d = date(year, 7, 20) + timedelta(days=j)
            tri = 1 - abs(j - 26) / 26
            c(d, "stationery", 1 + 0.6 * max(tri, 0)), c(d, "kids-apparel", 1 + 0.35 * max(tri, 0))
        for j in (-2, -1, 0):
            k(ev["labor_day"] + timedelta(days=j), (1.2, 1.1, 1.1, 1.05))
        span(ev["halloween"] - timedelta(days=14), 14, "snacks", 1.8, ramp=True)
        span(ev["halloween"] - timedelta(days=14), 14, "kids-apparel", 1.3, ramp=True)
        k(ev["halloween"], (0.9, 1.0, 1.0, 1.0))
        k(ev["veterans_day"], (1.1, 1.05, 1.05, 1.0))
        tg = ev["thanksgiving"]
        k(tg - timedelta(days=1), (1.1, 1.0, 1.0, 1.0))
        for cat_code, m in (("grocery", 1.5), ("beverages", 1.4), ("snacks", 1.3)):
            c(tg - timedelta(days=1), cat_code, m)
        k(tg, (0.0, 1.25, 1.3, 1.2))  # stores closed
        k(ev["black_friday"], (2.8, 2.4, 2.6, 2.2))
        for cat_code in ("electronics", "toys"):
            c(ev["black_friday"], cat_code, 1.3)
        k(tg + timedelta(days=2), (1.6, 1.4, 1.4, 1.3))
        k(tg + timedelta(days=3), (1.4, 1.4, 1.45, 1.3))
        k(ev["cyber_monday"], (1.1, 2.9, 3.0, 2.4))
        for j in range(23):  # the run-up to Christmas; online slows once delivery before the 25th is unsure
            d = date(year, 12, 1) + timedelta(days=j)
            t = (j + 1) / 23
            k(d, (1 + 0.6 * t, (1 + 0.4 * t) * (0.8 if j >= 18 else 1.0), (1 + 0.4 * t) * (0.8 if j >= 18 else 1.0), 1 + 0.3 * t))
            for g in GIFT:
                c(d, g, 1 + 0.5 * t)
        k(date(year, 12, 24), (1.3, 0.55, 0.6, 0.6))
        k(date(year, 12, 25), (0.0, 0.45, 0.5, 0.5))  # stores closed
        k(date(year, 12, 26), (1.5, 1.1, 1.1, 1.1))
        for j in range(27, 32):
            k(date(year, 12, j), (1.15, 1.0, 1.0, 1.0))
            for g in GIFT:
                c(date(year, 12, j), g, 0.75)
        k(date(year, 12, 31), (0.8, 0.9, 0.9, 0.9))
        c(date(year, 12, 31), "beverages", 1.5), c(date(year, 12, 31), "snacks", 1.3)
    return kind, cat


def _yearly(day_of_year: np.ndarray, peak: float, amplitude: float) -> np.ndarray:
    """A category's own season: a smooth bump around its peak day, mean 1 over the year."""
    if amplitude == 0:
        return np.ones_like(day_of_year, dtype=float)
    wave = np.exp(amplitude * np.cos(2 * np.pi * (day_of_year - peak) / 365.25))
    return wave / np.i0(amplitude)


def _general_year(day_of_year: np.ndarray) -> np.ndarray:
    mids = np.array([15.5 + 30.44 * m for m in range(12)])
    x = np.concatenate([mids - 365.25, mids, mids + 365.25])
    y = np.concatenate([MONTHLY, MONTHLY, MONTHLY])
    return np.interp(day_of_year, x, y) / MONTHLY.mean()


# --- the model ------------------------------------------------------------------------------


class DemandModel:
    """Expected units per SKU x selling point x day for a world (see the module docstring)."""

    def __init__(self, world: World) -> None:
        self.world = world
        cfg = world.config
        self.start, self.n_days = world.start, world.n_days
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 2]))
        skus, cats = world.skus, world.categories
        n, n_cats = len(skus), len(cats)
        self.points: tuple[Point, ...] = tuple(
            Point(ch.code, "store" if ch.kind == "pos" else ch.kind, world.stores.index(ch.store) if ch.store else None)
            for ch in sorted(world.channels, key=lambda ch: (ch.kind == "pos", 0))
        )
        self.kind_of_point = np.array([KINDS.index(p.kind) for p in self.points])
        self.category = skus.category
        self.mean_qty = 1.0 + np.array([cats[c].extra_qty for c in skus.category])

        # static: popularity within category x category mix of the channel kind x store size/taste/assortment
        cat_share = np.array([c.demand_share for c in cats])
        tilt = np.array([c.channel_tilt for c in cats])  # (n_cats, 4)
        mix = cat_share[:, None] * tilt
        mix /= mix.sum(axis=0, keepdims=True)  # category mix of each channel kind
        sizes = np.array([world.location(s).size for s in world.stores])
        static = np.zeros((n, len(self.points)))
        for j, p in enumerate(self.points):
            kind = KINDS.index(p.kind)
            per_sku = skus.popularity * mix[skus.category, kind] * KIND_SHARE[kind]
            if p.store is None:
                static[:, j] = per_sku
                continue
            carried = skus.carried[:, p.store]
            weight = sizes[p.store] / sizes.sum() * world.store_category[p.store, skus.category]
            # a store sells what it carries; part of the demand for what it does not carry moves to what it does
            share_carried = np.zeros(n_cats)
            np.add.at(share_carried, skus.category[carried], skus.popularity[carried])
            boost = 1.0 / np.sqrt(np.maximum(share_carried, 1e-6))
            static[:, j] = np.where(carried, per_sku * weight * boost[skus.category], 0.0)
        self.static = static

        # day-level factors
        days = np.arange(self.n_days)
        dates = [self.start + timedelta(days=int(d)) for d in days]
        self.weekday = np.array([d.weekday() for d in dates])
        doy = np.array([d.timetuple().tm_yday for d in dates], dtype=float)
        self.trend = np.exp(KIND_GROWTH[None, :] * (days[:, None] / 365.25))  # (days, 4)
        self.yearly = _general_year(doy)[:, None] * np.stack([_yearly(doy, c.peak_doy, c.amplitude) for c in cats], axis=1)  # (days, cats)
        self.holiday_kind, self.holiday_cat = _holiday_table(self.start, self.n_days, n_cats)

        # SKU x day factors: life cycle, list price, promotions
        self.promotions = _promotion_calendar(world, rng)
        self.price_changes = _price_changes(world, rng)
        self.price = np.tile(np.array([float(p) for p in skus.price])[:, None], (1, self.n_days))
        for ch in self.price_changes:
            self.price[ch.sku, ch.day:] = float(ch.price)
        base_price = np.array([float(p) for p in skus.price])
        elasticity = np.array([cats[c].elasticity for c in skus.category])
        factor = (self.price / base_price[:, None]) ** (-elasticity[:, None])
        factor *= _life_cycle(world, rng)
        self.promo_percent = np.zeros((n, self.n_days), dtype=np.float32)
        dip = np.ones((n, self.n_days))
        dip_depth = np.array([cats[c].post_promo_dip for c in skus.category])
        for ev in self.promotions:
            lo, hi = max(ev.start_day, 0), min(ev.end_day, self.n_days)
            idx = np.array(ev.skus, dtype=np.int64)
            if hi > lo:
                self.promo_percent[np.ix_(idx, np.arange(lo, hi))] = ev.percent
            for j in range(14):  # customers stocked up: demand dips after the promotion, recovering
                d = ev.end_day + j
                if 0 <= d < self.n_days:
                    dip[idx, d] *= 1 - dip_depth[idx] * math.exp(-j / 4) * min(ev.percent / 25, 1.5)
        uplift = (1 - self.promo_percent / 100.0) ** (-1.3 * elasticity[:, None]) * np.where(self.promo_percent > 0, PROMO_FEATURE, 1.0)
        self.sku_factor = (factor * uplift * dip).astype(np.float32)
        self._cache: dict[int, np.ndarray] = {}
        # volume: on average `lines_per_day` expected order lines a day over the period
        sample = range(0, self.n_days, max(1, self.n_days // 120))
        mean_lines = float(np.mean([(self.expected(d) / self.mean_qty[:, None]).sum() for d in sample]))
        self.static = static * (cfg.lines_per_day / mean_lines)
        self._cache.clear()

    # --- queries ----------------------------------------------------------------------------

    def date(self, day: int) -> date:
        return self.start + timedelta(days=day)

    def day_factor(self, day: int) -> np.ndarray:
        """(n_categories, n_points) multiplier of day `day` (trend, week, season, holidays)."""
        kinds = self.kind_of_point
        per_kind = self.trend[day] * WEEKLY[:, self.weekday[day]] * self.holiday_kind[day]  # (4,)
        per_cat = self.yearly[day] * self.holiday_cat[day]  # (cats,)
        return per_cat[:, None] * per_kind[kinds][None, :]

    def expected(self, day: int) -> np.ndarray:
        """Expected units on day `day`: (n_skus, n_points). Do not modify the result (it is cached)."""
        cached = self._cache.get(day)
        if cached is None:
            cached = self.static * self.day_factor(day)[self.category] * self.sku_factor[:, day][:, None]
            if len(self._cache) >= 96:  # the planners look a few weeks ahead of the day being simulated
                self._cache.pop(min(self._cache))
            self._cache[day] = cached
        return cached

    def expected_window(self, first: int, days: int) -> np.ndarray:
        """Sum of expected units over `days` days from `first` (days outside the period repeat the
        nearest year's pattern as the planner would assume): (n_skus, n_points)."""
        total = np.zeros_like(self.static)
        for d in range(first, first + days):
            total += self.expected(self._within(d))
        return total

    def _within(self, day: int) -> int:
        """A day inside the period with the same weekday (the planner's view beyond the period's ends)."""
        n = self.n_days
        if 0 <= day < n:
            return day
        if n < 7:
            return min(max(day, 0), n - 1)
        return n - 7 + (day - n) % 7 if day >= n else day % 7

    def daily_totals(self, *, by: str = "point") -> np.ndarray:
        """Expected units per day: (n_days, n_points) with by="point", (n_days, n_skus) with by="sku"."""
        if by == "point":
            return np.stack([self.expected(d).sum(axis=0) for d in range(self.n_days)])
        return np.stack([self.expected(d).sum(axis=1) for d in range(self.n_days)])

    def price_on(self, sku: int, day: int) -> Decimal:
        """The list price of a SKU on a day (the catalogue is updated to match in run.py)."""
        current = self.world.skus.price[sku]
        for ch in self.price_changes:
            if ch.sku == sku and ch.day <= day:
                current = ch.price
        return current


def _life_cycle(world: World, rng: np.random.Generator) -> np.ndarray:
    """Launch ramps (some with a launch spike) and end-of-life decay, 0 outside the SKU's life."""
    skus = world.skus
    n, n_days = len(skus), world.n_days
    days = np.arange(n_days)[None, :]
    out = np.ones((n, n_days))
    launch = skus.launch_day[:, None]
    launched = skus.launch_day > -10_000
    tau = rng.uniform(7, 40, size=n)[:, None]
    hype = np.where(rng.random(n) < 0.2, 1.0, 0.0)[:, None]
    age = days - launch
    ramp = np.where(age < 0, 0.0, (1 - np.exp(-(age + 1) / tau)) * (1 + hype * np.exp(-np.maximum(age, 0) / 10)))
    out = np.where(launched[:, None], ramp, out)
    eol = skus.eol_day[:, None]
    decay_start = eol - 75
    decay = np.exp(-np.clip(days - decay_start, 0, None) / 30.0)
    out = out * np.where(days >= eol, 0.0, decay)
    return out


def _price_changes(world: World, rng: np.random.Generator) -> list[PriceChange]:
    """List price changes: yearly increases in mid-January, a few competitive cuts, clearance before end of life."""
    skus = world.skus
    n, n_days = len(skus), world.n_days
    changes: list[PriceChange] = []
    current = list(skus.price)
    events: list[tuple[int, int, str, float]] = []
    for year in range(world.start.year, (world.start + timedelta(days=n_days)).year + 1):
        day = (date(year, 1, 15) - world.start).days
        if 1 <= day < n_days:
            for s in np.flatnonzero(rng.random(n) < 0.3):
                events.append((day, int(s), "annual price review", float(rng.uniform(1.03, 1.08))))
    for s in np.flatnonzero(rng.random(n) < 0.04):
        events.append((int(rng.integers(1, max(n_days, 2))), int(s), "competitive price cut", float(rng.uniform(0.8, 0.9))))
    for s in np.flatnonzero(skus.eol_day < n_days + 42):
        day = int(skus.eol_day[s]) - 42
        if day < n_days:
            events.append((max(day, 1), int(s), "clearance", 0.7))
    for day, s, reason, mult in sorted(events):
        if day >= skus.eol_day[s] or day >= n_days:
            continue
        new = price_point(float(current[s]) * mult)
        if new != current[s]:
            current[s] = new
            changes.append(PriceChange(day, s, new, reason))
    return changes


def _promotion_calendar(world: World, rng: np.random.Generator) -> list[PromotionEvent]:
    """Category sales every other week, weekly SKU deals, and the big events (Black Friday to Cyber
    Monday, summer deals, holiday weekends, winter clearance). A SKU is never in two at once."""
    skus, cats = world.skus, world.categories
    n_days, start = world.n_days, world.start
    busy = np.zeros((len(skus), n_days + 400), dtype=bool)  # promoted or just after one
    events: list[PromotionEvent] = []
    offset = 40

    def active(s: np.ndarray, lo: int, hi: int) -> np.ndarray:
        return (skus.launch_day[s] <= lo - 14) & (skus.eol_day[s] > hi + 50)

    def add(name: str, scope: str, target: str, percent: int, lo: int, hi: int, members: np.ndarray) -> None:
        if hi <= 0 or lo >= n_days or len(members) == 0:
            return
        a, b = max(lo, -offset) + offset, min(hi + 10, n_days + 360) + offset
        if busy[members, max(lo - 7, -offset) + offset:b].any():
            return
        busy[members, a:b] = True
        events.append(PromotionEvent(name, scope, target, percent, lo, hi, tuple(int(m) for m in members)))

    def cat_members(code: str) -> np.ndarray:
        return np.flatnonzero(skus.category == CATEGORY_INDEX[code])

    for year in range(start.year - 1, (start + timedelta(days=n_days)).year + 1):
        ev = retail_events(year)
        day = lambda d: (d - start).days  # noqa: E731
        tg = day(ev["thanksgiving"])
        for code, pct in (("electronics", 25), ("toys", 30), ("womens-apparel", 30), ("mens-apparel", 30), ("kids-apparel", 30),
                          ("footwear", 20), ("home-decor", 25), ("kitchen", 20)):
            add(f"Black Friday {year}: {cats[CATEGORY_INDEX[code]].name} {pct}% off", "category", code, pct, tg, tg + 5, cat_members(code))
        sd = day(ev["summer_deals"])
        add(f"Summer Deals {year}: Electronics 20% off", "category", "electronics", 20, sd, sd + 2, cat_members("electronics"))
        md = day(ev["memorial_day"])
        for code in ("garden", "sports-outdoor"):
            add(f"Memorial Day {year}: {cats[CATEGORY_INDEX[code]].name} 20% off", "category", code, 20, md - 2, md + 1, cat_members(code))
        ld = day(ev["labor_day"])
        add(f"Labor Day {year}: Bedding & Bath 20% off", "category", "bedding-bath", 20, ld - 2, ld + 1, cat_members("bedding-bath"))
        pd = day(ev["presidents_day"])
        add(f"Presidents' Day {year}: Kitchen 15% off", "category", "kitchen", 15, pd - 2, pd + 1, cat_members("kitchen"))
        wc = day(date(year, 1, 5))
        add(f"Winter clearance {year}: Outerwear 35% off", "category", "outerwear", 35, wc, wc + 21, cat_members("outerwear"))
        bts = day(date(year, 8, 1))
        add(f"Back to school {year}: Stationery 20% off", "category", "stationery", 20, bts, bts + 14, cat_members("stationery"))
    # category sales: every other Thursday, a week long
    first_thu = (3 - start.weekday()) % 7
    order = rng.permutation(len(cats))
    k = 0
    for lo in range(first_thu, n_days, 14):
        for _ in range(len(cats)):
            code = cats[int(order[k % len(cats)])].code
            k += 1
            before = len(events)
            pct = int(rng.choice([15, 20, 20, 25, 30]))
            add(f"{cats[CATEGORY_INDEX[code]].name} sale: {pct}% off ({(start + timedelta(days=lo)):%b %d})", "category", code, pct, lo, lo + 7,
                cat_members(code))
            if len(events) > before:
                break
    # weekly deals: a handful of popular SKUs, Monday to Sunday
    n_deals = max(3, int(round(6 * world.config.scale ** 0.3)))
    candidates = np.flatnonzero(skus.abc <= 1)
    first_mon = (0 - start.weekday()) % 7
    for lo in range(first_mon, n_days, 7):
        ok = candidates[active(candidates, lo, lo + 7)]
        if len(ok) == 0:
            continue
        for s in rng.choice(ok, size=min(n_deals, len(ok)), replace=False):
            pct = int(rng.choice([20, 25, 30, 35, 40]))
            add(f"Deal of the week: {skus.name[s]} {pct}% off", "sku", skus.code[s], pct, lo, lo + 7, np.array([s]))
    events.sort(key=lambda e: (e.start_day, e.name))
    return events
