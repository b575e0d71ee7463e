"""Tests for credit_bot.money: exact conversion of notebook values and dollar formatting."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from credit_bot.money import InvalidAmount, format_usd, formatted_parts, read_parts, to_cents, to_decimal


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(4948, Decimal("4948"), id="int"),
        pytest.param(0, Decimal("0"), id="zero"),
        pytest.param(4948.8, Decimal("4948.8"), id="float-stays-exact"),
        pytest.param(0.1, Decimal("0.1"), id="float-0.1"),
        pytest.param(-12.5, Decimal("-12.5"), id="negative-float"),
        pytest.param(Decimal("12.345"), Decimal("12.345"), id="decimal"),
        pytest.param(np.float64(4948.8), Decimal("4948.8"), id="numpy-float64"),
        pytest.param(np.int64(4948), Decimal("4948"), id="numpy-int64"),
        pytest.param(np.float32(0.5), Decimal("0.5"), id="numpy-float32"),
        pytest.param("$4,948.80", Decimal("4948.80"), id="money-string"),
        pytest.param("4948.8", Decimal("4948.8"), id="plain-string"),
        pytest.param("1,000", Decimal("1000"), id="thousands"),
        pytest.param("1,234,567.89", Decimal("1234567.89"), id="millions"),
        pytest.param(" -$12 ", Decimal("-12"), id="negative-string-with-spaces"),
        pytest.param("0.005", Decimal("0.005"), id="sub-cent-string"),
    ],
)
def test_to_decimal(value: Any, expected: Decimal) -> None:
    result = to_decimal(value)
    assert isinstance(result, Decimal)
    assert result == expected
    assert str(result) == str(expected)  # exact digits, not just numerically equal


def test_float_does_not_pick_up_binary_noise() -> None:
    assert to_decimal(4948.8) != Decimal.from_float(4948.8)  # that carries the binary expansion


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("4,94,8.80", id="bad-grouping"),
        pytest.param("1,00", id="short-group"),
        pytest.param("12 dollars", id="words"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("nan", id="nan-string"),
        pytest.param("inf", id="inf-string"),
        pytest.param("1e3", id="exponent-string"),
        pytest.param("$", id="dollar-only"),
        pytest.param("4948.", id="trailing-dot"),
        pytest.param("€12", id="other-currency"),
        pytest.param(True, id="bool-true"),
        pytest.param(False, id="bool-false"),
        pytest.param(np.bool_(True), id="numpy-bool"),
        pytest.param(None, id="none"),
        pytest.param([4948.8], id="list"),
        pytest.param({"amount": 1}, id="dict"),
        pytest.param(float("nan"), id="float-nan"),
        pytest.param(float("inf"), id="float-inf"),
        pytest.param(float("-inf"), id="float-minus-inf"),
        pytest.param(np.float64("nan"), id="numpy-nan"),
        pytest.param(Decimal("NaN"), id="decimal-nan"),
        pytest.param(Decimal("sNaN"), id="decimal-snan"),
        pytest.param(Decimal("Infinity"), id="decimal-inf"),
    ],
)
def test_to_decimal_rejects(value: Any) -> None:
    with pytest.raises(InvalidAmount):
        to_decimal(value)


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        pytest.param(Decimal("0.005"), Decimal("0.01"), id="half-up-at-half-cent"),
        pytest.param(Decimal("0.004"), Decimal("0.00"), id="below-half-down"),
        pytest.param(Decimal("2.675"), Decimal("2.68"), id="2.675-half-up"),
        pytest.param(Decimal("2.665"), Decimal("2.67"), id="not-bankers-rounding"),
        pytest.param(Decimal("4948.8"), Decimal("4948.80"), id="pads"),
        pytest.param(Decimal("-0.005"), Decimal("-0.01"), id="negative-away-from-zero"),
        pytest.param(Decimal("7"), Decimal("7.00"), id="integer"),
    ],
)
def test_to_cents(amount: Decimal, expected: Decimal) -> None:
    result = to_cents(amount)
    assert result == expected
    assert result.as_tuple().exponent == -2


def test_to_cents_absurd_exponent_is_invalid_amount() -> None:
    with pytest.raises(InvalidAmount):
        to_cents(Decimal("1e100000"))


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        pytest.param(Decimal("4948.8"), "$4,948.80", id="brief-example"),
        pytest.param(Decimal("0"), "$0.00", id="zero"),
        pytest.param(Decimal("0.001"), "$0.00", id="rounds-to-zero"),
        pytest.param(Decimal("1234567.891"), "$1,234,567.89", id="millions"),
        pytest.param(Decimal("999.995"), "$1,000.00", id="rounding-carries"),
        pytest.param(Decimal("-12.5"), "-$12.50", id="negative"),
        pytest.param(Decimal("-1234.5"), "-$1,234.50", id="negative-thousands"),
        pytest.param(Decimal("-0.001"), "$0.00", id="negative-rounding-to-zero-has-no-sign"),
    ],
)
def test_format_usd(amount: Decimal, expected: str) -> None:
    assert format_usd(amount) == expected


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        pytest.param("$4,948.80$nan$nan", (Decimal("4948.80"), None, None), id="team-saved-output"),
        pytest.param(
            "$-5.00$1,234,567.89", (Decimal("-5.00"), Decimal("1234567.89")), id="negative-and-millions"
        ),
        pytest.param("$0.00$0.00$0.00", (Decimal("0.00"),) * 3, id="zeros"),
        pytest.param("$4,948.80", (Decimal("4948.80"),), id="one-part"),
        pytest.param("$nan$inf", (None, None), id="nan-and-inf"),
        pytest.param("$-0.00$nan", (Decimal("-0.00"), None), id="negative-zero"),
    ],
)
def test_formatted_parts(text: str, parts: tuple) -> None:
    found = formatted_parts(text)
    assert found is not None
    assert found.parts == parts
    assert [str(p) for p in found.parts if p is not None] == [str(p) for p in parts if p is not None]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("4,948.80", id="no-dollar"),
        pytest.param("$4948.80$nan", id="no-separator"),
        pytest.param("$4,948.8", id="one-decimal"),
        pytest.param("$4,948.80 ", id="trailing-space"),
        pytest.param("$NaN", id="capitalised-nan"),
        pytest.param("", id="empty"),
        pytest.param("$1,00.00", id="short-group"),
    ],
)
def test_formatted_parts_refuses_other_text(text: str) -> None:
    assert formatted_parts(text) is None


def test_read_parts_rules() -> None:
    assert read_parts("$4,948.80$nan$nan").total == Decimal("4948.80")  # type: ignore[union-attr]
    assert read_parts("12 dollars") is None
    with pytest.raises(InvalidAmount, match="nan in every part"):
        read_parts("$nan$nan$nan")
    with pytest.raises(InvalidAmount, match="infinite part"):
        read_parts("$1.00$-inf$nan")
