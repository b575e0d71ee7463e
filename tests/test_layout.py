"""What ships and what does not: the runtime (dags/, plugins/) never imports the harness, the bench or
the tests, and the production image copies only the runtime."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from harness import PROJECT_ROOT

RUNTIME = [PROJECT_ROOT / "dags", PROJECT_ROOT / "plugins"]
NOT_SHIPPED = ("harness", "bench", "tests")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


RUNTIME_FILES = sorted(p for folder in RUNTIME for p in folder.rglob("*.py"))


@pytest.mark.parametrize("path", RUNTIME_FILES, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_runtime_module_imports_no_harness(path: Path) -> None:
    bad = {m for m in _imported_modules(path) if m.split(".")[0] in NOT_SHIPPED}
    assert not bad, f"{path.relative_to(PROJECT_ROOT)} imports {sorted(bad)}, which never ship"


def test_the_check_can_fail(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from harness.sandbox import Sandbox\n    import bench.scenarios\n")
    assert {"harness.sandbox", "bench.scenarios"} <= _imported_modules(module)


def test_plugins_hold_only_the_runtime() -> None:
    names = {p.name for p in (PROJECT_ROOT / "plugins" / "credit_bot").iterdir()}
    assert not names & {"sandbox", "deployment.py", "local.py", "demo.py", "sample_warehouse.py"}


def test_the_image_copies_only_the_runtime() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    sources = {m.group(1) for m in re.finditer(r"^COPY\s+(?:--\S+\s+)*(\S+)", dockerfile, re.M)}
    assert sources == {"requirements.txt", "dags/", "plugins/", "include/notebooks/"}
    ignore = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert "!include/notebooks/" in ignore
    assert not [line for line in ignore if line.startswith("!") and line.lstrip("!").startswith(NOT_SHIPPED)]
