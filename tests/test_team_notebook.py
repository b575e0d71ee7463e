"""Tests for harness.team_notebook.port: README's edits made by code on the team's real notebooks.

The team's files are read where they live, ``../shared/team`` beside the repository (never copied in);
the tests on them skip, saying why, when that folder is absent.
"""

from __future__ import annotations

import ast
import difflib
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from credit_bot.notebook_check import check, parameters_cell
from harness.team_notebook import masked_source, port

ROOT = Path(__file__).resolve().parents[1]
TEAM_DIR = ROOT / ".." / "shared" / "team"  # the team's own files, beside the repository
CURRENT = "verify_credit_recommendation.ipynb"
EARLIER = "verify_credit_recommendation_earlier.ipynb"

# What README's edits take out of the team's cell 2 (the imports and the connection), line for line.
REMOVED_LINES = [
    "from dotenv import load_dotenv\n",
    'load_dotenv(dotenv_path="/Users/amorris/Documents/sms-pumping/.env")\n',
    "from notebook_auto_alert import done\n",
    "presto_host = os.getenv('presto_host')\n",
    "presto_port = os.getenv('presto_port')\n",
    "username = os.getenv('presto_username')\n",
    "password = os.getenv('presto_password')\n",
    "conn = prestodb.dbapi.connect(\n",
    "            host=presto_host,\n",
    "            port=presto_port,\n",
    "            user=username,\n",
    "            catalog='hive',\n",
    "            schema='public',\n",
    "            http_scheme='https',\n",
    "            auth=prestodb.auth.BasicAuthentication(username, password),\n",
    "        )\n",
]
ADDED_LINES = ["from credit_bot import warehouse\n", "conn = warehouse.connect()\n"]


def team_file(name: str) -> Path:
    path = (TEAM_DIR / name).resolve()
    if not path.exists():
        pytest.skip(f"the team's notebook {name} is not in {TEAM_DIR.resolve()} (it is never copied in)")
    return path


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict[str, Any]) -> str:
    return "".join(cell["source"])


def _blockers(path: Path) -> set[str]:
    return {f.code for f in check(path) if f.blocker}


@pytest.fixture(params=[CURRENT, EARLIER], ids=["current", "earlier"])
def ported(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path]:
    source = team_file(request.param)
    return source, port(source, tmp_path / request.param)


def test_current_version_has_no_blocker_once_ported(tmp_path: Path) -> None:
    ported = port(team_file(CURRENT), tmp_path / CURRENT)
    findings = check(ported)
    # Left: what CreditBot copes with (the untagged parameters cell, the dollar-text sum).
    assert [(f.code, f.cell, f.blocker) for f in findings] == [
        ("parameters-untagged", 4, False),
        ("credit-amount-text", 26, False),
    ]


def test_earlier_version_keeps_its_one_true_blocker(tmp_path: Path) -> None:
    """Its literal `looker = '''SELECT …'''` in the cell that runs it, and no parameters cell."""
    ported = port(team_file(EARLIER), tmp_path / EARLIER)
    assert _blockers(team_file(EARLIER)) == {"chdir", "dotenv", "import-unresolved", "parameters-missing"}
    assert _blockers(ported) == {"parameters-missing"}
    [missing] = [f for f in check(ported) if f.blocker]
    assert (missing.cell, missing.line) == (4, 3)


def test_only_the_edited_cells_change(ported: tuple[Path, Path]) -> None:
    source, dest = ported
    before, after = _json(source), _json(dest)
    by_id = {cell["id"]: cell for cell in before["cells"]}
    dropped = [c for c in before["cells"] if c["id"] not in {cell["id"] for cell in after["cells"]}]
    # The `import os` / `os.chdir(…)` cell and the `done()` cell: nothing of them is left.
    assert [_source(c) for c in dropped] == [
        "import os\nos.chdir('/Users/amorris/Documents/sms-pumping')",
        "\ndone()",
    ]
    assert [c["id"] for c in after["cells"]] == [c["id"] for c in before["cells"] if c not in dropped]
    changed = [c for c in after["cells"] if c != by_id[c["id"]]]
    [imports] = changed
    old, new = by_id[imports["id"]]["source"], imports["source"]
    diff = list(difflib.ndiff(old, new))
    assert [line[2:] for line in diff if line.startswith("- ")] == REMOVED_LINES
    assert [line[2:] for line in diff if line.startswith("+ ")] == ADDED_LINES
    assert {k: v for k, v in imports.items() if k != "source"} == {
        k: v for k, v in by_id[imports["id"]].items() if k != "source"
    }
    assert {k: v for k, v in after.items() if k != "cells"} == {
        k: v for k, v in before.items() if k != "cells"
    }


def test_unchanged_cells_are_byte_identical(ported: tuple[Path, Path]) -> None:
    """The file is written as Jupyter writes it, so every cell not edited is the same bytes."""
    source, dest = ported
    original = source.read_text(encoding="utf-8")
    after = _json(dest)
    edited = {c["id"] for c in after["cells"] if "from credit_bot import warehouse\n" in c["source"]}
    for cell in after["cells"]:
        if cell["id"] not in edited:
            text = json.dumps(cell, indent=1, ensure_ascii=False)
            assert "\n".join("  " + line for line in text.splitlines()) in original


def test_parameters_cell_stays_untagged_and_is_found(tmp_path: Path) -> None:
    ported = port(team_file(CURRENT), tmp_path / CURRENT)
    nb = nbformat.read(ported, as_version=4)
    assert parameters_cell(nb) == (3, False)  # CreditBot tags it in the copy it runs
    assert nb.cells[3].source == '# Parameters\n\nlooker = ""'
    assert nb.cells[3].metadata == {}


def test_ported_notebook_compiles(ported: tuple[Path, Path]) -> None:
    _, dest = ported
    nb = nbformat.read(dest, as_version=4)  # a valid notebook
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            stripped = "\n".join(
                "" if line.lstrip().startswith("%") else line for line in cell.source.splitlines()
            )
            ast.parse(stripped)
    sources = [c.source for c in nb.cells]
    assert not any(
        "dotenv" in s or "os.chdir" in s or "done()" in s or "prestodb.dbapi" in s for s in sources
    )


def test_porting_twice_changes_nothing(ported: tuple[Path, Path], tmp_path: Path) -> None:
    _, dest = ported
    again = port(dest, tmp_path / "again.ipynb")
    assert again.read_bytes() == dest.read_bytes()


# ── the edits on small notebooks ───────────────────────────────────────────────────────────────
@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        pytest.param(["import os\nos.chdir('/Users/x')", "x = 1"], ["x = 1"], id="chdir-cell-dropped"),
        pytest.param(
            ["import os\n# the team's note\nos.chdir('/Users/x')"],
            ["import os\n# the team's note"],
            id="cell-with-a-comment-kept",
        ),
        pytest.param(
            ["from notebook_auto_alert import done\nx = 1", "if x:\n    done()\nprint(x)"],
            ["x = 1", "if x:\n    pass\nprint(x)"],
            id="nested-call-becomes-pass",
        ),
        pytest.param(
            [
                "import os\nimport prestodb\nhost = os.getenv('h')\n"
                "conn = prestodb.dbapi.connect(host=host, port=443)\nprint(host)"
            ],
            [
                "import os\nimport prestodb\nhost = os.getenv('h')\n"
                "from credit_bot import warehouse\nconn = warehouse.connect()\nprint(host)"
            ],
            id="env-line-kept-when-still-read",
        ),
        pytest.param(
            ["import dotenv\ndotenv.load_dotenv()\n%matplotlib inline\nx = 1"],
            ["%matplotlib inline\nx = 1"],
            id="module-import-and-magic",
        ),
        pytest.param(
            ['looker = ""', "looker = looker.strip()\ncredit_amount = 1"],
            ['looker = ""', "looker = looker.strip()\ncredit_amount = 1"],
            id="nothing-to-edit",
        ),
    ],
)
def test_port_edits(tmp_path: Path, sources: list[str], expected: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    source = tmp_path / "in.ipynb"
    nbformat.write(nb, source)
    out = nbformat.read(port(source, tmp_path / "out.ipynb"), as_version=4)
    assert [c.source for c in out.cells] == expected


def test_masked_source_keeps_line_numbers() -> None:
    assert masked_source("x = 1\n    %time y\n!ls") == "x = 1\n    pass\npass"
    assert masked_source("%%time\nx = 1") is None
