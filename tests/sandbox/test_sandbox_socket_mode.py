"""The sandbox's Socket Mode, driven by the real slack_sdk socket-mode client (aiohttp flavour)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from harness.sandbox import Sandbox, SandboxClient

CHANNEL = "C0CREDITTEST"
PARENT_TS = "1764000200.000300"  # "Credit request for Beta, link to follow" in basic.json
WAIT = 30.0  # generous: only ever reached when something is broken


async def until(check: Callable[[], bool], what: str) -> None:
    """Wait (polling) until ``check()`` holds; fail naming ``what`` after WAIT seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class Recorder:
    """A socket-mode request listener that records envelopes and acks them unless told not to."""

    def __init__(self, ack: Callable[[SocketModeRequest], bool] = lambda request: True) -> None:
        self.requests: list[SocketModeRequest] = []
        self.ack = ack

    async def __call__(self, client: SocketModeClient, request: SocketModeRequest) -> None:
        self.requests.append(request)
        if self.ack(request):
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))

    def events(self) -> list[dict[str, Any]]:
        return [r.payload["event"] for r in self.requests]


def run_client(sb: Sandbox, recorder: Recorder, body: Callable[[SocketModeClient], Awaitable[None]]) -> None:
    """Connect a real SocketModeClient (auto-reconnect on, 1 s pings) to ``sb`` and run ``body``."""

    async def main() -> None:
        web = AsyncWebClient(token=sb.slack_app_token, base_url=sb.slack_base_url)
        client = SocketModeClient(app_token=sb.slack_app_token, web_client=web, ping_interval=1)
        client.socket_mode_request_listeners.append(recorder)
        try:
            await client.connect()
            await body(client)
        finally:
            await client.close()

    asyncio.run(main())


def test_connections_open_takes_the_app_token_only(sandbox: Sandbox, slack: WebClient) -> None:
    app = WebClient(token=sandbox.slack_app_token, base_url=sandbox.slack_base_url)
    url = app.apps_connections_open(app_token=sandbox.slack_app_token)["url"]
    assert url.startswith("ws://127.0.0.1:")
    assert "ticket=" in url
    assert app.apps_connections_open(app_token=sandbox.slack_app_token)["url"] != url  # single-use URLs

    with pytest.raises(SlackApiError) as bot_token:
        slack.apps_connections_open(app_token=sandbox.slack_token)
    assert bot_token.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as app_token_elsewhere:
        app.chat_postMessage(channel=CHANNEL, text="hi")
    assert app_token_elsewhere.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as wrong:
        app.apps_connections_open(app_token="xapp-1-not-the-sandbox-token")
    assert wrong.value.response["error"] == "invalid_auth"


def test_message_events_are_pushed_and_acked(sandbox: Sandbox, slack: WebClient) -> None:
    recorder = Recorder()

    async def body(client: SocketModeClient) -> None:
        ts = sandbox.add_message(CHANNEL, "Credit request for Gamma")
        sandbox.add_message(CHANNEL, "<@U0OPERATOR> has joined", user="U0OPERATOR", subtype="channel_join")
        sandbox.edit_message(
            CHANNEL, ts, "Credit request for Gamma <https://credit-sandbox.cloud.looker.com/looks/1>"
        )
        sandbox.add_message(CHANNEL, "here it is", thread_ts=PARENT_TS)
        await asyncio.to_thread(slack.chat_postMessage, channel=CHANNEL, text="Approved", thread_ts=ts)
        await until(lambda: len(recorder.requests) == 5, "five envelopes")
        await until(lambda: sandbox.socket_status()["unacked"] == 0, "every envelope acked")

    run_client(sandbox, recorder, body)
    events = recorder.events()
    assert [(e.get("subtype"), e["channel"]) for e in events] == [
        (None, CHANNEL),
        ("channel_join", CHANNEL),
        ("message_changed", CHANNEL),
        (None, CHANNEL),
        (None, CHANNEL),
    ]
    assert "looks/1" in events[2]["message"]["text"]
    assert "looks/1" not in events[2]["previous_message"]["text"]
    assert events[3]["thread_ts"] == PARENT_TS
    assert events[4]["bot_id"] == "B0CREDITBOT"
    assert all(r.type == "events_api" and r.retry_attempt == 0 for r in recorder.requests)
    assert {e["acked"] for e in sandbox.socket_envelopes()} == {True}
    assert sandbox.socket_status()["stray_acks"] == 0


@pytest.mark.parametrize("abort", [pytest.param(False, id="close-frame"), pytest.param(True, id="tcp-drop")])
def test_unacked_envelope_is_redelivered_after_reconnect(sandbox: Sandbox, abort: bool) -> None:
    # The first delivery is not acked, as if the app crashed while handling it.
    recorder = Recorder(ack=lambda request: request.retry_attempt > 0)

    async def body(client: SocketModeClient) -> None:
        ts = sandbox.add_message(CHANNEL, "Credit request for Delta")
        await until(lambda: len(recorder.requests) == 1, "the first delivery")
        assert sandbox.socket_disconnect(abort=abort) == 1
        await until(lambda: len(recorder.requests) == 2, "the redelivery")
        await until(lambda: sandbox.socket_status()["unacked"] == 0, "the redelivery acked")
        assert recorder.requests[1].payload["event"]["ts"] == ts

    run_client(sandbox, recorder, body)
    first, again = recorder.requests
    assert first.envelope_id == again.envelope_id
    assert (again.retry_attempt, again.retry_reason) == (1, "timeout")
    assert sandbox.socket_status()["connects"] == 2
    assert sandbox.socket_envelopes()[0]["deliveries"] == 2


def test_refresh_requested_makes_the_client_reconnect(sandbox: Sandbox) -> None:
    recorder = Recorder()

    async def body(client: SocketModeClient) -> None:
        assert sandbox.socket_disconnect(reason="refresh_requested") == 1
        await until(lambda: sandbox.socket_status()["connects"] == 2, "a second connection")
        await until(lambda: sandbox.socket_status()["connections"] == 1, "the old connection closed")
        sandbox.add_message(CHANNEL, "after the refresh")
        await until(lambda: len(recorder.requests) == 1, "the event on the new connection")

    run_client(sandbox, recorder, body)
    assert recorder.events()[0]["text"] == "after the refresh"


def test_refused_handshakes_then_connection(sandbox: Sandbox) -> None:
    recorder = Recorder()
    sandbox.socket_refuse(times=2)
    sandbox.add_message(CHANNEL, "posted while nobody was connected")

    async def body(client: SocketModeClient) -> None:
        await until(lambda: len(recorder.requests) == 1, "the queued event")

    run_client(sandbox, recorder, body)  # slack_sdk retries the handshake by itself
    status = sandbox.socket_status()
    assert (status["refused"], status["connects"], status["unacked"]) == (2, 1, 0)
    assert recorder.requests[0].retry_attempt == 0  # never delivered before, so not a retry


def test_socket_mode_control_over_http(sandbox: Sandbox) -> None:
    control = SandboxClient(sandbox.url)
    recorder = Recorder()

    def status() -> dict[str, Any]:
        return control.socket_status()

    async def body(client: SocketModeClient) -> None:
        await asyncio.to_thread(control.socket_lose_acks, 1)
        await asyncio.to_thread(control.add_message, CHANNEL, "via the control API")
        await until(lambda: len(recorder.requests) == 1, "the event")
        await until(lambda: status()["lost_acks"] == 1, "the ack to be lost")
        assert (status()["connections"], status()["unacked"]) == (1, 1)
        pending = await asyncio.to_thread(control.socket_envelopes, True)
        assert [e["envelope_id"] for e in pending] == [recorder.requests[0].envelope_id]
        await asyncio.to_thread(control.socket_refuse, 1)
        assert await asyncio.to_thread(control.socket_disconnect) == 1
        await until(lambda: len(recorder.requests) == 2, "the redelivery after a refused handshake")
        await until(lambda: status()["unacked"] == 0, "the redelivery acked")

    run_client(sandbox, recorder, body)
    assert sandbox.socket_status()["refused"] == 1
    assert recorder.requests[1].retry_attempt == 1
