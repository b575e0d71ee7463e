"""Operator extra links into the CreditBot pages: "Executed notebook" on ``run_notebook`` (its notebook)
and "CreditBot request" on ``post_results`` (the request's entry on the requests page).

Airflow 3 computes an operator's own extra links when its task finishes (``get_link`` runs in the
worker; the API server then reads the link from XCom), so the link points at the notebook this
task instance wrote, through ``[api] base_url``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.standard.decorators.python import _PythonDecoratedOperator
from airflow.sdk import BaseOperatorLink
from airflow.sdk.bases.decorator import task_decorator_factory

from credit_bot.ui import urls

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.bases.decorator import TaskDecorator
    from airflow.sdk.types import TaskInstanceKey


class ExecutedNotebookLink(BaseOperatorLink):
    """The executed notebook of a ``run_notebook`` task instance, rendered in the Airflow UI."""

    name = "Executed notebook"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        # A request's task runs its Verify notebooks in turn: the link opens the first; the
        # requests page lists every one.
        jobs = getattr(operator, "jobs", None) or []
        output_nb = jobs[0].get("output_nb") if isinstance(jobs, list) and jobs else None
        if not isinstance(output_nb, str):
            return ""
        return urls.notebook_link(output_nb, urls.configured_base_url()) or ""


class RequestEntryLink(BaseOperatorLink):
    """The request a ``post_results`` task instance decided, on the CreditBot requests page."""

    name = "CreditBot request"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        request = (getattr(operator, "op_kwargs", None) or {}).get("request")
        if not isinstance(request, dict) or not request.get("channel") or not request.get("ts"):
            return ""
        route = urls.requests_route(request=f"{request['channel']}:{request['ts']}")
        return urls.absolute(route, urls.configured_base_url())


class RequestTaskOperator(_PythonDecoratedOperator):
    """``@task``'s operator, plus the "CreditBot request" extra link (the provider's class is private,
    but it is what ``@task`` itself uses; subclassing it is the documented way to add a link)."""

    operator_extra_links = (RequestEntryLink(),)


def request_task(**kwargs: Any) -> TaskDecorator:
    """``@task(...)`` for a task that works on one request: its instances link to the request's entry."""
    return task_decorator_factory(decorated_operator_class=RequestTaskOperator, **kwargs)
