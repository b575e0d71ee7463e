"""The sandbox's lifecycle, its HTTP control API (for other processes) and its command line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from harness.sandbox import Sandbox, SandboxClient, SandboxControlError

REPO = Path(__file__).resolve().parents[2]
BASIC = REPO / "include" / "sandbox" / "scenarios" / "basic.json"
CHANNEL = "C0CREDITTEST"


def test_context_manager_binds_loopback_and_releases_the_port() -> None:
    sb = Sandbox.from_scenario(BASIC)
    with pytest.raises(RuntimeError):
        _ = sb.url
    with sb:
        assert sb.url.startswith("http://127.0.0.1:")
        assert sb.slack_base_url == f"{sb.url}/slack/api/"
        assert sb.looker_base_url == f"{sb.url}/looker"
        assert requests.get(f"{sb.url}/_sandbox/health", timeout=5).json()["ok"] is True
        port = sb.port
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=2)


def test_control_api_over_http(sandbox: Sandbox) -> None:
    control = SandboxClient(sandbox.url)
    slack = WebClient(token=sandbox.slack_token, base_url=sandbox.slack_base_url)

    ts = control.add_message(CHANNEL, "Fraud spend: <https://credit-sandbox.cloud.looker.com/looks/123|$1>")
    assert slack.conversations_history(channel=CHANNEL, limit=1)["messages"][0]["ts"] == ts
    control.edit_message(CHANNEL, ts, "edited text")
    assert slack.conversations_history(channel=CHANNEL, limit=1)["messages"][0]["edited"]

    control.inject("slack", "chat.postMessage", "slack_error", error="msg_too_long")
    with pytest.raises(SlackApiError):
        slack.chat_postMessage(channel=CHANNEL, text="first try", thread_ts=ts)
    slack.chat_postMessage(channel=CHANNEL, text="Approved, $1.00, exceptions", thread_ts=ts)

    assert [(p["text"], p["thread_ts"]) for p in control.posts(CHANNEL)] == [
        ("Approved, $1.00, exceptions", ts)
    ]
    assert [c["status"] for c in control.calls(api="slack", method="chat.postMessage")] == [200, 200]
    assert control.calls(method="chat.postMessage")[0]["params"]["text"] == "first try"
    assert control.expire_looker_tokens() == 0
    control.delete_message(CHANNEL, ts)  # it has the bot's reply, so Slack keeps a tombstone
    assert slack.conversations_history(channel=CHANNEL, limit=1)["messages"][0]["subtype"] == "tombstone"
    control.reset_calls()
    assert sandbox.calls() == []


@pytest.mark.parametrize(
    ("verb", "path", "body", "status"),
    [
        pytest.param("GET", "/_sandbox/nope", None, 404, id="unknown-endpoint"),
        pytest.param(
            "POST", "/_sandbox/faults", {"api": "slack", "method": "*", "kind": "boom"}, 400, id="bad-kind"
        ),
        pytest.param("POST", "/_sandbox/messages", {"text": "no channel"}, 400, id="missing-channel"),
        pytest.param(
            "POST", "/_sandbox/messages", {"channel": "C0NOPE", "text": "x"}, 400, id="unknown-channel"
        ),
    ],
)
def test_control_api_rejects_bad_requests(
    sandbox: Sandbox, verb: str, path: str, body: dict[str, str] | None, status: int
) -> None:
    resp = requests.request(verb, f"{sandbox.url}{path}", json=body, timeout=5)
    assert resp.status_code == status
    assert resp.json()["ok"] is False


def test_control_client_raises_on_refusal(sandbox: Sandbox) -> None:
    with pytest.raises(SandboxControlError):
        SandboxClient(sandbox.url).inject("looker", "*", "slack_error")


def test_inject_rejects_unknown_api_and_kind(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="unknown api"):
        sandbox.inject("zendesk", "*", "reset")
    with pytest.raises(ValueError, match="fault kind"):
        sandbox.inject("slack", "*", "unauthorized")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_serves_on_the_given_port_until_sigterm() -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "plugins")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.sandbox", "--scenario", str(BASIC), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        second = proc.stdout.readline()
        assert first.split() == ["Slack", "base", "URL:", f"http://127.0.0.1:{port}/slack/api/"]
        assert second.split() == ["Looker", "base", "URL:", f"http://127.0.0.1:{port}/looker"]
        slack = WebClient(token="xoxb-sandbox-fake-token", base_url=f"http://127.0.0.1:{port}/slack/api/")
        assert slack.auth_test()["user_id"] == "U0CREDITBOT"
    finally:
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""


def test_cli_rejects_a_missing_scenario(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "plugins")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.sandbox",
            "--scenario",
            str(tmp_path / "nope.json"),
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "cannot read scenario" in result.stderr
