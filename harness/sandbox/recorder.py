"""The call log: every API request the sandbox answered, in order, for tests and demos to assert on."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

# Never keep credentials in the log, not even the sandbox's fake ones: logs get printed and shared.
_REDACTED_PARAMS = frozenset({"token", "client_secret"})


class CallLog:
    """Thread-safe, append-only list of recorded calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[dict[str, Any]] = []

    def record(self, api: str, method: str, path: str, params: dict[str, Any], status: int) -> None:
        """Append one call; ``status`` 0 means the connection was dropped without an answer."""
        clean = {k: v for k, v in params.items() if k not in _REDACTED_PARAMS}
        entry = {
            "api": api,
            "method": method,
            "path": path,
            "params": copy.deepcopy(clean),
            "status": status,
            "at": time.time(),
        }
        with self._lock:
            self._calls.append(entry)

    def calls(self, api: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
        """Recorded calls, oldest first, optionally filtered by api and method name."""
        with self._lock:
            selected = [
                c
                for c in self._calls
                if (api is None or c["api"] == api) and (method is None or c["method"] == method)
            ]
            return copy.deepcopy(selected)

    def clear(self) -> None:
        """Forget every recorded call."""
        with self._lock:
            self._calls.clear()
