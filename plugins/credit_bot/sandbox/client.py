"""A small stdlib client of the control API, for processes that did not start the sandbox (workers)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode


class SandboxControlError(RuntimeError):
    """The control API refused a call (bad arguments, unknown endpoint)."""


class SandboxClient:
    """Mirrors the Sandbox's Python control API over ``/_sandbox/...`` of a running sandbox."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        if not url.startswith(("http://127.0.0.1", "http://localhost")):
            # The sandbox only ever binds loopback; anything else is a misconfiguration.
            raise ValueError(f"not a local sandbox URL: {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(
        self, verb: str, name: str, query: dict[str, Any] | None = None, body: Any = None
    ) -> dict[str, Any]:
        query = {k: v for k, v in (query or {}).items() if v is not None}
        url = f"{self.url}/_sandbox/{name}" + (f"?{urlencode(query)}" if query else "")
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(url, data=data, method=verb)  # noqa: S310 - loopback http only
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            raise SandboxControlError(f"{verb} /_sandbox/{name} -> {exc.code}: {detail}") from exc

    def health(self) -> dict[str, Any]:
        """Base URLs of the running sandbox."""
        return self._call("GET", "health")

    def calls(self, api: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
        """Recorded API calls in order."""
        return self._call("GET", "calls", {"api": api, "method": method})["calls"]

    def reset_calls(self) -> None:
        """Forget recorded calls."""
        self._call("POST", "reset-calls", body={})

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages the bot posted."""
        return self._call("GET", "posts", {"channel": channel})["posts"]

    def dms(self, user: str | None = None) -> list[dict[str, Any]]:
        """The bot's DM posts, with the user each went to."""
        return self._call("GET", "dms", {"user": user})["dms"]

    def reactions(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Reactions the bot added."""
        return self._call("GET", "reactions", {"channel": channel})["reactions"]

    def add_message(self, channel: str, text: str, **fields: Any) -> str:
        """Post a message as a person would (same keywords as Sandbox.add_message); returns its ts."""
        return self._call("POST", "messages", body={"channel": channel, "text": text, **fields})["ts"]

    def edit_message(self, channel: str, ts: str, text: str) -> None:
        """Edit a message's text."""
        self._call("POST", "messages/edit", body={"channel": channel, "ts": ts, "text": text})

    def delete_message(self, channel: str, ts: str) -> None:
        """Delete a message."""
        self._call("POST", "messages/delete", body={"channel": channel, "ts": ts})

    def inject(self, api: str, method: str, kind: str, times: int = 1, **opts: Any) -> None:
        """Queue a fault (same arguments as Sandbox.inject)."""
        self._call(
            "POST", "faults", body={"api": api, "method": method, "kind": kind, "times": times, **opts}
        )

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        self._call("DELETE", "faults")

    def expire_looker_tokens(self) -> int:
        """Revoke every issued Looker token; returns how many were live."""
        return int(self._call("POST", "expire-looker-tokens", body={})["revoked"])
