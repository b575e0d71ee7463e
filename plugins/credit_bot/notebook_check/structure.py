"""Notebook-wide rules: cells that do not parse, the parameters cell, ``looker`` declared, kept and
read, ``credit_amount`` assigned (and summed from dollar text), the kernel.

Each is a function of the cells and what the walk found (:class:`~.walk.Visit`); :data:`NOTEBOOK_RULES`
lists them in the order their findings are reported.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from credit_bot.notebook_check.notebook import (
    RESULT_NAME,
    Cell,
    Finding,
    bindings,
    parameters_index,
    stores,
)
from credit_bot.notebook_check.walk import Visit

_NO_CODE = ast.Module(body=[], type_ignores=[])  # what a cell that does not parse contains
TAG_HINT = "tag it `parameters` (JupyterLab: the cell's Property Inspector → Cell Tags → add `parameters`)"


def syntax_errors(cells: list[Cell], visit: Visit) -> list[Finding]:
    return [
        Finding(
            "syntax-error",
            True,
            cell.number,
            None,
            "the cell is not valid Python, so the notebook fails when it gets there",
            "fix the cell so it runs (Kernel → Restart & Run All shows the error)",
        )
        for cell in cells
        if cell.kind == "code" and cell.tree is None
    ]


def parameters(cells: list[Cell], visit: Visit) -> list[Finding]:
    """A cell to inject the parameters after, declaring ``looker``, and nothing overwriting it later."""
    found = parameters_index(cells, (visit.parameter,))
    if found is None:
        return [_parameters_missing(cells, visit.parameter)]
    index, tagged = found
    name, cell = visit.parameter, cells[index]
    findings = []
    if not tagged:
        findings.append(
            Finding(
                "parameters-untagged",
                False,
                cell.number,
                None,
                "the cell that declares the parameters is not tagged `parameters`. CreditBot copes: "
                "it tags this cell in its own copy, so papermill injects the SQL right after it",
                TAG_HINT,
            )
        )
    elif not any(stores(n, name) for n in ast.walk(cell.tree or _NO_CODE)):
        findings.append(
            Finding(
                "looker-undeclared",
                False,
                cell.number,
                None,
                f"the `parameters` cell does not declare {name}. CreditBot copes (papermill injects "
                f"it after this cell), but the notebook cannot be run by hand",
                f'add `{name} = ""` to this cell',
            )
        )
    return findings + _overwritten(cells[index + 1 :], name)


def _parameters_missing(cells: list[Cell], name: str) -> Finding:
    """No cell tagged ``parameters`` and none that only declares ``looker``: what to change."""
    # A cell that derives the SQL from `looker` is no candidate for the parameters cell.
    assigned = [c for c in cells for _, derived in bindings(c.tree, name) if not derived]
    first = assigned[0] if assigned else None
    # Where the cell's own value is set, and whether the cell goes on to use it (the earlier team
    # file: a literal Looker SQL, then the query): tagging that cell would come too late.
    own_lines = [getattr(n, "lineno", 0) for n, d in bindings(first.tree, name) if not d] if first else []
    own = min(own_lines, default=0)
    used_after = first is not None and any(
        isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load) and n.lineno > own
        for n in ast.walk(first.tree or _NO_CODE)
    )
    if first is None:
        where, fix = f"no cell declares {name}", ""
    elif used_after:
        where = (
            f"cell {first.number} assigns its own value to {name} (line {own}) and then uses it, so the "
            "SQL would run before the bot's could be injected"
        )
        fix = f"delete that assignment from cell {first.number}, and "
    else:
        where = f"cell {first.number} sets {name} but also does other things"
        fix = f"tag cell {first.number} `parameters`, or "
    return Finding(
        "parameters-missing",
        True,
        first.number if first else None,
        own if used_after else None,
        f"no cell is tagged `parameters` and {where}: papermill would put the SQL at the top, "
        f"where the notebook's own {name} wins. CreditBot cannot cope with this one",
        fix
        + f'put `{name} = ""` alone in a code cell '
        + (f"above cell {first.number}" if used_after and first else "near the top")
        + f" and {TAG_HINT}",
    )


def _overwritten(later: list[Cell], name: str) -> list[Finding]:
    """``looker`` given a value of its own after the parameters cell (deriving it from itself is fine)."""
    return [
        Finding(
            "looker-overwritten",
            True,
            cell.number,
            getattr(node, "lineno", None),
            f"{name} is assigned a value that does not come from {name} after the parameters "
            "cell, so the SQL the bot passes is overwritten (rewriting it from itself, e.g. "
            f"`{name} = {name}.split(marker)[0]`, is fine)",
            f"remove this assignment; derive any new SQL from {name}",
        )
        for cell in later
        for node, derived in bindings(cell.tree, name)
        if not derived  # derived: the notebook's own rewrite of the bot's SQL (e.g. cut at a marker)
    ]


def parameter_unused(cells: list[Cell], visit: Visit) -> list[Finding]:
    if visit.parameter_read:
        return []
    name = visit.parameter
    return [
        Finding(
            "looker-unused",
            True,
            None,
            None,
            f"the notebook never reads {name}, so the credit would not depend on the request's link",
            f"run the SQL in {name} against the warehouse (e.g. cursor.execute({name}))",
        )
    ]


def result_missing(cells: list[Cell], visit: Visit) -> list[Finding]:
    if visit.result_stored:
        return []
    return [
        Finding(
            "credit-amount-missing",
            True,
            None,
            None,
            f"`{RESULT_NAME}` is never assigned, so CreditBot has no amount to read",
            f"end the notebook with `{RESULT_NAME} = <the credit in dollars>`, e.g. "
            f"`{RESULT_NAME} = output_df['credit'].sum()`",
        )
    ]


# ── credit_amount summed from dollar text ──────────────────────────────────────────────────────
def _money_text(node: ast.AST) -> bool:
    """``f"${x:,.2f}"``, ``"${:,.2f}".format(x)``, ``"$%.2f" % x``, ``"$" + …``: a number made dollar text."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values) and any(
            isinstance(v, ast.Constant) and "$" in str(v.value) for v in node.values
        )
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _money_text(node.func.value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return _money_text(node.left) or (isinstance(node.op, ast.Add) and _money_text(node.right))
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and "$" in node.value


def _formats_as_money(value: ast.AST) -> bool:
    """``column.map(lambda x: f"${x:,.2f}")`` / ``.apply(…)`` / ``.map("${:,.2f}".format)`` / ``"$" + …``."""
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add):
        return _money_text(value.left) or _money_text(value.right)
    if not (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr in {"map", "apply", "applymap", "transform"}
        and value.args
    ):
        return False
    function = value.args[0]
    if isinstance(function, ast.Lambda):
        return _money_text(function.body)
    return isinstance(function, ast.Attribute) and function.attr == "format" and _money_text(function.value)


def _summed(value: ast.AST) -> str | None:
    """``output_df['credit']`` for ``output_df['credit'].sum()``."""
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "sum":
        return ast.unparse(value.func.value)
    return None


def result_text(cells: list[Cell], visit: Visit) -> list[Finding]:
    """``credit_amount`` summed from a column already formatted as dollar text (the team's notebook).

    pandas ``sum()`` of strings concatenates them, so the notebook's value is ``'$4,948.80$nan$nan'``.
    CreditBot reads that shape (:func:`credit_bot.money.read_parts`); the fix makes it a number.
    """
    formatted: dict[str, tuple[Cell, int]] = {}  # ast.unparse of the column → where it became text
    findings = []
    for cell in cells:
        for node in visit.assignments.get(cell.number, []):
            target = node.targets[0]
            if stores(target, RESULT_NAME):
                summed = _summed(node.value)
                if summed in formatted:
                    findings.append(_summed_text(cell, node, summed, *formatted[summed]))
                continue
            if isinstance(target, ast.Subscript | ast.Attribute | ast.Name):
                key = ast.unparse(target)
                if _formats_as_money(node.value):
                    formatted[key] = (cell, node.lineno)
                else:
                    formatted.pop(key, None)  # the column is numbers again
    return findings


def _summed_text(cell: Cell, node: ast.Assign, summed: str, where: Cell, line: int) -> Finding:
    numeric = f"{RESULT_NAME} = {summed}.map(lambda x: round(float(x), 2)).sum(min_count=1)"
    return Finding(
        "credit-amount-text",
        False,
        cell.number,
        node.lineno,
        f"`{RESULT_NAME}` sums `{summed}`, which cell {where.number}, line {line} made "
        "dollar text, so pandas concatenates the strings: the value is a `str` such as "
        "'$4,948.80$nan$nan'. CreditBot copes: it reads a string of $-amounts as the sum "
        "of its parts, a `$nan` part counting 0 (every part `$nan`, or a `$inf`, has no "
        "basis and is escalated)",
        f"to make the notebook's own value that number, delete this line and put "
        f"`{numeric}` just above cell {where.number}, line {line} (each part rounded "
        "to cents as displayed, nan parts skipped, all nan stays nan)",
    )


NotebookRule = Callable[[list[Cell], Visit], list[Finding]]

# Before the environment's findings (syntax … credit-amount-missing), then after them (result_text).
STRUCTURE_RULES: tuple[NotebookRule, ...] = (syntax_errors, parameters, parameter_unused, result_missing)
RESULT_RULES: tuple[NotebookRule, ...] = (result_text,)
