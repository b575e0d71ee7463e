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

Modules: :mod:`.notebook` (cells, parameters cell, bindings, :class:`Finding`), :mod:`.rules` (the
table), :mod:`.walk` (the one AST visitor), :mod:`.environment` and :mod:`.structure` (the rules),
:mod:`.kernel` (kernel and imports), :mod:`.checks` (entry points), :mod:`.cli` (report, exit code).
"""

from __future__ import annotations

from credit_bot.notebook_check.checks import check, quick_findings
from credit_bot.notebook_check.cli import main, report
from credit_bot.notebook_check.kernel import PLUGINS_DIR, import_findings, kernel_python
from credit_bot.notebook_check.notebook import (
    PARAMETER_NAMES,
    RESULT_NAME,
    Cell,
    Finding,
    NotebookUnreadable,
    bindings,
    cells_of,
    declares_parameters,
    parameters_cell,
    parse_code,
    read_notebook,
)

__all__ = [
    "PARAMETER_NAMES",
    "PLUGINS_DIR",
    "RESULT_NAME",
    "Cell",
    "Finding",
    "NotebookUnreadable",
    "bindings",
    "cells_of",
    "check",
    "declares_parameters",
    "import_findings",
    "kernel_python",
    "main",
    "parameters_cell",
    "parse_code",
    "quick_findings",
    "read_notebook",
    "report",
]
