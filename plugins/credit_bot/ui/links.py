"""Operator extra links: "Executed notebook" on ``run_notebook`` opens its notebook in the CreditBot view.

Airflow 3 computes an operator's own extra links when its task finishes (``get_link`` runs in the
worker; the API server then reads the link from XCom), so the link points at the notebook this
task instance wrote, through ``[api] base_url``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

from credit_bot.ui import urls

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


class ExecutedNotebookLink(BaseOperatorLink):
    """The executed notebook of a ``run_notebook`` task instance, rendered in the Airflow UI."""

    name = "Executed notebook"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        output_nb = getattr(operator, "output_nb", None)
        if not isinstance(output_nb, str):
            return ""
        return urls.notebook_link(output_nb, urls.configured_base_url()) or ""
