"""Exact money: read a notebook's credit value into a ``Decimal`` and format it for a reply.

A wrong amount is worse than no amount, so anything that is not unambiguously a number of
dollars is rejected with :class:`InvalidAmount` instead of being guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from credit_bot.errors import RejectedRequest

CENT = Decimal("0.01")
# "$4,948.80", "4948.8", "-12", "1,000" — thousands separators only in groups of three.
_MONEY_TEXT = re.compile(r"^\s*(-)?\s*\$?\s*(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s*$")
# One part as Python's f"${x:,.2f}" writes a float: "$1,234.57", "$-5.00", "$nan", "$inf", "$-inf".
_FORMATTED_PART = re.compile(r"\$(-?)(\d{1,3}(?:,\d{3})*\.\d{2}|nan|inf)")
_FORMATTED_PARTS = re.compile(rf"(?:{_FORMATTED_PART.pattern})+")
# The team's notebook writes one part per protection mode, in this order (product brief).
MODE_NAMES = ("basic", "standard", "max")


class InvalidAmount(RejectedRequest):
    """The notebook's value is not a usable dollar amount: the same data gives the same value, so the
    request is escalated to the operators, never retried."""


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


@dataclass(frozen=True)
class FormattedParts:
    """A string of dollar amounts as ``f"${x:,.2f}"`` writes them, concatenated by a pandas ``sum()``.

    The team's notebook formats its per-mode credit column as text and then sums it, so
    ``credit_amount`` is e.g. ``'$4,948.80$nan$nan'``. Their number is the sum of the parts as
    displayed (each already in cents), a ``$nan`` part counting 0: the method's value for a mode
    with no scanned traffic (0/0) or a block rate of 1. ``None`` stands for a ``$nan`` part.
    """

    parts: tuple[Decimal | None, ...]
    infinite: bool = False

    @property
    def total(self) -> Decimal:
        return sum((p for p in self.parts if p is not None), Decimal("0.00"))

    @property
    def all_nan(self) -> bool:
        return all(p is None for p in self.parts)

    def describe(self) -> str:
        """``basic $4,948.80 + standard nan + max nan`` (modes named when there are three parts)."""
        names = (
            MODE_NAMES
            if len(self.parts) == len(MODE_NAMES)
            else [f"part {i + 1}" for i in range(len(self.parts))]
        )
        return " + ".join(
            f"{name} {'nan' if part is None else format_usd(part)}"
            for name, part in zip(names, self.parts, strict=True)
        )


def formatted_parts(text: str) -> FormattedParts | None:
    """The parts of a string made only of ``f"${x:,.2f}"`` amounts, or None for any other text."""
    if not _FORMATTED_PARTS.fullmatch(text):
        return None
    parts: list[Decimal | None] = []
    infinite = False
    for sign, digits in _FORMATTED_PART.findall(text):
        if digits == "inf":
            infinite = True
            parts.append(None)
        elif digits == "nan":
            parts.append(None)
        else:
            parts.append(Decimal(f"{sign}{digits.replace(',', '')}"))
    return FormattedParts(tuple(parts), infinite)


def read_parts(text: str) -> FormattedParts | None:
    """:func:`formatted_parts`, refusing what has no basis: any infinite part, or every part nan.

    A single ordinary amount (``"$4,948.80"``) gives one part; text of any other shape gives None
    (the caller's own rules apply to it).
    """
    found = formatted_parts(text)
    if found is None:
        return None
    if found.infinite:
        raise InvalidAmount(f"credit_amount {text!r} has an infinite part: no amount can be read from it")
    if found.all_nan:
        raise InvalidAmount(
            f"credit_amount {text!r} is nan in every part ({found.describe()}): no protection mode gave a "
            "credit (no scanned traffic, or every block rate 1), so there is no basis for one"
        )
    return found


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
