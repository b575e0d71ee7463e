"""Where the CreditBot pages live: one URL prefix, and the links to them from tasks and DMs.

The plugin's FastAPI app is mounted at :data:`URL_PREFIX` under the API server's root, which is the
path of ``[api] base_url`` (``https://airflow.example.com/airflow`` serves it at ``/airflow/credit-bot``).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode, urlsplit

from credit_bot.notebook_store import NotebookRef

URL_PREFIX = "/credit-bot"
URL_ROUTE = "credit-bot"  # the UI's own route of the nav entry: /plugin/credit-bot


def base_path(base_url: str | None) -> str:
    """The path part of ``[api] base_url`` (``""`` at the root)."""
    if not base_url:
        return ""
    path = urlsplit(base_url).path if base_url.startswith(("http://", "https://")) else base_url
    return path.rstrip("/")


def configured_base_url() -> str | None:
    """``[api] base_url`` as this process's Airflow configuration has it, or ``None``."""
    from airflow.sdk.configuration import conf

    return conf.get("api", "base_url", fallback=None) or None


def notebook_route(ref: NotebookRef) -> str:
    """The notebook view's path inside the plugin app."""
    return f"/notebooks/{quote(ref.run_dir, safe='')}/{quote(ref.name, safe='')}"


def requests_route(**filters: str) -> str:
    """The requests page's path inside the plugin app, with filters as query parameters."""
    query = urlencode({k: v for k, v in filters.items() if v})
    return "/" + (f"?{query}" if query else "")


def absolute(route: str, base_url: str | None) -> str:
    """``route`` (inside the plugin app) as a link: absolute with a full base URL, else from the root."""
    if base_url and base_url.startswith(("http://", "https://")):
        return base_url.rstrip("/") + URL_PREFIX + route
    return base_path(base_url) + URL_PREFIX + route


def notebook_link(output_nb: str, base_url: str | None) -> str | None:
    """The notebook view's URL for an executed notebook's path, or ``None`` when it is not one of ours."""
    parts = output_nb.rstrip("/").rsplit("/", 2)
    if len(parts) != 3:
        return None
    ref = NotebookRef.from_path(parts[0], output_nb)
    return absolute(notebook_route(ref), base_url) if ref else None
