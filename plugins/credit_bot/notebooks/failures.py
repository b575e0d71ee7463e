"""What a failed notebook cell means, in words an operator can act on.

A notebook that fails in its warehouse query leaves the client's exception in the executed notebook:
``PrestoQueryError(type=INSUFFICIENT_RESOURCES, name=EXCEEDED_GLOBAL_MEMORY_LIMIT, message="Query
exhausted resources at this scale factor", …)``, ``requests.exceptions.ConnectTimeout:
HTTPSConnectionPool(host=…, port=…)…``. :func:`explain` turns such an error into one plain sentence
that names the query the cell ran (the team's cells each run one, ``get_presto_data(true_cost, …)``)
and which error class of :mod:`credit_bot.notebooks.errors` it is (this is the one table that
translates warehouse and cell errors into CreditBot's):

- the warehouse running out of resources, a coordinator that does not answer, a server starting or
  stopping, or the notebook's own code raising: :class:`NotebookDidNotFinish`, **transient**
  (Airflow retries the task, later runs retry the request, then the operators hear it gave up);
- the warehouse refusing the query itself (``USER_ERROR``: ``SYNTAX_ERROR``, ``TABLE_NOT_FOUND``,
  ``COLUMN_NOT_FOUND``, ``PERMISSION_DENIED`` …): :class:`WarehouseRefused`, a rejected request,
  the same SQL fails the same way.

Error names and types are Presto's and Trino's ``StandardErrorCode`` (``io.trino.spi``; Presto shares the
names); both clients format their query errors the same way (``prestodb.exceptions.PrestoQueryError``,
``trino.exceptions.TrinoQueryError``: ``type=…, name=…, message="…"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from credit_bot.errors import TransientError
from credit_bot.notebooks.errors import NotebookDidNotFinish, NotebookResultError, WarehouseRefused

# "PrestoQueryError(type=USER_ERROR, name=SYNTAX_ERROR, message="line 1:1: …", query_id=…)"
_QUERY_ERROR = re.compile(
    r"\(type=(?P<type>\w+), name=(?P<name>\w+), message=\"(?P<message>.*?)\"(?:, query_id|\)$)", re.S
)
_HOST_PORT = re.compile(r"host='(?P<host>[^']+)', port=(?P<port>\d+)")
# The cell's query: get_presto_data(true_cost, …), cursor.execute(fg_settings), pd.read_sql(mrr, …).
_QUERY_CALL = re.compile(r"\b(?:get_\w+|execute|read_sql(?:_query)?)\(\s*([A-Za-z_]\w*)\s*[,)]")

# Client-side failures to reach the coordinator (requests, urllib3, the clients' own).
_UNREACHABLE = {
    "ConnectTimeout": "did not answer in time (connect timeout)",
    "ReadTimeout": "stopped answering (read timeout)",
    "Timeout": "did not answer in time",
    "TimeoutError": "did not answer in time",
    "ConnectTimeoutError": "did not answer in time (connect timeout)",
    "ConnectionError": "could not be reached (connection refused or reset)",
    "Http503Error": "is unavailable (HTTP 503)",
    "HttpError": "answered with an HTTP error",
}
# Query errors worth another try although their type is not INSUFFICIENT_RESOURCES.
_TRANSIENT_NAMES = {
    "SERVER_STARTING_UP",
    "SERVER_SHUTTING_DOWN",
    "TOO_MANY_REQUESTS_FAILED",
    "PAGE_TRANSPORT_TIMEOUT",
    "PAGE_TRANSPORT_ERROR",
    "REMOTE_TASK_ERROR",
    "REMOTE_TASK_MISMATCH",
    "REMOTE_HOST_GONE",
    "NO_NODES_AVAILABLE",
    "ABANDONED_QUERY",
    "QUERY_QUEUE_FULL",
}


@dataclass(frozen=True)
class Explanation:
    """One sentence about a failed cell, and the error class that says what happens next."""

    text: str
    error: type[NotebookResultError]
    warehouse: bool  # the warehouse (or reaching it) failed, not the notebook's own code

    @property
    def transient(self) -> bool:
        """Whether running the notebook again may succeed (the class's branch says)."""
        return issubclass(self.error, TransientError)


def query_name(source: str) -> str | None:
    """The one query variable a cell runs (``true_cost``), or None when it runs none or several."""
    names = set(_QUERY_CALL.findall(source))
    return names.pop() if len(names) == 1 else None


def explain(ename: str, evalue: str, source: str = "") -> Explanation:
    """``ename``/``evalue`` as the executed notebook records them; ``source`` is the failing cell's code."""
    first_line = (evalue.strip().splitlines() or [""])[0][:300]
    name = query_name(source)
    which = f"the query `{name}`" if name else "a query"
    match = _QUERY_ERROR.search(evalue)
    if match:
        kind, error, message = match["type"], match["name"], match["message"][:300]
        engine = "Trino" if ename.startswith("Trino") else "Presto"
        if kind == "INSUFFICIENT_RESOURCES" or error.startswith("EXCEEDED_"):
            return Explanation(
                f"the warehouse ran out of resources running {which} ({engine} {error}: {message}); "
                "usually temporary",
                error=NotebookDidNotFinish,
                warehouse=True,
            )
        if kind == "USER_ERROR":
            return Explanation(
                f"the warehouse refused {which} ({engine} {error}: {message}); running it again gives the "
                "same error: fix the SQL or the notebook",
                error=WarehouseRefused,
                warehouse=True,
            )
        return Explanation(
            f"the warehouse failed running {which} ({engine} {kind} {error}: {message})",
            error=(
                NotebookDidNotFinish
                if kind in ("INTERNAL_ERROR", "EXTERNAL") or error in _TRANSIENT_NAMES
                else WarehouseRefused
            ),
            warehouse=True,
        )
    if ename in _UNREACHABLE:
        where = _HOST_PORT.search(evalue)
        coordinator = f" ({where['host']}:{where['port']})" if where else ""
        return Explanation(
            f"the warehouse coordinator{coordinator} {_UNREACHABLE[ename]} while running {which} "
            f"({ename}); usually temporary",
            error=NotebookDidNotFinish,
            warehouse=True,
        )
    return Explanation(f"{ename}: {first_line}".rstrip(": "), error=NotebookDidNotFinish, warehouse=False)
