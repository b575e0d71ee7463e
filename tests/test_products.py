"""Tests for credit_bot.products: which product a Looker query's SQL is for."""

from __future__ import annotations

import pytest

from credit_bot.products import match_product
from credit_bot.settings import DEFAULT_PRODUCTS, ProductRule

VERIFY_FRIENDLY = """SELECT billable_items.friendly_name AS "billable_items.friendly_name",
  SUM(usage.price) AS "usage.total_price"
FROM usage JOIN billable_items ON usage.sku = billable_items.sku
WHERE (billable_items.friendly_name) = 'Authy Verify SMS'
GROUP BY 1"""
VERIFY_METADATA = """SELECT SUM(usage.price)
FROM usage JOIN billable_item_metadata_alex ON usage.sku = billable_item_metadata_alex.sku
WHERE billable_item_metadata_alex.product IN ('AUTHY')"""
PSMS = """SELECT SUM(usage.price)
FROM usage JOIN billable_items ON usage.sku = billable_items.sku
WHERE billable_items.friendly_name LIKE 'Programmable SMS%'"""
VERIFY = DEFAULT_PRODUCTS[0]
PSMS_RULE = ProductRule(name="psms", pattern=r"programmable\s+sms", notebook=None)


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param(VERIFY_FRIENDLY, id="friendly-name"),
        pytest.param(VERIFY_METADATA, id="metadata-product-uppercase"),
        pytest.param("WHERE product = 'authy'", id="lowercase"),
        pytest.param("WHERE product ILIKE '%AuThY%'", id="mixed-case"),
    ],
)
def test_verify_sql_matches_default_rule(sql: str) -> None:
    assert match_product(sql, DEFAULT_PRODUCTS) == VERIFY


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param(PSMS, id="psms"),
        pytest.param("", id="empty"),
        pytest.param("SELECT 1", id="unrelated"),
    ],
)
def test_other_sql_matches_nothing(sql: str) -> None:
    assert match_product(sql, DEFAULT_PRODUCTS) is None


def test_no_rules_match_nothing() -> None:
    assert match_product(VERIFY_FRIENDLY, ()) is None


@pytest.mark.parametrize(
    ("rules", "sql", "expected"),
    [
        pytest.param(
            (ProductRule("first", "authy", "a.ipynb"), ProductRule("second", "verify", "b.ipynb")),
            "authy verify",
            "first",
            id="first-wins",
        ),
        pytest.param(
            (ProductRule("first", "nomatch", "a.ipynb"), ProductRule("second", "verify", "b.ipynb")),
            "authy verify",
            "second",
            id="falls-through",
        ),
        pytest.param(
            (ProductRule("broad", ".", None), VERIFY), VERIFY_FRIENDLY, "broad", id="order-not-specificity"
        ),
    ],
)
def test_first_matching_rule_wins(rules: tuple[ProductRule, ...], sql: str, expected: str) -> None:
    rule = match_product(sql, rules)
    assert rule is not None
    assert rule.name == expected


def test_rule_without_notebook_is_returned() -> None:
    rule = match_product(PSMS, (VERIFY, PSMS_RULE))
    assert rule == PSMS_RULE
    assert rule.notebook is None  # the caller ignores the request silently
