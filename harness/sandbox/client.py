"""A small stdlib client of the control API, for processes that did not start the sandbox (workers)."""

from __future__ import annotations

import json
import time
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

    def socket_status(self) -> dict[str, Any]:
        """Socket Mode: open connections, connects, refused handshakes, envelope counts."""
        status = self._call("GET", "socket-mode")
        return {k: v for k, v in status.items() if k not in ("ok", "envelope_list")}

    def socket_envelopes(self, unacked_only: bool = False) -> list[dict[str, Any]]:
        """Socket Mode envelopes pushed so far, with deliveries and whether each was acked."""
        query = {"unacked_only": "1" if unacked_only else None}
        return self._call("GET", "socket-mode", query)["envelope_list"]

    def socket_disconnect(self, reason: str | None = None, abort: bool = False) -> int:
        """Drop the Socket Mode connections (same arguments as Sandbox.socket_disconnect)."""
        body = {"reason": reason, "abort": abort}
        return int(self._call("POST", "socket-mode/disconnect", body=body)["disconnected"])

    def socket_refuse(self, times: int = 1, seconds: float | None = None) -> None:
        """Refuse the next ``times`` websocket handshakes, or all of them for ``seconds``."""
        body: dict[str, Any] = {"times": times} if seconds is None else {"seconds": seconds}
        self._call("POST", "socket-mode/refuse", body=body)

    def socket_lose_acks(self, times: int = 1) -> None:
        """Ignore the next ``times`` Socket Mode acks (they get redelivered on reconnect)."""
        self._call("POST", "socket-mode/lose-acks", body={"times": times})

    # ---- interactivity (see Sandbox.click and friends for the fields) ------------------------------

    def ephemerals(self, user: str | None = None, channel: str | None = None) -> list[dict[str, Any]]:
        """Ephemeral messages, each with the only ``user`` who sees it."""
        return self._call("GET", "ephemerals", {"user": user, "channel": channel})["ephemerals"]

    def updates(self, channel: str | None = None, ts: str | None = None) -> list[dict[str, Any]]:
        """Messages replaced in place (chat.update, response_url replace_original)."""
        return self._call("GET", "updates", {"channel": channel, "ts": ts})["updates"]

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        """A message as it is now."""
        return self._call("GET", "message", {"channel": channel, "ts": ts})["message"]

    def click(
        self,
        user: str,
        channel: str,
        message_ts: str,
        action_id: str,
        block_id: str | None = None,
        wait: bool = False,
    ) -> dict[str, Any]:
        """``user`` clicks a button; returns the interaction's state. SandboxControlError (400) when
        the message or the button does not exist."""
        body = {
            "user": user,
            "channel": channel,
            "message_ts": message_ts,
            "action_id": action_id,
            "block_id": block_id,
            "wait": wait,
        }
        return self._call("POST", "click", body=body)["interaction"]

    def interactions(self) -> list[dict[str, Any]]:
        """Every click's delivery and ack state."""
        return self._call("GET", "interactions")["interactions"]

    def interaction(self, envelope_id: str) -> dict[str, Any]:
        """One click's state."""
        return self._call("GET", "interactions", {"envelope_id": envelope_id})["interaction"]

    def interaction_payload(self, envelope_id: str) -> dict[str, Any]:
        """The block_actions payload that click sent."""
        query = {"envelope_id": envelope_id, "payload": "1"}
        return self._call("GET", "interactions", query)["payload"]

    def wait_interaction(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """Poll until the click is acked or failed (or ``timeout`` passes); its state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.interaction(envelope_id)
            if state["status"] != "pending" or time.monotonic() >= deadline:
                return state
            time.sleep(0.05)

    def set_ack_timeout(self, seconds: float) -> None:
        """The acknowledgement window of clicks from now on."""
        self._call("POST", "interactions/ack-timeout", body={"seconds": seconds})

    def response_url_calls(self, user: str | None = None) -> list[dict[str, Any]]:
        """What arrived at response_urls and what it did."""
        return self._call("GET", "response-url-calls", {"user": user})["calls"]
