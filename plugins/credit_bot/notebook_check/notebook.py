"""A notebook as the check reads it: its cells parsed with :mod:`ast`, its parameters cell, what binds a name.

Also the :class:`Finding` every rule reports.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from credit_bot.errors import SetupError

PARAMETER_NAMES = ("looker",)  # what the bot passes (tasks.resolve.notebook_task)
RESULT_NAME = "credit_amount"


class NotebookUnreadable(SetupError):
    """The file is not a notebook this check can read: the product's notebook setting must be fixed."""


@dataclass(frozen=True)
class Finding:
    """One problem: where it is (1-based cell and line), what it is, and what to do about it.

    ``blocker``: CreditBot cannot run the notebook, or must not (exit 1, production runs stop).
    ``certain``: read from what the code does; ``False`` for a guess from a value's shape, which is
    never a blocker (a false alarm must not stop the bot).
    """

    code: str
    blocker: bool
    cell: int | None
    line: int | None
    problem: str
    fix: str
    certain: bool = True

    def __post_init__(self) -> None:
        if self.blocker and not self.certain:
            raise ValueError(f"{self.code}: a heuristic finding cannot be a blocker")

    @property
    def kind(self) -> str:
        """``BLOCKER``, ``warning`` or ``warning, heuristic``, as the report labels it."""
        if self.blocker:
            return "BLOCKER"
        return "warning" if self.certain else "warning, heuristic"

    @property
    def where(self) -> str:
        if self.cell is None:
            return "notebook"
        return f"cell {self.cell}" + (f", line {self.line}" if self.line else "")

    def one_line(self) -> str:
        return f"{self.where}: {self.problem} — fix: {self.fix}"


@dataclass(frozen=True)
class Cell:
    number: int  # 1-based, every cell counted
    kind: str
    source: str
    tags: tuple[str, ...]
    tree: ast.Module | None  # None for markdown, or code that does not parse


# ── reading ────────────────────────────────────────────────────────────────────────────────────
def parse_code(source: str) -> ast.Module | None:
    """The cell's AST; IPython magics (``%cd``, ``!pip``) become the calls IPython makes of them."""
    try:
        return ast.parse(source)
    except SyntaxError:
        pass
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return None


def cells_of(nb: Any) -> list[Cell]:
    """The notebook's cells (an nbformat v4 node or its JSON dict), parsed."""
    cells = []
    for number, cell in enumerate(nb["cells"], start=1):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        kind = cell.get("cell_type", "")
        tags = tuple(cell.get("metadata", {}).get("tags", []))
        cells.append(Cell(number, kind, source, tags, parse_code(source) if kind == "code" else None))
    return cells


def read_notebook(path: str | Path) -> dict[str, Any]:
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotebookUnreadable(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotebookUnreadable(f"{path} is not a notebook (not JSON: {exc})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list) or nb.get("nbformat") != 4:
        raise NotebookUnreadable(f"{path} is not a Jupyter notebook in format 4 (save it with Jupyter 4+)")
    return nb


# ── the parameters cell ────────────────────────────────────────────────────────────────────────
def declares_parameters(tree: ast.Module | None, names: Sequence[str] = PARAMETER_NAMES) -> bool:
    """True when every statement assigns a literal to one of ``names`` (comments are not statements)."""
    if tree is None or not tree.body:
        return False
    for statement in tree.body:
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        else:
            return False
        if not all(isinstance(t, ast.Name) and t.id in names for t in targets):
            return False
        try:
            ast.literal_eval(value)
        except ValueError:
            return False
    return True


def parameters_cell(nb: Any, names: Sequence[str] = PARAMETER_NAMES) -> tuple[int, bool] | None:
    """``(index, tagged)`` of the cell papermill should inject after, or ``None`` when there is none.

    The first cell tagged ``parameters`` wins (papermill's rule); without one, the first code cell
    that only declares the parameters (:func:`declares_parameters`).
    """
    return parameters_index(cells_of(nb), names)


def parameters_index(cells: list[Cell], names: Sequence[str]) -> tuple[int, bool] | None:
    """:func:`parameters_cell` on cells already read."""
    for cell in cells:
        if "parameters" in cell.tags:
            return cell.number - 1, True
    for cell in cells:
        if cell.kind == "code" and declares_parameters(cell.tree, names):
            return cell.number - 1, False
    return None


# ── what binds a name ──────────────────────────────────────────────────────────────────────────
def stores(node: ast.AST, name: str) -> bool:
    """Whether ``node`` is the name ``name`` being assigned."""
    return isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store)


def _reads(node: ast.AST | None, name: str) -> bool:
    return node is not None and any(
        isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load) for n in ast.walk(node)
    )


def _binds(target: ast.AST | None, name: str) -> bool:
    return target is not None and any(stores(n, name) for n in ast.walk(target))


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def bindings(tree: ast.AST | None, name: str) -> Iterator[tuple[ast.AST, bool]]:
    """Every statement or expression that binds ``name`` at the notebook's top level, as ``(node, derived)``.

    ``derived``: the new value reads ``name`` itself — ``looker = looker.split(marker)[0]``,
    ``looker = looker.replace(a, b)``, ``looker += …`` — so it transforms what the bot passed instead of
    replacing it. A name bound inside a function, class, lambda or comprehension is that scope's own
    (unless the function declares it ``global``), so it binds nothing here.
    """
    if tree is None:
        return
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, _SCOPES) and node is not tree:
            if not isinstance(node, ast.Lambda) and node.name == name:
                yield node, False  # `def looker(): …` replaces it too
            if not (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and any(isinstance(n, ast.Global) and name in n.names for n in ast.walk(node))
            ):
                continue
        derived = _binding(node, name)
        if derived is not None:
            yield node, derived
        if isinstance(node, ast.comprehension):
            pending.extend([node.iter, *node.ifs])  # its target is the comprehension's own
            continue
        pending.extend(reversed(list(ast.iter_child_nodes(node))))


def _binding(node: ast.AST, name: str) -> bool | None:
    """Whether ``node`` binds ``name`` from a value that reads it (see :func:`bindings`); None: no binding."""
    value: ast.AST | None
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign | ast.NamedExpr):
        targets, value = [node.target], node.value  # `looker: str` alone (value None) binds nothing
        if value is None:
            return None
    elif isinstance(node, ast.AugAssign):
        return True if _binds(node.target, name) else None  # `looker += …` reads looker before it writes
    elif isinstance(node, ast.For | ast.AsyncFor):
        targets, value = [node.target], node.iter
    elif isinstance(node, ast.With | ast.AsyncWith):
        targets, value = [item.optional_vars for item in node.items if item.optional_vars], None
    elif isinstance(node, ast.Import | ast.ImportFrom):
        bound = {alias.asname or alias.name.split(".")[0] for alias in node.names}
        return False if name in bound else None
    elif isinstance(node, ast.ExceptHandler):
        return False if node.name == name else None
    else:
        return None
    return _reads(value, name) if any(_binds(t, name) for t in targets) else None
