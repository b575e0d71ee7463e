"""Reading an executed notebook: its ``credit_amount``, or the error that says why there is none.

The executed notebook is read where papermill wrote it, a local path or an object-storage URL
(:func:`credit_bot.notebook_store.read_text`). The read-out cell's structured output
(:mod:`credit_bot.notebooks.readout`) is decoded into exact ``Decimal`` values; a cell that failed
first is explained (:mod:`credit_bot.notebooks.failures`) and raised as the error class that says
what happens next (:mod:`credit_bot.notebooks.errors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from credit_bot.money import FormattedParts, InvalidAmount, format_usd, read_parts, to_cents, to_decimal
from credit_bot.notebooks.errors import CreditAmountMissing, NotebookDidNotFinish, NotebookRejected
from credit_bot.notebooks.failures import Explanation, explain
from credit_bot.notebooks.readout import CONTEXT_MIME, READOUT_TAG, RESULT_MIME

# Cells papermill and CreditBot add to the notebook; cell numbers count the notebook's own cells only.
_ADDED_CELL_TAGS = {"injected-parameters", "papermill-error-cell-tag"}


@dataclass(frozen=True)
class NotebookResult:
    """What an executed notebook gave: the credit (unrounded), the fraud spend, optional context."""

    credit: Decimal
    fraud_spend: Decimal | None
    context: dict[str, Any] | None
    # The parts of a concatenated ``'$4,948.80$nan$nan'`` credit (the team's notebook), else None.
    parts: FormattedParts | None = None

    def describe(self) -> str:
        """``$4,948.80 (basic $4,948.80 + standard nan + max nan)``, or just the amount."""
        amount = format_usd(self.credit)
        return f"{amount} ({self.parts.describe()})" if self.parts else amount


def read_notebook(output_nb: str) -> Any:
    """The executed notebook at ``output_nb`` (a path or URL) as an nbformat node.

    :class:`NotebookDidNotFinish` when it is not there: the notebook did not run.
    """
    import nbformat

    from credit_bot.notebook_store import read_text

    try:
        text = read_text(output_nb)
    except FileNotFoundError:
        raise NotebookDidNotFinish(
            f"the executed notebook {output_nb} does not exist (the notebook did not run)"
        ) from None
    return nbformat.reads(text, as_version=4)


def read_result(output_nb: str) -> NotebookResult:
    """``credit_amount`` (and ``fraud_spend`` when the notebook has it) from an executed notebook."""
    nb = read_notebook(output_nb)
    rejected = nb.metadata.get("credit_bot", {}).get("rejected")
    if rejected:
        raise NotebookRejected(rejected)
    result: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RESULT_MIME in data:
                result = data[RESULT_MIME]
            if CONTEXT_MIME in data:
                context = data[CONTEXT_MIME]
    failure = first_failure(nb)
    if failure:
        where, explanation = failure
        raise explanation.error(f"the notebook failed in {where}: {explanation.text}")
    if result is None:
        raise NotebookDidNotFinish("the notebook did not reach CreditBot's read-out cell")
    if not result.get("has_credit_amount"):
        raise CreditAmountMissing("the notebook did not set credit_amount")
    encoded = result["credit_amount"]
    parts = read_parts(encoded["value"]) if encoded.get("type") == "str" and encoded.get("value") else None
    credit = parts.total if parts else _decode(encoded, "credit_amount")
    fraud_spend = _decode(result["fraud_spend"], "fraud_spend") if "fraud_spend" in result else None
    shown = parts if parts and (len(parts.parts) > 1) else None
    return NotebookResult(credit=credit, fraud_spend=fraud_spend, context=context, parts=shown)


def first_error(nb: Any) -> str | None:
    """``cell 7: AttributeError: 'NoneType' object …`` for the first cell that raised, numbered as
    in the notebook as written (1 = its first cell; cells papermill added are not counted); a
    warehouse failure in words (``cell 17: the warehouse ran out of resources running the query
    `true_cost` …``, see :mod:`credit_bot.notebooks.failures`)."""
    failure = first_failure(nb)
    return f"{failure[0]}: {failure[1].text}" if failure else None


def first_failure(nb: Any) -> tuple[str, Explanation] | None:
    """Where the first failing cell is (``cell 7``) and what its error means."""
    number = 0
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & _ADDED_CELL_TAGS:
            continue
        number += 1
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                where = "CreditBot's read-out cell" if READOUT_TAG in tags else f"cell {number}"
                source = cell.get("source") or ""
                source = "".join(source) if isinstance(source, list) else source
                return where, explain(str(output.get("ename") or ""), str(output.get("evalue") or ""), source)
    return None


def _decode(encoded: dict[str, Any], name: str) -> Decimal:
    source = encoded.get("source") or encoded.get("type")
    if encoded.get("value") is None:
        what = encoded.get("detail") or encoded.get("type")
        raise InvalidAmount(f"{name} is {what}, not one number: the notebook must end with one dollar amount")
    value = encoded["value"]
    if encoded["type"] == "float":
        value = float(value)
    try:
        return to_decimal(value)
    except InvalidAmount as exc:
        raise InvalidAmount(f"{str(exc).replace('credit_amount', name)} ({source})") from None


def validate_credit(result: NotebookResult) -> Decimal:
    """The credit rounded to cents, or :class:`InvalidAmount` saying why it must not be posted."""
    credit = result.credit
    if credit < 0:
        raise InvalidAmount(f"credit_amount is negative ({result.describe()})")
    if credit == 0:
        # Nobody should read "Approved, $0.00" for a fraud incident without a person deciding it.
        raise InvalidAmount(
            f"credit_amount is {result.describe()}: a credit of $0.00 is never posted, a person decides it"
        )
    cents = to_cents(credit)
    if result.fraud_spend is not None and cents > to_cents(result.fraud_spend):
        raise InvalidAmount(
            f"credit_amount {cents} is larger than the fraud spend {to_cents(result.fraud_spend)}"
        )
    return cents
