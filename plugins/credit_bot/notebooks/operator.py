"""``CreditNotebookOperator``: one request's notebooks, run with papermill under CreditBot's contract.

papermill is called as the papermill provider's ``PapermillOperator`` calls it
(``execute_notebook(..., progress_bar=False, report_mode=True, log_output=True)``), with CreditBot's
engine (:mod:`credit_bot.notebooks.engine`) chosen by name. The provider's operator is not
subclassed: importing its module imports papermill and its cloud back-ends (seconds), which would
make every parse of the DAG file slow; here papermill is imported only when a notebook runs.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseOperator

from credit_bot.errors import RejectedRequest
from credit_bot.money import InvalidAmount
from credit_bot.notebooks.errors import CreditAmountMissing, NotebookRejected, ParametersCellMissing
from credit_bot.ui.links import ExecutedNotebookLink

if TYPE_CHECKING:
    from airflow.sdk import Context

PLUGINS_DIR = Path(__file__).resolve().parents[2]


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
def _redacted(logger: logging.Logger, secrets: list[str]) -> Iterator[None]:
    redact = _Redact(secrets)
    logger.addFilter(redact)
    try:
        yield
    finally:
        logger.removeFilter(redact)


class CreditNotebookOperator(BaseOperator):
    """Runs product notebooks with papermill under CreditBot's contract (see :mod:`credit_bot.notebooks`).

    One task instance per request: ``jobs`` are that request's notebook runs (one per Verify
    query, ``{"input_nb", "output_nb", "parameters"}``), run one after another; none (a request
    that did not resolve to a notebook) skips the task. ``timeout_seconds`` is per notebook.
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
        return [self._run(**job) for job in self.jobs]

    def _run(self, *, input_nb: str, output_nb: str, parameters: dict[str, Any]) -> str:
        """Run one notebook into ``output_nb`` and log the credit it gave (or why it gave none)."""
        from credit_bot.notebook_store import is_local, make_parent

        if "://" not in input_nb and not Path(input_nb).exists():
            raise FileNotFoundError(
                f"notebook {input_nb} does not exist: check the product rules in settings"
            )
        make_parent(output_nb)
        with ExitStack() as stack:
            if is_local(output_nb):
                directory = Path(output_nb).parent.parent / ".instrumented"
            else:  # never a local folder named after the URL ("s3:/bucket/…")
                directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="credit-bot-nb-")))
            copy = self._instrumented(input_nb, directory, tuple(parameters))
            self._papermill(str(copy), input_nb, output_nb, parameters)
        self._log_result(output_nb)
        return output_nb

    @staticmethod
    def _instrumented(input_nb: str, directory: Path, names: tuple[str, ...]) -> Path:
        from airflow.sdk.exceptions import AirflowFailException

        from credit_bot.notebooks.instrument import instrumented_copy

        try:
            return instrumented_copy(input_nb, directory, names)
        except ParametersCellMissing as exc:  # fetch_requests checks this first; the notebook changed since
            raise AirflowFailException(str(exc)) from exc

    def _papermill(self, copy: str, input_nb: str, output_nb: str, parameters: dict[str, Any]) -> None:
        """papermill as the provider's operator runs it, with CreditBot's engine; secrets kept out."""
        import papermill
        from airflow.sdk.exceptions import AirflowFailException
        from papermill.exceptions import PapermillExecutionError

        from credit_bot.notebooks.engine import register_engine
        from credit_bot.notebooks.failures import explain

        secrets: list[str] = []
        with self._kernel_environment(secrets), _redacted(logging.getLogger("papermill"), secrets):
            try:
                papermill.execute_notebook(
                    copy,
                    output_nb,
                    parameters=parameters,
                    progress_bar=False,
                    report_mode=True,
                    log_output=True,
                    kernel_name=self.kernel_name,
                    engine_name=register_engine(),
                )
            except PapermillExecutionError as exc:
                self._log_failing_cell(input_nb, output_nb)
                explanation = explain(exc.ename, exc.evalue, "")
                if issubclass(explanation.error, RejectedRequest):  # the same SQL fails again
                    raise AirflowFailException(f"the notebook failed: {explanation.text}") from exc
                raise
            finally:
                self._scrub(output_nb, secrets)

    def _log_result(self, output_nb: str) -> None:
        from credit_bot.notebooks.results import read_result, validate_credit

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

    def _log_failing_cell(self, input_nb: str, output_nb: str) -> None:
        from credit_bot.notebooks.errors import NotebookDidNotFinish
        from credit_bot.notebooks.results import first_error, read_notebook

        try:
            error = first_error(read_notebook(output_nb))
        except (
            NotebookDidNotFinish,
            OSError,
            ValueError,
        ):  # papermill could not write it: its error says why
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
            connection = self._warehouse_connection(secrets)
            if connection is not None:
                added[f"AIRFLOW_CONN_{self.warehouse_conn_id.upper()}"] = connection
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

    def _warehouse_connection(self, secrets: list[str]) -> str | None:
        """The warehouse connection as ``AIRFLOW_CONN_…`` JSON; its password added to ``secrets``."""
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        assert self.warehouse_conn_id
        try:
            conn = BaseHook.get_connection(self.warehouse_conn_id)
        except AirflowNotFoundException as exc:  # the notebook may reach its warehouse another way
            self.log.warning(
                "warehouse connection %r not available: %s", self.warehouse_conn_id, type(exc).__name__
            )
            return None
        if conn.password:  # as typed, and as it appears inside a connection URI
            from airflow.sdk.log import mask_secret

            secrets.extend({conn.password, quote(conn.password, safe="")})
            for secret in secrets:  # papermill streams cell output into the task log
                mask_secret(secret)
        return str(conn.as_json())

    def _scrub(self, output_nb: str, secrets: list[str]) -> None:
        """A secret a cell printed is replaced in the executed notebook, which is then marked rejected."""
        from airflow.sdk.exceptions import AirflowFailException

        from credit_bot.notebook_store import read_text, write_text

        if not secrets:
            return
        try:
            text = read_text(output_nb)
        except FileNotFoundError:
            return
        leaked = [s for s in secrets if s in text]
        if not leaked:
            return
        for secret in leaked:
            text = text.replace(secret, "***")
        reason = (
            f"the notebook wrote the warehouse connection's secret into its output; it was scrubbed from "
            f"{output_nb}. Fix the notebook so it never prints credentials."
        )
        nb = json.loads(text)
        # Its amount must not be used: post_results reads this mark and escalates.
        nb.setdefault("metadata", {})["credit_bot"] = {"rejected": reason}
        write_text(output_nb, json.dumps(nb, indent=1, ensure_ascii=False))
        # Not retried: the same notebook prints the same secret again.
        raise AirflowFailException(reason) from NotebookRejected(reason)
