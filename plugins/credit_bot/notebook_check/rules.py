"""The check's rules as one table: node rules by AST node type (walked once, :func:`.walk.walk`),
then notebook-wide rules over the cells and what the walk found.

=====================  ===================================================================
node rules             :data:`.walk.FACT_RULES` (what later rules need) and
                       :data:`.environment.ENVIRONMENT_RULES` (chdir, .env, credentials, paths)
notebook-wide rules    :data:`.structure.STRUCTURE_RULES` (syntax, parameters cell, looker,
                       credit_amount), then the environment's findings, then
                       :data:`.structure.RESULT_RULES` (credit_amount summed from dollar text)
kernel rules           :func:`.kernel.kernel_findings`; imports: :func:`.kernel.import_findings`
=====================  ===================================================================
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from credit_bot.notebook_check.environment import ENVIRONMENT_RULES
from credit_bot.notebook_check.notebook import PARAMETER_NAMES, Cell, Finding
from credit_bot.notebook_check.structure import RESULT_RULES, STRUCTURE_RULES
from credit_bot.notebook_check.walk import FACT_RULES, Rule, walk

NODE_RULES: dict[type[ast.AST], tuple[Rule, ...]] = {
    kind: FACT_RULES.get(kind, ()) + ENVIRONMENT_RULES.get(kind, ())
    for kind in (*FACT_RULES, *ENVIRONMENT_RULES)
}


def cell_findings(cells: list[Cell], names: Sequence[str] = PARAMETER_NAMES) -> list[Finding]:
    """Every finding read from the cells alone, in the order the rules are listed above."""
    visit = walk(cells, NODE_RULES, parameter=names[0])
    findings = [f for rule in STRUCTURE_RULES for f in rule(cells, visit)]
    findings += visit.findings.values()
    return findings + [f for rule in RESULT_RULES for f in rule(cells, visit)]
