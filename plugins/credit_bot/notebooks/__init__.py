"""Running a product's notebook and reading its result.

:class:`CreditNotebookOperator` runs the provider's ``PapermillOperator`` (papermill injects the
``looker`` parameter as usual) with these additions the notebook contract needs:

* a notebook whose parameters cell is not tagged ``parameters`` (the team's is not) gets that cell
  tagged in the copy it runs, so papermill injects the SQL right after it, not at the top;
* a read-out cell is appended to a copy of the notebook, so ``credit_amount`` is read from the
  kernel as structured output — it works with notebooks that only assign the variable, and no
  printed text is ever scraped;
* the warehouse connection reaches the kernel as Airflow's ``AIRFLOW_CONN_…`` environment
  variable (never as a notebook parameter, so it is not written into the executed notebook);
* the executed notebook is checked for the connection's secrets, which are scrubbed if a cell
  printed them, and the task then fails loudly;
* the kernel talks over IPC, not TCP, and gets :data:`KERNEL_SHUTDOWN_WAIT_S` to exit once the
  notebook has run, not 5 s.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseOperator

from credit_bot.errors import RejectedRequest
from credit_bot.money import FormattedParts, InvalidAmount, format_usd, read_parts, to_cents, to_decimal
from credit_bot.notebooks.errors import (
    CreditAmountMissing,
    NotebookDidNotFinish,
    NotebookRejected,
    NotebookResultError,
    ParametersCellMissing,
    WarehouseRefused,
)
from credit_bot.notebooks.failures import Explanation, explain
from credit_bot.ui.links import ExecutedNotebookLink

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
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

log = logging.getLogger(__name__)

RESULT_MIME = "application/vnd.credit-bot.result+json"
CONTEXT_MIME = "application/vnd.credit-bot.context+json"
READOUT_TAG = "credit-bot-readout"
PLUGINS_DIR = Path(__file__).resolve().parents[1]
# jupyter_client asks a finished kernel to shut down, waits half of KernelManager.shutdown_wait_time
# (5 s by default) for it to exit, then sends SIGTERM. ipykernel 7.4 now and then hangs in its own
# shutdown (its control thread waits for a flush from the IOPub thread that has already stopped;
# py-spy showed it), so about one notebook in ten or thirty took 3 s longer, in tasks and in plain
# papermill alike. It exits within 0.2 s when it does not hang; the notebook has run and its
# outputs are received by then, so 0.5 s before SIGTERM loses nothing.
KERNEL_SHUTDOWN_WAIT_S = 1.0

# Runs in the kernel (pasted into the read-out cell): one value as exact text, or why it is not
# one number. numpy floats go through the Python float's repr (the shortest text that reads back
# as the same float), integers through int(); 0-d arrays and one-element Series are unwrapped;
# anything else (DataFrame, list, a longer Series, bool, None) is named, never guessed at.
ENCODER_SOURCE = """\
def _credit_bot_encode(value):
    import decimal
    import sys

    np, pd = sys.modules.get("numpy"), sys.modules.get("pandas")

    def type_name(v):
        module = type(v).__module__.split(".")[0]
        return type(v).__name__ if module == "builtins" else module + "." + type(v).__name__

    source = type_name(value)

    def invalid(description):
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
"""

# Runs in the kernel after the notebook's own cells. It only looks at variables; it never raises,
# so a notebook without credit_amount still finishes and the bot can say what is missing.
READOUT_SOURCE = (
    "# Added by CreditBot: hands the contract variables to the bot as structured output.\n"
    + ENCODER_SOURCE
    + f"""

def _credit_bot_readout():
    from IPython.display import display

    def encode(value):
        try:
            return _credit_bot_encode(value)
        except Exception as exc:  # never fail here: the bot escalates what it cannot read
            detail = "unreadable: " + type(exc).__name__
            return {{"type": type(value).__name__, "value": None, "detail": detail}}

    scope = globals()
    result = {{"has_credit_amount": "credit_amount" in scope}}
    if "credit_amount" in scope:
        result["credit_amount"] = encode(scope["credit_amount"])
    if "fraud_spend" in scope:
        result["fraud_spend"] = encode(scope["fraud_spend"])
    display({{"{RESULT_MIME}": result}}, raw=True)


_credit_bot_readout()
del _credit_bot_readout, _credit_bot_encode
"""
)


class _Redact(logging.Filter):
    """Replaces secrets in log records: papermill streams every cell's output into the task log."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, ()
        return True


@contextmanager
def kernel_launch_defaults(wait_s: float = KERNEL_SHUTDOWN_WAIT_S) -> Iterator[None]:
    """Kernels started in this block talk over IPC, each in a socket folder of its own, and get
    ``wait_s`` to exit.

    IPC (Unix sockets, owner-only) instead of TCP on loopback: no port another local user could
    connect to, and none of ipykernel's "running over TCP without encryption" warning in every task
    log. Each kernel's connection file, after which its sockets are named, goes in a fresh private
    folder: without one jupyter_client names them ``kernel-ipc-1``…``-5`` in the working directory,
    the same names for every kernel, so two notebooks running at once (two worker slots) read each
    other's messages ("Invalid Signature") and failed. papermill takes none of these options, so the
    kernel manager's trait defaults are set for the block, and nbclient is handed a subclass that
    names the connection file; both are restored after.
    """
    import secrets
    import shutil
    import tempfile

    import jupyter_client
    from jupyter_client.manager import KernelManager
    from traitlets import default

    folder = tempfile.mkdtemp(prefix="credit-bot-kernel-")  # mode 0700
    real = jupyter_client.AsyncKernelManager

    class PrivateSocketsKernelManager(real):  # type: ignore[misc, valid-type]
        """Names each kernel's connection file, and so its sockets, uniquely in ``folder``."""

        @default("connection_file")
        def _private_connection_file(self) -> str:
            return os.path.join(folder, f"kernel-{secrets.token_hex(6)}.json")

    traits = {KernelManager.shutdown_wait_time: wait_s, KernelManager.transport: "ipc"}
    saved = {trait: trait.default_value for trait in traits}
    for trait, value in traits.items():
        trait.default_value = value
    # nbclient (papermill's engine) looks the class up here each time it starts a kernel.
    jupyter_client.AsyncKernelManager = PrivateSocketsKernelManager
    try:
        yield
    finally:
        jupyter_client.AsyncKernelManager = real
        for trait, value in saved.items():
            trait.default_value = value
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _redacted(logger: logging.Logger, secrets: list[str]) -> Iterator[None]:
    redact = _Redact(secrets)
    logger.addFilter(redact)
    try:
        yield
    finally:
        logger.removeFilter(redact)


@dataclass(frozen=True)
class NotebookResult:
    credit: Decimal
    fraud_spend: Decimal | None
    context: dict[str, Any] | None
    # The parts of a concatenated ``'$4,948.80$nan$nan'`` credit (the team's notebook), else None.
    parts: FormattedParts | None = None

    def describe(self) -> str:
        """``$4,948.80 (basic $4,948.80 + standard nan + max nan)``, or just the amount."""
        amount = format_usd(self.credit)
        return f"{amount} ({self.parts.describe()})" if self.parts else amount


def instrumented_copy(input_nb: str, directory: Path, parameter_names: tuple[str, ...] = ()) -> Path:
    """A copy of ``input_nb`` with the read-out cell appended, content-addressed so reruns reuse it.

    Without a cell tagged ``parameters``, papermill would inject the parameters at the very top and
    the notebook's own ``looker = ""`` would overwrite them; so the cell that declares them (see
    :func:`credit_bot.notebook_check.parameters_cell`) is tagged in the copy, or
    :class:`ParametersCellMissing` says what to change. ``parameter_names`` are the names the bot
    passes (none: nothing is injected, nothing to find).
    """
    import nbformat

    from credit_bot.notebook_check import parameters_cell

    nb = nbformat.read(input_nb, as_version=4)
    nb.cells = [c for c in nb.cells if READOUT_TAG not in c.get("metadata", {}).get("tags", [])]
    found = parameters_cell(nb, parameter_names) if parameter_names else (-1, True)
    if found is None:
        raise ParametersCellMissing(
            f"notebook {input_nb} has no cell tagged 'parameters' and no cell that only declares "
            f'{", ".join(parameter_names)}: put `{parameter_names[0]} = ""` alone in a code cell and tag it '
            "'parameters' (details: make check-notebook)"
        )
    index, tagged = found
    if not tagged:
        cell = nb.cells[index]
        cell.setdefault("metadata", {}).setdefault("tags", []).append("parameters")
        log.info(
            "%s has no cell tagged 'parameters'; cell %d declares %s, so CreditBot tagged it in its copy: "
            "papermill injects the parameters right after it",
            input_nb,
            index + 1,
            ", ".join(parameter_names),
        )
    cell = nbformat.v4.new_code_cell(READOUT_SOURCE)
    cell.metadata["tags"] = [READOUT_TAG]
    # new_code_cell makes a random id, which would change the digest on every call; notebooks
    # older than nbformat 4.5 have no cell ids at all.
    if nb.get("nbformat_minor", 0) >= 5:
        cell["id"] = READOUT_TAG
    else:
        cell.pop("id", None)
    nb.cells.append(cell)
    text = nbformat.writes(nb)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = directory / f"{Path(input_nb).stem}.{digest}.ipynb"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text)
        tmp.replace(path)
    return path


def read_result(output_nb: str) -> NotebookResult:
    """``credit_amount`` (and ``fraud_spend`` when the notebook has it) from an executed notebook."""
    import nbformat

    try:
        nb = nbformat.read(output_nb, as_version=4)
    except FileNotFoundError:
        raise NotebookDidNotFinish(
            f"the executed notebook {output_nb} does not exist (the notebook did not run)"
        ) from None
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


# Cells papermill and CreditBot add to the notebook; cell numbers count the notebook's own cells only.
_ADDED_CELL_TAGS = {"injected-parameters", "papermill-error-cell-tag"}


def first_error(nb: Any) -> str | None:
    """``cell 7: AttributeError: 'NoneType' object …`` for the first cell that raised, numbered as
    in the notebook as written (1 = its first cell; cells papermill added are not counted); a
    warehouse failure in words (``cell 17: the warehouse ran out of resources running the query
    `true_cost` …``, see :mod:`credit_bot.notebook_errors`)."""
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


def output_path(output_dir: str, run_id: str, channel: str, ts: str, index: int) -> str:
    """Where the executed notebook for one link of one request is kept."""
    safe_run = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    return f"{output_dir.rstrip('/')}/{safe_run}/{channel}-{ts}-{index}.ipynb"


class CreditNotebookOperator(BaseOperator):
    """Runs ``PapermillOperator`` under CreditBot's notebook contract (see the module docstring).

    One task instance per request: ``jobs`` are that request's notebook runs (one per Verify
    query, ``{"input_nb", "output_nb", "parameters"}``), run one after another; none (a request
    that did not resolve to a notebook) skips the task. ``timeout_seconds`` is per notebook.

    It wraps the provider's operator instead of subclassing it because importing that module
    imports papermill and its cloud back-ends (seconds), which would make every parse of the DAG
    file slow; here papermill is imported only when a notebook actually runs.
    """

    template_fields = ("jobs", "kernel_name", "warehouse_conn_id")
    # "Executed notebook" on the task instance: the CreditBot view of what this try wrote.
    operator_extra_links = (ExecutedNotebookLink(),)

    def __init__(
        self,
        *,
        jobs: list[dict[str, Any]],
        warehouse_conn_id: str | None = None,
        request_label: str = "",
        timeout_seconds: int | None = None,
        kernel_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if timeout_seconds:
            kwargs["execution_timeout"] = timedelta(seconds=timeout_seconds * max(len(jobs), 1))
        super().__init__(**kwargs)
        self.jobs = jobs
        self.kernel_name = kernel_name
        self.warehouse_conn_id = warehouse_conn_id
        self.request_label = request_label

    def execute(self, context: Context) -> list[str]:
        from airflow.sdk.exceptions import AirflowSkipException

        if not self.jobs:
            raise AirflowSkipException("no notebook to run: the request did not resolve to a notebook")
        return [self._run(context, **job) for job in self.jobs]

    def _run(self, context: Context, *, input_nb: str, output_nb: str, parameters: dict[str, Any]) -> str:
        from airflow.providers.papermill.operators.papermill import PapermillOperator
        from airflow.sdk.bases.operator import ExecutorSafeguard
        from airflow.sdk.exceptions import AirflowFailException
        from papermill.exceptions import PapermillExecutionError

        if not Path(input_nb).exists() and "://" not in input_nb:
            raise FileNotFoundError(
                f"notebook {input_nb} does not exist: check the product rules in settings"
            )
        Path(output_nb).parent.mkdir(parents=True, exist_ok=True)
        try:
            copy = instrumented_copy(
                input_nb, Path(output_nb).parent.parent / ".instrumented", tuple(parameters)
            )
        except ParametersCellMissing as exc:  # fetch_requests checks this first; the notebook changed since
            raise AirflowFailException(str(exc)) from exc
        papermill = PapermillOperator(
            task_id=self.task_id,
            input_nb=str(copy),
            output_nb=output_nb,
            parameters=parameters,
            kernel_name=self.kernel_name,
            log_output=True,
        )
        secrets: list[str] = []
        with (
            self._kernel_environment(secrets),
            _redacted(logging.getLogger("papermill"), secrets),
            kernel_launch_defaults(),
        ):
            try:
                # The sentinel tells Airflow's ExecutorSafeguard this nested execute() is deliberate.
                papermill.execute(context, PapermillOperator__sentinel=ExecutorSafeguard.sentinel_value)
            except PapermillExecutionError as exc:
                self._log_failing_cell(input_nb, output_nb)
                explanation = explain(exc.ename, exc.evalue, "")
                if issubclass(explanation.error, RejectedRequest):  # the same SQL fails again
                    raise AirflowFailException(f"the notebook failed: {explanation.text}") from exc
                raise
            finally:
                self._scrub(output_nb, secrets)
        try:
            result = read_result(output_nb)
            validate_credit(result)
        except (InvalidAmount, CreditAmountMissing) as exc:
            # The notebook ran: the same data gives the same value, so a retry would only spend
            # minutes of warehouse time on it. post_results escalates it to the operators.
            self.log.warning(
                "the notebook ran, but its credit will not be posted (escalated, not retried): %s", exc
            )
        else:
            self.log.info("credit_amount read from %s: %s", output_nb, result.describe())
        return output_nb

    def _log_failing_cell(self, input_nb: str, output_nb: str) -> None:
        import nbformat

        try:
            error = first_error(nbformat.read(output_nb, as_version=4))
        except (OSError, ValueError):  # papermill could not write it: its own error says why
            return
        if error:
            self.log.error("the notebook %s failed in %s", input_nb, error)

    @contextmanager
    def _kernel_environment(self, secrets: list[str]) -> Iterator[None]:
        """Environment the kernel inherits: plugins importable, the warehouse connection available."""
        added: dict[str, str] = {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PLUGINS_DIR), os.environ.get("PYTHONPATH")]))
        }
        if self.warehouse_conn_id:
            from airflow.sdk import BaseHook
            from airflow.sdk.exceptions import AirflowNotFoundException

            try:
                conn = BaseHook.get_connection(self.warehouse_conn_id)
            except AirflowNotFoundException as exc:  # the notebook may reach its warehouse another way
                self.log.warning(
                    "warehouse connection %r not available: %s", self.warehouse_conn_id, type(exc).__name__
                )
            else:
                added[f"AIRFLOW_CONN_{self.warehouse_conn_id.upper()}"] = conn.as_json()
                if conn.password:  # as typed, and as it appears inside a connection URI
                    from airflow.sdk.log import mask_secret

                    secrets.extend({conn.password, quote(conn.password, safe="")})
                    for secret in secrets:  # papermill streams cell output into the task log
                        mask_secret(secret)
        saved = {k: os.environ.get(k) for k in added}
        os.environ.update(added)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def _scrub(self, output_nb: str, secrets: list[str]) -> None:
        path = Path(output_nb)
        if not secrets or not path.exists():
            return
        text = path.read_text()
        leaked = [s for s in secrets if s in text]
        if leaked:
            for secret in leaked:
                text = text.replace(secret, "***")
            reason = (
                f"the notebook wrote the warehouse connection's secret into its output; it was scrubbed from "
                f"{path}. Fix the notebook so it never prints credentials."
            )
            nb = json.loads(text)
            # Its amount must not be used: post_results reads this mark and escalates.
            nb.setdefault("metadata", {})["credit_bot"] = {"rejected": reason}
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False))
            raise NotebookRejected(reason)
