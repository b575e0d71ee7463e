"""CreditBot's read-out cell: the kernel code that hands ``credit_amount`` to the bot as structured output.

The functions below run in two places. Here, as ordinary Python, where the tests call them on real
numpy and pandas values. And in the notebook's kernel: :func:`cell_source` is their source text
(``inspect.getsource``), which :func:`~credit_bot.notebooks.instrument.instrumented_copy` appends as
the last cell, so the kernel needs nothing but that text — no import of CreditBot, whatever kernel
the product uses.

That is why the cell starts with this module's own ``from __future__ import annotations`` (the
annotations are not evaluated there either), the functions import what they use inside their
bodies, read numpy and pandas only from ``sys.modules`` (a notebook that never imported them holds
no value of theirs), and carry the ``_credit_bot_`` prefix (they are defined in the notebook's
namespace for the cell's duration and deleted after). They never raise: a notebook without
``credit_amount`` still finishes, and the bot says what is missing.
"""

from __future__ import annotations

import inspect
from typing import Any

RESULT_MIME = "application/vnd.credit-bot.result+json"
CONTEXT_MIME = "application/vnd.credit-bot.context+json"
READOUT_TAG = "credit-bot-readout"
HEADER = "# Added by CreditBot: hands the contract variables to the bot as structured output.\n"


def _credit_bot_encode(value: Any) -> dict[str, Any]:
    """One value as exact text, or why it is not one number.

    numpy floats go through the Python float's repr (the shortest text that reads back as the same
    float), integers through int(); 0-d arrays and one-element Series are unwrapped; anything else
    (DataFrame, list, a longer Series, bool, None) is named, never guessed at.
    """
    import decimal
    import sys

    np, pd = sys.modules.get("numpy"), sys.modules.get("pandas")

    def type_name(v: Any) -> str:
        module = type(v).__module__.split(".")[0]
        return type(v).__name__ if module == "builtins" else module + "." + type(v).__name__

    source = type_name(value)

    def invalid(description: str) -> dict[str, Any]:
        return {"type": source, "value": None, "detail": description}

    if pd is not None and isinstance(value, pd.DataFrame):
        rows, columns = value.shape
        return invalid(f"a {source} ({rows} rows x {columns} columns)")
    if pd is not None and isinstance(value, pd.Series):
        if len(value) != 1:
            return invalid(f"a {source} of {len(value)} values")
        value = value.iloc[0]
        source = f"{type_name(value)} (the one value of a {source})"
    if np is not None and isinstance(value, np.ndarray):
        if value.ndim != 0:
            return invalid(f"a {source} of shape {value.shape}")
        value = value[()]
        source = f"{type_name(value)} (a 0-d array)"
    if isinstance(value, bool) or (np is not None and isinstance(value, np.bool_)):
        return invalid(f"a boolean ({source})")
    if np is not None and isinstance(value, np.integer):
        return {"type": "int", "value": str(int(value)), "source": source}
    if np is not None and isinstance(value, np.floating):
        return {"type": "float", "value": repr(float(value)), "source": source}
    if isinstance(value, decimal.Decimal):
        return {"type": "decimal", "value": str(value), "source": source}
    if isinstance(value, int):
        return {"type": "int", "value": str(value), "source": source}
    if isinstance(value, float):
        return {"type": "float", "value": repr(value), "source": source}
    if isinstance(value, str):
        return {"type": "str", "value": value[:100], "source": source}
    if isinstance(value, list | tuple | set | dict):
        return invalid(f"a {source} of {len(value)} values")
    if value is None:
        return invalid("None")
    return invalid(f"a {source}")


def _credit_bot_result(scope: dict[str, Any]) -> dict[str, Any]:
    """The contract variables of ``scope`` (the notebook's globals), encoded; never raises."""

    def encode(value: Any) -> dict[str, Any]:
        try:
            return _credit_bot_encode(value)
        except Exception as exc:  # never fail here: the bot escalates what it cannot read
            return {
                "type": type(value).__name__,
                "value": None,
                "detail": "unreadable: " + type(exc).__name__,
            }

    result: dict[str, Any] = {"has_credit_amount": "credit_amount" in scope}
    if "credit_amount" in scope:
        result["credit_amount"] = encode(scope["credit_amount"])
    if "fraud_spend" in scope:
        result["fraud_spend"] = encode(scope["fraud_spend"])
    return result


def _credit_bot_readout(scope: dict[str, Any], mime: str) -> None:
    """Displays the result as ``mime`` output, which the executed notebook keeps for the bot."""
    from IPython.display import display

    display({mime: _credit_bot_result(scope)}, raw=True)


# What the kernel is given: these functions, in this order, each defined before it is called.
KERNEL_FUNCTIONS = (_credit_bot_encode, _credit_bot_result, _credit_bot_readout)

encode = _credit_bot_encode
result_of = _credit_bot_result


def cell_source() -> str:
    """The read-out cell's code: the kernel functions' source, the call, and their removal."""
    functions = "\n\n".join(inspect.getsource(f) for f in KERNEL_FUNCTIONS)
    names = ", ".join(f.__name__ for f in KERNEL_FUNCTIONS)
    return (
        f"{HEADER}from __future__ import annotations\n\n\n{functions}\n\n"
        f"_credit_bot_readout(globals(), {RESULT_MIME!r})\ndel {names}\n"
    )
