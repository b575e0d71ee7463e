"""The Trino/Presto warehouse sandbox with the team's query times: every table read takes ``query_seconds``.

The team's notebook spends minutes waiting on the warehouse (one query takes about 250 s), so a
bench whose notebooks query the sample DuckDB in milliseconds measures the wrong workload. This
wraps :class:`harness.warehouse_server.WarehouseServer` so that a query's results come only
``query_seconds`` after it was submitted, the way a busy coordinator answers: until then each
poll of the query's ``nextUri`` is held for up to ``poll_wait_s`` (Trino holds a poll up to its
``maxWait``, 1 s by default) and answered ``RUNNING`` with the same ``nextUri``, no columns, no data.
Only statements that read a table (``… FROM …``) are slow: a connection probe (``SELECT 1``) or
``SET SESSION`` answers at once, as on a real coordinator. The clients (``trino``, ``prestodb``)
keep polling, exactly as against a real coordinator; the bot and the notebook are not changed at
all, and nothing sleeps in them.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from harness.warehouse_server import STATEMENT_PATH, Query, WarehouseServer


class SlowWarehouseServer(WarehouseServer):
    """``WarehouseServer`` whose every table read finishes ``query_seconds`` after its POST."""

    def __init__(
        self, database: Path, *, query_seconds: float, poll_wait_s: float = 1.0, **kwargs: Any
    ) -> None:
        if query_seconds < 0 or poll_wait_s <= 0:
            raise ValueError("query_seconds must be >= 0 and poll_wait_s > 0")
        super().__init__(database, **kwargs)
        self.query_seconds = query_seconds
        self.poll_wait_s = poll_wait_s

    def remaining_s(self, query: Query) -> float:
        """Seconds until ``query`` is done; a failed query answers at once, as a real one fails fast."""
        if query.error is not None or not _READS_A_TABLE.search(query.sql):
            return 0.0
        return max(0.0, query.created + self.query_seconds - time.monotonic())

    def advance(self, query: Query, stage: str, token: int) -> None:
        if stage == "executing" and (wait := self.remaining_s(query)) > 0:
            # Hold the poll like a coordinator's maxWait: the client is not made to spin.
            time.sleep(min(wait, self.poll_wait_s))
            if self.remaining_s(query) > 0:
                return
        super().advance(query, stage, token)

    def results(self, query: Query, stage: str, token: int) -> dict[str, Any]:
        if stage != "executing" or self.remaining_s(query) <= 0:
            return super().results(query, stage, token)
        return {
            "id": query.id,
            "infoUri": f"{self.url}/ui/query.html?{query.id}",
            "nextUri": f"{self.url}{STATEMENT_PATH}/executing/{query.id}/{query.slug}/{token}",
            "stats": self._stats(query),
            "warnings": [],
        }


_READS_A_TABLE = re.compile(r"\bFROM\b", re.IGNORECASE)
