"""Airflow's own REST API (``/api/v2``), for what a task or trigger cannot do through the Task SDK.

Answering a human-in-the-loop task, starting a ``credit_bot`` run for one message, adding an asset
event from the triggerer: each needs the public API, reached with the optional connection
``credit_bot_airflow_api`` (host = the api-server's URL, login / password of a user allowed to
trigger DAG runs, answer HITL tasks and create asset events). It is the same connection the run
notes use.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from credit_bot.errors import AirflowApiError as AirflowApiError  # raised here; callers name it here

if TYPE_CHECKING:
    import requests
    from airflow.sdk import Connection

AIRFLOW_API_CONN_ID = "credit_bot_airflow_api"


class AirflowApi:
    """A token-authenticated client of ``/api/v2`` (the token is asked for once, on first use)."""

    def __init__(self, *, base_url: str, username: str, password: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = timeout

    @classmethod
    def from_connection(cls, conn: Connection) -> AirflowApi:
        base = (conn.host or "").rstrip("/")
        if conn.port:
            base = f"{base}:{conn.port}"
        return cls(base_url=base, username=conn.login or "", password=conn.password or "")

    @classmethod
    def from_conn_id(cls, conn_id: str = AIRFLOW_API_CONN_ID) -> AirflowApi:
        from airflow.sdk import BaseHook

        return cls.from_connection(BaseHook.get_connection(conn_id))

    @cached_property
    def _session(self) -> requests.Session:
        import requests

        session = requests.Session()
        response = session.post(
            f"{self.base_url}/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=self.timeout,
        )
        if response.status_code >= 400:
            raise AirflowApiError("POST", "/auth/token", response.status_code, response.text)
        session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        return session

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """``/api/v2{path}``; the decoded JSON answer (None when empty). Raises :class:`AirflowApiError`."""
        import requests

        try:
            response = self._session.request(
                method, f"{self.base_url}/api/v2{path}", timeout=self.timeout, **kwargs
            )
        except requests.RequestException as exc:
            raise AirflowApiError(method, path, 0, type(exc).__name__) from exc
        if response.status_code >= 400:
            raise AirflowApiError(method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def asset_id(self, name: str) -> int:
        """The id of the asset called ``name`` (a DAG using it has been parsed)."""
        found = self.request("GET", "/assets", params={"name_pattern": name, "limit": 100})
        for asset in found.get("assets", []):
            if asset.get("name") == name:
                return int(asset["id"])
        raise AirflowApiError("GET", "/assets", 404, f"no asset named {name!r}")

    def add_asset_event(self, asset_id: int, extra: dict[str, Any]) -> dict[str, Any]:
        event: dict[str, Any] = self.request(
            "POST", "/assets/events", json={"asset_id": asset_id, "extra": extra}
        )
        return event
