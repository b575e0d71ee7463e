"""README's "Bring your own notebook" edits, made by code: port the team's notebook to CreditBot.

``port(source, dest)`` writes a copy of the team's file with the edits the README asks a person to make,
and nothing else: the ``os.chdir`` into a personal folder goes (with its cell, when only ``import os``
is left), so do the python-dotenv import and ``load_dotenv(...)`` call, the personal helper's
``from notebook_auto_alert import done`` and every ``done()`` call; the ``prestodb.dbapi.connect(...)``
statement becomes ``from credit_bot import warehouse`` / ``conn = warehouse.connect()``, and the
``os.getenv`` lines that only fed it go too. Every other cell, line and byte stays as it was — the
untagged parameters cell included (CreditBot tags it in the copy it runs).

It is for the demo and the tests, which need the team's real file in the shape it will have once the
team has made the edits; the team makes them by hand in their own file. Like everything in ``harness``
it is dev-only: the runtime never imports it.

CLI: ``python -m harness.team_notebook SOURCE DEST``.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from credit_bot.notebook_check import read_notebook

PERSONAL_HELPERS = ("notebook_auto_alert",)  # helpers that exist on one laptop only
_DOTENV_CALLS = {"load_dotenv", "dotenv_values", "find_dotenv"}


class CannotPort(ValueError):
    """The notebook has one of the edited statements in a shape this code does not rewrite safely."""


def masked_source(source: str) -> str | None:
    """The cell's source with each IPython line magic or shell line turned into ``pass``, line for line.

    ``None`` for a cell magic (``%%time`` …): its body is not Python. Masking keeps line numbers those of
    the cell, so a statement's ``lineno``/``end_lineno`` name the cell's own lines.
    """
    lines = source.splitlines(keepends=True)
    if lines and lines[0].lstrip().startswith("%%"):
        return None
    masked = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            indent = line[: len(line) - len(stripped)]
            masked.append(indent + "pass" + ("\n" if line.endswith("\n") else ""))
        else:
            masked.append(line)
    return "".join(masked)


def _dotted(node: ast.AST) -> str:
    """``prestodb.dbapi.connect`` for that attribute chain, ``""`` for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _bodies(tree: ast.Module) -> Iterator[tuple[bool, list[ast.stmt]]]:
    """Every statement list in the cell, the cell's own first (``True``: it may be left empty)."""
    yield True, tree.body
    for node in ast.walk(tree):
        if node is tree:
            continue
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                yield False, body
        for handler in getattr(node, "handlers", []):
            yield False, handler.body
        for case in getattr(node, "cases", []):
            yield False, case.body


def _loads(tree: ast.AST, skip: set[int]) -> set[str]:
    """Names read anywhere in ``tree`` outside the statements whose ids are in ``skip``."""
    skipped = {id(n) for stmt in ast.walk(tree) if id(stmt) in skip for n in ast.walk(stmt)}
    return {
        n.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and id(n) not in skipped
    }


@dataclass
class _Edits:
    """What to do to one cell: statements to drop, statements to replace (by id), and why."""

    drop: set[int] = field(default_factory=set)
    replace: dict[int, list[str]] = field(default_factory=dict)


def _helper_names(trees: list[ast.Module | None]) -> set[str]:
    """Names bound by ``from notebook_auto_alert import done`` (and ``import notebook_auto_alert``)."""
    names = set()
    for tree in trees:
        for node in ast.walk(tree or ast.Module(body=[], type_ignores=[])):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PERSONAL_HELPERS:
                names |= {a.asname or a.name for a in node.names}
            elif isinstance(node, ast.Import):
                names |= {a.asname or a.name for a in node.names if a.name.split(".")[0] in PERSONAL_HELPERS}
    return names


def _is_connect(node: ast.AST) -> bool:
    """``conn = prestodb.dbapi.connect(...)`` (any target name, any arguments)."""
    return (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Call)
        and _dotted(node.value.func).endswith("dbapi.connect")
    )


def _plan(trees: list[ast.Module | None]) -> list[_Edits]:
    """The edits of every cell, decided on the whole notebook (a name's readers may be in any cell)."""
    helpers = _helper_names(trees)
    plans = [_Edits() for _ in trees]
    fed_connect: set[str] = set()
    for tree, plan in zip(trees, plans, strict=True):
        if tree is None:
            continue
        for _, body in _bodies(tree):
            for stmt in body:
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
                    dotted = _dotted(stmt.value.func)
                    last = dotted.rsplit(".", 1)[-1]
                    if dotted in {"os.chdir", "chdir"} or last in _DOTENV_CALLS or dotted in helpers:
                        plan.drop.add(id(stmt))
                elif isinstance(stmt, ast.Import | ast.ImportFrom):
                    modules = (
                        [a.name for a in stmt.names] if isinstance(stmt, ast.Import) else [stmt.module or ""]
                    )
                    roots = {m.split(".")[0] for m in modules}
                    if roots and roots <= {"dotenv", *PERSONAL_HELPERS}:
                        plan.drop.add(id(stmt))
                    elif roots & {"dotenv", *PERSONAL_HELPERS}:
                        raise CannotPort(f"line {stmt.lineno}: one import of {sorted(roots)}; split it first")
                elif _is_connect(stmt):
                    assert isinstance(stmt, ast.Assign)  # for the type checker: _is_connect said so
                    target = stmt.targets[0]
                    assert isinstance(target, ast.Name)
                    plan.replace[id(stmt)] = [
                        "from credit_bot import warehouse",
                        f"{target.id} = warehouse.connect()",
                    ]
                    fed_connect |= {n.id for n in ast.walk(stmt.value) if isinstance(n, ast.Name)}
    # The `presto_host = os.getenv('presto_host')` lines: dropped when the connect call was their only reader.
    removed = {i for plan in plans for i in (*plan.drop, *plan.replace)}
    still_read = set().union(*(_loads(t, removed) for t in trees if t is not None))
    for tree, plan in zip(trees, plans, strict=True):
        for stmt in tree.body if tree is not None else []:
            if (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
                and stmt.targets[0].id in fed_connect - still_read
                and _reads_environment(stmt.value)
            ):
                plan.drop.add(id(stmt))
    return plans


def _reads_environment(value: ast.AST) -> bool:
    """``os.getenv('x')``, ``os.environ.get('x')`` or ``os.environ['x']``."""
    if isinstance(value, ast.Call):
        return _dotted(value.func) in {"os.getenv", "getenv", "os.environ.get", "environ.get"}
    return isinstance(value, ast.Subscript) and _dotted(value.value) in {"os.environ", "environ"}


def _apply(source: str, tree: ast.Module, plan: _Edits) -> str:
    """The cell's source with the plan's statements dropped or replaced, whole lines at a time."""
    lines = source.splitlines(keepends=True)
    spans: dict[int, tuple[int, int, list[str] | None]] = {}  # first line (0-based) → (end, indent, new)
    for may_be_empty, body in _bodies(tree):
        emptied = all(id(s) in plan.drop for s in body)
        for stmt in body:
            if id(stmt) not in plan.drop and id(stmt) not in plan.replace:
                continue
            new = plan.replace.get(id(stmt))
            if new is None and emptied and not may_be_empty and stmt is body[0]:
                new = ["pass"]  # an if/for/def body left empty would not parse
            assert stmt.end_lineno is not None
            first, last = stmt.lineno - 1, stmt.end_lineno - 1
            if any(s is not stmt and s.lineno - 1 <= last and (s.end_lineno or 0) - 1 >= first for s in body):
                raise CannotPort(f"line {stmt.lineno}: another statement shares its line; put it on its own")
            spans[first] = (last, stmt.col_offset, new)
    out: list[str] = []
    index = 0
    while index < len(lines):
        if index not in spans:
            out.append(lines[index])
            index += 1
            continue
        last, indent, new = spans[index]
        out.extend(" " * indent + line + "\n" for line in new or [])
        index = last + 1
    result = "".join(out)
    # A cell's last line has no newline in Jupyter's files; keep it that way when the edit reached it.
    return result[:-1] if result.endswith("\n") and not source.endswith("\n") else result


def _nothing_left(source: str) -> bool:
    """Only blank lines and ``import os`` left: the cell served ``os.chdir`` or ``done()`` and no more.

    A comment left behind keeps the cell: it may be the team's note.
    """
    return {line.strip() for line in source.splitlines()} <= {"", "import os"}


def port_notebook(nb: dict[str, Any]) -> dict[str, Any]:
    """A ported copy of the notebook (an nbformat v4 JSON dict); the cells not edited are the same objects."""
    sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in nb["cells"]]
    trees: list[ast.Module | None] = []
    for cell, source in zip(nb["cells"], sources, strict=True):
        masked = masked_source(source) if cell.get("cell_type") == "code" else None
        try:
            trees.append(ast.parse(masked) if masked is not None else None)
        except SyntaxError:
            trees.append(None)  # left as it is; the notebook check reports it
    plans = _plan(trees)
    cells = []
    for cell, source, tree, plan in zip(nb["cells"], sources, trees, plans, strict=True):
        if tree is None or not (plan.drop or plan.replace):
            cells.append(cell)
            continue
        new_source = _apply(source, tree, plan)
        if _nothing_left(new_source):
            continue  # e.g. `import os` / `os.chdir(...)`, or `done()`: nothing of the cell is needed
        lines = new_source.splitlines(keepends=True)
        cells.append({**cell, "source": lines if isinstance(cell["source"], list) else new_source})
    return {**nb, "cells": cells}


def port(source: Path, dest: Path) -> Path:
    """Write ``dest``: ``source`` with README's edits (see the module docstring). Returns ``dest``."""
    ported = port_notebook(read_notebook(source))
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Jupyter's own layout (nbformat writes indent=1, non-ASCII as is), so an unedited cell diffs as nothing.
    dest.write_text(json.dumps(ported, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.team_notebook", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("source", type=Path)
    parser.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    print(port(args.source, args.dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
