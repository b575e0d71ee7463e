"""Tests for credit_bot.notebook_check: the parameters cell found with ast, and every finding it reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from credit_bot.notebook_check import (
    Finding,
    NotebookUnreadable,
    check,
    declares_parameters,
    kernel_python,
    parameters_cell,
    quick_findings,
    report,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
TEAM = DATA / "team_verify_credit.ipynb"
TEAM_AS_IS = DATA / "team_verify_credit_as_is.ipynb"
FAKE_PASSWORD = "fake-presto-password-0000"  # the as-is copy's fake credential


def _notebook(
    path: Path, *sources: str, tags: dict[int, list[str]] | None = None, kernel: str = "python3"
) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(s[3:]) if s.startswith("md:") else nbformat.v4.new_code_cell(s)
        for s in sources
    ]
    for index, cell_tags in (tags or {}).items():
        nb.cells[index].metadata["tags"] = cell_tags
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    nbformat.write(nb, path)
    return path


def _codes(findings: list[Finding]) -> list[tuple[str, int | None, bool]]:
    return [(f.code, f.cell, f.blocker) for f in findings]


# ── the parameters cell ────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize(
    ("source", "declares"),
    [
        pytest.param('# Parameters\n\nlooker = ""', True, id="team-cell"),
        pytest.param('looker = ""  # the SQL goes here', True, id="trailing-comment"),
        pytest.param('looker: str = ""', True, id="annotated"),
        pytest.param("looker = None", True, id="none-literal"),
        pytest.param("looker = '''SELECT 1'''", True, id="sql-default"),
        pytest.param('looker = ""\nimport re', False, id="with-import"),
        pytest.param('looker = ""\nprint(looker)', False, id="with-call"),
        pytest.param('looker = ""\nother = 1', False, id="other-name"),
        pytest.param('looker = other = ""', False, id="chained-other-name"),
        pytest.param('looker = f"{x}"', False, id="f-string"),
        pytest.param('looker = os.environ["SQL"]', False, id="not-a-literal"),
        pytest.param("looker += 'x'", False, id="augmented"),
        pytest.param("# Parameters", False, id="comment-only"),
        pytest.param("", False, id="empty"),
        pytest.param('%time looker = ""', False, id="magic"),
        pytest.param('looker = "', False, id="syntax-error"),
    ],
)
def test_declares_parameters(source: str, declares: bool) -> None:
    from credit_bot.notebook_check import parse_code

    assert declares_parameters(parse_code(source)) is declares


@pytest.mark.parametrize(
    ("sources", "tags", "expected"),
    [
        pytest.param(("md:## Set Parameters", 'looker = ""', "x = looker"), {}, (1, False), id="untagged"),
        pytest.param(('looker = ""', "x = 1"), {1: ["parameters"]}, (1, True), id="tag-wins"),
        pytest.param(("import re", "looker = ''", 'looker = ""'), {}, (1, False), id="first-declaring-cell"),
        pytest.param(('looker = ""\nimport re', "x = looker"), {}, None, id="mixed-cell"),
        pytest.param(("md:looker = ''", "x = 1"), {}, None, id="markdown-is-not-code"),
    ],
)
def test_parameters_cell(
    tmp_path: Path, sources: tuple[str, ...], tags: dict[int, list[str]], expected: tuple[int, bool] | None
) -> None:
    nb = nbformat.read(_notebook(tmp_path / "nb.ipynb", *sources, tags=tags), as_version=4)
    assert parameters_cell(nb) == expected


# ── the notebooks in tests/data and the reference one ──────────────────────────────────────────
@pytest.mark.parametrize(
    "notebook",
    [
        pytest.param(ROOT / "include" / "notebooks" / "verify_credit.ipynb", id="reference"),
        pytest.param(DATA / "fixed_result.ipynb", id="fixed-result"),
    ],
)
def test_ready_notebooks_have_no_findings(notebook: Path) -> None:
    assert check(notebook) == []


def test_team_shaped_notebook_only_lacks_the_tag() -> None:
    assert _codes(check(TEAM)) == [("parameters-untagged", 3, False)]


def test_team_notebook_as_is_reports_each_problem() -> None:
    findings = check(TEAM_AS_IS)
    assert _codes(findings) == [
        ("kernelspec-unknown", None, False),
        ("chdir", 2, True),
        ("parameters-untagged", 4, False),
        ("dotenv", 6, True),  # from dotenv import load_dotenv
        ("import-unresolved", 6, True),  # from notebook_auto_alert import done
        ("dotenv", 8, True),  # load_dotenv('.env')
        ("credential", 8, True),  # PRESTO_PASSWORD = "…"
    ]
    [unresolved] = [f for f in findings if f.code == "import-unresolved"]
    assert "`notebook_auto_alert`; its functions are called in cell(s) 14" in unresolved.problem
    text = report(TEAM_AS_IS, findings)
    assert FAKE_PASSWORD not in text  # named, never echoed
    assert "assigned to `PRESTO_PASSWORD` looks like a credential (its value is not shown here)" in text
    assert text.splitlines()[3].startswith("2. [BLOCKER] cell 2, line 3: the notebook changes its working")
    assert text.splitlines()[-1] == "5 blocker(s), 2 warning(s): fix the blockers first."


def test_quick_part_skips_only_the_imports() -> None:
    assert [f.code for f in quick_findings(TEAM_AS_IS)] == [
        f.code for f in check(TEAM_AS_IS) if f.code != "import-unresolved"
    ]


# ── findings one at a time ─────────────────────────────────────────────────────────────────────
PARAMS = 'looker = ""'
END = "credit_amount = len(looker)"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("%cd /Users/someone/verify", [("chdir", True)], id="cd-magic"),
        pytest.param("import os\nos.chdir('/tmp')", [("chdir", True)], id="os-chdir"),
        pytest.param("open('/home/someone/creds.txt')", [("absolute-path", True)], id="home-folder"),
        pytest.param("open('C:\\\\Users\\\\someone\\\\x.csv')", [("absolute-path", True)], id="windows-home"),
        pytest.param(
            "import pandas as pd\npd.read_csv('/data/x.csv')", [("absolute-path", False)], id="absolute"
        ),
        pytest.param("import re\nre.compile(r'/looks/(\\d+)')", [], id="url-path-is-not-a-file"),
        pytest.param("from dotenv import load_dotenv\nload_dotenv()", [("dotenv", True)] * 2, id="dotenv"),
        pytest.param("open('.env').read()", [("dotenv", True)], id="dot-env-file"),
        pytest.param("%load_ext dotenv\n%dotenv", [("dotenv", True)] * 2, id="dotenv-magic"),
        pytest.param('slack_token = "xoxb-000-fake-token"', [("credential", True)], id="named-token"),
        pytest.param('x = "xoxb-0000000000-fake"', [("credential", True)], id="token-shape"),
        pytest.param('connect(host="h", password="fake-pw")', [("credential", True)], id="keyword"),
        pytest.param('settings = {"api_key": "fake-key"}', [("credential", True)], id="dict-key"),
        pytest.param('os.environ["DB_PASSWORD"] = "fake-pw"', [("credential", True)], id="environ-item"),
        pytest.param(
            'url = "https://me:fake-pw@presto.example/hive"', [("credential", True)], id="url-userinfo"
        ),
        pytest.param('auth = BasicAuthentication("me", "fake-pw")', [("credential", True)], id="basic-auth"),
        pytest.param('password = os.environ["PRESTO_PASSWORD"]', [], id="from-environment"),
        pytest.param('password = ""', [], id="empty-placeholder"),
        pytest.param('password = "<your password>"', [], id="angle-placeholder"),
        pytest.param("looker = 'SELECT 2'", [("looker-overwritten", True)], id="looker-overwritten"),
        pytest.param("def f(:", [("syntax-error", True)], id="syntax-error"),
    ],
)
def test_environment_findings(tmp_path: Path, source: str, expected: list[tuple[str, bool]]) -> None:
    path = _notebook(tmp_path / "nb.ipynb", PARAMS, source, END, tags={0: ["parameters"]})
    findings = quick_findings(path)
    assert [(f.code, f.blocker) for f in findings] == expected
    assert all(f.cell == 2 for f in findings)
    assert "fake-" not in report(path, findings)


@pytest.mark.parametrize(
    ("sources", "tags", "expected"),
    [
        pytest.param(
            ("x = 1", "credit_amount = 1"),
            {},
            [("parameters-missing", None, True), ("looker-unused", None, True)],
            id="no-looker-at-all",
        ),
        pytest.param(
            ('looker = ""\nimport re', "credit_amount = len(looker)"),
            {},
            [("parameters-missing", 1, True)],
            id="mixed-cell",
        ),
        pytest.param(
            ("x = 1", "credit_amount = len(looker)"),
            {0: ["parameters"]},
            [("looker-undeclared", 1, False)],
            id="tagged-without-looker",
        ),
        pytest.param(
            (PARAMS, "x = len(looker)"),
            {0: ["parameters"]},
            [("credit-amount-missing", None, True)],
            id="no-credit",
        ),
        pytest.param(
            (PARAMS, "credit_amount = 1"), {0: ["parameters"]}, [("looker-unused", None, True)], id="unused"
        ),
    ],
)
def test_structure_findings(
    tmp_path: Path,
    sources: tuple[str, ...],
    tags: dict[int, list[str]],
    expected: list[tuple[str, int | None, bool]],
) -> None:
    assert _codes(quick_findings(_notebook(tmp_path / "nb.ipynb", *sources, tags=tags))) == expected


# ── kernels and imports ────────────────────────────────────────────────────────────────────────
def test_missing_kernel_is_a_blocker(tmp_path: Path) -> None:
    path = _notebook(tmp_path / "nb.ipynb", PARAMS, END, tags={0: ["parameters"]})
    [finding] = quick_findings(path, kernel_name="no-such-kernel")
    assert (finding.code, finding.blocker) == ("kernel-missing", True)
    assert "python3" in finding.fix  # names the kernels there are


def test_imports_are_resolved_in_the_kernels_python(tmp_path: Path) -> None:
    path = _notebook(
        tmp_path / "nb.ipynb",
        PARAMS,
        "import pandas as pd\nfrom credit_bot import warehouse\nimport fake_personal_helper",
        "try:\n    import fake_optional_speedup\nexcept ImportError:\n    fake_optional_speedup = None",
        END,
        tags={0: ["parameters"]},
    )
    [finding] = check(path)
    assert (finding.code, finding.cell, finding.line) == ("import-unresolved", 2, 3)
    assert "cannot import `fake_personal_helper`" in finding.problem
    assert kernel_python("python3") == [sys.executable]  # argv "python": the launching interpreter


def _kernelspec(tmp_path: Path, name: str, argv: list[str]) -> None:
    spec = tmp_path / "kernels" / name
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": name, "language": "python"}))


def test_kernelspec_with_its_own_interpreter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel whose argv names another Python is checked with that Python (here: one without pandas)."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    _kernelspec(
        tmp_path,
        "bare",
        [str(bare / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
    )
    _kernelspec(tmp_path, "wrapped", ["/bin/sh", "-c", "exec kernel", "{connection_file}"])
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    path = _notebook(tmp_path / "nb.ipynb", PARAMS, "import pandas", END, tags={0: ["parameters"]})
    assert kernel_python("bare") == [str(bare / "bin" / "python")]
    [finding] = check(path, kernel_name="bare")
    assert (finding.code, finding.cell) == ("import-unresolved", 2)
    assert f"({bare / 'bin' / 'python'}) cannot import `pandas`" in finding.problem
    assert [f.code for f in check(path, kernel_name="wrapped")] == ["imports-unchecked"]


# ── the command ────────────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize(
    ("notebook", "code", "last_line"),
    [
        pytest.param(TEAM, 0, "1 warning(s), no blockers: CreditBot can run this notebook.", id="team"),
        pytest.param(TEAM_AS_IS, 1, "5 blocker(s), 2 warning(s): fix the blockers first.", id="as-is"),
        pytest.param(
            ROOT / "include" / "notebooks" / "verify_credit.ipynb",
            0,
            "No findings: CreditBot can run this notebook.",
            id="reference",
        ),
    ],
)
def test_command(notebook: Path, code: int, last_line: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    done = subprocess.run(
        [sys.executable, "-m", "credit_bot.notebook_check", str(notebook)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == code, done.stderr
    assert done.stdout.splitlines()[-1] == last_line
    assert FAKE_PASSWORD not in done.stdout + done.stderr


def test_unreadable_notebook(tmp_path: Path) -> None:
    (tmp_path / "x.ipynb").write_text("{not json")
    with pytest.raises(NotebookUnreadable, match="not a notebook"):
        quick_findings(tmp_path / "x.ipynb")
    with pytest.raises(NotebookUnreadable, match="does not exist"):
        quick_findings(tmp_path / "missing.ipynb")
