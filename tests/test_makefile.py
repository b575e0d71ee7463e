"""The Makefile picks the newest Python Airflow 3.3 supports from PATH, as a newcomer's machine has it."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import PROJECT_ROOT


def _interpreter(version: str) -> Path | None:
    """A working ``python3.X`` on this machine (pyenv keeps them beside its shims)."""
    candidates = [shutil.which(f"python{version}")]
    candidates += glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python{version}"))
    for candidate in filter(None, candidates):
        # A shim is a script that needs its own tools on PATH: ask for the real binary instead.
        done = subprocess.run(
            [candidate, "-c", "import sys; print(sys.executable)"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return Path(done.stdout.strip())
    return None


def _make(tmp_path: Path, versions: list[str], *targets: str) -> subprocess.CompletedProcess[str]:
    """``make`` with a PATH holding only ``make`` and the given interpreters."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "make").symlink_to(shutil.which("make") or "/usr/bin/make")
    for version in versions:
        found = _interpreter(version)
        if found is None:
            pytest.skip(f"python{version} is not installed here")
        (bin_dir / f"python{version}").symlink_to(found)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    return subprocess.run(
        ["make", "-s", "-C", str(PROJECT_ROOT), *targets],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("installed", "chosen"),
    [
        pytest.param(["3.11"], "python3.11 (Python 3.11)", id="only-3.11"),
        pytest.param(["3.12"], "python3.12 (Python 3.12)", id="only-3.12"),
        pytest.param(["3.13"], "python3.13 (Python 3.13)", id="only-3.13"),
        pytest.param(["3.11", "3.12", "3.13"], "python3.13 (Python 3.13)", id="newest-wins"),
    ],
)
def test_make_uses_the_newest_supported_python(tmp_path: Path, installed: list[str], chosen: str) -> None:
    done = _make(tmp_path, installed, "python-info")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == chosen


def test_make_without_a_supported_python_says_what_to_do(tmp_path: Path) -> None:
    done = _make(tmp_path, [], "install", f"VENV={tmp_path / 'venv'}")
    assert done.returncode != 0
    assert "Needs Python 3.11, 3.12 or 3.13" in done.stdout + done.stderr
    assert not (tmp_path / "venv").exists()


def test_requires_python_matches_the_makefile() -> None:
    pyproject = (PROJECT_ROOT / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.11,<3.14"' in pyproject
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "SUPPORTED_PYTHONS := python3.13 python3.12 python3.11" in makefile
