"""Running a product's notebook and reading its result.

:class:`CreditNotebookOperator` runs the notebook with papermill, as the papermill provider's
operator does (papermill injects the ``looker`` parameter as usual), with what the notebook
contract needs:

* a notebook whose parameters cell is not tagged ``parameters`` (the team's is not) gets that cell
  tagged in the copy it runs, so papermill injects the SQL right after it, not at the top
  (:mod:`.instrument`);
* a read-out cell is appended to that copy, so ``credit_amount`` is read from the kernel as
  structured output — it works with notebooks that only assign the variable, and no printed text
  is ever scraped (:mod:`.readout`: kernel code kept as a Python module; :mod:`.results` reads it);
* the warehouse connection reaches the kernel as Airflow's ``AIRFLOW_CONN_…`` environment
  variable (never as a notebook parameter, so it is not written into the executed notebook);
* the executed notebook is checked for the connection's secrets, which are scrubbed if a cell
  printed them, and the task then fails loudly;
* papermill runs CreditBot's registered engine (:mod:`.engine`): each kernel talks over IPC in a
  private socket folder and gets :data:`~.engine.KERNEL_SHUTDOWN_WAIT_S` to exit once the notebook
  has run, not 5 s — nothing process-wide is patched;
* a failure is one of :mod:`.errors`' classes, which say whether to retry, escalate or fix the setup
  (:mod:`.failures` translates a failed cell's warehouse error).

The executed notebook goes to ``output_dir``, a local folder or object storage
(:mod:`credit_bot.notebook_store`). Importing this package stays cheap (the DAG file does):
papermill, nbformat and the kernel machinery are imported only when a notebook runs or is read.
"""

from __future__ import annotations

from credit_bot.notebook_store import output_path
from credit_bot.notebooks.errors import (
    CreditAmountMissing,
    NotebookDidNotFinish,
    NotebookRejected,
    NotebookResultError,
    ParametersCellMissing,
    WarehouseRefused,
)
from credit_bot.notebooks.instrument import instrumented_copy
from credit_bot.notebooks.operator import PLUGINS_DIR, CreditNotebookOperator
from credit_bot.notebooks.readout import CONTEXT_MIME, READOUT_TAG, RESULT_MIME
from credit_bot.notebooks.results import NotebookResult, first_error, read_result, validate_credit

__all__ = [
    "CONTEXT_MIME",
    "PLUGINS_DIR",
    "READOUT_TAG",
    "RESULT_MIME",
    "CreditAmountMissing",
    "CreditNotebookOperator",
    "NotebookDidNotFinish",
    "NotebookRejected",
    "NotebookResult",
    "NotebookResultError",
    "ParametersCellMissing",
    "WarehouseRefused",
    "first_error",
    "instrumented_copy",
    "output_path",
    "read_result",
    "validate_credit",
]
