"""The Airflow plugin: the CreditBot app in the API server, its nav entry and the extra link.

Loaded by Airflow's plugin manager through ``plugins/credit_bot_plugin.py`` (``plugins/.airflowignore``
keeps the loader out of the ``credit_bot`` package itself).
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from credit_bot.ui import urls
from credit_bot.ui.app import create_app
from credit_bot.ui.links import ExecutedNotebookLink, RequestEntryLink


class CreditBotPlugin(AirflowPlugin):
    """``/credit-bot``: the requests page (nav entry "CreditBot") and the executed-notebook view."""

    name = "credit_bot"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"name": "credit_bot", "app": create_app(), "url_prefix": urls.URL_PREFIX}
    ]
    # With a url_route the page opens inside the Airflow UI (an iframe at /plugin/credit-bot).
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "CreditBot",
            "href": urls.base_path(urls.configured_base_url()) + urls.URL_PREFIX + "/",
            "destination": "nav",
            "nav_top_level": True,  # its own button in the nav bar, not inside a "Plugins" menu
            "url_route": urls.URL_ROUTE,
        }
    ]
    operator_extra_links: ClassVar[list[Any]] = [ExecutedNotebookLink(), RequestEntryLink()]
