"""Exact money: read a notebook's credit value into a ``Decimal`` and format it for a reply.

A wrong amount is worse than no amount, so anything that is not unambiguously a number of
dollars is rejected with :class:`InvalidAmount` instead of being guessed at.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
# "$4,948.80", "4948.8", "-12", "1,000" — thousands separators only in groups of three.
_MONEY_TEXT = re.compile(r"^\s*(-)?\s*\$?\s*(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s*$")


class InvalidAmount(ValueError):
    """The notebook's value is not a usable dollar amount."""


def to_decimal(value: Any) -> Decimal:
    """Convert a notebook value (int, float, Decimal, numpy scalar, money string) to ``Decimal``.

    Floats go through ``repr``, the shortest string that round-trips, so ``4948.8`` stays
    ``4948.8`` and does not become ``4948.8000000000001818…``.
    """
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalar
        value = value.item()
    if isinstance(value, bool):  # after unwrapping: numpy.bool_ becomes bool, an int subclass
        raise InvalidAmount(f"credit_amount is a boolean ({value}), not an amount")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        match = _MONEY_TEXT.match(value)
        if not match:
            raise InvalidAmount(f"credit_amount {value!r} is not an unambiguous dollar amount")
        sign, whole, fraction = match.groups()
        result = Decimal(f"{sign or ''}{whole.replace(',', '')}{fraction or ''}")
    else:
        raise InvalidAmount(f"credit_amount has type {type(value).__name__}, expected a number")
    if not result.is_finite():
        raise InvalidAmount(f"credit_amount is {result}, not a finite number")
    return result


def to_cents(amount: Decimal) -> Decimal:
    """Round to cents, half up (the team's rule)."""
    try:
        return amount.quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:  # absurdly large exponents
        raise InvalidAmount(f"credit_amount {amount} cannot be rounded to cents") from exc


def format_usd(amount: Decimal) -> str:
    """``Decimal("4948.8")`` -> ``"$4,948.80"``."""
    cents = to_cents(amount)
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents):,.2f}"
