"""Tests for credit_bot.notebooks.readout: the read-out cell's kernel code, as Python and as the cell's text.

Its behaviour on real numpy and pandas values, read back by the bot, is in test_notebooks; a real
kernel runs the cell in test_notebooks' ``integration`` tests.
"""

from __future__ import annotations

import ast
import inspect
import sys
import types
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from credit_bot.notebooks import readout


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            np.float64(179.73000000000002), {"type": "float", "value": "179.73000000000002"}, id="f64"
        ),
        pytest.param(np.int64(155), {"type": "int", "value": "155"}, id="i64"),
        pytest.param(Decimal("0.005"), {"type": "decimal", "value": "0.005"}, id="decimal"),
        pytest.param("$4,948.80$nan$nan", {"type": "str", "value": "$4,948.80$nan$nan"}, id="team-text"),
        pytest.param(pd.Series([4948.8]), {"type": "float", "value": "4948.8"}, id="one-element-series"),
        pytest.param(pd.DataFrame({"c": [1]}), {"value": None}, id="dataframe-named-not-read"),
        pytest.param(True, {"value": None, "detail": "a boolean (bool)"}, id="bool"),
    ],
)
def test_encode(value: object, expected: dict[str, object]) -> None:
    encoded = readout.encode(value)
    assert {key: encoded.get(key) for key in expected} == expected


def test_result_never_raises_on_a_value_it_cannot_read() -> None:
    class Hostile:
        def __len__(self) -> int:
            raise RuntimeError("no")

    class HostileList(list[int]):
        def __len__(self) -> int:
            raise RuntimeError("no")

    result = readout.result_of({"credit_amount": HostileList(), "fraud_spend": 10})
    assert result["has_credit_amount"] is True
    assert result["credit_amount"] == {
        "type": "HostileList",
        "value": None,
        "detail": "unreadable: RuntimeError",
    }
    assert result["fraud_spend"]["value"] == "10"
    assert readout.result_of({"x": Hostile()}) == {"has_credit_amount": False}


def test_the_cell_is_the_modules_source() -> None:
    source = readout.cell_source()
    for function in readout.KERNEL_FUNCTIONS:
        assert inspect.getsource(function) in source
    tree = ast.parse(source)
    defined = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert defined == [f.__name__ for f in readout.KERNEL_FUNCTIONS]
    # Nothing of CreditBot's is imported in the kernel: only the standard library and IPython.
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert imported == {"__future__", "decimal", "sys", "IPython"}


def test_the_cell_run_as_text_displays_what_the_module_computes(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[tuple[Any, dict[str, Any]]] = []
    display = types.ModuleType("IPython.display")
    display.display = lambda obj, **kwargs: shown.append((obj, kwargs))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    scope: dict[str, Any] = {"credit_amount": np.float64(4948.8), "fraud_spend": 5000}
    exec(readout.cell_source(), scope)  # noqa: S102 - the cell's text, as the kernel runs it
    assert shown == [({readout.RESULT_MIME: readout.result_of(scope)}, {"raw": True})]
    assert not [name for name in scope if name.startswith("_credit_bot_")]  # removed after the call
