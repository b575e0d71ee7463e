"""The Sandbox object: owns the emulated Slack and Looker state, runs the server in a background thread,
and exposes the Python control API that tests and the demo use.

Interactivity (issue 31), what the bot's tests call:

- ``click(user, channel, message_ts, action_id, block_id=None, wait=False)``: a person clicks a button
  of a real message; the ``block_actions`` payload goes over the open Socket Mode connection.
- ``interactions()`` / ``interaction(envelope_id)`` / ``wait_interaction(envelope_id)``: delivery and
  ack state of each click (``status`` acked/failed/pending, ``failure``, ``user_saw_error``);
  ``interaction_payload(envelope_id)``: the payload sent; ``set_ack_timeout(seconds)``: the 3 s window.
- ``response_url_calls(user=None)``: what the bot POSTed to response_urls, and what it did.
- ``ephemerals(user=None, channel=None)``: ephemeral messages per user; ``updates(channel, ts)``:
  chat.update and replace_original; ``message(channel, ts)``: a message as it is now.
- ``posts()`` / ``dms()`` now carry ``blocks`` too.

The same over HTTP for other processes: ``SandboxClient`` (client.py) and ``/_sandbox/...`` (control.py).
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.sandbox.control import handle_control
from harness.sandbox.faults import FaultInjector
from harness.sandbox.looker_api import LookerApi
from harness.sandbox.recorder import CallLog
from harness.sandbox.scenario import Scenario
from harness.sandbox.server import SandboxServer
from harness.sandbox.slack_api import SlackApi
from harness.sandbox.socket_mode import SocketMode
from harness.sandbox.wire import Reply

HOST = "127.0.0.1"  # loopback only: the sandbox accepts fake credentials and must never be reachable


class Sandbox:
    """A local emulator of the Slack Web API and Looker API 4.0, seeded from a scenario."""

    def __init__(self, scenario: Scenario, port: int = 0) -> None:
        self.scenario = scenario
        self.slack = SlackApi(scenario.slack)
        self.socket_mode = SocketMode(scenario.slack)
        self.slack.event_listeners.append(self.socket_mode.publish)
        self.slack.open_socket_url = self.socket_mode.open_url
        self.looker = LookerApi(scenario.looker)
        self.faults = FaultInjector()
        self.call_log = CallLog()
        self._port = port
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_scenario(cls, path: str | Path, port: int = 0) -> Sandbox:
        """A sandbox seeded from a scenario file; port 0 picks a free port at start()."""
        return cls(Scenario.load(path), port=port)

    @classmethod
    def from_dict(cls, data: dict[str, Any], port: int = 0, base_dir: str | Path | None = None) -> Sandbox:
        """A sandbox seeded from an in-memory scenario (``sql_file`` relative to ``base_dir``)."""
        return cls(Scenario.from_dict(data, base_dir=base_dir), port=port)

    # ---- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Bind 127.0.0.1 and serve from a daemon thread; returns self."""
        if self._server is not None:
            return self
        server = SandboxServer(
            (HOST, self._port),
            slack=self.slack,
            looker=self.looker,
            faults=self.faults,
            calls=self.call_log,
            control=self._control,
        )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"credit-bot-sandbox-{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        self.socket_mode.stop()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._server is not None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- addresses and fake credentials ------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (after start())."""
        if self._server is None:
            raise RuntimeError("the sandbox is not started; call start() first")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Root URL, e.g. "http://127.0.0.1:8765"."""
        return f"http://{HOST}:{self.port}"

    @property
    def slack_base_url(self) -> str:
        """slack_sdk WebClient ``base_url`` (with the trailing slash it needs)."""
        return f"{self.url}/slack/api/"

    @property
    def looker_base_url(self) -> str:
        """looker_sdk ``base_url``; the API also answers at the root, see server.py."""
        return f"{self.url}/looker"

    @property
    def slack_token(self) -> str:
        """The scenario's (fake) bot token."""
        return self.scenario.slack.token

    @property
    def slack_app_token(self) -> str:
        """The scenario's (fake) app-level token, for Socket Mode's apps.connections.open."""
        return self.scenario.slack.app_token

    @property
    def looker_client_id(self) -> str:
        """The scenario's (fake) Looker API client id."""
        return self.scenario.looker.client_id

    @property
    def looker_client_secret(self) -> str:
        """The scenario's (fake) Looker API client secret."""
        return self.scenario.looker.client_secret

    # ---- observation -------------------------------------------------------------------------------

    def calls(self, api: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
        """Recorded API calls in order (control calls are not recorded)."""
        return self.call_log.calls(api=api, method=method)

    def reset_calls(self) -> None:
        """Forget recorded calls."""
        self.call_log.clear()

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages the bot posted: channel, ts, text, thread_ts, metadata."""
        return self.slack.posts(channel)

    def dms(self, user: str | None = None) -> list[dict[str, Any]]:
        """The bot's posts into DM channels, each with the ``user`` it went to."""
        return self.slack.dms(user)

    def reactions(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Reactions the bot added: channel, timestamp, name, user."""
        return self.slack.reactions(channel)

    def ephemerals(self, user: str | None = None, channel: str | None = None) -> list[dict[str, Any]]:
        """Ephemeral messages (chat.postEphemeral, and response_url answers that are not in_channel),
        oldest first: channel, ``user`` (the only person who sees it), ts, text, blocks, thread_ts,
        via ("chat.postEphemeral" | "response_url"), deleted. Never in history, never an event."""
        return self.slack.ephemerals(user=user, channel=channel)

    def updates(self, channel: str | None = None, ts: str | None = None) -> list[dict[str, Any]]:
        """Messages replaced in place, oldest first: channel, ts, text, blocks, previous_text,
        via ("chat.update" | "response_url" with replace_original), user (the clicker), at."""
        return self.slack.updates(channel=channel, ts=ts)

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        """A message as it is now (text, blocks, edited …); ValueError if there is none."""
        return self.slack.message(channel, ts)

    # ---- manipulation ------------------------------------------------------------------------------

    def add_message(
        self,
        channel: str,
        text: str,
        user: str | None = "U0REQUESTER",
        ts: str | None = None,
        thread_ts: str | None = None,
        subtype: str | None = None,
        bot_id: str | None = None,
        **extra: Any,
    ) -> str:
        """Post a message as a person (or another app) would; returns its ts."""
        return self.slack.add_message(
            channel, text, user=user, ts=ts, thread_ts=thread_ts, subtype=subtype, bot_id=bot_id, **extra
        )

    def edit_message(self, channel: str, ts: str, text: str) -> None:
        """Edit a message's text; it then carries ``edited``."""
        self.slack.edit_message(channel, ts, text)

    def delete_message(self, channel: str, ts: str) -> None:
        """Delete a message (a thread parent with replies becomes a tombstone)."""
        self.slack.delete_message(channel, ts)

    def unfurl(self, channel: str, ts: str, attachment: dict[str, Any]) -> None:
        """Add a link preview (attachment) to a message: ``message_changed`` without ``edited``."""
        self.slack.unfurl(channel, ts, attachment)

    def set_slack_scopes(self, scopes: list[str]) -> None:
        """Grant the bot token exactly ``scopes`` (sent in X-OAuth-Scopes, enforced per method)."""
        self.slack.set_scopes(scopes)

    def inject(self, api: str, method: str, kind: str, times: int = 1, **opts: Any) -> None:
        """Make the next ``times`` calls of ``method`` ("*" = any) on ``api`` fail with ``kind``."""
        self.faults.add(api, method, kind, times=times, **opts)

    def clear_faults(self) -> None:
        """Drop every fault still queued."""
        self.faults.clear()

    def expire_looker_tokens(self) -> int:
        """Revoke every issued Looker token server-side; returns how many were live."""
        return self.looker.expire_tokens()

    # ---- Socket Mode -------------------------------------------------------------------------------

    def socket_status(self) -> dict[str, Any]:
        """Open connections, accepted (``connects``) and ``refused`` handshakes, envelope counts."""
        return self.socket_mode.status()

    def socket_envelopes(self, unacked_only: bool = False) -> list[dict[str, Any]]:
        """Events API envelopes pushed so far: envelope_id, channel, ts, subtype, deliveries, acked."""
        return self.socket_mode.envelopes(unacked_only=unacked_only)

    def socket_disconnect(self, reason: str | None = None, abort: bool = False) -> int:
        """Drop the Socket Mode connections: a ``disconnect`` message with ``reason``
        (e.g. "refresh_requested"), else a close frame, or with ``abort`` a bare TCP drop."""
        return self.socket_mode.disconnect(reason=reason, abort=abort)

    def socket_refuse(self, times: int = 1, seconds: float | None = None) -> None:
        """Refuse the next ``times`` websocket handshakes with HTTP 503, or all of them for ``seconds``."""
        self.socket_mode.refuse(times=times, seconds=seconds)

    def socket_lose_acks(self, times: int = 1) -> None:
        """Ignore the next ``times`` Socket Mode acks, so those envelopes are redelivered on reconnect."""
        self.socket_mode.lose_acks(times=times)

    # ---- interactivity (Block Kit buttons over Socket Mode) ------------------------------------------

    def click(
        self,
        user: str,
        channel: str,
        message_ts: str,
        action_id: str,
        block_id: str | None = None,
        wait: bool = False,
    ) -> dict[str, Any]:
        """``user`` clicks the button ``action_id`` of message ``message_ts`` in ``channel`` (a DM's
        channel id, e.g. "D0OPERATOR", or a channel; an ephemeral message shown to that user works too).

        Builds the ``block_actions`` payload Slack sends (see SlackApi.block_actions_payload) and
        delivers it in an ``interactive`` envelope over the open Socket Mode connection. Returns the
        interaction's state (see interaction()); with ``wait`` it first waits for the ack or the
        failure. Raises ValueError for a user, channel, message or button that does not exist (or
        several buttons with that action_id and no ``block_id``). A click with no connection open is
        recorded as failed (``no_connection``), as Slack shows the user an error then.
        """
        payload = self.slack.block_actions_payload(user, channel, message_ts, action_id, self.url, block_id)
        envelope_id = self.socket_mode.publish_interactive(payload)
        if wait:
            return self.socket_mode.wait_interaction(envelope_id)
        return self.socket_mode.interaction(envelope_id)

    def interactions(self) -> list[dict[str, Any]]:
        """Every click so far, oldest first: envelope_id, user, channel, message_ts, is_ephemeral,
        action_id, block_id, value, response_url, delivered(_at), acked(_at), ack_seconds,
        ack_timeout, status ("pending" | "acked" | "failed"), failure ("no_connection" |
        "not_acknowledged" | "late_ack"), user_saw_error (Slack's error shown to the clicker)."""
        return self.socket_mode.interactions()

    def interaction(self, envelope_id: str) -> dict[str, Any]:
        """One click's state (the fields of interactions()); KeyError if unknown."""
        return self.socket_mode.interaction(envelope_id)

    def interaction_payload(self, envelope_id: str) -> dict[str, Any]:
        """The exact ``block_actions`` payload that click sent."""
        return self.socket_mode.interaction_payload(envelope_id)

    def wait_interaction(self, envelope_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait until the click is acked or failed (default: the ack window plus 1 s); its state."""
        return self.socket_mode.wait_interaction(envelope_id, timeout=timeout)

    def set_ack_timeout(self, seconds: float) -> None:
        """Shorten (or restore) the 3 s acknowledgement window for clicks from now on."""
        self.socket_mode.set_ack_timeout(seconds)

    def response_url_calls(self, user: str | None = None) -> list[dict[str, Any]]:
        """What arrived at clicks' response_urls, oldest first: user, channel, message_ts, body,
        status, error, effect ("replaced" | "deleted" | "ephemeral" | "in_channel"), ts, at."""
        return self.slack.response_url_calls(user=user)

    def _control(self, verb: str, path: str, params: dict[str, Any]) -> Reply:
        return handle_control(self, verb, path, params)
