"""The simulated retailer, generated from the seed: its network, suppliers, catalogue and customers.

Pure data, no database: `generate_world(config)` returns a `World`; `om_core.simulator.run` records it
through the services. Everything here is deterministic given the config's seed and scale.

* Network: two distribution centres (Edison NJ, Reno NV) that ship, eight stores in real US cities that
  offer pickup (three of them also ship online orders), each with its own POS channel; web, app and
  marketplace channels sell online (marketplace from the warehouses only).
* Catalogue: ~1,500 SKUs at scale 1 in 22 categories, generated from category templates (styles with
  sizes and colours for fashion, shades for beauty), with price points, costs, case packs, weights,
  returnability (food and hygiene are not returnable), a few backorderable SKUs (books, pre-orders),
  launches and end-of-life dates inside the period, and which stores carry what.
* Customers: names, `@example.com` emails, addresses with real ZIP codes in the store cities (and a
  quarter in other US cities, who shop online), segment, category-affinity archetype, preferred
  channel, home store, marketing consent (~60%), the day they join and, for some, the day they lapse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import numpy as np

from om_core.simulator.config import SimulationConfig

# --- geography ------------------------------------------------------------------------------


@dataclass(frozen=True)
class City:
    code: str
    name: str
    state: str
    lat: float
    lon: float
    tz: str
    area_code: str
    weight: float  # share of the customer base living there
    store: bool


CITIES: tuple[City, ...] = (
    City("NYC", "New York", "NY", 40.7506, -73.9935, "America/New_York", "212", 0.16, True),
    City("BOS", "Boston", "MA", 42.3554, -71.0605, "America/New_York", "617", 0.065, True),
    City("CHI", "Chicago", "IL", 41.8837, -87.6289, "America/Chicago", "312", 0.10, True),
    City("ATL", "Atlanta", "GA", 33.7537, -84.3863, "America/New_York", "404", 0.07, True),
    City("DAL", "Dallas", "TX", 32.7831, -96.8067, "America/Chicago", "214", 0.08, True),
    City("DEN", "Denver", "CO", 39.7420, -104.9915, "America/Denver", "303", 0.06, True),
    City("SEA", "Seattle", "WA", 47.6114, -122.3305, "America/Los_Angeles", "206", 0.065, True),
    City("LA", "Los Angeles", "CA", 34.0494, -118.2641, "America/Los_Angeles", "213", 0.12, True),
    City("PHX", "Phoenix", "AZ", 33.4484, -112.0740, "America/Phoenix", "602", 0.03, False),
    City("PHL", "Philadelphia", "PA", 39.9526, -75.1652, "America/New_York", "215", 0.035, False),
    City("HOU", "Houston", "TX", 29.7604, -95.3698, "America/Chicago", "713", 0.035, False),
    City("MIA", "Miami", "FL", 25.7617, -80.1918, "America/New_York", "305", 0.03, False),
    City("MSP", "Minneapolis", "MN", 44.9778, -93.2650, "America/Chicago", "612", 0.02, False),
    City("PDX", "Portland", "OR", 45.5152, -122.6784, "America/Los_Angeles", "503", 0.02, False),
    City("BNA", "Nashville", "TN", 36.1627, -86.7816, "America/Chicago", "615", 0.015, False),
    City("CLT", "Charlotte", "NC", 35.2271, -80.8431, "America/New_York", "704", 0.015, False),
    City("SLC", "Salt Lake City", "UT", 40.7608, -111.8910, "America/Denver", "801", 0.01, False),
    City("KC", "Kansas City", "MO", 39.0997, -94.5786, "America/Chicago", "816", 0.01, False),
)

FALLBACK_ZIPS = {  # used only if the offline ZIP database has nothing for a city
    "NYC": ("10001",), "BOS": ("02116",), "CHI": ("60611",), "ATL": ("30326",), "DAL": ("75225",), "DEN": ("80206",),
    "SEA": ("98101",), "LA": ("90017",), "PHX": ("85004",), "PHL": ("19103",), "HOU": ("77002",), "MIA": ("33130",),
    "MSP": ("55401",), "PDX": ("97204",), "BNA": ("37203",), "CLT": ("28202",), "SLC": ("84101",), "KC": ("64105",),
}


@lru_cache(maxsize=64)
def city_zips(name: str, state: str, code: str) -> tuple[str, ...]:
    """Real, active, standard ZIP codes of a city (offline `zipcodes` database), sorted."""
    try:
        import zipcodes

        found = zipcodes.filter_by(city=name, state=state)
        zips = sorted({z["zip_code"] for z in found if z.get("zip_code_type") == "STANDARD" and z.get("active", True)})
    except Exception:  # pragma: no cover - the database ships with the package
        zips = []
    return tuple(zips) or FALLBACK_ZIPS[code]


# sales tax by state: (standard, grocery, clothing) -- combined state + typical local rates of the
# store city, rounded; groceries are exempt in most of these states, clothing in a few
TAX_RATES: dict[str, tuple[str, str, str]] = {
    "NY": ("0.08875", "0", "0"), "MA": ("0.0625", "0", "0"), "IL": ("0.1025", "0.0225", "0.1025"),
    "GA": ("0.089", "0.04", "0.089"), "TX": ("0.0825", "0", "0.0825"), "CO": ("0.0881", "0.0481", "0.0881"),
    "WA": ("0.1035", "0", "0.1035"), "CA": ("0.095", "0", "0.095"), "NJ": ("0.06625", "0", "0"),
    "NV": ("0.08265", "0", "0.08265"), "AZ": ("0.086", "0.02", "0.086"), "PA": ("0.08", "0", "0"),
    "FL": ("0.07", "0", "0.07"), "MN": ("0.08875", "0", "0"), "OR": ("0", "0", "0"), "TN": ("0.0925", "0.0475", "0.0925"),
    "NC": ("0.0725", "0.02", "0.0725"), "UT": ("0.0775", "0.03", "0.0775"), "MO": ("0.09", "0.04225", "0.09"),
}
COUNTRY_TAX = ("0.06", "0", "0.06")

SHIPPING_METHODS = (
    {"code": "standard", "name": "Standard (3-5 days)", "service_level": "standard", "base_price": "5.99", "free_over": "50.00", "promised_days": 5},
    {"code": "expedited", "name": "Expedited (2 days)", "service_level": "expedited", "base_price": "12.99", "price_per_kg": "1.00", "promised_days": 2},
    {"code": "overnight", "name": "Overnight", "service_level": "overnight", "base_price": "24.99", "price_per_kg": "2.00", "promised_days": 1},
)


@dataclass(frozen=True)
class LocationSpec:
    code: str
    name: str
    kind: str  # warehouse | store
    city: str  # City.code
    address_line1: str
    postal_code: str
    lat: float
    lon: float
    can_pickup: bool = False
    can_ship_from_store: bool = False
    size: float = 1.0  # store traffic multiplier
    warehouse: str | None = None  # the DC that replenishes a store


LOCATIONS: tuple[LocationSpec, ...] = (
    LocationSpec("WH-EAST", "East Coast DC (Edison)", "warehouse", "EDI", "600 Meadow Rd", "08817", 40.5187, -74.4121),
    LocationSpec("WH-WEST", "West Coast DC (Reno)", "warehouse", "RNO", "1550 Distribution Dr", "89502", 39.5296, -119.8138),
    LocationSpec("ST-NYC", "Manhattan Herald Square", "store", "NYC", "1250 Broadway", "10001", 40.7480, -73.9877, True, False, 1.5, "WH-EAST"),
    LocationSpec("ST-BOS", "Boston Back Bay", "store", "BOS", "100 Boylston St", "02116", 42.3519, -71.0660, True, False, 0.9, "WH-EAST"),
    LocationSpec("ST-CHI", "Chicago Magnificent Mile", "store", "CHI", "835 N Michigan Ave", "60611", 41.8975, -87.6240, True, False, 1.2, "WH-EAST"),
    LocationSpec("ST-ATL", "Atlanta Buckhead", "store", "ATL", "3393 Peachtree Rd NE", "30326", 33.8480, -84.3620, True, True, 0.9, "WH-EAST"),
    LocationSpec("ST-DAL", "Dallas NorthPark", "store", "DAL", "8687 N Central Expy", "75225", 32.8680, -96.7730, True, True, 1.0, "WH-WEST"),
    LocationSpec("ST-DEN", "Denver Cherry Creek", "store", "DEN", "3000 E 1st Ave", "80206", 39.7170, -104.9530, True, True, 0.75, "WH-WEST"),
    LocationSpec("ST-SEA", "Seattle Downtown", "store", "SEA", "400 Pine St", "98101", 47.6119, -122.3370, True, False, 0.85, "WH-WEST"),
    LocationSpec("ST-LA", "Los Angeles FIGat7th", "store", "LA", "735 S Figueroa St", "90017", 34.0480, -118.2600, True, False, 1.3, "WH-WEST"),
)
WAREHOUSE_REGIONS = {"WH-EAST": ("Edison", "NJ"), "WH-WEST": ("Reno", "NV")}


@dataclass(frozen=True)
class ChannelSpec:
    code: str
    name: str
    kind: str  # web | app | marketplace | pos
    locations: tuple[str, ...]
    store: str | None = None  # the store of a POS channel


@dataclass(frozen=True)
class SupplierSpec:
    code: str
    name: str
    email: str
    lead_time_days: float
    lead_time_std_days: float
    late_probability: float  # chance a delivery slips by an extra week


SUPPLIERS: tuple[SupplierSpec, ...] = (
    SupplierSpec("PACIFIC", "Pacific Rim Apparel Co.", "orders@pacific-rim.example.com", 21, 6, 0.08),
    SupplierSpec("BRIGHTLINE", "Brightline Electronics", "supply@brightline.example.com", 12, 4, 0.05),
    SupplierSpec("NORTHWIND", "Northwind Home Goods", "po@northwind.example.com", 9, 3, 0.04),
    SupplierSpec("GREENFIELD", "Greenfield Foods", "orders@greenfield.example.com", 4, 1, 0.02),
    SupplierSpec("CLEARWATER", "Clearwater Health & Beauty", "trade@clearwater.example.com", 7, 2, 0.03),
    SupplierSpec("SUMMIT", "Summit Outdoor & Toys", "sales@summit.example.com", 14, 5, 0.06),
    SupplierSpec("PAGEHOUSE", "Pagehouse Book Distribution", "orders@pagehouse.example.com", 5, 2, 0.03),
)

# --- catalogue templates --------------------------------------------------------------------

COLOURS = (("Black", "BLK"), ("White", "WHT"), ("Navy", "NAV"), ("Grey", "GRY"), ("Olive", "OLV"), ("Burgundy", "BRG"),
           ("Camel", "CML"), ("Sky Blue", "SKY"), ("Blush", "BLS"), ("Forest", "FOR"), ("Charcoal", "CHR"), ("Cream", "CRM"),
           ("Red", "RED"), ("Sand", "SND"))
SHADES = (("Rose", "ROS"), ("Nude", "NUD"), ("Berry", "BER"), ("Coral", "COR"), ("Mauve", "MAU"), ("Ruby", "RUB"))
SIZES = {
    "apparel": (("XS", 0.08), ("S", 0.22), ("M", 0.32), ("L", 0.26), ("XL", 0.12)),
    "kids": (("4", 0.18), ("6", 0.22), ("8", 0.22), ("10", 0.2), ("12", 0.18)),
    "shoes": (("7", 0.14), ("8", 0.2), ("9", 0.24), ("10", 0.24), ("11", 0.18)),
}
RETURN_REASONS = ("size_fit", "not_as_described", "no_longer_needed", "damaged", "defective", "wrong_item", "other")


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    prefix: str
    supplier: str
    sku_share: float
    demand_share: float
    variants: str | None  # apparel | kids | shoes | colour | shade | None
    items: tuple[tuple[str, float, float, float], ...]  # (noun, price low, price high, kg)
    brands: tuple[str, ...]
    styles: tuple[str, ...]
    cost_ratio: tuple[float, float] = (0.40, 0.55)
    returnable: bool = True
    return_rate: float = 0.05  # share of delivered lines returned
    reasons: tuple[float, ...] = (0.05, 0.2, 0.45, 0.1, 0.1, 0.05, 0.05)  # weights over RETURN_REASONS
    pack: int = 6
    cycle_days: float = 0.0  # consumables: typical days between repeat purchases
    elasticity: float = 1.5
    tax_class: str = "standard"
    peak_doy: int = 355
    amplitude: float = 0.0
    channel_tilt: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)  # store, web, app, marketplace
    extra_qty: float = 0.05  # mean of (quantity - 1) on a line
    backorder_share: float = 0.0
    post_promo_dip: float = 0.12


FASHION_REASONS = (0.45, 0.18, 0.22, 0.04, 0.03, 0.05, 0.03)
TECH_REASONS = (0.0, 0.2, 0.27, 0.1, 0.35, 0.05, 0.03)
HOME_REASONS = (0.0, 0.25, 0.33, 0.2, 0.12, 0.05, 0.05)

CATEGORIES: tuple[Category, ...] = (
    Category("womens-apparel", "Women's Apparel", "WAP", "PACIFIC", 0.12, 0.085, "apparel",
             (("Crew-Neck T-Shirt", 14, 28, 0.2), ("Linen Blouse", 32, 58, 0.25), ("Wrap Dress", 48, 98, 0.4), ("High-Rise Jeans", 48, 89, 0.6),
              ("Cardigan", 38, 72, 0.45), ("Pleated Midi Skirt", 34, 64, 0.35), ("Yoga Leggings", 28, 59, 0.25), ("Silk Camisole", 29, 55, 0.15)),
             ("Harbor & Pine", "Luna Rae", "Everlane Row", "Marlow"), ("Classic", "Relaxed", "Organic Cotton", "Everyday", "Tailored", "Soft-Wash"),
             (0.35, 0.48), True, 0.24, FASHION_REASONS, 6, 0, 1.8, "clothing", 110, 0.18, (1.0, 1.1, 1.2, 0.5), 0.05),
    Category("mens-apparel", "Men's Apparel", "MAP", "PACIFIC", 0.10, 0.065, "apparel",
             (("Oxford Shirt", 36, 68, 0.3), ("Pique Polo", 24, 48, 0.25), ("Chino Trousers", 42, 78, 0.5), ("Slim Jeans", 45, 85, 0.65),
              ("Merino Crew Sweater", 54, 98, 0.4), ("Graphic Tee", 16, 28, 0.2), ("Zip Hoodie", 38, 68, 0.6)),
             ("Harbor & Pine", "Northline", "Fieldhouse", "Grant & Co."), ("Classic", "Slim-Fit", "Heritage", "Performance", "Garment-Dyed"),
             (0.35, 0.48), True, 0.19, FASHION_REASONS, 6, 0, 1.7, "clothing", 160, 0.12, (1.0, 1.1, 1.1, 0.6), 0.06),
    Category("kids-apparel", "Kids' Apparel", "KAP", "PACIFIC", 0.05, 0.04, "kids",
             (("Kids Tee", 9, 16, 0.12), ("Kids Joggers", 14, 24, 0.2), ("Kids Rain Jacket", 28, 45, 0.35), ("Kids Pajama Set", 18, 30, 0.25)),
             ("Little Harbor", "Sprout"), ("Everyday", "Play", "Cosy", "Striped"),
             (0.38, 0.5), True, 0.14, FASHION_REASONS, 8, 0, 1.6, "clothing", 225, 0.35, (1.1, 1.0, 1.0, 0.7), 0.15),
    Category("outerwear", "Outerwear", "OUT", "PACIFIC", 0.05, 0.03, "apparel",
             (("Puffer Jacket", 89, 189, 1.0), ("Wool Coat", 140, 260, 1.6), ("Rain Shell", 69, 129, 0.5), ("Fleece Jacket", 45, 85, 0.6),
              ("Insulated Parka", 160, 290, 1.5)),
             ("Northline", "Ridgeway", "Harbor & Pine"), ("Classic", "Packable", "Storm", "Urban", "Expedition"),
             (0.38, 0.5), True, 0.15, FASHION_REASONS, 4, 0, 1.9, "clothing", 345, 1.1, (1.0, 1.1, 1.0, 0.6), 0.02),
    Category("footwear", "Footwear", "FTW", "PACIFIC", 0.09, 0.05, "shoes",
             (("Running Shoe", 79, 149, 0.9), ("Leather Sneaker", 69, 120, 1.0), ("Chelsea Boot", 110, 190, 1.3), ("Canvas Slip-On", 39, 65, 0.7),
              ("Hiking Boot", 120, 200, 1.4), ("Slide Sandal", 29, 59, 0.5)),
             ("Stride", "Trailmark", "Harbor & Pine", "Velo"), ("Classic", "Cushioned", "Waterproof", "Lightweight", "Suede"),
             (0.42, 0.55), True, 0.18, FASHION_REASONS, 6, 0, 1.7, "clothing", 100, 0.1, (1.0, 1.1, 1.1, 0.8), 0.02),
    Category("accessories", "Accessories", "ACC", "PACIFIC", 0.05, 0.04, "colour",
             (("Leather Belt", 25, 55, 0.2), ("Canvas Tote Bag", 35, 90, 0.5), ("Ribbed Beanie", 15, 28, 0.1), ("Polarized Sunglasses", 25, 120, 0.1),
              ("Wool Scarf", 25, 60, 0.2), ("Crossbody Bag", 45, 110, 0.5), ("Baseball Cap", 18, 32, 0.1)),
             ("Harbor & Pine", "Luna Rae", "Marlow"), ("Classic", "Everyday", "Woven", "Vegan Leather"),
             (0.3, 0.45), True, 0.08, FASHION_REASONS, 6, 0, 1.6, "clothing", 350, 0.3, (1.1, 1.0, 1.0, 0.8), 0.05),
    Category("electronics", "Electronics", "ELC", "BRIGHTLINE", 0.08, 0.075, "colour",
             (("Wireless Earbuds", 49, 179, 0.15), ("Over-Ear Headphones", 79, 299, 0.4), ("Bluetooth Speaker", 39, 149, 0.6),
              ("USB-C Charger 65W", 29, 59, 0.2), ("Power Bank 20000mAh", 29, 69, 0.4), ("Smartwatch", 149, 349, 0.2),
              ("4K Streaming Stick", 39, 59, 0.15), ("HDMI Cable 2m", 9, 19, 0.1), ("10-inch Tablet", 179, 449, 0.6),
              ("Smart Plug 2-Pack", 19, 35, 0.2), ("Video Doorbell", 99, 199, 0.5), ("Mesh Wi-Fi Router", 149, 299, 0.9)),
             ("Brightline", "Voltaire", "Nimbus", "Kestrel"), ("Pro", "Lite", "Max", "2", "X", "Air"),
             (0.62, 0.78), True, 0.09, TECH_REASONS, 8, 0, 2.2, "standard", 340, 0.35, (0.7, 1.3, 1.3, 2.0), 0.04, 0.03),
    Category("kitchen", "Kitchen", "KIT", "NORTHWIND", 0.06, 0.05, None,
             (("Chef's Knife 8-inch", 39, 129, 0.3), ("Nonstick Frying Pan 28cm", 29, 69, 1.1), ("Cast Iron Skillet", 29, 59, 2.4),
              ("Stoneware Mug", 9, 18, 0.4), ("Pour-Over Coffee Maker", 24, 45, 0.5), ("Electric Kettle", 35, 79, 1.2),
              ("Glass Storage Set", 25, 49, 2.0), ("Bamboo Cutting Board", 19, 45, 1.0), ("Stand Mixer", 249, 449, 10.0), ("High-Speed Blender", 69, 199, 4.0)),
             ("Northwind Kitchen", "Copperleaf", "Hearth & Co."), ("Classic", "Professional", "Essential", "Artisan"),
             (0.45, 0.6), True, 0.07, HOME_REASONS, 4, 0, 1.6, "standard", 345, 0.3, (1.0, 1.1, 0.9, 1.1), 0.08, 0.03),
    Category("home-decor", "Home Decor", "DEC", "NORTHWIND", 0.05, 0.04, "colour",
             (("Scented Candle", 14, 34, 0.5), ("Throw Pillow", 24, 49, 0.6), ("Picture Frame 8x10", 15, 35, 0.6), ("Ceramic Vase", 24, 69, 1.2),
              ("Wall Clock", 29, 79, 1.0), ("Table Lamp", 49, 129, 2.5), ("Woven Basket", 22, 49, 0.8)),
             ("Hearth & Co.", "Maple Row", "Oak & Ember"), ("Modern", "Rustic", "Minimal", "Coastal"),
             (0.35, 0.5), True, 0.07, HOME_REASONS, 6, 0, 1.5, "standard", 350, 0.45, (1.1, 1.0, 0.9, 0.8), 0.15),
    Category("bedding-bath", "Bedding & Bath", "BED", "NORTHWIND", 0.05, 0.03, "colour",
             (("Cotton Sheet Set Queen", 59, 139, 1.8), ("Duvet Cover Queen", 69, 149, 1.5), ("Bath Towel", 14, 29, 0.6), ("Bath Mat", 19, 39, 0.8),
              ("Down Alternative Pillow", 39, 89, 1.0), ("Weighted Blanket", 79, 149, 6.0)),
             ("Maple Row", "Cloudrest"), ("Percale", "Sateen", "Organic", "Waffle"),
             (0.4, 0.52), True, 0.1, HOME_REASONS, 4, 0, 1.5, "standard", 20, 0.2, (1.0, 1.1, 1.0, 0.9), 0.1),
    Category("grocery", "Pantry", "GRO", "GREENFIELD", 0.05, 0.075, None,
             (("Extra Virgin Olive Oil 500ml", 8, 16, 0.6), ("Bronze-Cut Pasta 500g", 2.5, 4.5, 0.5), ("Basmati Rice 2kg", 5, 9, 2.0),
              ("Marinara Sauce 680g", 4, 7, 0.8), ("Maple Granola 400g", 5, 8, 0.4), ("Peanut Butter 454g", 4, 7, 0.5),
              ("Wildflower Honey 340g", 6, 11, 0.4), ("Whole Peeled Tomatoes 794g", 2, 4, 0.8)),
             ("Greenfield", "Field & Table", "Nonna's"), ("Organic", "Classic", "Family Size", "Reserve"),
             (0.6, 0.72), False, 0.0, HOME_REASONS, 12, 21, 1.0, "grocery", 330, 0.08, (1.6, 0.6, 0.6, 0.3), 0.6, 0.0, 0.3),
    Category("coffee-tea", "Coffee & Tea", "COF", "GREENFIELD", 0.03, 0.06, None,
             (("Espresso Beans 1kg", 18, 32, 1.0), ("Ground Coffee 340g", 9, 14, 0.35), ("Sencha Green Tea 20 Bags", 4, 7, 0.1),
              ("Cold Brew Concentrate 1L", 7, 12, 1.1), ("Decaf Beans 340g", 10, 15, 0.35), ("Chai Latte Mix", 6, 10, 0.4)),
             ("Hilltop Roastery", "Greenfield", "Morning Ritual"), ("Single Origin", "House Blend", "Dark Roast", "Organic"),
             (0.5, 0.65), False, 0.0, HOME_REASONS, 12, 18, 1.2, "grocery", 15, 0.15, (1.3, 1.0, 1.0, 0.6), 0.4, 0.0, 0.35),
    Category("snacks", "Snacks & Sweets", "SNK", "GREENFIELD", 0.03, 0.065, None,
             (("Dark Chocolate Bar 100g", 3, 5, 0.1), ("Sea Salt Chips 200g", 3, 5, 0.2), ("Trail Mix 300g", 6, 9, 0.3),
              ("Protein Bar 12-Pack", 18, 28, 0.7), ("Gummy Bears 300g", 3, 5, 0.3), ("Roasted Almonds 450g", 8, 13, 0.45)),
             ("Greenfield", "Crunchwell", "Cocoa & Co."), ("Classic", "Organic", "Spicy", "Honey-Roasted"),
             (0.55, 0.7), False, 0.0, HOME_REASONS, 12, 14, 1.1, "grocery", 300, 0.1, (1.6, 0.6, 0.7, 0.4), 0.5, 0.0, 0.25),
    Category("beverages", "Beverages", "BEV", "GREENFIELD", 0.02, 0.045, None,
             (("Sparkling Water 12-Pack", 5, 8, 4.5), ("Orange Juice 1.5L", 4, 6, 1.6), ("Cold Brew Can 4-Pack", 9, 13, 1.5),
              ("Kombucha 4-Pack", 10, 14, 1.8), ("Sports Drink 6-Pack", 6, 9, 3.6)),
             ("Greenfield", "Clearspring"), ("Lime", "Original", "Berry", "Zero Sugar"),
             (0.55, 0.7), False, 0.0, HOME_REASONS, 12, 10, 1.2, "grocery", 190, 0.35, (1.8, 0.5, 0.6, 0.3), 0.6, 0.0, 0.3),
    Category("beauty", "Beauty", "BTY", "CLEARWATER", 0.05, 0.05, "shade",
             (("Hydrating Face Cream 50ml", 18, 58, 0.1), ("Vitamin C Serum 30ml", 22, 68, 0.08), ("Matte Lipstick", 12, 32, 0.03),
              ("Volumizing Mascara", 10, 28, 0.03), ("Eau de Parfum 50ml", 49, 119, 0.3), ("Gel Nail Polish", 8, 16, 0.05)),
             ("Clearwater", "Lumiere", "Petal & Dew"), ("Radiant", "Pure", "Velvet", "Daily"),
             (0.25, 0.4), True, 0.05, HOME_REASONS, 12, 50, 1.4, "standard", 130, 0.15, (1.0, 1.0, 1.2, 0.8), 0.2),
    Category("personal-care", "Personal Care", "PER", "CLEARWATER", 0.03, 0.05, None,
             (("Shampoo 400ml", 6, 14, 0.45), ("Conditioner 400ml", 6, 14, 0.45), ("Body Wash 500ml", 5, 11, 0.55), ("Toothpaste 2-Pack", 5, 9, 0.3),
              ("Deodorant", 5, 9, 0.1), ("Mineral Sunscreen SPF 50", 9, 18, 0.2)),
             ("Clearwater", "Fresh Basics"), ("Sensitive", "Everyday", "Unscented", "Citrus"),
             (0.45, 0.6), False, 0.0, HOME_REASONS, 12, 35, 1.1, "standard", 180, 0.15, (1.4, 0.8, 0.9, 0.6), 0.4, 0.0, 0.2),
    Category("toys", "Toys & Games", "TOY", "SUMMIT", 0.04, 0.035, None,
             (("Building Blocks Set", 29, 99, 1.2), ("Plush Bear", 14, 29, 0.3), ("Wooden Puzzle", 12, 25, 0.5), ("Remote Control Car", 39, 89, 1.0),
              ("Family Board Game", 19, 49, 1.0), ("Kids Art Kit", 19, 39, 0.8)),
             ("Summit Play", "Tinker Town", "Bright Bear"), ("Deluxe", "Junior", "Classic", "Adventure"),
             (0.45, 0.6), True, 0.06, HOME_REASONS, 4, 0, 1.8, "standard", 355, 1.0, (0.9, 1.1, 1.0, 1.5), 0.1),
    Category("sports-outdoor", "Sports & Outdoor", "SPO", "SUMMIT", 0.04, 0.03, "colour",
             (("Yoga Mat", 25, 69, 1.2), ("Insulated Water Bottle 750ml", 19, 39, 0.4), ("2-Person Camping Tent", 119, 249, 2.8),
              ("Adjustable Dumbbell Set", 49, 129, 10.0), ("Daypack 25L", 49, 99, 0.8), ("Folding Camp Chair", 35, 69, 2.5)),
             ("Summit", "Trailmark", "Ridgeway"), ("Trail", "Pro", "Ultralight", "Everyday"),
             (0.45, 0.58), True, 0.08, HOME_REASONS, 4, 0, 1.7, "standard", 165, 0.5, (1.0, 1.0, 1.0, 1.2), 0.05),
    Category("garden", "Garden", "GDN", "SUMMIT", 0.02, 0.02, None,
             (("Expandable Garden Hose 15m", 29, 59, 1.5), ("Bypass Pruning Shears", 19, 39, 0.3), ("Potting Soil 20L", 9, 16, 8.0),
              ("Glazed Ceramic Planter", 19, 49, 3.0), ("Seed Starter Kit", 14, 29, 0.8)),
             ("Summit Garden", "Greenthumb"), ("Classic", "Heavy-Duty", "Organic", "Compact"),
             (0.45, 0.6), True, 0.05, HOME_REASONS, 6, 0, 1.5, "standard", 115, 1.1, (1.6, 0.8, 0.7, 0.6), 0.15),
    Category("books", "Books", "BKS", "PAGEHOUSE", 0.05, 0.04, None,
             (("Cookbook", 24, 40, 1.1), ("Mystery Novel", 14, 28, 0.5), ("Children's Picture Book", 9, 19, 0.4), ("City Travel Guide", 19, 29, 0.4),
              ("Self-Help Book", 16, 28, 0.5)),
             ("Pagehouse", "Lantern Press", "Riverbend Books"), ("The Silent Harbor", "Salt and Smoke", "A Year of Sundays", "The Long Way Home",
                                                                 "Small Kitchens", "Midnight Atlas", "Quiet Power", "The Little Fox"),
             (0.5, 0.62), True, 0.04, HOME_REASONS, 10, 0, 1.3, "standard", 350, 0.35, (0.9, 1.1, 1.0, 1.8), 0.1, 0.35),
    Category("stationery", "Stationery", "STA", "PAGEHOUSE", 0.02, 0.03, "colour",
             (("Spiral Notebook A5", 4, 9, 0.3), ("Gel Pens 10-Pack", 8, 15, 0.15), ("Weekly Desk Planner", 14, 29, 0.5), ("Laptop Backpack", 39, 79, 0.9),
              ("Sticky Notes 12-Pack", 6, 12, 0.4)),
             ("Pagehouse", "Inkwell"), ("Classic", "Dotted", "Recycled", "Pro"),
             (0.4, 0.55), True, 0.04, HOME_REASONS, 12, 0, 1.4, "standard", 228, 0.7, (1.3, 0.9, 0.8, 0.9), 0.4),
    Category("pet-supplies", "Pet Supplies", "PET", "GREENFIELD", 0.03, 0.045, None,
             (("Dry Dog Food 5kg", 29, 59, 5.0), ("Clumping Cat Litter 10kg", 14, 25, 10.0), ("Rope Chew Toy", 7, 15, 0.2), ("Wet Cat Food 12-Pack", 12, 22, 1.2),
              ("Orthopedic Pet Bed", 35, 79, 2.0)),
             ("Happy Paws", "Greenfield Pet"), ("Grain-Free", "Adult", "Puppy", "Senior"),
             (0.55, 0.7), False, 0.0, HOME_REASONS, 6, 28, 1.0, "grocery", 330, 0.05, (1.1, 1.1, 1.1, 1.0), 0.2, 0.0, 0.25),
)
CATEGORY_INDEX = {c.code: i for i, c in enumerate(CATEGORIES)}
# what is often bought together with what: category -> complementary categories
COMPLEMENTS = {
    "womens-apparel": ("accessories", "footwear"), "mens-apparel": ("accessories", "footwear"), "kids-apparel": ("toys", "kids-apparel"),
    "outerwear": ("accessories",), "footwear": ("accessories", "sports-outdoor"), "accessories": ("womens-apparel",),
    "electronics": ("electronics",), "kitchen": ("coffee-tea", "grocery"), "home-decor": ("bedding-bath",), "bedding-bath": ("home-decor",),
    "grocery": ("grocery", "snacks"), "coffee-tea": ("kitchen", "snacks"), "snacks": ("beverages",), "beverages": ("snacks",),
    "beauty": ("personal-care",), "personal-care": ("beauty",), "toys": ("books", "kids-apparel"), "sports-outdoor": ("beverages", "footwear"),
    "garden": ("garden",), "books": ("stationery", "coffee-tea"), "stationery": ("books",), "pet-supplies": ("pet-supplies",),
}

# --- customers ------------------------------------------------------------------------------

FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William", "Barbara", "Richard",
    "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Christopher", "Karen", "Charles", "Lisa", "Daniel", "Nancy", "Matthew", "Betty",
    "Anthony", "Sandra", "Mark", "Margaret", "Donald", "Ashley", "Steven", "Kimberly", "Andrew", "Emily", "Paul", "Donna", "Joshua",
    "Michelle", "Kenneth", "Carol", "Kevin", "Amanda", "Brian", "Melissa", "George", "Deborah", "Timothy", "Stephanie", "Ronald", "Rebecca",
    "Jason", "Sharon", "Edward", "Laura", "Jeffrey", "Cynthia", "Ryan", "Amy", "Jacob", "Kathleen", "Gary", "Angela", "Nicholas", "Shirley",
    "Eric", "Emma", "Jonathan", "Brenda", "Stephen", "Pamela", "Larry", "Nicole", "Justin", "Anna", "Scott", "Samantha", "Brandon", "Katherine",
    "Sofia", "Mateo", "Olivia", "Liam", "Ava", "Noah", "Mia", "Ethan", "Isabella", "Lucas", "Aiden", "Chloe", "Priya", "Arjun", "Mei", "Wei",
    "Fatima", "Omar", "Yuki", "Hiroshi", "Camila", "Diego", "Aaliyah", "Malik",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez",
    "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark",
    "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green",
    "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz",
    "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan",
    "Cooper", "Peterson", "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks", "Chavez",
    "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long",
    "Ross", "Foster", "Chen", "Wang", "Singh", "Khan", "Tanaka", "Okafor",
)
STREETS = (
    "Main St", "Oak Ave", "Maple St", "Park Ave", "Pine St", "Cedar St", "Elm St", "Washington Ave", "Lake St", "Hill Rd", "2nd St",
    "3rd Ave", "Sunset Blvd", "Highland Ave", "Jefferson St", "Lincoln Ave", "Madison Ave", "Franklin St", "Church St", "Spring St",
    "Ridge Rd", "Walnut St", "Chestnut St", "Grand Ave", "Riverside Dr", "Willow Ln", "Meadow Ln", "Forest Ave", "Bay St", "College Ave",
)
SEGMENTS = ("value", "regular", "premium", "occasional")
SEGMENT_SHARE = (0.30, 0.40, 0.15, 0.15)
SEGMENT_ACTIVITY = (1.0, 1.1, 1.6, 0.25)
ONLINE_CHANNELS = ("web", "app", "marketplace")
PREFERRED_CHANNELS = ("web", "app", "marketplace", "store")
SEGMENT_CHANNEL_PREFERENCE = (  # value, regular, premium, occasional over web, app, marketplace, store
    (0.38, 0.15, 0.15, 0.32), (0.34, 0.24, 0.08, 0.34), (0.30, 0.42, 0.04, 0.24), (0.33, 0.10, 0.25, 0.32),
)
ARCHETYPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("fashion", ("womens-apparel", "accessories", "footwear", "beauty")),
    ("menswear", ("mens-apparel", "footwear", "outerwear", "electronics")),
    ("family", ("kids-apparel", "toys", "snacks", "grocery", "books")),
    ("home cook", ("kitchen", "grocery", "coffee-tea", "home-decor")),
    ("tech", ("electronics", "books", "stationery")),
    ("outdoors", ("sports-outdoor", "outerwear", "footwear", "garden", "beverages")),
    ("nester", ("home-decor", "bedding-bath", "kitchen", "garden")),
    ("pantry", ("grocery", "snacks", "beverages", "coffee-tea", "personal-care")),
    ("pet owner", ("pet-supplies", "grocery", "home-decor")),
    ("self-care", ("beauty", "personal-care", "bedding-bath", "coffee-tea")),
    ("student", ("stationery", "books", "snacks", "electronics", "mens-apparel", "womens-apparel")),
    ("all-rounder", ()),
)


# --- the world ------------------------------------------------------------------------------


@dataclass
class SkuTable:
    """The catalogue as arrays indexed by SKU position (0..n-1)."""

    code: list[str]
    name: list[str]
    brand: list[str]
    size: list[str | None]
    colour: list[str | None]
    category: np.ndarray  # int, index into CATEGORIES
    style: np.ndarray  # int, SKUs of one style share it
    price: list[Decimal]  # list price on the first day
    cost: list[Decimal]
    weight: np.ndarray
    pack: np.ndarray
    returnable: np.ndarray
    backorder: np.ndarray
    popularity: np.ndarray  # relative demand weight, sums to 1 within each category
    launch_day: np.ndarray  # day index (0 = first simulated day) demand starts; negative: on sale before
    eol_day: np.ndarray  # day index the SKU is discontinued (inactive); beyond the period: never
    listed_day: np.ndarray  # day index the product is created in the catalogue
    cycle_days: np.ndarray  # consumables: days between repeat purchases (0: not a consumable)
    partners: np.ndarray  # (n, 2) int: often bought together with (-1: none)
    abc: np.ndarray  # 0 = A (top revenue), 1 = B, 2 = C
    carried: np.ndarray  # (n, n_stores) bool: the store's assortment

    def __len__(self) -> int:
        return len(self.code)


@dataclass
class CustomerTable:
    first_name: list[str]
    last_name: list[str]
    email: list[str]
    phone: list[str | None]
    line1: list[str]
    line2: list[str | None]
    city: np.ndarray  # index into CITIES
    postal_code: list[str]
    segment: np.ndarray  # index into SEGMENTS
    archetype: np.ndarray  # index into ARCHETYPES
    preferred: np.ndarray  # index into PREFERRED_CHANNELS
    home_store: np.ndarray  # index into World.stores
    consent: np.ndarray
    join_day: np.ndarray  # day index they become a customer (negative: before the period)
    lapse_day: np.ndarray  # day index they stop buying (beyond the period: never)
    activity: np.ndarray  # relative purchase frequency
    taste_group: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # archetype x TASTE_GROUPS + k

    def __len__(self) -> int:
        return len(self.email)


@dataclass
class World:
    config: SimulationConfig
    start: date
    n_days: int
    locations: tuple[LocationSpec, ...]
    channels: tuple[ChannelSpec, ...]
    suppliers: tuple[SupplierSpec, ...]
    categories: tuple[Category, ...]
    skus: SkuTable
    customers: CustomerTable
    archetype_affinity: np.ndarray  # (n_archetypes, n_categories): relative preference, ~1 on average
    store_category: np.ndarray  # (n_stores, n_categories) demand multiplier of a store for a category
    stores: tuple[str, ...] = field(default=())
    warehouses: tuple[str, ...] = field(default=())
    brands: tuple[str, ...] = field(default=())
    sku_brand: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # (n_skus,) index into `brands`
    group_brand: np.ndarray = field(default_factory=lambda: np.ones((0, 0)))  # (n_taste_groups, n_brands): taste, ~1 on average

    def location(self, code: str) -> LocationSpec:
        return next(l for l in self.locations if l.code == code)

    def address(self, code: str) -> tuple[str, str]:
        """(city name, state) of a location."""
        if code in WAREHOUSE_REGIONS:
            return WAREHOUSE_REGIONS[code]
        city = next(c for c in CITIES if c.code == self.location(code).city)
        return city.name, city.state

    def supplier_of(self, sku: int) -> SupplierSpec:
        code = self.categories[int(self.skus.category[sku])].supplier
        return next(s for s in self.suppliers if s.code == code)


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


def price_point(value: float) -> Decimal:
    """A retail price: x.99 below 20, x.99 or x.49 below 100, whole dollars minus a cent above."""
    value = max(value, 1.5)
    if value < 20:
        base = math.floor(value) + (0.49 if value - math.floor(value) < 0.5 else 0.99)
    elif value < 100:
        base = math.floor(value) + 0.99 if value - math.floor(value) >= 0.5 else math.floor(value) - 0.01
    else:
        base = 5 * round(value / 5) - 0.01
    return Decimal(str(round(base, 2))).quantize(Decimal("0.01"), ROUND_HALF_UP)


def money(value: float) -> Decimal:
    return Decimal(str(round(value, 2))).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _rng(config: SimulationConfig, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([config.seed, stream]))


def generate_world(config: SimulationConfig) -> World:
    """The retailer for this config: same seed and scale, same world."""
    config = config.resolved()
    rng = _rng(config, 1)
    stores = tuple(l.code for l in LOCATIONS if l.kind == "store")
    warehouses = tuple(l.code for l in LOCATIONS if l.kind == "warehouse")
    online_locations = warehouses + tuple(l.code for l in LOCATIONS if l.can_ship_from_store)
    channels = (
        ChannelSpec("web", "Online store", "web", online_locations),
        ChannelSpec("app", "Mobile app", "app", online_locations),
        ChannelSpec("marketplace", "Marketplace storefront", "marketplace", warehouses),
    ) + tuple(ChannelSpec(f"pos-{code[3:].lower()}", f"{LOCATIONS[i].name} tills", "pos", (code,), store=code)
              for i, code in ((i, l.code) for i, l in enumerate(LOCATIONS)) if code in stores)
    skus = _generate_skus(config, rng, len(stores))
    customers, affinity = _generate_customers(config, rng, stores)
    store_category = _store_category(rng, stores)
    brands = tuple(sorted(set(skus.brand)))
    sku_brand = np.array([brands.index(b) for b in skus.brand], dtype=np.int64) if brands else np.zeros(0, dtype=np.int64)
    return World(config=config, start=config.start_date, n_days=config.n_days, locations=LOCATIONS, channels=channels,
                 suppliers=SUPPLIERS, categories=CATEGORIES, skus=skus, customers=customers, archetype_affinity=affinity,
                 store_category=store_category, stores=stores, warehouses=warehouses, brands=brands, sku_brand=sku_brand,
                 group_brand=_brand_taste(_rng(config, 5), customers, len(brands), config.knob("brand_taste", BRAND_TASTE)))


TASTE_GROUPS = 4
SAME_BRAND_PARTNER = 0.7
"""Chance that an item's partner (what goes with it) is of its own brand when the brand has one."""
"""Taste groups per archetype: shoppers of one archetype share category affinities but split into
groups with their own brand taste."""
BRAND_TASTE = 1.0
"""Spread (log scale) of a taste group's liking for brands: at 1.0 a group's favourite brand of a
category sells to its members several times more than the one it likes least (knob `brand_taste`;
0 leaves category affinity as the only taste)."""


def _brand_taste(rng: np.random.Generator, customers: CustomerTable, n_brands: int, spread: float) -> np.ndarray:
    """Put each customer in a taste group of their archetype, and return (n_groups, n_brands): how
    much each group likes each brand, across every category the brand sells in (a Luna Rae dress goes
    with Luna Rae sandals). Each brand averages 1 over the groups, so taste moves who buys a brand, not
    how much of it sells. Its own random stream: the rest of the world does not depend on it."""
    customers.taste_group = customers.archetype * TASTE_GROUPS + rng.integers(TASTE_GROUPS, size=len(customers))
    taste = np.exp(spread * rng.normal(0.0, 1.0, size=(len(ARCHETYPES) * TASTE_GROUPS, n_brands)))
    return taste / taste.mean(axis=0, keepdims=True)


def _store_category(rng: np.random.Generator, stores: tuple[str, ...]) -> np.ndarray:
    """Store-to-store differences by category: climate and neighbourhood, plus some noise."""
    climate = {
        "outerwear": {"ST-NYC": 1.1, "ST-BOS": 1.5, "ST-CHI": 1.5, "ST-ATL": 0.5, "ST-DAL": 0.4, "ST-DEN": 1.4, "ST-SEA": 1.1, "ST-LA": 0.3},
        "garden": {"ST-NYC": 0.4, "ST-BOS": 0.8, "ST-ATL": 1.3, "ST-DAL": 1.4, "ST-LA": 1.3, "ST-DEN": 1.1},
        "sports-outdoor": {"ST-DEN": 1.7, "ST-SEA": 1.4, "ST-LA": 1.2, "ST-NYC": 0.8},
        "womens-apparel": {"ST-NYC": 1.3, "ST-LA": 1.2},
        "beverages": {"ST-DAL": 1.3, "ST-ATL": 1.2, "ST-LA": 1.2, "ST-SEA": 0.8},
        "electronics": {"ST-SEA": 1.3, "ST-NYC": 1.1},
        "coffee-tea": {"ST-SEA": 1.5, "ST-BOS": 1.2},
    }
    table = np.exp(rng.normal(0.0, 0.18, size=(len(stores), len(CATEGORIES))))
    for c, per_store in climate.items():
        for s, f in per_store.items():
            table[stores.index(s), CATEGORY_INDEX[c]] *= f
    return table


def _generate_skus(config: SimulationConfig, rng: np.random.Generator, n_stores: int) -> SkuTable:
    n_target = config.n_skus
    n_days = config.n_days
    shares = np.array([c.sku_share for c in CATEGORIES])
    quotas = np.maximum(np.floor(shares / shares.sum() * n_target).astype(int), 3)
    quotas[np.argsort(-shares)[: max(0, n_target - int(quotas.sum()))]] += 1
    cols: dict[str, list] = {k: [] for k in ("code", "name", "brand", "size", "colour", "category", "style", "price", "cost", "weight",
                                            "pack", "returnable", "backorder", "popularity", "cycle")}
    style_no = 0
    for ci, cat in enumerate(CATEGORIES):
        made = 0
        seq = 0
        while made < quotas[ci]:
            seq += 1
            style_no += 1
            noun, lo, hi, kg = cat.items[rng.integers(len(cat.items))]
            brand = cat.brands[rng.integers(len(cat.brands))]
            style = cat.styles[rng.integers(len(cat.styles))]
            price = float(np.exp(rng.uniform(math.log(lo), math.log(hi))))
            style_pop = float(rng.lognormal(0.0, 1.25))
            if cat.code == "books":
                title = style if seq <= len(cat.styles) else f"{style}, Vol. {seq // len(cat.styles) + 1}"
                base_name = f"{title} ({noun})"
            elif cat.code == "electronics":
                base_name = f"{brand} {noun} {style}"
            else:
                base_name = f"{brand} {style} {noun}"
            variants: list[tuple[str | None, str | None, str, float]] = []  # size, colour, code suffix, weight
            if cat.variants in SIZES:
                colours = [COLOURS[i] for i in rng.choice(len(COLOURS), size=int(rng.integers(1, 4)), replace=False)]
                for k, (colour, ccode) in enumerate(colours):
                    for size, w in SIZES[cat.variants]:
                        variants.append((size, colour, f"{ccode}-{size}", w * (0.6 ** k)))
            elif cat.variants == "colour":
                colours = [COLOURS[i] for i in rng.choice(len(COLOURS), size=int(rng.integers(1, 5)), replace=False)]
                variants = [(None, colour, ccode, 0.55 ** k) for k, (colour, ccode) in enumerate(colours)]
            elif cat.variants == "shade":
                shades = [SHADES[i] for i in rng.choice(len(SHADES), size=int(rng.integers(2, 6)), replace=False)]
                variants = [(None, shade, ccode, 0.6 ** k) for k, (shade, ccode) in enumerate(shades)]
            else:
                variants = [(None, None, "", 1.0)]
            variants = variants[: quotas[ci] - made]
            total_w = sum(v[3] for v in variants)
            list_price = price_point(price)
            for size, colour, suffix, w in variants:
                code = f"{cat.prefix}-{seq:04d}" + (f"-{suffix}" if suffix else "")
                name = base_name + (f" - {colour}" if colour else "") + (f", Size {size}" if size else "")
                p = list_price + (Decimal(2) if size == "XL" and list_price > 30 else Decimal(0))
                cols["code"].append(code)
                cols["name"].append(name)
                cols["brand"].append(brand)
                cols["size"].append(size)
                cols["colour"].append(colour)
                cols["category"].append(ci)
                cols["style"].append(style_no)
                cols["price"].append(p)
                cols["cost"].append(money(float(p) * rng.uniform(*cat.cost_ratio)))
                cols["weight"].append(round(kg * float(rng.uniform(0.85, 1.15)), 3))
                cols["pack"].append(cat.pack)
                cols["returnable"].append(cat.returnable and not (cat.code == "personal-care" and "Toothpaste" in noun))
                cols["backorder"].append(bool(rng.random() < cat.backorder_share))
                cols["popularity"].append(style_pop * w / total_w)
                cols["cycle"].append(cat.cycle_days * float(rng.uniform(0.7, 1.4)) if cat.cycle_days else 0.0)
            made += len(variants)
    n = len(cols["code"])
    category = np.array(cols["category"], dtype=np.int64)
    popularity = np.array(cols["popularity"])
    # a long tail: a third of the catalogue sells rarely (slow movers, intermittent demand)
    tail = rng.random(n) < 0.33
    popularity = popularity * np.where(tail, 0.15, 1.0)
    for ci in range(len(CATEGORIES)):
        mask = category == ci
        popularity[mask] /= popularity[mask].sum()
    # life cycle: launches and discontinuations inside the period, the rest on sale throughout
    launch = np.full(n, -10_000, dtype=np.int64)
    eol = np.full(n, 10_000_000, dtype=np.int64)
    styles = np.array(cols["style"])
    unique_styles = np.unique(styles)
    style_launch = {int(s): int(rng.integers(14, max(n_days - 14, 15))) for s in unique_styles if rng.random() < 0.14}
    style_eol = {int(s): int(rng.integers(45, max(n_days + 60, 46))) for s in unique_styles if rng.random() < 0.10 and int(s) not in style_launch}
    preorder = {s for s in style_launch if rng.random() < 0.4}  # launches customers may pre-order (backorder)
    backorder = np.array(cols["backorder"])
    for i in range(n):
        s = int(styles[i])
        if s in style_launch:
            launch[i] = style_launch[s]
            backorder[i] |= s in preorder
        if s in style_eol:
            eol[i] = style_eol[s]
    lead = {c.code: next(s.lead_time_days for s in SUPPLIERS if s.code == c.supplier) for c in CATEGORIES}
    listed = np.where(launch > -10_000, launch - np.array([int(lead[CATEGORIES[c].code]) + 21 for c in category]), -10_000)
    listed = np.maximum(listed, -1).astype(np.int64)
    listed[launch == -10_000] = -1
    # partners: one SKU of the same category, one of a complementary category; mostly of the same
    # brand when it has one there (a collection: the dress and the sandals that go with it)
    partners = np.full((n, 2), -1, dtype=np.int64)
    by_cat = [np.flatnonzero(category == ci) for ci in range(len(CATEGORIES))]
    popular_of = [own[np.argsort(-popularity[own], kind="stable")][: max(3, len(own) // 3)] for own in by_cat]
    brand = np.array(cols["brand"])
    collection_rng = _rng(config, 6)  # its own stream: the rest of the catalogue does not depend on it
    for i in range(n):
        popular = popular_of[category[i]]
        choice = popular[rng.integers(len(popular))]
        same = popular[(brand[popular] == brand[i]) & (styles[popular] != styles[i])]
        if len(same) and collection_rng.random() < SAME_BRAND_PARTNER:
            choice = same[collection_rng.integers(len(same))]
        partners[i, 0] = choice if choice != i and styles[choice] != styles[i] else -1
        comp = COMPLEMENTS.get(CATEGORIES[category[i]].code, ())
        if comp:
            popular = popular_of[CATEGORY_INDEX[comp[rng.integers(len(comp))]]]
            choice = popular[rng.integers(len(popular))]
            same = popular[(brand[popular] == brand[i]) & (styles[popular] != styles[i])]
            if len(same) and collection_rng.random() < SAME_BRAND_PARTNER:
                choice = same[collection_rng.integers(len(same))]
            partners[i, 1] = choice if choice != i else -1
    # ABC by expected revenue share across the whole catalogue
    cat_share = np.array([c.demand_share for c in CATEGORIES])
    revenue = popularity * cat_share[category] * np.array([float(p) for p in cols["price"]])
    order = np.argsort(-revenue)
    cum = np.cumsum(revenue[order]) / revenue.sum()
    abc = np.empty(n, dtype=np.int64)
    abc[order] = np.where(cum <= 0.7, 0, np.where(cum <= 0.92, 1, 2))
    # what each store carries (about a quarter of the catalogue): nearly all fast movers, some of the
    # mid-range, a few of the tail; online sells everything
    unit_rank = popularity * cat_share[category]
    pct = np.empty(n)
    pct[np.argsort(-unit_rank)] = np.arange(n) / n
    p_carry = np.where(pct < 0.15, 0.92, np.where(pct < 0.5, 0.22, 0.03))
    carried = rng.random((n, n_stores)) < p_carry[:, None]
    return SkuTable(
        code=cols["code"], name=cols["name"], brand=cols["brand"], size=cols["size"], colour=cols["colour"], category=category,
        style=styles, price=cols["price"], cost=cols["cost"], weight=np.array(cols["weight"]), pack=np.array(cols["pack"], dtype=np.int64),
        returnable=np.array(cols["returnable"]), backorder=backorder, popularity=popularity, launch_day=launch,
        eol_day=eol, listed_day=listed, cycle_days=np.array(cols["cycle"]), partners=partners, abc=abc, carried=carried,
    )


def _generate_customers(config: SimulationConfig, rng: np.random.Generator, stores: tuple[str, ...]) -> tuple[CustomerTable, np.ndarray]:
    n = config.n_customers
    weights = np.array([c.weight for c in CITIES])
    city = rng.choice(len(CITIES), size=n, p=weights / weights.sum())
    segment = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_SHARE)
    archetype = rng.choice(len(ARCHETYPES), size=n)
    preferred = np.empty(n, dtype=np.int64)
    for s in range(len(SEGMENTS)):
        mask = segment == s
        preferred[mask] = rng.choice(len(PREFERRED_CHANNELS), size=int(mask.sum()), p=SEGMENT_CHANNEL_PREFERENCE[s])
    has_store = np.array([CITIES[c].store for c in city])
    preferred[(preferred == 3) & ~has_store] = 0  # no store nearby: they shop on the web
    store_specs = [next(l for l in LOCATIONS if l.code == s) for s in stores]
    nearest_store = [int(np.argmin([haversine_km((c.lat, c.lon), (l.lat, l.lon)) for l in store_specs])) for c in CITIES]
    home_store = np.array([nearest_store[c] for c in city], dtype=np.int64)
    consent = rng.random(n) < np.where(segment == 2, 0.7, 0.58)
    before = rng.random(n) < 0.6
    # 60% are customers when the period starts; the rest sign up over the next two years (the customer
    # base of the default store is the one at the end of a two-year period)
    join = np.where(before, -rng.integers(1, 1096, size=n), rng.integers(0, 730, size=n))
    lapse = np.where(rng.random(n) < 0.18, join + rng.exponential(420, size=n).astype(np.int64) + 30, 10_000_000)
    activity = np.array(SEGMENT_ACTIVITY)[segment] * rng.lognormal(0.0, 0.5, size=n)
    firsts, lasts, emails, phones, line1s, line2s, zips = [], [], [], [], [], [], []
    zip_lists = [city_zips(c.name, c.state, c.code) for c in CITIES]
    fi = rng.integers(len(FIRST_NAMES), size=n)
    li = rng.integers(len(LAST_NAMES), size=n)
    numbers = rng.integers(1, 9800, size=n)
    streets = rng.integers(len(STREETS), size=n)
    zi = rng.random(n)
    apt = rng.random(n)
    phone_draw = rng.random(n)
    phone_no = rng.integers(100, 200, size=n)
    for i in range(n):
        first, last = FIRST_NAMES[fi[i]], LAST_NAMES[li[i]]
        firsts.append(first)
        lasts.append(last)
        emails.append(f"{first}.{last}.{i + 1}@example.com".lower())
        c = CITIES[city[i]]
        phones.append(f"+1 {c.area_code} 555 0{phone_no[i]}" if phone_draw[i] < 0.5 else None)
        line1s.append(f"{numbers[i]} {STREETS[streets[i]]}")
        line2s.append(f"Apt {int(apt[i] * 40) + 1}{'ABCD'[int(apt[i] * 1000) % 4]}" if apt[i] < (0.6 if c.code in ("NYC", "BOS", "CHI") else 0.2) else None)
        zl = zip_lists[city[i]]
        zips.append(zl[int(zi[i] * len(zl))])
    # archetype affinities: favourite categories x3, the rest noisy; normalised to ~1 per category
    affinity = np.exp(rng.normal(0.0, 0.35, size=(len(ARCHETYPES), len(CATEGORIES))))
    for a, (_, favourites) in enumerate(ARCHETYPES):
        for c in favourites:
            affinity[a, CATEGORY_INDEX[c]] *= 3.0
    affinity /= affinity.mean(axis=0, keepdims=True)
    customers = CustomerTable(
        first_name=firsts, last_name=lasts, email=emails, phone=phones, line1=line1s, line2=line2s, city=city, postal_code=zips,
        segment=segment, archetype=archetype, preferred=preferred, home_store=home_store, consent=consent, join_day=join.astype(np.int64),
        lapse_day=lapse.astype(np.int64), activity=activity,
    )
    return customers, affinity


def nearest_warehouse(world: World, city_index: int) -> str:
    c = CITIES[city_index]
    return min(world.warehouses, key=lambda w: haversine_km((c.lat, c.lon), (world.location(w).lat, world.location(w).lon)))
