"""Emulated Slack Socket Mode: ``apps.connections.open`` tickets and a loopback websocket that says
``hello``, pushes an ``events_api`` envelope for every channel message event, records acknowledgements,
and redelivers unacknowledged envelopes (``retry_attempt`` + 1) when a client reconnects.

Interactions (a button click, ``Sandbox.click``) arrive over the same connection as ``interactive``
envelopes ``{"envelope_id", "payload", "type": "interactive", "accepts_response_payload": false}``
(https://docs.slack.dev/apis/events-api/using-socket-mode; the same shape as the interactive envelopes
in python-slack-sdk's tests/slack_sdk/socket_mode/mock_socket_mode_server.py). The app must acknowledge
one (send back ``{"envelope_id": …}``) within 3 seconds; Slack does not redeliver an interaction, and
the clicking user sees an error instead (https://docs.slack.dev/interactivity/handling-user-interaction,
"Acknowledgment response"). So an interaction is delivered once, to the newest connection, and ends
``acked``, or ``failed`` with the reason: ``no_connection``, ``not_acknowledged`` (nothing within the
window) or ``late_ack`` (acked after it). The window is ``ack_timeout`` (scenario
``slack.ack_timeout_seconds``, default 3.0), shorter in tests.

The websocket server (the ``websockets`` library) starts on first use, on its own thread and event
loop, so importing or starting the sandbox costs nothing when Socket Mode is not used.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import threading
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from websockets.asyncio.server import Server, ServerConnection
    from websockets.http11 import Request, Response

    from harness.sandbox.scenario import SlackScenario

log = logging.getLogger(__name__)

HOST = "127.0.0.1"  # loopback only, like the HTTP server
_CALL_TIMEOUT = 10.0  # seconds a control call waits for the websocket thread


@dataclass
class Envelope:
    """One ``events_api`` envelope and its delivery state."""

    envelope_id: str
    payload: dict[str, Any]
    deliveries: int = 0
    acked: bool = False

    def summary(self) -> dict[str, Any]:
        event = self.payload["event"]
        return {
            "envelope_id": self.envelope_id,
            "event_id": self.payload["event_id"],
            "channel": event.get("channel"),
            "ts": event.get("ts"),
            "subtype": event.get("subtype"),
            "deliveries": self.deliveries,
            "acked": self.acked,
        }


@dataclass
class Interaction:
    """One ``interactive`` envelope and whether and when it was acknowledged."""

    envelope_id: str
    payload: dict[str, Any]
    ack_timeout: float
    created_at: float = field(default_factory=time.time)
    delivered_at: float | None = None  # wall clock
    delivered_mono: float | None = None
    acked_at: float | None = None
    ack_seconds: float | None = None
    ack_payload: Any = None
    failure: str | None = None  # no_connection | not_acknowledged | late_ack

    def status(self) -> str:
        """``pending`` (within the window), ``acked`` or ``failed``."""
        if self.failure is not None:
            return "failed"
        if self.acked_at is not None:
            return "acked"
        if self.delivered_mono is not None and time.monotonic() - self.delivered_mono > self.ack_timeout:
            self.failure = "not_acknowledged"
            return "failed"
        return "pending"

    def summary(self) -> dict[str, Any]:
        status = self.status()
        action = (self.payload.get("actions") or [{}])[0]
        container = self.payload.get("container") or {}
        return {
            "envelope_id": self.envelope_id,
            "type": self.payload.get("type"),
            "user": (self.payload.get("user") or {}).get("id"),
            "channel": container.get("channel_id"),
            "message_ts": container.get("message_ts"),
            "is_ephemeral": container.get("is_ephemeral"),
            "action_id": action.get("action_id"),
            "block_id": action.get("block_id"),
            "value": action.get("value"),
            "response_url": self.payload.get("response_url"),
            "created_at": self.created_at,
            "delivered": self.delivered_at is not None,
            "delivered_at": self.delivered_at,
            "acked": self.acked_at is not None,
            "acked_at": self.acked_at,
            "ack_seconds": self.ack_seconds,
            "ack_timeout": self.ack_timeout,
            "ack_payload": copy.deepcopy(self.ack_payload),
            "status": status,
            "failure": self.failure,
            # What Slack does when an app does not acknowledge: the user sees an error on the button.
            "user_saw_error": status == "failed",
        }


class SocketMode:
    """State and server of the emulated Socket Mode; every public method is thread-safe."""

    def __init__(self, scenario: SlackScenario) -> None:
        self.scenario = scenario
        self._lock = threading.Lock()
        self._envelopes: dict[str, Envelope] = {}  # insertion order = event order
        self._interactions: dict[str, Interaction] = {}
        self.ack_timeout = float(getattr(scenario, "ack_timeout_seconds", 3.0))
        self._tickets: set[str] = set()
        self._refuse_times = 0
        self._lose_acks = 0
        self._refuse_until = 0.0
        self._stats = {"connects": 0, "refused": 0, "stray_acks": 0, "lost_acks": 0}
        # Touched only on the websocket thread:
        self._ready: list[ServerConnection] = []
        self._closing: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Server | None = None
        self._port = 0

    # ---- lifecycle ---------------------------------------------------------------------------------

    def _ensure_started(self) -> int:
        with self._lock:
            if self._loop is not None:
                return self._port
            loop = asyncio.new_event_loop()
            started = threading.Event()
            failure: list[BaseException] = []

            def run() -> None:
                asyncio.set_event_loop(loop)
                try:
                    loop.run_until_complete(self._serve())
                except BaseException as exc:  # reported to the starting thread below
                    failure.append(exc)
                    started.set()
                    return
                started.set()
                loop.run_forever()

            thread = threading.Thread(target=run, name="credit-bot-sandbox-socket-mode", daemon=True)
            thread.start()
            started.wait(_CALL_TIMEOUT)
            if failure or self._server is None:
                raise RuntimeError(f"socket mode server did not start: {failure!r}")
            self._loop, self._thread = loop, thread
            return self._port

    async def _serve(self) -> None:
        from websockets.asyncio.server import serve

        # No server pings: the clients ping (slack_sdk does), and a silent test run must not time out.
        self._server = await serve(
            self._handle, HOST, 0, process_request=self._process_request, ping_interval=None
        )
        self._port = int(next(iter(self._server.sockets)).getsockname()[1])

    def stop(self) -> None:
        """Close every connection and the server; safe to call when it never started."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop, self._thread = None, None
        if loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(_CALL_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=5)
        loop.close()
        self._server, self._ready = None, []

    # ---- apps.connections.open ---------------------------------------------------------------------

    def open_url(self) -> str:
        """A fresh single-use websocket URL, as ``apps.connections.open`` returns it."""
        port = self._ensure_started()
        ticket = uuid.uuid4().hex
        with self._lock:
            self._tickets.add(ticket)
        return f"ws://{HOST}:{port}/link/?ticket={ticket}&app_id={self.scenario.app_id}"

    # ---- events ------------------------------------------------------------------------------------

    def publish(self, event: dict[str, Any]) -> str:
        """Queue an Events API ``event`` in an envelope and push it to a connected client, if any."""
        envelope_id = str(uuid.uuid4())
        s = self.scenario
        payload = {
            "token": "sandbox-verification-token",
            "team_id": s.team_id,
            "api_app_id": s.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": s.team_id,
                    "user_id": s.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        with self._lock:
            self._envelopes[envelope_id] = Envelope(envelope_id, payload)
            loop = self._loop
        if loop is not None:
            asyncio.run_coroutine_threadsafe(self._deliver_new(envelope_id), loop)
        return envelope_id

    def envelopes(self, unacked_only: bool = False) -> list[dict[str, Any]]:
        """Every envelope so far (oldest first) with its deliveries and whether it was acked."""
        with self._lock:
            return [e.summary() for e in self._envelopes.values() if not (unacked_only and e.acked)]

    def status(self) -> dict[str, Any]:
        """Open connections, accepted/refused connection counts, envelope counts (events_api in
        ``envelopes``/``unacked``, interactive in ``interactions``/``interactions_failed``)."""
        with self._lock:
            unacked = sum(1 for e in self._envelopes.values() if not e.acked)
            stats = dict(self._stats)
            total = len(self._envelopes)
            interactions = len(self._interactions)
            failed = sum(1 for i in self._interactions.values() if i.status() == "failed")
        connections = self._on_loop(self._count_ready) if self._loop is not None else 0
        return {
            **stats,
            "connections": connections,
            "envelopes": total,
            "unacked": unacked,
            "interactions": interactions,
            "interactions_failed": failed,
        }

    # ---- interactions ------------------------------------------------------------------------------

    def publish_interactive(self, payload: dict[str, Any]) -> str:
        """Send an interaction payload in an ``interactive`` envelope to the newest connection; returns
        its envelope_id once sent (or once it failed for want of a connection)."""
        envelope_id = str(uuid.uuid4())
        with self._lock:
            self._interactions[envelope_id] = Interaction(envelope_id, payload, self.ack_timeout)
            loop = self._loop
        if loop is None:
            with self._lock:
                self._interactions[envelope_id].failure = "no_connection"
            return envelope_id
        asyncio.run_coroutine_threadsafe(self._deliver_interactive(envelope_id), loop).result(_CALL_TIMEOUT)
        return envelope_id

    def set_ack_timeout(self, seconds: float) -> None:
        """The acknowledgement window of interactions sent from now on (Slack's is 3 seconds)."""
        if float(seconds) <= 0:
            raise ValueError("seconds must be positive")
        with self._lock:
            self.ack_timeout = float(seconds)

    def interactions(self) -> list[dict[str, Any]]:
        """Every interaction so far, oldest first (see Interaction.summary)."""
        with self._lock:
            return [i.summary() for i in self._interactions.values()]

    def interaction(self, envelope_id: str) -> dict[str, Any]:
        """One interaction's delivery and acknowledgement state; KeyError if unknown."""
        with self._lock:
            return self._interactions[envelope_id].summary()

    def interaction_payload(self, envelope_id: str) -> dict[str, Any]:
        """The payload that was sent in that interaction's envelope."""
        with self._lock:
            return copy.deepcopy(self._interactions[envelope_id].payload)

    def wait_interaction(self, envelope_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until the interaction is acked or failed (at most ``timeout``, default the ack window
        plus a second) and return its state; a still ``pending`` one comes back as it is."""
        deadline = time.monotonic() + (self.ack_timeout + 1.0 if timeout is None else float(timeout))
        while True:
            state = self.interaction(envelope_id)
            if state["status"] != "pending" or time.monotonic() >= deadline:
                return state
            time.sleep(0.02)

    # ---- faults ------------------------------------------------------------------------------------

    def refuse(self, times: int = 1, seconds: float | None = None) -> None:
        """Refuse the next ``times`` websocket handshakes (HTTP 503), or every one for ``seconds``."""
        with self._lock:
            if seconds is not None:
                self._refuse_until = time.monotonic() + float(seconds)
            else:
                if int(times) < 1:
                    raise ValueError("times must be at least 1")
                self._refuse_times += int(times)

    def lose_acks(self, times: int = 1) -> None:
        """Ignore the next ``times`` acknowledgements, as if they were lost on the way."""
        if int(times) < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._lose_acks += int(times)

    def disconnect(self, reason: str | None = None, abort: bool = False) -> int:
        """Drop every open connection; returns how many there were.

        ``reason`` (e.g. ``"refresh_requested"``) sends Slack's ``disconnect`` message and leaves the
        client to reconnect and close; otherwise the socket is closed (1001), or with ``abort`` the TCP
        connection is dropped without a close frame.
        """
        if self._loop is None:
            return 0
        return self._on_loop(lambda: self._disconnect(reason, abort))

    # ---- websocket thread --------------------------------------------------------------------------

    def _on_loop(self, make_coro: Any) -> Any:
        async def call() -> Any:
            result = make_coro()
            return await result if asyncio.iscoroutine(result) else result

        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(_CALL_TIMEOUT)

    def _count_ready(self) -> int:
        return len(self._ready)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        query = parse_qs(urlsplit(request.path).query)
        ticket = (query.get("ticket") or [""])[0]
        with self._lock:
            if self._refuse_times > 0 or time.monotonic() < self._refuse_until:
                self._refuse_times = max(0, self._refuse_times - 1)
                self._stats["refused"] += 1
                return connection.respond(503, "socket mode is refusing connections (sandbox fault)\n")
            if ticket not in self._tickets:
                return connection.respond(401, "invalid or already used ticket\n")
            self._tickets.discard(ticket)
            self._stats["connects"] += 1
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            hello = {
                "type": "hello",
                "num_connections": len(self._ready) + 1,
                "debug_info": {"host": "sandbox", "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.scenario.app_id},
            }
            await connection.send(json.dumps(hello))
            # Snapshot and registration with no await in between: an envelope published later is
            # pushed by its own _deliver_new; one published earlier is redelivered here.
            with self._lock:
                pending = [e for e in self._envelopes.values() if not e.acked]
            self._ready.append(connection)
            for envelope in pending:
                await self._send(connection, envelope)
            async for raw in connection:
                self._on_client_message(raw)
        except ConnectionClosed:
            pass
        finally:
            if connection in self._ready:
                self._ready.remove(connection)

    def _on_client_message(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            log.warning("socket mode client sent something that is not JSON")
            return
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        if not envelope_id:
            return
        with self._lock:
            envelope = self._envelopes.get(str(envelope_id))
            interaction = self._interactions.get(str(envelope_id))
            if interaction is not None:
                self._ack_interaction(interaction, message)
            elif envelope is None:
                self._stats["stray_acks"] += 1
            elif self._lose_acks > 0:
                self._lose_acks -= 1
                self._stats["lost_acks"] += 1
            else:
                envelope.acked = True

    def _ack_interaction(self, interaction: Interaction, message: dict[str, Any]) -> None:
        if self._lose_acks > 0:
            self._lose_acks -= 1
            self._stats["lost_acks"] += 1
            return
        if interaction.acked_at is not None or interaction.delivered_mono is None:
            self._stats["stray_acks"] += 1
            return
        elapsed = time.monotonic() - interaction.delivered_mono
        interaction.acked_at = time.time()
        interaction.ack_seconds = round(elapsed, 4)
        interaction.ack_payload = message.get("payload")
        if interaction.failure in (None, "not_acknowledged") and elapsed > interaction.ack_timeout:
            interaction.failure = "late_ack"  # still a failure: Slack already showed the user an error

    async def _deliver_interactive(self, envelope_id: str) -> None:
        from websockets.exceptions import ConnectionClosed

        with self._lock:
            interaction = self._interactions[envelope_id]
        if not self._ready:
            with self._lock:
                interaction.failure = "no_connection"
            return
        message = {
            "envelope_id": envelope_id,
            "payload": interaction.payload,
            "type": "interactive",
            "accepts_response_payload": False,
        }
        with self._lock:
            interaction.delivered_at = time.time()
            interaction.delivered_mono = time.monotonic()
        try:
            await self._ready[-1].send(json.dumps(message))
        except ConnectionClosed:
            with self._lock:
                interaction.failure = "no_connection"

    async def _deliver_new(self, envelope_id: str) -> None:
        with self._lock:
            envelope = self._envelopes.get(envelope_id)
        if envelope is None or envelope.deliveries or not self._ready:
            return  # already sent by a reconnect's redelivery, or nobody to send it to (yet)
        await self._send(self._ready[-1], envelope)

    async def _send(self, connection: ServerConnection, envelope: Envelope) -> None:
        from websockets.exceptions import ConnectionClosed

        with self._lock:
            if envelope.acked:
                return
            attempt = envelope.deliveries
            envelope.deliveries += 1
        message = {
            "envelope_id": envelope.envelope_id,
            "payload": envelope.payload,
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": attempt,
            "retry_reason": "timeout" if attempt else "",
        }
        # A send to a closing socket is not an error: the envelope stays unacked and is redelivered.
        with suppress(ConnectionClosed):
            await connection.send(json.dumps(message))

    async def _disconnect(self, reason: str | None, abort: bool) -> int:
        from websockets.exceptions import ConnectionClosed

        connections = list(self._ready)
        for connection in connections:
            # No new envelopes go to a connection being dropped; they wait for the next one.
            self._ready.remove(connection)
            if reason:
                message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "sandbox"}}
                with suppress(ConnectionClosed):
                    await connection.send(json.dumps(message))
                continue
            if abort:
                connection.transport.abort()
            else:
                # Not awaited: the closing handshake needs the client, which may be the very thread
                # blocked in this control call (a test driving an asyncio client).
                task = asyncio.get_running_loop().create_task(connection.close(1001, "sandbox disconnect"))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        return len(connections)
