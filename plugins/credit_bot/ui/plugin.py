"""The Airflow plugin: the CreditBot app in the API server, its nav entry and the extra link.

Loaded by Airflow's plugin manager through ``plugins/credit_bot_plugin.py`` (``plugins/.airflowignore``
keeps the loader out of the ``credit_bot`` package itself).

Every Airflow process loads the plugins, each task process included (for macros and listeners), but
only the API server reads ``fastapi_apps``: the app is built when it is first read. Built at import,
it cost every task process FastAPI and the API server's security module (1.2 s of imports).
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from credit_bot.ui import urls
from credit_bot.ui.links import ExecutedNotebookLink, RequestEntryLink


class _AppsOnFirstRead:
    """``fastapi_apps`` as a class attribute whose list is made the first time it is read."""

    def __init__(self) -> None:
        self._apps: list[dict[str, Any]] | None = None

    def __get__(self, instance: object, owner: type | None = None) -> list[dict[str, Any]]:
        if self._apps is None:
            from credit_bot.ui.app import create_app

            self._apps = [{"name": "credit_bot", "app": create_app(), "url_prefix": urls.URL_PREFIX}]
        return self._apps


class CreditBotPlugin(AirflowPlugin):
    """``/credit-bot``: the requests page (nav entry "CreditBot") and the executed-notebook view."""

    name = "credit_bot"
    fastapi_apps = _AppsOnFirstRead()
    # With a url_route the page opens inside the Airflow UI (an iframe at /plugin/credit-bot).
    # AirflowPlugin declares these as plain attributes; the loader reads them from the class.
    external_views: ClassVar[list[dict[str, Any]]] = [  # type: ignore[misc]
        {
            "name": "CreditBot",
            "href": urls.base_path(urls.configured_base_url()) + urls.URL_PREFIX + "/",
            "destination": "nav",
            "nav_top_level": True,  # its own button in the nav bar, not inside a "Plugins" menu
            "url_route": urls.URL_ROUTE,
        }
    ]
    operator_extra_links: ClassVar[list[Any]] = [ExecutedNotebookLink(), RequestEntryLink()]  # type: ignore[misc]
