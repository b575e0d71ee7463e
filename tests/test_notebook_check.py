"""Tests for credit_bot.notebook_check: the parameters cell found with ast, and every finding it reports.

The team's real notebooks are read where they live, ``../shared/team`` beside the repository (never
copied in); the tests that need them skip, saying why, when that folder is absent.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from credit_bot import money
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
TEAM_DIR = ROOT / ".." / "shared" / "team"  # the team's own files, beside the repository


def team_file(name: str) -> Path:
    path = (TEAM_DIR / name).resolve()
    if not path.exists():
        pytest.skip(f"the team's notebook {name} is not in {TEAM_DIR.resolve()} (it is never copied in)")
    return path


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


def _kinds(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.code, f.kind) for f in findings]


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


# ── the team's real notebooks, as they are ─────────────────────────────────────────────────────
CURRENT = "verify_credit_recommendation.ipynb"
EARLIER = "verify_credit_recommendation_earlier.ipynb"


def test_team_notebook_as_is_blocks_only_on_what_really_breaks() -> None:
    """chdir, .env and the personal helper; not the SQL rewrite from `looker`, not scipy (installed)."""
    findings = check(team_file(CURRENT))
    assert _codes(findings) == [
        ("chdir", 1, True),  # os.chdir('/Users/…')
        ("dotenv", 2, True),  # from dotenv import load_dotenv
        ("dotenv", 2, True),  # load_dotenv(dotenv_path=…)
        ("import-unresolved", 2, True),  # from notebook_auto_alert import done
        ("parameters-untagged", 5, False),
        ("credit-amount-text", 27, False),  # credit_amount = output_df['credit'].sum() of "$…" strings
    ]
    assert {f.code for f in findings if f.blocker} == {"chdir", "dotenv", "import-unresolved"}
    [unresolved] = [f for f in findings if f.code == "import-unresolved"]
    assert "cannot import `notebook_auto_alert`; its functions are called in cell(s) 30" in unresolved.problem
    assert all(f.certain for f in findings)
    text = report(team_file(CURRENT), findings)
    assert text.splitlines()[-1] == "4 blocker(s), 2 warning(s): fix the blockers first."


def test_earlier_team_notebook_also_lacks_a_parameters_cell() -> None:
    """Its cell 5 (index 4) assigns a literal Looker SQL to `looker` and runs it: no cell to tag."""
    findings = check(team_file(EARLIER))
    assert {f.code for f in findings if f.blocker} == {
        "chdir",
        "dotenv",
        "import-unresolved",
        "parameters-missing",
    }
    [missing] = [f for f in findings if f.code == "parameters-missing"]
    assert (missing.cell, missing.line) == (5, 3)
    assert "cell 5 assigns its own value to looker (line 3) and then uses it" in missing.problem
    assert missing.fix.startswith('delete that assignment from cell 5, and put `looker = ""` alone')


def test_earlier_literal_is_an_overwrite_once_a_parameters_cell_comes_first(tmp_path: Path) -> None:
    """Given a parameters cell, the literal assignment is the one overwrite; the rewrites below it are not."""
    nb = json.loads(team_file(EARLIER).read_text(encoding="utf-8"))
    nb["cells"].insert(3, nbformat.v4.new_code_cell('looker = ""', metadata={"tags": ["parameters"]}))
    path = tmp_path / "earlier_with_parameters.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    overwritten = [(f.cell, f.line) for f in quick_findings(path) if f.code == "looker-overwritten"]
    assert overwritten == [(6, 3)]  # `looker = '''SELECT …'''`, not the `looker = looker.…` lines


def test_quick_part_skips_only_the_imports() -> None:
    path = team_file(CURRENT)
    assert [f.code for f in quick_findings(path)] == [
        f.code for f in check(path) if f.code != "import-unresolved"
    ]


# ── findings one at a time ─────────────────────────────────────────────────────────────────────
PARAMS = 'looker = ""'
END = "credit_amount = len(looker)"


BLOCKER, WARNING, HEURISTIC = "BLOCKER", "warning", "warning, heuristic"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("%cd /Users/someone/verify", [("chdir", BLOCKER)], id="cd-magic"),
        pytest.param("import os\nos.chdir('/tmp')", [("chdir", BLOCKER)], id="os-chdir"),
        pytest.param("open('/home/someone/creds.txt')", [("absolute-path", HEURISTIC)], id="home-folder"),
        pytest.param(
            "open('C:\\\\Users\\\\someone\\\\x.csv')", [("absolute-path", HEURISTIC)], id="windows-home"
        ),
        pytest.param(
            "import pandas as pd\npd.read_csv('/data/x.csv')", [("absolute-path", HEURISTIC)], id="absolute"
        ),
        pytest.param("import re\nre.compile(r'/looks/(\\d+)')", [], id="url-path-is-not-a-file"),
        pytest.param("from dotenv import load_dotenv\nload_dotenv()", [("dotenv", BLOCKER)] * 2, id="dotenv"),
        pytest.param(
            "from dotenv import load_dotenv\nload_dotenv('/Users/someone/.env')",
            [("dotenv", BLOCKER)] * 2,  # the call is the finding, not its path besides
            id="dotenv-path",
        ),
        pytest.param("open('.env').read()", [("dotenv", HEURISTIC)], id="dot-env-file"),
        pytest.param("%load_ext dotenv\n%dotenv", [("dotenv", BLOCKER)] * 2, id="dotenv-magic"),
        pytest.param('slack_token = "xoxb-000-fake-token"', [("credential", HEURISTIC)], id="named-token"),
        pytest.param('x = "xoxb-0000000000-fake"', [("credential", HEURISTIC)], id="token-shape"),
        pytest.param('connect(host="h", password="fake-pw")', [("credential", HEURISTIC)], id="keyword"),
        pytest.param('settings = {"api_key": "fake-key"}', [("credential", HEURISTIC)], id="dict-key"),
        pytest.param('os.environ["DB_PASSWORD"] = "fake-pw"', [("credential", HEURISTIC)], id="environ-item"),
        pytest.param(
            'url = "https://me:fake-pw@presto.example/hive"', [("credential", HEURISTIC)], id="url-userinfo"
        ),
        pytest.param(
            'auth = BasicAuthentication("me", "fake-pw")', [("credential", HEURISTIC)], id="basic-auth"
        ),
        pytest.param('password = os.environ["PRESTO_PASSWORD"]', [], id="from-environment"),
        pytest.param('password = ""', [], id="empty-placeholder"),
        pytest.param('password = "<your password>"', [], id="angle-placeholder"),
        pytest.param("looker = 'SELECT 2'", [("looker-overwritten", BLOCKER)], id="looker-overwritten"),
        pytest.param("def f(:", [("syntax-error", BLOCKER)], id="syntax-error"),
    ],
)
def test_environment_findings(tmp_path: Path, source: str, expected: list[tuple[str, str]]) -> None:
    path = _notebook(tmp_path / "nb.ipynb", PARAMS, source, END, tags={0: ["parameters"]})
    findings = quick_findings(path)
    assert _kinds(findings) == expected
    assert all(f.cell == 2 for f in findings)
    assert "fake-" not in report(path, findings)


def test_a_heuristic_finding_is_never_a_blocker() -> None:
    with pytest.raises(ValueError, match="heuristic finding cannot be a blocker"):
        Finding("credential", True, 2, 1, "looks like a credential", "delete it", certain=False)


# ── `looker` rewritten from itself is the notebook's business; replaced, it is an overwrite ────────
@pytest.mark.parametrize(
    ("source", "overwritten"),
    [
        # Derived: the value reads looker (the team's cut at Looker's marker and its added column).
        pytest.param("looker = looker.split(marker)[0]", [], id="split-at-marker"),
        pytest.param("looker = looker.replace(block, block + ', iso')", [], id="replace"),
        pytest.param("looker += ' LIMIT 10'", [], id="augmented"),
        pytest.param("looker = f'{looker} LIMIT 10'", [], id="f-string-of-itself"),
        pytest.param("import re\nlooker = re.sub('a', 'b', looker)", [], id="function-of-itself"),
        pytest.param("if marker in looker:\n    looker = looker.split(marker)[0]", [], id="nested"),
        pytest.param("looker: str = looker.strip()", [], id="annotated"),
        pytest.param("(looker := looker.strip())", [], id="walrus"),
        pytest.param("looker, n = looker.strip(), 1", [], id="tuple"),
        pytest.param("def f():\n    looker = 'SELECT 1'\n    return looker", [], id="function-local"),
        pytest.param("qs = [looker for looker in ['a']]", [], id="comprehension-local"),
        pytest.param("sql = 'SELECT 1'", [], id="another-name"),
        # Replaced: the value does not read looker, so the bot's SQL is gone.
        pytest.param("looker = 'SELECT 2'", [1], id="literal"),
        pytest.param('looker = """\nSELECT\n    1\n"""', [1], id="multi-line-literal"),
        pytest.param("looker = other_sql", [1], id="other-name"),
        pytest.param("looker = looker_template.format(x=1)", [1], id="name-containing-looker"),
        pytest.param("x = 1\nlooker = x and looker_sql", [2], id="second-line"),
        pytest.param("looker = 'SELECT 2'\nlooker = looker.strip()", [1], id="literal-then-derived"),
        pytest.param("for looker in ['a']:\n    pass", [1], id="for-target"),
        pytest.param("with open('q.sql') as looker:\n    pass", [1], id="with-target"),
        pytest.param("from queries import looker", [1], id="import"),
        pytest.param("def f():\n    global looker\n    looker = 'SELECT 1'", [3], id="global"),
        pytest.param("def looker():\n    return 1", [1], id="def"),
    ],
)
def test_derived_assignment_is_not_an_overwrite(tmp_path: Path, source: str, overwritten: list[int]) -> None:
    path = _notebook(tmp_path / "nb.ipynb", PARAMS, source, END, tags={0: ["parameters"]})
    findings = [f for f in quick_findings(path) if f.code == "looker-overwritten"]
    assert [(f.cell, f.line) for f in findings] == [(2, line) for line in overwritten]
    assert all(f.blocker and f.certain for f in findings)


# ── credit_amount summed from dollar text ──────────────────────────────────────────────────────
FRAME = "import pandas as pd\ndf = pd.DataFrame({'credit': [4948.8, float('nan')], 'rate': [0.5, 1.0]})"
TEAM_FORMAT = "df['credit'] = df['credit'].map(lambda x: f\"${x:,.2f}\")"
SUM = "credit_amount = df['credit'].sum()"


@pytest.mark.parametrize(
    ("source", "warned"),
    [
        pytest.param(f"{TEAM_FORMAT}\n{SUM}", True, id="team-shape"),
        pytest.param(
            f"df['credit'] = df['credit'].apply(lambda x: '${{:,.2f}}'.format(x))\n{SUM}",
            True,
            id="apply-format",
        ),
        pytest.param(
            f"df['credit'] = df['credit'].map('${{:,.2f}}'.format)\n{SUM}", True, id="map-bound-format"
        ),
        pytest.param(f"df['credit'] = '$' + df['credit'].astype(str)\n{SUM}", True, id="dollar-prefix"),
        pytest.param(f"df['credit'] = df['credit'].map(lambda x: '$%.2f' % x)\n{SUM}", True, id="percent"),
        pytest.param(f"{SUM}\n{TEAM_FORMAT}", False, id="summed-before-formatting"),
        pytest.param(
            "df['rate'] = df['rate'].map(lambda x: f\"{x:.3f}\")\ncredit_amount = df['rate'].sum()",
            False,
            id="text-without-dollars",
        ),
        pytest.param(f"{TEAM_FORMAT}\ncredit_amount = df['rate'].sum()", False, id="another-column"),
        pytest.param(
            f"{TEAM_FORMAT}\ndf['credit'] = pd.to_numeric(df['credit'].str.strip('$'))\n{SUM}",
            False,
            id="numbers-again",
        ),
    ],
)
def test_credit_amount_summed_from_dollar_text(tmp_path: Path, source: str, warned: bool) -> None:
    path = _notebook(tmp_path / "nb.ipynb", PARAMS, FRAME, source, "x = looker", tags={0: ["parameters"]})
    assert _kinds(quick_findings(path)) == ([("credit-amount-text", WARNING)] if warned else [])


@pytest.mark.parametrize(
    "credits",
    [
        pytest.param([4948.8, float("nan"), float("nan")], id="team-saved-output"),
        pytest.param([2.675, 1.005, 0.125], id="half-cents-as-binary-floats"),
        pytest.param([1234.5678, -5.0, 0.004], id="negative-and-sub-cent"),
        pytest.param([float("nan")] * 3, id="all-nan"),
    ],
)
def test_suggested_line_gives_the_number_creditbot_reads(tmp_path: Path, credits: list[float]) -> None:
    """The fix's one-liner, run before the formatting, equals what CreditBot reads from the text after."""
    import pandas as pd

    formatting = "output_df['credit'] = output_df['credit'].map(lambda x: f\"${x:,.2f}\")"
    path = _notebook(
        tmp_path / "nb.ipynb",
        PARAMS,
        formatting,
        "credit_amount = output_df['credit'].sum()\nx = looker",
        tags={0: ["parameters"]},
    )
    [finding] = [f for f in quick_findings(path) if f.code == "credit-amount-text"]
    suggested = re.search(r"put `(credit_amount = [^`]+)` just above cell 2, line 1", finding.fix)
    assert suggested, finding.fix
    namespace: dict[str, object] = {"output_df": pd.DataFrame({"credit": credits})}
    exec(suggested.group(1), namespace)  # noqa: S102 - the check's own suggestion, on test data
    exec(formatting + "\ncredit_amount_text = output_df['credit'].sum()", namespace)  # noqa: S102
    number, text = namespace["credit_amount"], namespace["credit_amount_text"]
    assert isinstance(text, str)
    if all(c != c for c in credits):  # every part nan: no basis, either way
        assert number != number
        with pytest.raises(money.InvalidAmount, match="nan in every part"):
            money.read_parts(text)
    else:
        parts = money.read_parts(text)
        assert parts is not None
        assert money.to_cents(money.to_decimal(number)) == money.to_cents(parts.total)


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
            ("looker = looker.strip()", "credit_amount = len(looker)"),
            {},
            [("parameters-missing", None, True)],  # a cell that derives looker is nothing to tag
            id="only-derived",
        ),
        pytest.param(
            ("looker = 'SELECT 1'\nrows = run(looker)", "credit_amount = len(rows)"),
            {},
            [("parameters-missing", 1, True)],  # the earlier team file's shape: tagging it is too late
            id="literal-then-used",
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
FAKE_PASSWORD = "fake-presto-password-0000"


def _command_notebook(which: str, tmp_path: Path) -> Path:
    if which == "team-as-is":
        return team_file(CURRENT)
    if which == "team-ported":
        from harness.team_notebook import port

        return port(team_file(CURRENT), tmp_path / "ported.ipynb")
    if which == "heuristic-only":
        password = f'PRESTO_PASSWORD = "{FAKE_PASSWORD}"'
        return _notebook(tmp_path / "nb.ipynb", PARAMS, password, END, tags={0: ["parameters"]})
    return ROOT / "include" / "notebooks" / "verify_credit.ipynb"


@pytest.mark.parametrize(
    ("which", "code", "last_line"),
    [
        pytest.param("team-as-is", 1, "4 blocker(s), 2 warning(s): fix the blockers first.", id="team-as-is"),
        pytest.param(
            "team-ported", 0, "2 warning(s), no blockers: CreditBot can run this notebook.", id="team-ported"
        ),
        pytest.param(
            "heuristic-only",
            0,
            "1 warning(s) (1 heuristic: judge them), no blockers: CreditBot can run this notebook.",
            id="heuristic-only",
        ),
        pytest.param("reference", 0, "No findings: CreditBot can run this notebook.", id="reference"),
    ],
)
def test_command(tmp_path: Path, which: str, code: int, last_line: str) -> None:
    """Exit 1 on blockers only; a heuristic finding (here a fake credential) is a warning, never echoed."""
    notebook = _command_notebook(which, tmp_path)
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
    if which == "heuristic-only":
        assert (
            "1. [warning, heuristic] cell 2, line 1: a string literal assigned to `PRESTO_PASSWORD`"
            in done.stdout
        )


# ── fetch_requests: only certain findings stop a run ───────────────────────────────────────────
def test_require_runnable_stops_on_certain_blockers_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from credit_bot.settings import SettingsError
    from credit_bot.tasks.fetch import require_runnable as _require_runnable

    guessed = _notebook(
        tmp_path / "guessed.ipynb",
        PARAMS,
        f'PRESTO_PASSWORD = "{FAKE_PASSWORD}"\nopen("/home/someone/rates.csv")',
        END,
        tags={0: ["parameters"]},
    )
    with caplog.at_level(logging.INFO, logger="credit_bot"):
        _require_runnable("verify", str(guessed), "python3")  # does not raise
    heuristic = [r for r in caplog.records if "heuristic, not stopping the run" in r.getMessage()]
    assert [r.levelno for r in heuristic] == [logging.WARNING] * 2
    assert FAKE_PASSWORD not in caplog.text

    certain = _notebook(
        tmp_path / "certain.ipynb", PARAMS, "import os\nos.chdir('/tmp')", END, tags={0: ["parameters"]}
    )
    with pytest.raises(
        SettingsError, match=r"cannot run under CreditBot: cell 2, line 2: the notebook changes"
    ):
        _require_runnable("verify", str(certain), "python3")


def test_unreadable_notebook(tmp_path: Path) -> None:
    (tmp_path / "x.ipynb").write_text("{not json")
    with pytest.raises(NotebookUnreadable, match="not a notebook"):
        quick_findings(tmp_path / "x.ipynb")
    with pytest.raises(NotebookUnreadable, match="does not exist"):
        quick_findings(tmp_path / "missing.ipynb")
