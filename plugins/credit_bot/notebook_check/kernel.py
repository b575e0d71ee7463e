"""Rules about the kernel CreditBot runs the notebook with: it exists, and it can import what the
notebook imports (asked of the kernel's own Python, ``find_spec``, without starting a kernel).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from credit_bot.notebook_check.notebook import Finding, cells_of, read_notebook
from credit_bot.notebook_check.walk import FACT_RULES, walk

PLUGINS_DIR = Path(__file__).resolve().parents[2]  # the operator puts it on the kernel's PYTHONPATH


def kernel_findings(nb: dict[str, Any], kernel_name: str) -> list[Finding]:
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


def import_findings(path: str | Path, kernel_name: str = "python3") -> list[Finding]:
    """Modules the notebook imports that the kernel's environment cannot find (``find_spec``).

    Imports inside ``try: … except ImportError:`` are optional and not checked (the walk's facts).
    """
    visit = walk(cells_of(read_notebook(path)), FACT_RULES)
    first_seen = visit.imports
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
    findings = []
    for module in _unresolved(python, sorted(first_seen), kernel_name):
        cell, line = first_seen[module]
        calls = sorted(
            {f"{c.number}" for c, name in visit.called if visit.names_from.get(name) == module}, key=int
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


def _unresolved(python: list[str], modules: list[str], kernel_name: str) -> list[str]:
    """The ``modules`` the kernel's Python cannot find, asked in a subprocess of that Python."""
    script = (
        "import importlib.util, json, sys\n"
        "print(json.dumps([m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]))"
    )
    # A neutral working directory: the kernel's is wherever the worker runs, not the notebook's folder.
    with tempfile.TemporaryDirectory() as cwd:
        done = subprocess.run(  # noqa: S603 - the kernel's own interpreter, fixed arguments
            [*python, "-c", script, *modules],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=_kernel_env(kernel_name),
            timeout=60,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"could not ask {python[0]} about the imports: {done.stderr.strip()[-300:]}")
    found: list[str] = json.loads(done.stdout)
    return found
