"""The FastAPI app the plugin mounts at ``/credit-bot``: the requests page and the notebook view.

Airflow does not authenticate plugin apps: every route here depends on the auth manager saying the
user may read the ``credit_bot`` DAG (app-wide, so a later route cannot ship open). Errors become
HTTP answers in one place: 404 for anything that is not an executed notebook of CreditBot's, 400
for a bad filter, 401/403 from the auth manager, and a generic 500 whose details stay in the log.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from credit_bot import ledger_report
from credit_bot.notebook_store import NotebookNotFound, NotebookRef, NotebookStore
from credit_bot.settings import SLACK_CONN_ID, Settings
from credit_bot.store import ServerVariables, Store
from credit_bot.ui import pages, render, urls

log = logging.getLogger(__name__)

DAG_ID = "credit_bot"
# No script runs on these pages, whatever a notebook printed: styles and inline images only.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
)
NOT_FOUND = "No executed CreditBot notebook or page at this address."
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
# Connections whose secrets must never appear on a page (the warehouse one is named in the settings).
SECRET_CONNECTIONS = (SLACK_CONN_ID, "slack_app_default", "looker_default", "credit_bot_airflow_api")


def ui_settings(store: Store | None = None) -> Settings:
    """The settings the pages need (output_dir, retention, warehouse connection).

    Read leniently (:meth:`Settings.lenient`): a page still opens when the Variable lacks what only
    a run needs (looker_hosts).
    """
    return Settings.lenient((store or ServerVariables()).settings_text()) or Settings()


def connection_secrets(conn_ids: list[str]) -> list[str]:
    """Passwords of these connections, as typed and as they appear in a connection URI."""
    from airflow.models.connection import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    found: list[str] = []
    for conn_id in conn_ids:
        try:
            conn = Connection.get_connection_from_secrets(conn_id)
        except AirflowNotFoundException:
            continue
        if conn.password:
            found.extend({conn.password, quote(conn.password, safe="")})
    return found


@dataclass
class _Workspace:
    """The Slack workspace's URL once known, or when asking for it last failed."""

    url: str | None = None
    failed_at: float = -math.inf

    def clear(self) -> None:
        self.url, self.failed_at = None, -math.inf


_WORKSPACE = _Workspace()
WORKSPACE_RETRY_S = 300.0


def workspace_url() -> str | None:
    """The Slack workspace's URL (``auth.test``), for permalinks; asked once per API server process.

    The bot itself never spends a Slack call on it. A failure is logged and asked again after
    :data:`WORKSPACE_RETRY_S`; meanwhile the page names the channel and ts instead of linking.
    """
    if _WORKSPACE.url:
        return _WORKSPACE.url
    if time.monotonic() - _WORKSPACE.failed_at < WORKSPACE_RETRY_S:
        return None
    from airflow.models.connection import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackClientError

    try:
        conn = Connection.get_connection_from_secrets(SLACK_CONN_ID)
        options: dict[str, Any] = {"token": conn.password, "timeout": 5}
        if conn.extra_dejson.get("base_url"):
            options["base_url"] = conn.extra_dejson["base_url"]
        url = str(WebClient(**options).auth_test()["url"])
    except (AirflowNotFoundException, SlackClientError, OSError, KeyError) as exc:
        log.warning("no Slack permalinks on the requests page: auth.test failed (%s)", type(exc).__name__)
        _WORKSPACE.failed_at = time.monotonic()
        return None
    _WORKSPACE.url = url
    return url


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def create_app() -> FastAPI:
    """The plugin app; configuration is read per request, inside, so tests need no module reload."""
    from airflow.api_fastapi.core_api.security import requires_access_dag

    authorize = requires_access_dag("GET", param_dag_id=DAG_ID)
    app = FastAPI(
        title="CreditBot",
        description="CreditBot's requests and executed notebooks, for users who may read the credit_bot DAG.",
        dependencies=[Depends(authorize)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.authorize = authorize  # tests of the app alone override it; the API server never does

    _errors_to_http(app)

    @app.get("/", response_class=HTMLResponse)
    def requests_page(request: Request) -> HTMLResponse:
        begun = time.perf_counter()
        filters = pages.Filters.from_query(request.query_params)
        book = ledger_report.parse(ServerVariables().ledger_text())
        settings = ui_settings()
        store = NotebookStore(settings.output_dir)
        body = pages.requests_page(
            book,
            filters,
            output_dir=store.output_dir,
            kept=store.existing,
            workspace=workspace_url(),
            base_url=urls.configured_base_url(),
            retention_days=settings.notebook_retention_days,
        )
        log.debug("CreditBot requests page in %.3f s", time.perf_counter() - begun)
        return _html(body)

    @app.get("/notebooks/{run_dir}/{name}", response_class=HTMLResponse)
    def notebook(run_dir: str, name: str) -> HTMLResponse:
        ref = NotebookRef.parse(run_dir, name)
        settings = ui_settings()
        text = NotebookStore(settings.output_dir).read(ref)
        secrets = connection_secrets([settings.warehouse_conn_id, *SECRET_CONNECTIONS])
        try:
            rendered = render.render(text, secrets, title=f"{ref.run_dir}/{ref.name}")
        except render.UnreadableNotebook as exc:
            raise NotebookNotFound(str(exc)) from None
        if rendered.secrets_hidden:
            log.warning(
                "executed notebook %s/%s holds a connection secret; hidden on the page", run_dir, name
            )
        back = urls.base_path(urls.configured_base_url()) + urls.URL_PREFIX + "/"
        banner = pages.notebook_banner(ref, rendered.secrets_hidden, back, rendered.credit)
        head, body = _split_body(rendered.html)
        return _html(head + banner + body)

    return app


def _errors_to_http(app: FastAPI) -> None:
    """Errors become HTTP answers here, in one place: 404 for what is not ours to show, 400 for a bad
    filter, 401/403 from the auth manager, and a generic 500 whose details stay in the log."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        messages = {
            404: NOT_FOUND,
            401: "Not signed in: sign in to Airflow, then open CreditBot again.",
            403: "Signed in, but not allowed to read the credit_bot DAG: ask an Airflow admin for access.",
        }
        return _html(
            pages.error_page(exc.status_code, messages.get(exc.status_code, str(exc.detail))), exc.status_code
        )

    @app.exception_handler(NotebookNotFound)
    async def not_found(request: Request, exc: NotebookNotFound) -> HTMLResponse:
        log.info("CreditBot notebook view: 404 for %s (%s)", request.url.path, exc)
        return _html(pages.error_page(404, NOT_FOUND), 404)

    @app.exception_handler(pages.BadFilter)
    async def bad_filter(request: Request, exc: pages.BadFilter) -> HTMLResponse:
        return _html(pages.error_page(400, str(exc)), 400)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> HTMLResponse:
        log.exception("CreditBot page %s failed", request.url.path)
        return _html(
            pages.error_page(500, "CreditBot could not show this page; the API server log says why."), 500
        )


def _split_body(html: str) -> tuple[str, str]:
    """``html`` cut right after its ``<body …>`` tag, so the banner goes first in the page."""
    start = html.find("<body")
    end = html.index(">", start) + 1 if start >= 0 else 0
    return html[:end], html[end:]
