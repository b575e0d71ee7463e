"""Tests for credit_bot.notebooks: the instrumented copy, reading results, validation.

The ``integration`` tests execute small notebooks for real with papermill and CreditBot's engine
(one kernel each). The read-out code as Python: test_notebook_readout; the engine: test_notebook_engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import papermill
import pytest

from credit_bot.errors import RejectedRequest, TransientError
from credit_bot.money import InvalidAmount, format_usd
from credit_bot.notebooks import (
    READOUT_TAG,
    RESULT_MIME,
    CreditAmountMissing,
    NotebookDidNotFinish,
    NotebookResult,
    NotebookResultError,
    ParametersCellMissing,
    first_error,
    instrumented_copy,
    output_path,
    read_result,
    validate_credit,
)
from credit_bot.notebooks.engine import register_engine
from credit_bot.notebooks.readout import encode
from harness.testing.notebook_files import write_code_notebook

_write = write_code_notebook


def _run(tmp_path: Path, *sources: str) -> str:
    tmp_path.mkdir(exist_ok=True)
    source = _write(tmp_path / "credit.ipynb", *sources)
    output = tmp_path / "out" / "credit.out.ipynb"
    output.parent.mkdir()
    papermill.execute_notebook(
        str(instrumented_copy(str(source), tmp_path / ".instrumented")),
        str(output),
        kernel_name="python3",
        progress_bar=False,
        log_output=False,
        engine_name=register_engine(),
    )
    return str(output)


# ── executed for real ──────────────────────────────────────────────────────────────────────────
@pytest.mark.integration
@pytest.mark.parametrize(
    ("sources", "credit", "fraud_spend"),
    [
        pytest.param(("credit_amount = 4948.8",), "4948.8", None, id="float-assignment-only"),
        pytest.param(
            ("from decimal import Decimal", 'credit_amount = Decimal("12.345")\nfraud_spend = 20'),
            "12.345",
            "20",
            id="decimal-with-fraud-spend",
        ),
        pytest.param(
            ("import numpy as np\ncredit_amount = np.float64(4948.8)",), "4948.8", None, id="numpy-float64"
        ),
        pytest.param(
            ("import pandas as pd\ncredit_amount = pd.DataFrame({'credit': [120, 35]})['credit'].sum()",),
            "155",
            None,
            id="numpy-int64-from-pandas",
        ),
        pytest.param(
            ("import pandas as pd\ncredit_amount = pd.Series([179.73000000000002])",),
            "179.73000000000002",
            None,
            id="one-element-series",
        ),
    ],
)
def test_executed_notebook_result(
    tmp_path: Path, sources: tuple[str, ...], credit: str, fraud_spend: str | None
) -> None:
    result = read_result(_run(tmp_path, *sources))
    assert str(result.credit) == credit  # exactly, not 4948.8000000000001818…
    assert result.fraud_spend == (Decimal(fraud_spend) if fraud_spend else None)
    assert result.context is None


@pytest.mark.integration
def test_executed_notebook_without_credit_amount(tmp_path: Path) -> None:
    output = _run(tmp_path, "fraud_spend = 10")
    with pytest.raises(CreditAmountMissing, match="did not set credit_amount") as raised:
        read_result(output)
    assert isinstance(raised.value, RejectedRequest)  # the same notebook leaves it unset again


@pytest.mark.integration
def test_executed_notebook_dataframe_is_named(tmp_path: Path) -> None:
    output = _run(tmp_path, "import pandas as pd\ncredit_amount = pd.DataFrame({'credit': [1.5, 2.5]})")
    with pytest.raises(InvalidAmount, match=r"credit_amount is a pandas\.DataFrame \(2 rows x 1 columns\)"):
        read_result(output)


@pytest.mark.integration
def test_executed_notebook_nan(tmp_path: Path) -> None:
    output = _run(tmp_path, 'credit_amount = float("nan")')
    with pytest.raises(InvalidAmount, match="not a finite number"):
        read_result(output)


@pytest.mark.integration
def test_executed_notebook_that_raises(tmp_path: Path) -> None:
    with pytest.raises(papermill.PapermillExecutionError):
        _run(tmp_path, "credit_amount = 1", 'raise KeyError("fake_missing_column")')
    output = str(tmp_path / "out" / "credit.out.ipynb")
    with pytest.raises(
        NotebookDidNotFinish, match=r"failed in cell 2: KeyError: 'fake_missing_column'$"
    ) as raised:
        read_result(output)
    assert isinstance(raised.value, TransientError)


# ── read_result on hand-made outputs ───────────────────────────────────────────────────────────
def _executed(path: Path, result: dict[str, object] | None, *, error: bool = False) -> str:
    """A notebook shaped like papermill's output: the read-out cell's display data, maybe an error."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("credit_amount = ...")
    if error:
        cell.outputs.append(
            nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="boom", traceback=[])
        )
    nb.cells.append(cell)
    if result is not None:
        readout = nbformat.v4.new_code_cell("# read-out")
        readout.outputs.append(nbformat.v4.new_output("display_data", data={RESULT_MIME: result}))
        nb.cells.append(readout)
    nbformat.write(nb, path)
    return str(path)


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        pytest.param({"type": "str", "value": "$1,234.50"}, Decimal("1234.50"), id="money-string"),
        pytest.param({"type": "int", "value": "4948"}, Decimal("4948"), id="int"),
        pytest.param({"type": "float", "value": "4948.8"}, Decimal("4948.8"), id="float"),
        pytest.param({"type": "decimal", "value": "0.005"}, Decimal("0.005"), id="decimal"),
    ],
)
def test_read_result_decodes(tmp_path: Path, encoded: dict[str, str], expected: Decimal) -> None:
    path = _executed(tmp_path / "out.ipynb", {"has_credit_amount": True, "credit_amount": encoded})
    result = read_result(path)
    assert result.credit == expected
    assert str(result.credit) == str(expected)


@pytest.mark.parametrize(
    ("encoded", "match"),
    [
        pytest.param({"type": "NoneType", "value": None}, "credit_amount is NoneType", id="none"),
        pytest.param({"type": "bool", "value": None}, "credit_amount is bool", id="bool"),
        pytest.param({"type": "DataFrame", "value": None}, "credit_amount is DataFrame", id="dataframe"),
        pytest.param({"type": "str", "value": "12 dollars"}, "not an unambiguous", id="text"),
        pytest.param({"type": "float", "value": "inf"}, "not a finite number", id="inf"),
    ],
)
def test_read_result_invalid_amount(tmp_path: Path, encoded: dict[str, object], match: str) -> None:
    path = _executed(tmp_path / "out.ipynb", {"has_credit_amount": True, "credit_amount": encoded})
    with pytest.raises(InvalidAmount, match=match):
        read_result(path)


def test_read_result_invalid_fraud_spend_is_named(tmp_path: Path) -> None:
    path = _executed(
        tmp_path / "out.ipynb",
        {
            "has_credit_amount": True,
            "credit_amount": {"type": "int", "value": "1"},
            "fraud_spend": {"type": "str", "value": "lots"},
        },
    )
    with pytest.raises(InvalidAmount, match="fraud_spend 'lots'"):
        read_result(path)


@pytest.mark.parametrize(
    ("result", "error", "match", "kind"),
    [
        pytest.param(None, False, "did not reach", NotebookDidNotFinish, id="no-readout"),
        pytest.param(
            {"has_credit_amount": False},
            False,
            "did not set credit_amount",
            CreditAmountMissing,
            id="missing",
        ),
        pytest.param(
            {"has_credit_amount": True, "credit_amount": {"type": "int", "value": "1"}},
            True,
            "failed in cell 1: ZeroDivisionError: boom",
            NotebookDidNotFinish,
            id="error-wins-over-result",
        ),
    ],
)
def test_read_result_errors(
    tmp_path: Path,
    result: dict[str, object] | None,
    error: bool,
    match: str,
    kind: type[NotebookResultError],
) -> None:
    path = _executed(tmp_path / "out.ipynb", result, error=error)
    with pytest.raises(NotebookResultError, match=match) as raised:
        read_result(path)
    assert type(raised.value) is kind


def test_read_result_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotebookDidNotFinish, match="does not exist"):
        read_result(str(tmp_path / "never-ran.ipynb"))


# ── the read-out cell's encoder (the kernel's code, as Python) on real numpy and pandas values ──
def _encode(value: object) -> dict[str, object]:
    return encode(value)


def _read(value: object, tmp_path: Path) -> Decimal:
    path = _executed(tmp_path / "out.ipynb", {"has_credit_amount": True, "credit_amount": _encode(value)})
    return read_result(path).credit


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(np.float64(179.73000000000002), "179.73000000000002", id="numpy-float64-unrounded"),
        pytest.param(pd.Series([1234.5678, 179.7312, 0.1]).sum(), "1414.399", id="series-sum-float64"),
        pytest.param(np.float32(0.5), "0.5", id="numpy-float32"),
        pytest.param(np.int64(155), "155", id="numpy-int64"),
        pytest.param(pd.Series([120, 35]).sum(), "155", id="series-sum-int64"),
        pytest.param(np.uint64(2**63 + 1), str(2**63 + 1), id="numpy-uint64-exact"),
        pytest.param(np.array(12.345), "12.345", id="0-d-array"),
        pytest.param(np.array(7, dtype=np.int32), "7", id="0-d-int-array"),
        pytest.param(pd.Series([4948.8]), "4948.8", id="one-element-series"),
        pytest.param(pd.DataFrame({"credit": [1.5, 2.5]})["credit"].iloc[[0]], "1.5", id="one-row-selection"),
        pytest.param(4948.8, "4948.8", id="python-float"),
        pytest.param(Decimal("0.005"), "0.005", id="decimal"),
    ],
)
def test_readout_reads_numpy_and_pandas_exactly(tmp_path: Path, value: object, expected: str) -> None:
    assert str(_read(value, tmp_path)) == expected


@pytest.mark.parametrize(
    ("value", "match"),
    [
        pytest.param(
            pd.DataFrame({"credit": [1.5, 2.5]}), r"pandas\.DataFrame \(2 rows x 1 columns\)", id="dataframe"
        ),
        pytest.param(pd.Series([1.5, 2.5]), r"pandas\.Series of 2 values", id="series"),
        pytest.param(pd.Series([], dtype=float), r"pandas\.Series of 0 values", id="empty-series"),
        pytest.param([1.5], r"a list of 1 values", id="list"),
        pytest.param(np.array([1.5, 2.5]), r"numpy\.ndarray of shape \(2,\)", id="array"),
        pytest.param(np.float64("nan"), r"NaN, not a finite number \(numpy\.float64\)", id="numpy-nan"),
        pytest.param(pd.Series([float("nan")]), r"NaN.*one value of a pandas\.Series", id="nan-in-series"),
        pytest.param(np.float64("inf"), r"Infinity, not a finite number \(numpy\.float64\)", id="numpy-inf"),
        pytest.param(np.bool_(True), r"a boolean \(numpy\.bool\)", id="numpy-bool"),
        pytest.param(None, r"credit_amount is None", id="none"),
        pytest.param(pd.NA, r"pandas\.NAType", id="pandas-na"),
        pytest.param(np.datetime64("2026-01-01"), r"numpy\.datetime64", id="datetime64"),
    ],
)
def test_readout_escalates_what_is_not_one_number(tmp_path: Path, value: object, match: str) -> None:
    with pytest.raises(InvalidAmount, match=match):
        _read(value, tmp_path)


# ── first_error: the failing cell as the notebook's author numbers it ───────────────────────────
def test_first_error_counts_only_the_notebooks_own_cells() -> None:
    nb = nbformat.v4.new_notebook()
    added = nbformat.v4.new_markdown_cell("An Exception was encountered")
    added.metadata["tags"] = ["papermill-error-cell-tag"]
    injected = nbformat.v4.new_code_cell('looker = "SELECT 1"')
    injected.metadata["tags"] = ["injected-parameters"]
    failing = nbformat.v4.new_code_cell("marker.group(1)")
    failing.outputs.append(
        nbformat.v4.new_output(
            "error",
            ename="AttributeError",
            evalue="'NoneType' object has no attribute 'group'\nmore",
            traceback=[],
        )
    )
    nb.cells = [
        added,
        nbformat.v4.new_markdown_cell("## Set Parameters"),
        nbformat.v4.new_code_cell(""),
        injected,
    ]
    nb.cells += [nbformat.v4.new_code_cell("import re"), failing]
    assert first_error(nb) == "cell 4: AttributeError: 'NoneType' object has no attribute 'group'"


# ── instrumented_copy ──────────────────────────────────────────────────────────────────────────
def _write_v44(path: Path, source: str) -> Path:
    """A notebook in nbformat 4.4, which has no cell ids."""
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}
    path.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 4}))
    return path


@pytest.mark.parametrize(
    "writer",
    [
        pytest.param(_write, id="nbformat-4.5"),
        pytest.param(_write_v44, id="nbformat-4.4"),
    ],
)
def test_instrumented_copy(tmp_path: Path, writer: Callable[[Path, str], Path]) -> None:
    source = writer(tmp_path / "credit.ipynb", "credit_amount = 1")
    first = instrumented_copy(str(source), tmp_path / "inst")
    # Content-addressed: the same notebook gives the same file, so reruns reuse it.
    assert instrumented_copy(str(source), tmp_path / "inst") == first
    assert [p.name for p in (tmp_path / "inst").iterdir()] == [first.name]
    assert first.name.startswith("credit.")
    again = instrumented_copy(str(first), tmp_path / "inst")  # re-instrumenting replaces the cell
    assert again.read_text() == first.read_text()
    nb = nbformat.read(first, as_version=4)
    nbformat.validate(nb)
    assert [c.metadata.get("tags", []) for c in nb.cells] == [[], [READOUT_TAG]]
    assert nb.cells[0].source == "credit_amount = 1"
    assert len(nbformat.read(source, as_version=4).cells) == 1  # the source is untouched


@pytest.mark.parametrize(
    ("sources", "tagged_index"),
    [
        pytest.param(('# Parameters\n\nlooker = ""', "x = looker"), 0, id="untagged-declaration"),
        pytest.param(
            ("import re", "looker: str = ''  # the SQL", "x = looker"), 1, id="annotated-later-cell"
        ),
    ],
)
def test_instrumented_copy_tags_the_declaring_cell(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, sources: tuple[str, ...], tagged_index: int
) -> None:
    source = _write(tmp_path / "team.ipynb", *sources)
    with caplog.at_level("INFO", logger="credit_bot.notebooks"):
        copy = instrumented_copy(str(source), tmp_path / "inst", ("looker",))
    tags = [c.metadata.get("tags", []) for c in nbformat.read(copy, as_version=4).cells]
    assert tags[tagged_index] == ["parameters"]
    assert sum("parameters" in t for t in tags) == 1
    assert f"cell {tagged_index + 1} declares looker, so CreditBot tagged it" in caplog.text
    assert nbformat.read(source, as_version=4).cells[tagged_index].metadata.get("tags") is None


def test_instrumented_copy_without_a_declaring_cell(tmp_path: Path) -> None:
    source = _write(tmp_path / "mixed.ipynb", 'looker = ""\nimport re', "credit_amount = 1")
    with pytest.raises(ParametersCellMissing, match=r"mixed\.ipynb has no cell tagged 'parameters'"):
        instrumented_copy(str(source), tmp_path / "inst", ("looker",))


@pytest.mark.integration
def test_team_shaped_notebook_runs_with_the_sql(tmp_path: Path) -> None:
    """Untagged parameters cell, pandas, a DataFrame and a plot, credit_amount = df['credit'].sum()."""
    team = Path(__file__).parent / "data" / "team_verify_credit.ipynb"
    output = tmp_path / "out.ipynb"
    papermill.execute_notebook(
        str(instrumented_copy(str(team), tmp_path / "inst", ("looker",))),
        str(output),
        parameters={"looker": "SELECT 1 -- Authy CREDITS=1234.5678,179.7312,0.1"},
        kernel_name="python3",
        progress_bar=False,
        engine_name=register_engine(),
    )
    assert read_result(str(output)).credit == Decimal("1414.399")  # a numpy.float64, unrounded
    outputs = [o for c in nbformat.read(output, as_version=4).cells for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the inline plot
    assert any("text/html" in o.get("data", {}) for o in outputs)  # the DataFrame


# ── validate_credit ────────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize(
    ("credit", "fraud_spend", "expected"),
    [
        pytest.param("4948.8", None, "4948.80", id="no-fraud-spend"),
        pytest.param("4948.8", "5000", "4948.80", id="below-fraud-spend"),
        pytest.param("0.005", None, "0.01", id="half-up"),
        pytest.param("2.675", None, "2.68", id="half-up-2.675"),
        pytest.param("100.004", "100", "100.00", id="equal-after-rounding"),
        pytest.param("99.995", "99.999", "100.00", id="both-rounded"),
    ],
)
def test_validate_credit(credit: str, fraud_spend: str | None, expected: str) -> None:
    result = NotebookResult(Decimal(credit), Decimal(fraud_spend) if fraud_spend else None, None)
    cents = validate_credit(result)
    assert str(cents) == expected


@pytest.mark.parametrize(
    ("credit", "fraud_spend", "match"),
    [
        pytest.param("-0.01", None, "negative", id="negative"),
        pytest.param("-0.001", None, "negative", id="tiny-negative"),
        pytest.param("0", "0", r"a credit of \$0.00 is never posted", id="zero"),
        pytest.param("5000.01", "5000", "larger than the fraud spend", id="above-fraud-spend"),
        pytest.param("100.005", "100", "larger than the fraud spend", id="above-after-rounding"),
    ],
)
def test_validate_credit_rejects(credit: str, fraud_spend: str | None, match: str) -> None:
    result = NotebookResult(Decimal(credit), Decimal(fraud_spend) if fraud_spend else None, None)
    with pytest.raises(InvalidAmount, match=match):
        validate_credit(result)


# ── output_path ────────────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize(
    ("output_dir", "run_id", "expected"),
    [
        pytest.param(
            "/fake/out",
            "scheduled__2025-11-24T16:00:00+00:00",
            "/fake/out/scheduled__2025-11-24T16_00_00_00_00/C0123ABCD-1764000000.000100-0.ipynb",
            id="scheduled",
        ),
        pytest.param(
            "/fake/out/",
            "manual__../../etc/passwd",
            "/fake/out/manual__.._.._etc_passwd/C0123ABCD-1764000000.000100-0.ipynb",
            id="no-path-traversal",
        ),
        pytest.param(
            "s3://bucket/out",
            "run id with spaces",
            "s3://bucket/out/run_id_with_spaces/C0123ABCD-1764000000.000100-0.ipynb",
            id="remote-and-spaces",
        ),
    ],
)
def test_output_path(output_dir: str, run_id: str, expected: str) -> None:
    path = output_path(output_dir, run_id, "C0123ABCD", "1764000000.000100", 0)
    assert path == expected
    assert path.count("/") == expected.count("/")  # the run id never adds a directory level


# ── the team's concatenated credit_amount ──────────────────────────────────────────────────────
def _team_credit(credits: list[float]) -> object:
    """What the team's notebook leaves in credit_amount: the credit column formatted, then summed."""
    import pandas as pd

    return pd.Series(credits).map(lambda x: f"${x:,.2f}").sum()


@pytest.mark.parametrize(
    ("credits", "total", "shown"),
    [
        pytest.param(
            [4948.8, float("nan"), float("nan")],
            "4948.80",
            "basic $4,948.80 + standard nan + max nan",
            id="team-saved-output",
        ),
        pytest.param(
            [2.675, 10.004, 0.1],
            "12.77",  # each part in cents as displayed: 2.67 (binary 2.67499…) + 10.00 + 0.10
            "basic $2.67 + standard $10.00 + max $0.10",
            id="parts-rounded-as-displayed",
        ),
        pytest.param(
            [-1180.974, 5000.0, 0.5],
            "3819.53",
            "basic -$1,180.97 + standard $5,000.00 + max $0.50",
            id="negative-mode-kept",
        ),
        pytest.param([12345678.9, float("nan"), 1.0], "12345679.90", None, id="millions"),
    ],
)
def test_reads_the_team_concatenation_as_the_sum_of_its_parts(
    credits: list[float], total: str, shown: str | None, tmp_path: Path
) -> None:
    value = _team_credit(credits)
    assert isinstance(value, str)  # pandas concatenates the formatted strings
    path = _executed(tmp_path / "out.ipynb", {"has_credit_amount": True, "credit_amount": _encode(value)})
    result = read_result(path)
    assert str(result.credit) == total
    assert result.parts is not None
    if shown:
        assert result.parts.describe() == shown
        assert result.describe() == f"{format_usd(Decimal(total))} ({shown})"
    assert validate_credit(result) == Decimal(total)


@pytest.mark.parametrize(
    ("credits", "match"),
    [
        pytest.param([float("nan")] * 3, "nan in every part", id="all-nan-no-basis"),
        pytest.param([0.0, 0.0, 0.0], r"a credit of \$0.00 is never posted", id="empty-mrr-zero"),
        pytest.param([float("inf"), 1.0, 2.0], "infinite part", id="infinite"),
        pytest.param([float("-inf"), 1.0, 2.0], "infinite part", id="minus-infinite"),
        pytest.param([-10.0, 5.0, float("nan")], "negative", id="negative-total"),
    ],
)
def test_team_concatenation_without_basis_is_refused(
    credits: list[float], match: str, tmp_path: Path
) -> None:
    path = _executed(
        tmp_path / "out.ipynb", {"has_credit_amount": True, "credit_amount": _encode(_team_credit(credits))}
    )
    with pytest.raises(InvalidAmount, match=match):
        validate_credit(read_result(path))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("$4,948.80 $nan", id="space-between"),
        pytest.param("$4948.80$nan", id="no-thousands-separator"),
        pytest.param("$4,948.8$nan", id="one-decimal"),
        pytest.param("4,948.80$nan", id="first-without-dollar"),
        pytest.param("$4,948.80$NaN", id="other-nan-spelling"),
        pytest.param("$4,948.80, $1.00", id="comma-list"),
    ],
)
def test_other_text_is_not_read_as_parts(text: str, tmp_path: Path) -> None:
    path = _executed(tmp_path / "out.ipynb", {"has_credit_amount": True, "credit_amount": _encode(text)})
    with pytest.raises(InvalidAmount, match="not an unambiguous dollar amount"):
        read_result(path)
