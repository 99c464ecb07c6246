"""Where things are, for routing: ZIP-code centroids and great-circle distances. Pure and offline.

`coordinates()` only knows the United States: the first five digits of a US postal code are looked up
in the offline `zipcodes` database (the ZIP's centroid, good to a few km for routing). Any other
country gives None, as does an unknown or malformed ZIP; for those, pass latitude/longitude
explicitly (locations carry their own `latitude`/`longitude`), or let routing fall back to the
channel's location priority, which is what it does when a distance is unknown.
"""

from __future__ import annotations

import math
import re

import zipcodes

EARTH_RADIUS_KM = 6371.0  # mean Earth radius
US_COUNTRY_CODES = frozenset({"US", "USA"})

_FIRST_FIVE_DIGITS = re.compile(r"\s*(\d{5})")


def coordinates(postal_code: str | None, country: str | None) -> tuple[float, float] | None:
    """(latitude, longitude) of a US ZIP code's centroid, or None when it cannot be known offline.

    `country` None is read as "US" (the default country of locations and of the store); any other
    country returns None. "10004", "10004-1234" and "10004 1234" all look up "10004". Never raises.
    """
    if not postal_code or not isinstance(postal_code, str):
        return None
    if country is not None and country.strip().upper() not in US_COUNTRY_CODES:
        return None
    match = _FIRST_FIVE_DIGITS.match(postal_code)
    if match is None:
        return None
    return _us_zip(match.group(1))


SCANS_BEFORE_INDEX = 1_000
"""ZIPs looked up one by one (a scan of the database, ~0.5 ms each) before the whole database is read
into an index instead (~0.5 s once): a few look-ups (an API process) never pay for the index, a
simulation or an import of many customers pays it once."""

_points: dict[str, tuple[float, float] | None] = {}
_index: dict[str, tuple[float, float] | None] | None = None


def _us_zip(zip5: str) -> tuple[float, float] | None:
    global _index
    if _index is not None:
        return _index.get(zip5)
    if zip5 in _points:
        return _points[zip5]
    if len(_points) >= SCANS_BEFORE_INDEX:
        try:
            everything = zipcodes.list_all()
        except Exception:  # routing must never fail on the ZIP database
            everything = []
        index: dict[str, tuple[float, float] | None] = {}
        for entry in everything:
            if index.get(entry.get("zip_code")) is None:
                index[entry.get("zip_code")] = _point(entry)
        _index = index
        return index.get(zip5)
    try:
        found = zipcodes.matching(zip5)
    except Exception:  # the library raises ValueError/TypeError on bad input; routing must never fail on it
        found = []
    point = next((p for p in map(_point, found) if p is not None), None)
    _points[zip5] = point
    return point


def _point(entry: dict) -> tuple[float, float] | None:
    """An entry's (latitude, longitude) when both are finite and in range."""
    try:
        lat, lon = float(entry["lat"]), float(entry["long"])
    except (KeyError, TypeError, ValueError):
        return None
    if math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180:
        return (lat, lon)
    return None


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in km between two (latitude, longitude) points in degrees."""
    lat1, lon1 = math.radians(a[0]), math.radians(a[1])
    lat2, lon2 = math.radians(b[0]), math.radians(b[1])
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
