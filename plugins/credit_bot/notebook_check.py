"""Check a product notebook against CreditBot's contract before it goes live, without running it.

``python -m credit_bot.notebook_check PATH`` (``make check-notebook NOTEBOOK=PATH``) reads the
notebook's cells with :mod:`ast` — no kernel is started — and prints numbered findings, each with
its cell number (1 = the first cell, markdown cells included, as Jupyter shows them) and the fix.

Every finding is either *certain* — read from what the code does (``os.chdir(...)``, ``import dotenv``,
an import the kernel cannot resolve, ``looker`` overwritten) — or *heuristic* — a guess from a value's
shape (a string that looks like a credential, an absolute path). Only certain findings can be
blockers (the bot cannot run the notebook, or must not): they make the command exit 1 and stop
production runs. A heuristic finding is always a warning, printed ``[warning, heuristic]`` for a
person to judge: a false alarm must never stop the bot. Other warnings are things CreditBot copes with.

The quick part, :func:`quick_findings`, needs no import resolution: ``fetch_requests`` runs it for
every configured product notebook and fails the run on its blockers, once, instead of once per
request after a kernel start (and logs the warnings). :func:`parameters_cell` is also how the
notebook operator finds an untagged parameters cell to tag.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from credit_bot.errors import SetupError

PARAMETER_NAMES = ("looker",)  # what the bot passes (steps.notebook_task)
RESULT_NAME = "credit_amount"
PLUGINS_DIR = Path(__file__).resolve().parents[1]  # the operator puts it on the kernel's PYTHONPATH
CONNECT_HINT = "credit_bot.warehouse.connect() (it reads the Airflow connection credit_warehouse_default)"
TAG_HINT = "tag it `parameters` (JupyterLab: the cell's Property Inspector → Cell Tags → add `parameters`)"

# Names whose string values are credentials: PRESTO_PASSWORD, db_pass, slack_token, client_secret, …
_SECRET_NAME = re.compile(
    r"(?:^|_)(?:pass|passwd|password|pwd|secret|token|apikey|api_key|access_key|private_key|credentials?)(?:$|_)",
    re.IGNORECASE,
)
# Values that are credentials whatever they are called: Slack, AWS, GitHub, PEM keys, user:pass@ URLs.
_SECRET_VALUE = re.compile(
    r"xox[abposr]-[A-Za-z0-9-]{6,}|xapp-[A-Za-z0-9-]{6,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----|://[^/\s:@]+:[^/\s@]+@"
)
_PLACEHOLDER = re.compile(r"^\s*$|^<[^>]*>$|^\*+$|^\{[^}]*\}$|^\$\{[^}]*\}$")
_BASIC_AUTH_CALLS = {"BasicAuthentication", "BasicAuth", "HTTPBasicAuth"}
# Folders of one person's machine: they do not exist on an Airflow worker.
_PERSONAL_PATH = re.compile(r"^(?:/Users/|/home/|~[/\\]|[A-Za-z]:\\Users\\)")
_ABSOLUTE_PATH = re.compile(
    r"^(?:/(?:Users|home|mnt|opt|data|tmp|var|Volumes|srv|root|private|workspace|etc|usr)/|[A-Za-z]:[\\/])"
)
_DOTENV_CALLS = {"load_dotenv", "dotenv_values", "find_dotenv"}
_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


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
    return _parameters_index(cells_of(nb), names)


def _parameters_index(cells: list[Cell], names: Sequence[str]) -> tuple[int, bool] | None:
    for cell in cells:
        if "parameters" in cell.tags:
            return cell.number - 1, True
    for cell in cells:
        if cell.kind == "code" and declares_parameters(cell.tree, names):
            return cell.number - 1, False
    return None


# ── the checks ─────────────────────────────────────────────────────────────────────────────────
def _walk(cells: Iterable[Cell]) -> Iterator[tuple[Cell, ast.AST]]:
    for cell in cells:
        if cell.tree is not None:
            for node in ast.walk(cell.tree):
                yield cell, node


def _stores(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store)


def _reads(node: ast.AST | None, name: str) -> bool:
    return node is not None and any(
        isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load) for n in ast.walk(node)
    )


def _binds(target: ast.AST | None, name: str) -> bool:
    return target is not None and any(_stores(n, name) for n in ast.walk(target))


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


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _magic(node: ast.Call) -> tuple[str, str] | None:
    """``('cd', '/Users/x')`` for ``get_ipython().run_line_magic('cd', '/Users/x')``."""
    if _call_name(node) == "run_line_magic" and len(node.args) == 2:
        name, arg = node.args
        if isinstance(name, ast.Constant) and isinstance(arg, ast.Constant):
            return str(name.value), str(arg.value)
    return None


def _secret_string(node: ast.AST | None) -> bool:
    return (
        isinstance(node, ast.Constant) and isinstance(node.value, str) and not _PLACEHOLDER.match(node.value)
    )


def _target_name(target: ast.AST) -> str:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant):
        return str(target.slice.value)
    return ""


def _structure_findings(cells: list[Cell], names: Sequence[str]) -> list[Finding]:
    """Parameters cell, ``looker`` declared and read, ``credit_amount`` assigned, unparseable cells."""
    findings: list[Finding] = []
    for cell in cells:
        if cell.kind == "code" and cell.tree is None:
            findings.append(
                Finding(
                    "syntax-error",
                    True,
                    cell.number,
                    None,
                    "the cell is not valid Python, so the notebook fails when it gets there",
                    "fix the cell so it runs (Kernel → Restart & Run All shows the error)",
                )
            )
    found = _parameters_index(cells, names)
    name = names[0]
    # A cell that derives the SQL from `looker` is no candidate for the parameters cell.
    assigned = [c for c in cells for _, derived in bindings(c.tree, name) if not derived]
    read = any(
        isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load) for _, n in _walk(cells)
    )
    if found is None:
        first = assigned[0] if assigned else None
        # Where the cell's own value is set, and whether the cell goes on to use it (the earlier team
        # file: a literal Looker SQL, then the query): tagging that cell would come too late.
        own = min((n.lineno for n, d in bindings(first.tree, name) if not d), default=0) if first else 0
        used_after = first is not None and any(
            isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load) and n.lineno > own
            for n in ast.walk(first.tree or ast.Module(body=[]))
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
        findings.append(
            Finding(
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
        )
    else:
        index, tagged = found
        param_cell = cells[index]
        if not tagged:
            findings.append(
                Finding(
                    "parameters-untagged",
                    False,
                    param_cell.number,
                    None,
                    "the cell that declares the parameters is not tagged `parameters`. CreditBot copes: "
                    "it tags this cell in its own copy, so papermill injects the SQL right after it",
                    TAG_HINT,
                )
            )
        elif not any(_stores(n, name) for n in ast.walk(param_cell.tree or ast.Module(body=[]))):
            findings.append(
                Finding(
                    "looker-undeclared",
                    False,
                    param_cell.number,
                    None,
                    f"the `parameters` cell does not declare {name}. CreditBot copes (papermill injects "
                    f"it after this cell), but the notebook cannot be run by hand",
                    f'add `{name} = ""` to this cell',
                )
            )
        for cell in cells[index + 1 :]:
            for node, derived in bindings(cell.tree, name):
                if derived:
                    continue  # the notebook's own rewrite of the bot's SQL (e.g. cut at a marker)
                findings.append(
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
                )
    if not read:
        findings.append(
            Finding(
                "looker-unused",
                True,
                None,
                None,
                f"the notebook never reads {name}, so the credit would not depend on the request's link",
                f"run the SQL in {name} against the warehouse (e.g. cursor.execute({name}))",
            )
        )
    if not any(_stores(n, RESULT_NAME) for _, n in _walk(cells)):
        findings.append(
            Finding(
                "credit-amount-missing",
                True,
                None,
                None,
                f"`{RESULT_NAME}` is never assigned, so CreditBot has no amount to read",
                f"end the notebook with `{RESULT_NAME} = <the credit in dollars>`, e.g. "
                f"`{RESULT_NAME} = output_df['credit'].sum()`",
            )
        )
    return findings


def _environment_findings(cells: list[Cell]) -> list[Finding]:
    """Working directory, local paths, ``.env`` reads and credentials written into the code."""
    findings: dict[tuple[str, int, int | None], Finding] = {}

    def add(
        code: str, blocker: bool, cell: Cell, node: ast.AST, problem: str, fix: str, certain: bool = True
    ) -> None:
        key = (code, cell.number, getattr(node, "lineno", None))
        if key not in findings or (certain and not findings[key].certain):  # what the code does wins
            findings[key] = Finding(code, blocker, cell.number, key[2], problem, fix, certain)

    def secret(cell: Cell, node: ast.AST, what: str) -> None:
        # A guess from a name or a shape ("fake-pw" in a test looks the same): never a blocker.
        add(
            "credential",
            False,
            cell,
            node,
            f"a string literal {what} looks like a credential (its value is not shown here); "
            "if it is one, CreditBot must not run this notebook",
            f"if it is a credential, delete it (and rotate it); read credentials through {CONNECT_HINT}",
            certain=False,
        )

    handled: set[int] = set()
    for cell, node in _walk(cells):
        if id(node) in handled:
            continue
        if isinstance(node, ast.Call):
            call = _call_name(node)
            magic = _magic(node)
            if call == "chdir" or (magic and magic[0] == "cd"):
                handled |= {id(arg) for arg in node.args}  # its folder is this finding, not another
                add(
                    "chdir",
                    True,
                    cell,
                    node,
                    "the notebook changes its working directory (os.chdir / %cd); that folder does not "
                    "exist on the Airflow workers, so the kernel fails here",
                    "delete the line; CreditBot runs the notebook where it is, and it should need no files",
                )
            if call in _DOTENV_CALLS or (magic and ("dotenv" in magic[0] or "dotenv" in magic[1])):
                add(
                    "dotenv",
                    True,
                    cell,
                    node,
                    "the notebook reads a .env file (python-dotenv); workers have none, and credentials "
                    "must not live in files next to the notebook",
                    f"delete it and connect with {CONNECT_HINT}",
                )
            if call in _BASIC_AUTH_CALLS and len(node.args) >= 2 and _secret_string(node.args[1]):
                secret(cell, node.args[1], f"passed as the password to {call}()")
            for keyword in node.keywords:
                if keyword.arg and _SECRET_NAME.search(keyword.arg) and _secret_string(keyword.value):
                    secret(cell, keyword.value, f"passed as `{keyword.arg}=`")
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                name = _target_name(target)
                if name and _SECRET_NAME.search(name) and _secret_string(node.value):
                    secret(cell, node, f"assigned to `{name}`")
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if (
                    isinstance(key, ast.Constant)
                    and isinstance(key.value, str)
                    and _SECRET_NAME.search(key.value)
                    and _secret_string(value)
                ):
                    secret(cell, value, f"under the key `{key.value}`")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if any(m.split(".")[0] == "dotenv" for m in modules):
                add(
                    "dotenv",
                    True,
                    cell,
                    node,
                    "the notebook imports python-dotenv to read a .env file; workers have none",
                    f"delete it and connect with {CONNECT_HINT}",
                )
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            value = node.value
            if _SECRET_VALUE.search(value):
                secret(cell, node, "in the code")
            # Below: guesses from a string's shape (it may be a message, a pattern, a URL part).
            elif Path(value.strip()).name == ".env" and "\n" not in value:
                add(
                    "dotenv",
                    False,
                    cell,
                    node,
                    "a string names a .env file; if the notebook reads it, it fails: workers have none",
                    f"read no .env file; connect with {CONNECT_HINT}",
                    certain=False,
                )
            elif "\n" not in value and _PERSONAL_PATH.match(value):
                add(
                    "absolute-path",
                    False,
                    cell,
                    node,
                    "a path in someone's home folder; if the notebook opens it, it fails: that folder "
                    "does not exist on the Airflow workers",
                    "remove it: the notebook should read only the warehouse (and files CreditBot ships)",
                    certain=False,
                )
            elif "\n" not in value and _ABSOLUTE_PATH.match(value):
                add(
                    "absolute-path",
                    False,
                    cell,
                    node,
                    "an absolute path: if the notebook opens it, it must exist on every Airflow worker",
                    "make sure the workers have it, or remove it",
                    certain=False,
                )
    return list(findings.values())


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


def _result_findings(cells: list[Cell]) -> list[Finding]:
    """``credit_amount`` summed from a column already formatted as dollar text (the team's notebook).

    pandas ``sum()`` of strings concatenates them, so the notebook's value is ``'$4,948.80$nan$nan'``.
    CreditBot reads that shape (:func:`credit_bot.money.read_parts`); the fix makes it a number.
    """
    formatted: dict[str, tuple[Cell, int]] = {}  # ast.unparse of the column → where it became text
    findings = []
    for cell in cells:
        if cell.tree is None:
            continue
        assignments = sorted(
            (n for n in ast.walk(cell.tree) if isinstance(n, ast.Assign) and len(n.targets) == 1),
            key=lambda n: (n.lineno, n.col_offset),
        )
        for node in assignments:
            target = node.targets[0]
            if _stores(target, RESULT_NAME):
                value = node.value
                summed = (
                    ast.unparse(value.func.value)
                    if isinstance(value, ast.Call)
                    and isinstance(value.func, ast.Attribute)
                    and value.func.attr == "sum"
                    else None
                )
                if summed in formatted:
                    where, line = formatted[summed]
                    numeric = f"{RESULT_NAME} = {summed}.map(lambda x: round(float(x), 2)).sum(min_count=1)"
                    findings.append(
                        Finding(
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
                    )
                continue
            if isinstance(target, ast.Subscript | ast.Attribute | ast.Name):
                key = ast.unparse(target)
                if _formats_as_money(node.value):
                    formatted[key] = (cell, node.lineno)
                else:
                    formatted.pop(key, None)  # the column is numbers again
    return findings


def _kernel_findings(nb: dict[str, Any], kernel_name: str) -> list[Finding]:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    findings = []
    try:
        manager.get_kernel_spec(kernel_name)
    except NoSuchKernel:
        findings.append(
            Finding(
                "kernel-missing",
                True,
                None,
                None,
                f"CreditBot runs notebooks with kernel `{kernel_name}` (setting kernel_name), which this "
                "machine does not have",
                f"install it (`python -m ipykernel install --sys-prefix --name {kernel_name}`) or set "
                "kernel_name to one of: " + ", ".join(sorted(manager.find_kernel_specs())),
            )
        )
    wanted = (nb.get("metadata", {}).get("kernelspec") or {}).get("name")
    if wanted and wanted != kernel_name and wanted not in manager.find_kernel_specs():
        findings.append(
            Finding(
                "kernelspec-unknown",
                False,
                None,
                None,
                f"the notebook was saved with kernel `{wanted}`, which this machine does not have. CreditBot "
                f"copes: it runs it with kernel `{kernel_name}` (setting kernel_name)",
                f"nothing, if `{kernel_name}` has the notebook's packages (the import check says); or pick "
                f"`{kernel_name}` in Jupyter (Kernel → Change Kernel) and save",
            )
        )
    return findings


def quick_findings(path: str | Path, kernel_name: str = "python3") -> list[Finding]:
    """Every check that needs no import resolution (cheap: what fetch_requests runs)."""
    nb = read_notebook(path)
    cells = cells_of(nb)
    findings = (
        _structure_findings(cells, PARAMETER_NAMES) + _environment_findings(cells) + _result_findings(cells)
    )
    findings += _kernel_findings(nb, kernel_name)
    return sorted(findings, key=lambda f: (f.cell or 0, f.line or 0, not f.blocker))


# ── imports, resolved in the kernel's own Python ───────────────────────────────────────────────
def kernel_python(kernel_name: str) -> list[str] | None:
    """The interpreter the kernel runs in, resolved as jupyter_client resolves the kernelspec argv.

    ``python``/``python3``/``python3.X`` as argv[0] means the launching process's own interpreter
    (``KernelManager.format_kernel_cmd``); anything else is found on PATH. ``None`` when the kernel
    is missing or does not start a Python (e.g. a wrapper script).
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        return None
    if not spec.argv or not any("ipykernel" in a for a in spec.argv):
        return None
    first = spec.argv[0]
    if first in {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}:
        return [sys.executable]
    found = first if os.path.isabs(first) else shutil.which(first)
    return [found] if found and os.path.exists(found) else None


def _kernel_env(kernel_name: str) -> dict[str, str]:
    from jupyter_client.kernelspec import KernelSpecManager

    env = dict(os.environ)
    env.update(KernelSpecManager().get_kernel_spec(kernel_name).env or {})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGINS_DIR), env.get("PYTHONPATH")]))
    return env


def _guarded(tree: ast.Module) -> set[int]:
    """ids of import nodes inside ``try: … except ImportError:`` (optional imports)."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            names = set()
            for handler in node.handlers:
                kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
                names |= {k.id for k in kinds if isinstance(k, ast.Name)} | (
                    {"Exception"} if not handler.type else set()
                )
            if names & _IMPORT_ERRORS:
                guarded |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return guarded


def import_findings(path: str | Path, kernel_name: str = "python3") -> list[Finding]:
    """Modules the notebook imports that the kernel's environment cannot find (``find_spec``)."""
    cells = cells_of(read_notebook(path))
    first_seen: dict[str, tuple[Cell, int]] = {}
    names_from: dict[str, str] = {}  # `from notebook_auto_alert import done` → done: notebook_auto_alert
    for cell in cells:
        if cell.tree is None:
            continue
        guarded = _guarded(cell.tree)
        for node in ast.walk(cell.tree):
            if id(node) in guarded:
                continue
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
                for alias in node.names:
                    names_from[alias.asname or alias.name] = node.module.split(".")[0]
            else:
                continue
            for module in modules:
                first_seen.setdefault(module.split(".")[0], (cell, node.lineno))
    if not first_seen:
        return []
    python = kernel_python(kernel_name)
    if python is None:
        return [
            Finding(
                "imports-unchecked",
                False,
                None,
                None,
                f"could not tell which Python kernel `{kernel_name}` runs, so its imports were not checked",
                "make sure the kernel's environment has every package the notebook imports",
            )
        ]
    script = (
        "import importlib.util, json, sys\n"
        "print(json.dumps([m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]))"
    )
    # A neutral working directory: the kernel's is wherever the worker runs, not the notebook's folder.
    with tempfile.TemporaryDirectory() as cwd:
        done = subprocess.run(  # noqa: S603 - the kernel's own interpreter, fixed arguments
            [*python, "-c", script, *sorted(first_seen)],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=_kernel_env(kernel_name),
            timeout=60,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"could not ask {python[0]} about the imports: {done.stderr.strip()[-300:]}")
    findings = []
    for module in json.loads(done.stdout):
        cell, line = first_seen[module]
        calls = sorted(
            {
                f"{c.number}"
                for c, n in _walk(cells)
                if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Name)
                and names_from.get(n.func.id) == module
            },
            key=int,
        )
        uses = f"; its functions are called in cell(s) {', '.join(calls)}" if calls else ""
        findings.append(
            Finding(
                "import-unresolved",
                True,
                cell.number,
                line,
                f"the kernel `{kernel_name}` ({python[0]}) cannot import `{module}`{uses}",
                f"a package: add it to requirements.txt; a personal helper next to the notebook: remove the "
                f"import{' and those calls' if calls else ''}",
            )
        )
    return findings


def check(path: str | Path, kernel_name: str = "python3") -> list[Finding]:
    """Every finding: the quick part, then the imports."""
    findings = quick_findings(path, kernel_name) + import_findings(path, kernel_name)
    return sorted(findings, key=lambda f: (f.cell or 0, f.line or 0, not f.blocker))


def report(path: str | Path, findings: list[Finding]) -> str:
    """The numbered findings as ``make check-notebook`` prints them."""
    lines = [f"Checking {path} for CreditBot"]
    for number, finding in enumerate(findings, start=1):
        lines.append(f"{number}. [{finding.kind}] {finding.where}: {finding.problem}.")
        lines.append(f"   Fix: {finding.fix}.")
    blockers = sum(f.blocker for f in findings)
    guesses = sum(not f.certain for f in findings)
    warnings = f"{len(findings) - blockers} warning(s)"
    if guesses:
        warnings += f" ({guesses} heuristic: judge them)"
    if not findings:
        lines.append("No findings: CreditBot can run this notebook.")
    elif blockers:
        lines.append(f"{blockers} blocker(s), {warnings}: fix the blockers first.")
    else:
        lines.append(f"{warnings}, no blockers: CreditBot can run this notebook.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m credit_bot.notebook_check",
        description="Check a notebook against CreditBot's contract without running it. Exit 1 on blockers "
        "(certain problems only: a heuristic finding, such as a credential-looking string, is a warning).",
    )
    parser.add_argument("notebook", help="path of the .ipynb file")
    parser.add_argument(
        "--kernel", default="python3", help="kernel CreditBot runs it with (setting kernel_name)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="skip resolving imports (what fetch_requests runs)"
    )
    args = parser.parse_args(argv)
    try:
        run = quick_findings if args.quick else check
        findings = run(args.notebook, args.kernel)
    except NotebookUnreadable as exc:
        print(f"check-notebook: {exc}", file=sys.stderr)
        return 2
    print(report(args.notebook, findings))
    return 1 if any(f.blocker for f in findings) else 0


if __name__ == "__main__":
    sys.exit(main())
