"""Money is Decimal with explicit rounding; floats never touch an amount."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def to_money(value: Decimal | int | str) -> Decimal:
    """Round half-up to the cent, the way receipts are printed."""
    if isinstance(value, float):
        raise TypeError("money must not be a float; pass a str or Decimal")
    try:
        amount = Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not an amount: {value!r}") from exc
    if not amount.is_finite():  # a quiet NaN survives quantize()
        raise ValueError(f"not an amount: {value!r}")
    return amount


def allocate_pro_rata(amount: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """Split `amount` over `weights` in cents so the parts add up exactly (largest remainder)."""
    amount = to_money(amount)
    total = sum(weights, Decimal(0))
    if not weights:
        return []
    if total <= 0:
        shares = [ZERO] * len(weights)
        shares[0] = amount
        return shares
    cents = int(amount / CENT)
    raw = [Decimal(cents) * w / total for w in weights]
    floors = [math.floor(r) for r in raw]  # floor, not int(): int() rounds negatives up and breaks the sum
    left = cents - sum(floors)
    order = sorted(range(len(raw)), key=lambda i: (raw[i] - floors[i]), reverse=True)
    for i in order[:left]:
        floors[i] += 1
    return [(Decimal(c) * CENT).quantize(CENT) for c in floors]
