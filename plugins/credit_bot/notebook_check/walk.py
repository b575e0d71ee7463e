"""The one AST visitor: every node of every cell, once, handed to the rules registered for its type.

The table (node type → rules) is :data:`credit_bot.notebook_check.rules.NODE_RULES`: the fact rules
below and the environment rules of :mod:`.environment`. Each rule looks at one node and either reports
a :class:`Finding` or records a fact (``looker`` is read, ``credit_amount`` is assigned, a module is
imported) for the notebook-wide rules of :mod:`.structure` and :mod:`.imports`. Nodes are visited
breadth-first within a cell (``ast.walk``), so a statement is seen before what it contains: a
``try`` before the imports it guards, an ``os.chdir`` call before its folder argument.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from credit_bot.notebook_check.notebook import PARAMETER_NAMES, RESULT_NAME, Cell, Finding, stores

# Errors an `except` must catch for the imports in its `try` to count as optional.
_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


@dataclass
class Visit:
    """What the walk found: findings keyed so that each is reported once, and facts for later rules."""

    parameter: str = PARAMETER_NAMES[0]
    findings: dict[tuple[str, int, int | None], Finding] = field(default_factory=dict)
    parameter_read: bool = False
    result_stored: bool = False
    assignments: dict[int, list[ast.Assign]] = field(default_factory=dict)  # cell number → in line order
    imports: dict[str, tuple[Cell, int]] = field(default_factory=dict)  # top-level module → first use
    names_from: dict[str, str] = field(default_factory=dict)  # `from m import f` → f: m
    called: list[tuple[Cell, str]] = field(default_factory=list)  # plain-name calls, f(...)
    claimed: set[int] = field(default_factory=set)  # ids of nodes a finding already covers
    guarded: set[int] = field(default_factory=set)  # ids of imports inside try/except ImportError

    def add(self, finding: Finding) -> None:
        """Report ``finding``; at a place already reported, what the code does wins over a guess."""
        assert finding.cell is not None
        key = (finding.code, finding.cell, finding.line)
        if key not in self.findings or (finding.certain and not self.findings[key].certain):
            self.findings[key] = finding


class Rule(NamedTuple):
    """One entry of the table: ``check(visit, cell, node)``; ``environment`` rules skip claimed nodes."""

    check: Callable[[Visit, Cell, ast.AST], None]
    environment: bool = True


RuleTable = Mapping[type[ast.AST], tuple[Rule, ...]]


def walk(cells: list[Cell], rules: RuleTable, parameter: str = PARAMETER_NAMES[0]) -> Visit:
    """Visit every node of every parsed cell with the ``rules`` registered for its type."""
    visit = Visit(parameter=parameter)
    for cell in cells:
        if cell.tree is None:
            continue
        for node in ast.walk(cell.tree):
            claimed = id(node) in visit.claimed
            for rule in rules.get(type(node), ()):
                if not (claimed and rule.environment):
                    rule.check(visit, cell, node)
    for assignments in visit.assignments.values():
        assignments.sort(key=lambda n: (n.lineno, n.col_offset))
    return visit


# ── facts ──────────────────────────────────────────────────────────────────────────────────────
def _name(visit: Visit, cell: Cell, node: ast.AST) -> None:
    assert isinstance(node, ast.Name)
    if node.id == visit.parameter and isinstance(node.ctx, ast.Load):
        visit.parameter_read = True
    if stores(node, RESULT_NAME):
        visit.result_stored = True


def _assignment(visit: Visit, cell: Cell, node: ast.AST) -> None:
    assert isinstance(node, ast.Assign)
    if len(node.targets) == 1:
        visit.assignments.setdefault(cell.number, []).append(node)


def _try(visit: Visit, cell: Cell, node: ast.AST) -> None:
    """Imports inside ``try: … except ImportError:`` are optional: the import check skips them."""
    assert isinstance(node, ast.Try)
    names: set[str] = set()
    for handler in node.handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names |= {k.id for k in kinds if isinstance(k, ast.Name)} | (
            {"Exception"} if not handler.type else set()
        )
    if names & _IMPORT_ERRORS:
        visit.guarded |= {id(n) for stmt in node.body for n in ast.walk(stmt)}


def _import(visit: Visit, cell: Cell, node: ast.AST) -> None:
    if id(node) in visit.guarded:
        return
    if isinstance(node, ast.Import):
        modules = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        modules = [node.module]
        for alias in node.names:
            visit.names_from[alias.asname or alias.name] = node.module.split(".")[0]
    else:
        return
    for module in modules:
        visit.imports.setdefault(module.split(".")[0], (cell, node.lineno))


def _plain_call(visit: Visit, cell: Cell, node: ast.AST) -> None:
    assert isinstance(node, ast.Call)
    if isinstance(node.func, ast.Name):
        visit.called.append((cell, node.func.id))


# What the notebook-wide rules need to know (no findings of their own).
FACT_RULES: dict[type[ast.AST], tuple[Rule, ...]] = {
    ast.Name: (Rule(_name, environment=False),),
    ast.Assign: (Rule(_assignment, environment=False),),
    ast.Try: (Rule(_try, environment=False),),
    ast.Import: (Rule(_import, environment=False),),
    ast.ImportFrom: (Rule(_import, environment=False),),
    ast.Call: (Rule(_plain_call, environment=False),),
}
