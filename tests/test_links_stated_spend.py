"""Tests for credit_bot.links.stated_spends: the fraud spend a request states next to its Looker link.

(Its own file, next to tests/test_links.py, so that link-finding changes and these do not collide.)
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from credit_bot.links import LABEL, LINE, money_amounts, stated_spends

HOST = "credit-sandbox.cloud.looker.com"
LOOK = f"https://{HOST}/looks/123"
OTHER = f"https://{HOST}/looks/456"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f"Fraud spend: <{LOOK}|$179.73>", {LOOK: ("179.73", LABEL)}, id="label"),
        pytest.param(f"Fraud spend: <{LOOK}|$20,902.40>", {LOOK: ("20902.40", LABEL)}, id="label-thousands"),
        pytest.param(f"<{LOOK}|$179.73 fraud spend>", {LOOK: ("179.73", LABEL)}, id="label-with-words"),
        pytest.param(f"Fraud spend: $179.73 <{LOOK}>", {LOOK: ("179.73", LINE)}, id="line-before"),
        pytest.param(
            f"<{LOOK}|look> fraud spend US$ 5", {LOOK: ("5", LINE)}, id="line-after-non-money-label"
        ),
        pytest.param(f"Fraud spend: $179.73 {LOOK}", {LOOK: ("179.73", LINE)}, id="bare-url"),
        pytest.param(
            f"Fraud spend: $1 <{LOOK}|$179.73>", {LOOK: ("179.73", LABEL)}, id="label-wins-over-line"
        ),
        pytest.param(
            f"acme <{LOOK}|$5.10>\nbolt <{OTHER}|$7>",
            {LOOK: ("5.10", LABEL), OTHER: ("7", LABEL)},
            id="two-lines",
        ),
        pytest.param(
            f"<{LOOK}|$5> and <{OTHER}|$7>",
            {LOOK: ("5", LABEL), OTHER: ("7", LABEL)},
            id="two-labels-one-line",
        ),
        pytest.param(
            f"<{LOOK}|$9>\nagain <{LOOK}|$8>", {LOOK: ("8", LABEL)}, id="stated-twice-keeps-smaller"
        ),
        pytest.param(f"<{LOOK}|acme>", {}, id="label-not-money"),
        pytest.param(f"<{LOOK}|Look 123>", {}, id="label-number-without-dollar"),
        pytest.param(f"<{LOOK}>", {}, id="no-label"),
        pytest.param(f"$5 <{LOOK}> $6", {}, id="two-amounts-on-line"),
        pytest.param(f"$5 <{LOOK}> <{OTHER}>", {}, id="two-links-one-amount"),
        pytest.param(f"<{LOOK}|$1,2345>", {}, id="bad-grouping"),
        pytest.param(f"<{LOOK}|$5 or $6>", {}, id="label-two-amounts"),
        pytest.param("Fraud spend: <https://acme.zendesk.com/t/1|$5>", {}, id="not-looker"),
        pytest.param(
            f"$5 <https://{HOST}/explore/m/v?qid=q1&amp;t=1>",
            {f"https://{HOST}/explore/m/v?qid=q1&t=1": ("5", LINE)},
            id="escaped-url-keyed-as-resolved",
        ),
    ],
)
def test_stated_spends(text: str, expected: dict[str, tuple[str, str]]) -> None:
    found = stated_spends(text, [HOST])
    assert {url: (s["amount"], s["where"]) for url, s in found.items()} == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("$4,948.80", [Decimal("4948.80")], id="thousands"),
        pytest.param("spend $12 and $0.5", [Decimal("12"), Decimal("0.5")], id="two"),
        pytest.param("12.50", [], id="no-dollar-sign"),
        pytest.param("ab$12", [], id="inside-a-word"),
        pytest.param("&lt;$12&gt;", [Decimal("12")], id="slack-escaped"),
    ],
)
def test_money_amounts(text: str, expected: list[Decimal]) -> None:
    assert money_amounts(text) == expected
