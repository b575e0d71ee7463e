"""Fault injection: queued failures (429, 5xx, delays, dropped connections, 401/404) for the next N calls."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

# "reset" drops the connection before the call is handled; "lost_response" handles it (a post is
# stored) and then drops the connection, as when a reply is lost on the way back to the client.
SLACK_FAULTS = frozenset({"ratelimited", "server_error", "slack_error", "delay", "reset", "lost_response"})
LOOKER_FAULTS = frozenset(
    {"server_error", "delay", "reset", "lost_response", "unauthorized", "not_found", "ratelimited"}
)
KINDS_BY_API = {"slack": SLACK_FAULTS, "looker": LOOKER_FAULTS}


@dataclass
class Fault:
    """One queued fault: affects the next ``remaining`` matching calls, then is gone."""

    api: str
    method: str
    kind: str
    remaining: int
    opts: dict[str, Any] = field(default_factory=dict)

    def matches(self, api: str, method: str) -> bool:
        """True when this fault applies to a call of ``method`` on ``api`` ("*" matches every method)."""
        return self.api == api and self.method in ("*", method)


class FaultInjector:
    """Thread-safe queue of faults; the first matching fault wins, in the order they were injected."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, api: str, method: str, kind: str, times: int = 1, **opts: Any) -> Fault:
        """Queue a fault; raises ValueError for an unknown api or a kind that api does not support."""
        if api not in KINDS_BY_API:
            raise ValueError(f"unknown api {api!r}; expected one of {sorted(KINDS_BY_API)}")
        if kind not in KINDS_BY_API[api]:
            raise ValueError(
                f"unknown {api} fault kind {kind!r}; expected one of {sorted(KINDS_BY_API[api])}"
            )
        if int(times) < 1:
            raise ValueError("times must be at least 1")
        fault = Fault(api=api, method=method, kind=kind, remaining=int(times), opts=dict(opts))
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, api: str, method: str) -> Fault | None:
        """Consume one use of the first fault matching this call, or None when the call should succeed."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(api, method):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> list[Fault]:
        """Faults still queued (copies)."""
        with self._lock:
            return [Fault(f.api, f.method, f.kind, f.remaining, dict(f.opts)) for f in self._faults]

    def clear(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()
