"""The two entry points: :func:`quick_findings` (no import resolution: what fetch_requests runs)
and :func:`check` (everything, as ``make check-notebook`` prints it)."""

from __future__ import annotations

from pathlib import Path

from credit_bot.notebook_check.kernel import import_findings, kernel_findings
from credit_bot.notebook_check.notebook import PARAMETER_NAMES, Finding, cells_of, read_notebook
from credit_bot.notebook_check.rules import cell_findings


def _ordered(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.cell or 0, f.line or 0, not f.blocker))


def quick_findings(path: str | Path, kernel_name: str = "python3") -> list[Finding]:
    """Every check that needs no import resolution (cheap: what fetch_requests runs)."""
    nb = read_notebook(path)
    return _ordered(cell_findings(cells_of(nb), PARAMETER_NAMES) + kernel_findings(nb, kernel_name))


def check(path: str | Path, kernel_name: str = "python3") -> list[Finding]:
    """Every finding: the quick part, then the imports."""
    return _ordered(quick_findings(path, kernel_name) + import_findings(path, kernel_name))
