"""Decide which product a Looker query is for, from its SQL, by the configured rules.

The first rule whose pattern matches (case-insensitive) wins; SQL that matches no rule is
ignored silently, like a rule without a notebook (how PSMS is handled today).
"""

from __future__ import annotations

import re

from credit_bot.settings import ProductRule


def match_product(sql: str, rules: tuple[ProductRule, ...]) -> ProductRule | None:
    for rule in rules:
        if re.search(rule.pattern, sql, flags=re.IGNORECASE):
            return rule
    return None
