"""Running a product's notebook and reading its result.

:class:`CreditNotebookOperator` runs the provider's ``PapermillOperator`` (papermill injects the
``looker`` parameter as usual) with three additions the notebook contract needs:

* a read-out cell is appended to a copy of the notebook, so ``credit_amount`` is read from the
  kernel as structured output — it works with notebooks that only assign the variable, and no
  printed text is ever scraped;
* the warehouse connection reaches the kernel as Airflow's ``AIRFLOW_CONN_…`` environment
  variable (never as a notebook parameter, so it is not written into the executed notebook);
* the executed notebook is checked for the connection's secrets, which are scrubbed if a cell
  printed them, and the task then fails loudly;
* the kernel gets :data:`KERNEL_SHUTDOWN_WAIT_S` to exit once the notebook has run, not 5 s.
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

from credit_bot.money import InvalidAmount, to_cents, to_decimal
from credit_bot.ui.links import ExecutedNotebookLink

if TYPE_CHECKING:
    from airflow.sdk import Context

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

# Runs in the kernel after the notebook's own cells. It only looks at variables; it never raises,
# so a notebook without credit_amount still finishes and the bot can say what is missing.
READOUT_SOURCE = f'''\
# Added by CreditBot: hands the contract variables to the bot as structured output.
def _credit_bot_readout():
    import decimal
    from IPython.display import display

    def encode(value):
        if hasattr(value, "item") and hasattr(value, "dtype"):
            value = value.item()
        if isinstance(value, bool) or value is None:
            return {{"type": type(value).__name__, "value": None}}
        if isinstance(value, decimal.Decimal):
            return {{"type": "decimal", "value": str(value)}}
        if isinstance(value, int):
            return {{"type": "int", "value": str(value)}}
        if isinstance(value, float):
            return {{"type": "float", "value": repr(value)}}
        if isinstance(value, str):
            return {{"type": "str", "value": value[:100]}}
        return {{"type": type(value).__name__, "value": None}}

    scope = globals()
    result = {{"has_credit_amount": "credit_amount" in scope}}
    if "credit_amount" in scope:
        result["credit_amount"] = encode(scope["credit_amount"])
    if "fraud_spend" in scope:
        result["fraud_spend"] = encode(scope["fraud_spend"])
    display({{"{RESULT_MIME}": result}}, raw=True)


_credit_bot_readout()
del _credit_bot_readout
'''


class NotebookResultError(Exception):
    """The executed notebook has no usable ``credit_amount``."""


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
def prompt_kernel_shutdown(wait_s: float = KERNEL_SHUTDOWN_WAIT_S) -> Iterator[None]:
    """Kernels started in this block get ``wait_s`` to shut down (papermill takes no such option)."""
    from jupyter_client.manager import KernelManager

    trait = KernelManager.shutdown_wait_time  # the class's trait: its default, not an instance value
    saved = trait.default_value
    trait.default_value = wait_s
    try:
        yield
    finally:
        trait.default_value = saved


@contextmanager
def _redacted(logger: logging.Logger, secrets: list[str]) -> Iterator[None]:
    redact = _Redact(secrets)
    logger.addFilter(redact)
    try:
        yield
    finally:
        logger.removeFilter(redact)


class NotebookRejected(NotebookResultError):
    """The executed notebook must not be used (e.g. it leaked a secret); retrying will not help."""


@dataclass(frozen=True)
class NotebookResult:
    credit: Decimal
    fraud_spend: Decimal | None
    context: dict[str, Any] | None


def instrumented_copy(input_nb: str, directory: Path) -> Path:
    """A copy of ``input_nb`` with the read-out cell appended, content-addressed so reruns reuse it."""
    import nbformat

    nb = nbformat.read(input_nb, as_version=4)
    nb.cells = [c for c in nb.cells if READOUT_TAG not in c.get("metadata", {}).get("tags", [])]
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
        raise NotebookResultError(
            f"the executed notebook {output_nb} does not exist (the notebook did not run)"
        ) from None
    rejected = nb.metadata.get("credit_bot", {}).get("rejected")
    if rejected:
        raise NotebookRejected(rejected)
    result: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    error: str | None = None
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RESULT_MIME in data:
                result = data[RESULT_MIME]
            if CONTEXT_MIME in data:
                context = data[CONTEXT_MIME]
            if output.get("output_type") == "error" and error is None:
                error = f"{output.get('ename')}: {str(output.get('evalue'))[:300]}"
    if error:
        raise NotebookResultError(f"the notebook raised {error}")
    if result is None:
        raise NotebookResultError("the notebook did not reach CreditBot's read-out cell")
    if not result.get("has_credit_amount"):
        raise NotebookResultError("the notebook did not set credit_amount")
    credit = _decode(result["credit_amount"], "credit_amount")
    fraud_spend = _decode(result["fraud_spend"], "fraud_spend") if "fraud_spend" in result else None
    return NotebookResult(credit=credit, fraud_spend=fraud_spend, context=context)


def _decode(encoded: dict[str, Any], name: str) -> Decimal:
    if encoded.get("value") is None:
        raise InvalidAmount(f"{name} is {encoded.get('type')}, not a number")
    value = encoded["value"]
    if encoded["type"] == "float":
        value = float(value)
    try:
        return to_decimal(value)
    except InvalidAmount as exc:
        raise InvalidAmount(str(exc).replace("credit_amount", name)) from None


def validate_credit(result: NotebookResult) -> Decimal:
    """The credit rounded to cents, or :class:`InvalidAmount` saying why it must not be posted."""
    credit = result.credit
    if credit < 0:
        raise InvalidAmount(f"credit_amount is negative ({credit})")
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

    It wraps the provider's operator instead of subclassing it because importing that module
    imports papermill and its cloud back-ends (seconds), which would make every parse of the DAG
    file slow; here papermill is imported only when a notebook actually runs.
    """

    template_fields = ("input_nb", "output_nb", "parameters", "kernel_name", "warehouse_conn_id")
    # "Executed notebook" on the task instance: the CreditBot view of what this try wrote.
    operator_extra_links = (ExecutedNotebookLink(),)

    def __init__(
        self,
        *,
        warehouse_conn_id: str | None = None,
        request_label: str = "",
        timeout_seconds: int | None = None,
        input_nb: str,
        output_nb: str,
        parameters: dict[str, Any] | None = None,
        kernel_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if timeout_seconds:
            kwargs["execution_timeout"] = timedelta(seconds=timeout_seconds)
        super().__init__(**kwargs)
        self.input_nb = input_nb
        self.output_nb = output_nb
        self.parameters = parameters or {}
        self.kernel_name = kernel_name
        self.warehouse_conn_id = warehouse_conn_id
        self.request_label = request_label

    def execute(self, context: Context) -> str:
        from airflow.providers.papermill.operators.papermill import PapermillOperator
        from airflow.sdk.bases.operator import ExecutorSafeguard

        if not Path(self.input_nb).exists() and "://" not in self.input_nb:
            raise FileNotFoundError(
                f"notebook {self.input_nb} does not exist: check the product rules in settings"
            )
        Path(self.output_nb).parent.mkdir(parents=True, exist_ok=True)
        papermill = PapermillOperator(
            task_id=self.task_id,
            input_nb=str(
                instrumented_copy(self.input_nb, Path(self.output_nb).parent.parent / ".instrumented")
            ),
            output_nb=self.output_nb,
            parameters=self.parameters,
            kernel_name=self.kernel_name,
            log_output=True,
        )
        secrets: list[str] = []
        with (
            self._kernel_environment(secrets),
            _redacted(logging.getLogger("papermill"), secrets),
            prompt_kernel_shutdown(),
        ):
            try:
                # The sentinel tells Airflow's ExecutorSafeguard this nested execute() is deliberate.
                papermill.execute(context, PapermillOperator__sentinel=ExecutorSafeguard.sentinel_value)
            finally:
                self._scrub(secrets)
        result = read_result(self.output_nb)
        self.log.info("credit_amount read from %s: %s", self.output_nb, result.credit)
        return self.output_nb

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

    def _scrub(self, secrets: list[str]) -> None:
        path = Path(self.output_nb)
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
            raise RuntimeError(reason)
