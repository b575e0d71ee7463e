"""Rules about the notebook's environment: working directory, local paths, ``.env`` reads and
credentials written into the code — one node at a time, each a row of :data:`ENVIRONMENT_RULES`.

What the code does (``os.chdir``, ``import dotenv``) is *certain* and may be a blocker. A string's
shape (looks like a credential, an absolute path, a ``.env`` file) is a *heuristic* warning only.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from credit_bot.notebook_check.notebook import Cell, Finding
from credit_bot.notebook_check.walk import Rule, Visit

CONNECT_HINT = "credit_bot.warehouse.connect() (it reads the Airflow connection credit_warehouse_default)"

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


def call_name(node: ast.Call) -> str:
    """``chdir`` for ``os.chdir(…)`` and ``chdir(…)``; empty for anything else called."""
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _magic(node: ast.Call) -> tuple[str, str] | None:
    """``('cd', '/Users/x')`` for ``get_ipython().run_line_magic('cd', '/Users/x')``."""
    if call_name(node) == "run_line_magic" and len(node.args) == 2:
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


def _finding(
    code: str, blocker: bool, cell: Cell, node: ast.AST, problem: str, fix: str, certain: bool = True
) -> Finding:
    return Finding(code, blocker, cell.number, getattr(node, "lineno", None), problem, fix, certain)


def _secret(visit: Visit, cell: Cell, node: ast.AST, what: str) -> None:
    # A guess from a name or a shape ("fake-pw" in a test looks the same): never a blocker.
    visit.add(
        _finding(
            "credential",
            False,
            cell,
            node,
            f"a string literal {what} looks like a credential (its value is not shown here); "
            "if it is one, CreditBot must not run this notebook",
            f"if it is a credential, delete it (and rotate it); read credentials through {CONNECT_HINT}",
            certain=False,
        )
    )


# ── the rules, one node each ───────────────────────────────────────────────────────────────────
def _working_directory(visit: Visit, cell: Cell, node: ast.AST) -> None:
    assert isinstance(node, ast.Call)
    magic = _magic(node)
    if call_name(node) == "chdir" or (magic and magic[0] == "cd"):
        visit.claimed |= {id(arg) for arg in node.args}  # its folder is this finding, not another
        visit.add(
            _finding(
                "chdir",
                True,
                cell,
                node,
                "the notebook changes its working directory (os.chdir / %cd); that folder does not "
                "exist on the Airflow workers, so the kernel fails here",
                "delete the line; CreditBot runs the notebook where it is, and it should need no files",
            )
        )


def _dotenv_call(visit: Visit, cell: Cell, node: ast.AST) -> None:
    assert isinstance(node, ast.Call)
    magic = _magic(node)
    if call_name(node) in _DOTENV_CALLS or (magic and ("dotenv" in magic[0] or "dotenv" in magic[1])):
        visit.add(
            _finding(
                "dotenv",
                True,
                cell,
                node,
                "the notebook reads a .env file (python-dotenv); workers have none, and credentials "
                "must not live in files next to the notebook",
                f"delete it and connect with {CONNECT_HINT}",
            )
        )


def _call_secrets(visit: Visit, cell: Cell, node: ast.AST) -> None:
    assert isinstance(node, ast.Call)
    call = call_name(node)
    if call in _BASIC_AUTH_CALLS and len(node.args) >= 2 and _secret_string(node.args[1]):
        _secret(visit, cell, node.args[1], f"passed as the password to {call}()")
    for keyword in node.keywords:
        if keyword.arg and _SECRET_NAME.search(keyword.arg) and _secret_string(keyword.value):
            _secret(visit, cell, keyword.value, f"passed as `{keyword.arg}=`")


def _assigned_secret(visit: Visit, cell: Cell, node: ast.AST) -> None:
    assert isinstance(node, ast.Assign | ast.AnnAssign)
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    for target in targets:
        name = _target_name(target)
        if name and _SECRET_NAME.search(name) and _secret_string(node.value):
            _secret(visit, cell, node, f"assigned to `{name}`")


def _dict_secret(visit: Visit, cell: Cell, node: ast.AST) -> None:
    assert isinstance(node, ast.Dict)
    for key, value in zip(node.keys, node.values, strict=True):
        if (
            isinstance(key, ast.Constant)
            and isinstance(key.value, str)
            and _SECRET_NAME.search(key.value)
            and _secret_string(value)
        ):
            _secret(visit, cell, value, f"under the key `{key.value}`")


def _dotenv_import(visit: Visit, cell: Cell, node: ast.AST) -> None:
    assert isinstance(node, ast.Import | ast.ImportFrom)
    modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
    if any(m.split(".")[0] == "dotenv" for m in modules):
        visit.add(
            _finding(
                "dotenv",
                True,
                cell,
                node,
                "the notebook imports python-dotenv to read a .env file; workers have none",
                f"delete it and connect with {CONNECT_HINT}",
            )
        )


def _string_shape(visit: Visit, cell: Cell, node: ast.AST) -> None:
    """Guesses from a string's shape (it may be a message, a pattern, a URL part): never blockers."""
    assert isinstance(node, ast.Constant)
    value = node.value
    if not isinstance(value, str):
        return
    if _SECRET_VALUE.search(value):
        _secret(visit, cell, node, "in the code")
        return
    if "\n" in value:
        return
    if Path(value.strip()).name == ".env":
        problem = "a string names a .env file; if the notebook reads it, it fails: workers have none"
        fix = f"read no .env file; connect with {CONNECT_HINT}"
        visit.add(_finding("dotenv", False, cell, node, problem, fix, certain=False))
    elif _PERSONAL_PATH.match(value):
        problem = (
            "a path in someone's home folder; if the notebook opens it, it fails: that folder "
            "does not exist on the Airflow workers"
        )
        fix = "remove it: the notebook should read only the warehouse (and files CreditBot ships)"
        visit.add(_finding("absolute-path", False, cell, node, problem, fix, certain=False))
    elif _ABSOLUTE_PATH.match(value):
        problem = "an absolute path: if the notebook opens it, it must exist on every Airflow worker"
        fix = "make sure the workers have it, or remove it"
        visit.add(_finding("absolute-path", False, cell, node, problem, fix, certain=False))


ENVIRONMENT_RULES: dict[type[ast.AST], tuple[Rule, ...]] = {
    ast.Call: (Rule(_working_directory), Rule(_dotenv_call), Rule(_call_secrets)),
    ast.Assign: (Rule(_assigned_secret),),
    ast.AnnAssign: (Rule(_assigned_secret),),
    ast.Dict: (Rule(_dict_secret),),
    ast.Import: (Rule(_dotenv_import),),
    ast.ImportFrom: (Rule(_dotenv_import),),
    ast.Constant: (Rule(_string_shape),),
}
