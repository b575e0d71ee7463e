"""``python -m credit_bot.notebook_check PATH`` (``make check-notebook``): the report, the exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from credit_bot.notebook_check.checks import check, quick_findings
from credit_bot.notebook_check.notebook import Finding, NotebookUnreadable


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
    """Exit 0: no blockers; 1: blockers; 2: not a notebook this check can read."""
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
