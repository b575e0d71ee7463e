"""The Socket Mode event trigger (what fires, acks, reconnects, idle fallback) and the DAG-side helpers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.triggers.base import BaseEventTrigger

from credit_bot import events
from credit_bot.events import SlackSocketModeTrigger, classify, requests_from_asset_events, slack_asset
from harness.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
BASIC = ROOT / "include" / "sandbox" / "scenarios" / "basic.json"
CHANNEL = "C0CREDITTEST"
PARENT_TS = "1764000200.000300"  # "Credit request for Beta, link to follow" in basic.json
APP_TOKEN = "xapp-1-not-a-real-token"
LINK = "<https://credit-sandbox.cloud.looker.com/looks/123|$1>"
WAIT = 30.0  # generous: only ever reached when something is broken


# ---- classify: which message events fire ------------------------------------------------------------


def _msg(**fields: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "channel": CHANNEL,
        "user": "U0REQUESTER",
        "text": "hi",
        "ts": "1.000001",
        **fields,
    }


def _edit(old: str, new: str, *, edited: bool = True, **message: Any) -> dict[str, Any]:
    base = {"type": "message", "user": "U0REQUESTER", "ts": "1.000001", **message}
    changed = {
        **base,
        "text": new,
        **({"edited": {"user": "U0REQUESTER", "ts": "2.000001"}} if edited else {}),
    }
    return {
        "type": "message",
        "subtype": "message_changed",
        "channel": CHANNEL,
        "ts": "2.000001",
        "message": changed,
        "previous_message": {**base, "text": old},
    }


# Slack's unfurl of a link already in the post: message_changed with attachments, no "edited".
UNFURL = {
    "type": "message",
    "subtype": "message_changed",
    "hidden": True,
    "channel": CHANNEL,
    "ts": "2.000001",
    "message": {
        "type": "message",
        "user": "U0REQUESTER",
        "ts": "1.000001",
        "text": f"no link yet {LINK}",
        "attachments": [
            {
                "from_url": "https://credit-sandbox.cloud.looker.com/looks/123",
                "original_url": "https://credit-sandbox.cloud.looker.com/looks/123",
                "service_name": "Looker",
                "title": "Verify fraud spend",
            }
        ],
    },
    "previous_message": {"type": "message", "user": "U0REQUESTER", "ts": "1.000001", "text": "no link yet"},
}


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        pytest.param(_msg(), ("new", "1.000001", None), id="top-level-post"),
        pytest.param(_msg(subtype="file_share"), ("new", "1.000001", None), id="file-share"),
        # The trigger cannot read request_bots: another bot's top-level post starts a run that decides.
        pytest.param(_msg(bot_id="B0WORKFLOW"), ("new", "1.000001", None), id="other-bot-post"),
        pytest.param(_msg(bot_id="B0CREDITBOT", app_id="A0CREDITBOT"), None, id="own-post"),
        pytest.param(_msg(user="U0CREDITBOT", bot_id="B0CREDITBOT"), None, id="own-post-by-user-id"),
        pytest.param(UNFURL, None, id="unfurl-is-not-an-edit"),
        pytest.param(
            _edit("no link yet", f"here {LINK}", edited=False), None, id="changed-without-edited-is-no-edit"
        ),
        pytest.param(_msg(subtype="channel_join"), None, id="join"),
        pytest.param(_msg(subtype="channel_leave"), None, id="leave"),
        pytest.param(_msg(user=None), None, id="no-author"),
        pytest.param(_msg(channel="C0OTHER"), None, id="other-channel"),
        pytest.param(
            _msg(ts="3.000001", thread_ts="1.000001"), ("thread_reply", "3.000001", "1.000001"), id="reply"
        ),
        pytest.param(
            _msg(ts="3.000001", thread_ts="1.000001", subtype="thread_broadcast"),
            ("thread_reply", "3.000001", "1.000001"),
            id="reply-also-sent-to-channel",
        ),
        pytest.param(_msg(ts="3.000001", thread_ts="1.000001", bot_id="B0CREDITBOT"), None, id="bot-reply"),
        pytest.param(_edit("no link yet", f"here {LINK}"), ("edited", "1.000001", None), id="edit-adds-link"),
        pytest.param(_edit(f"a {LINK}", f"b {LINK}"), None, id="edit-keeps-link"),
        pytest.param(_edit("typo", "typo fixed"), None, id="edit-without-link"),
        pytest.param(
            _edit("x", f"x {LINK}", bot_id="B0X"), ("edited", "1.000001", None), id="other-bot-edit"
        ),
        pytest.param(
            _edit("x", f"x {LINK}", bot_id="B0CREDITBOT", app_id="A0CREDITBOT"), None, id="own-edit"
        ),
        pytest.param(
            _edit("x", f"x {LINK}", ts="3.000001", thread_ts="1.000001"),
            ("thread_reply", "3.000001", "1.000001"),
            id="edited-reply-adds-link",
        ),
        pytest.param({"type": "reaction_added", "channel": CHANNEL}, None, id="not-a-message"),
    ],
)
def test_classify(event: dict[str, Any], expected: tuple[str, str, str | None] | None) -> None:
    payload = classify(event, CHANNEL, bot_user_id="U0CREDITBOT", app_id="A0CREDITBOT")
    if expected is None:
        assert payload is None
    else:
        kind, ts, thread_ts = expected
        assert payload == {"channel": CHANNEL, "ts": ts, "kind": kind, "thread_ts": thread_ts}


def test_classify_without_a_channel_accepts_every_channel() -> None:
    assert classify(_msg(channel="C0OTHER"))["channel"] == "C0OTHER"


# ---- requests_from_asset_events ----------------------------------------------------------------------


def _asset_event(payload: dict[str, Any] | None) -> SimpleNamespace:
    """Shaped like the task context's AssetEventDagRunReferenceResult: only ``extra`` is read."""
    extra: dict[str, Any] = {"from_trigger": True}
    if payload is not None:
        extra["payload"] = payload
    return SimpleNamespace(extra=extra)


def test_requests_from_asset_events_dedups_and_names_top_level_requests() -> None:
    asset = slack_asset()
    triggering = {
        asset: [
            _asset_event({"channel": CHANNEL, "ts": "20.000001", "kind": "new", "thread_ts": None}),
            _asset_event({"channel": CHANNEL, "ts": "20.000001", "kind": "edited", "thread_ts": None}),
            _asset_event(
                {"channel": CHANNEL, "ts": "30.000001", "kind": "thread_reply", "thread_ts": "10.000001"}
            ),
            _asset_event(
                {"channel": CHANNEL, "ts": "31.000001", "kind": "thread_reply", "thread_ts": "10.000001"}
            ),
            _asset_event({"channel": "C0OTHER", "ts": "5.000001", "kind": "new", "thread_ts": None}),
            _asset_event(None),  # an event from somewhere else (manual, another DAG): no payload
            _asset_event({"ts": "1.000001"}),  # malformed
        ]
    }
    assert requests_from_asset_events(triggering, channel=CHANNEL) == [
        {"channel": CHANNEL, "ts": "10.000001"},
        {"channel": CHANNEL, "ts": "20.000001"},
    ]
    assert [r["channel"] for r in requests_from_asset_events(triggering)] == ["C0OTHER", CHANNEL, CHANNEL]


def test_requests_from_asset_events_carry_the_newest_message_and_none_for_thread_replies() -> None:
    new = _msg(ts="20.000001", text="request, link to follow")
    edited = {**new, "text": f"request {LINK}", "edited": {"user": "U0REQUESTER", "ts": "25.000001"}}
    parent = _msg(ts="10.000001", text="older request")
    triggering = [
        _asset_event({"channel": CHANNEL, "ts": "20.000001", "kind": "edited", "message": edited}),
        _asset_event({"channel": CHANNEL, "ts": "20.000001", "kind": "new", "message": new}),  # late
        _asset_event({"channel": CHANNEL, "ts": "10.000001", "kind": "new", "message": parent}),
        _asset_event(
            {"channel": CHANNEL, "ts": "30.000001", "kind": "thread_reply", "thread_ts": "10.000001"}
        ),
        _asset_event({"channel": CHANNEL, "ts": "40.000001", "kind": "new"}),  # too large to carry
    ]
    assert requests_from_asset_events(triggering, channel=CHANNEL) == [
        # a reply came after: the run reads the parent, whose reply counters say to look at the thread
        {"channel": CHANNEL, "ts": "10.000001"},
        {"channel": CHANNEL, "ts": "20.000001", "message": edited},
        {"channel": CHANNEL, "ts": "40.000001"},
    ]


@pytest.mark.parametrize(
    ("event", "carried"),
    [
        pytest.param(_msg(blocks=[{"type": "rich_text"}]), True, id="new-post-with-blocks"),
        pytest.param(
            {
                "type": "message",
                "subtype": "message_changed",
                "channel": CHANNEL,
                "message": _msg(text=f"now {LINK}", edited={"user": "U0REQUESTER", "ts": "2.0"}),
                "previous_message": _msg(),
            },
            True,
            id="edit",
        ),
        pytest.param(_msg(text="x" * 40_000), False, id="too-large-read-by-the-run"),
        pytest.param(_msg(ts="3.000001", thread_ts="1.000001"), False, id="thread-reply"),
    ],
)
def test_carry_message(event: dict[str, Any], carried: bool) -> None:
    payload = classify(event, CHANNEL)
    assert payload is not None
    out = events.carry_message(payload, event)
    assert {k: v for k, v in out.items() if k != "message"} == payload
    if not carried:
        assert "message" not in out
        return
    message = event.get("message") or event
    assert out["message"] == {k: v for k, v in message.items() if k != "channel"}
    assert len(json.dumps(out)) <= events.MAX_CARRIED_BYTES + 200


@pytest.mark.parametrize(
    "triggering",
    [pytest.param(None, id="none"), pytest.param({}, id="cron-run"), pytest.param([], id="empty-list")],
)
def test_requests_from_no_asset_events(triggering: Any) -> None:
    assert requests_from_asset_events(triggering) == []


def test_requests_from_plain_extra_dicts() -> None:
    extras = [
        {"extra": {"payload": {"channel": CHANNEL, "ts": "2.000001", "kind": "new", "thread_ts": None}}}
    ]
    assert requests_from_asset_events(extras) == [{"channel": CHANNEL, "ts": "2.000001"}]


# ---- the trigger as Airflow sees it ------------------------------------------------------------------


def test_trigger_serializes_to_an_importable_classpath_and_stable_hash() -> None:
    trigger = SlackSocketModeTrigger(channel=CHANNEL, backoff_max_seconds=30)
    classpath, kwargs = trigger.serialize()
    assert classpath == "credit_bot.events.SlackSocketModeTrigger"
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(__import__(module, fromlist=[name]), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert BaseEventTrigger.hash(classpath, kwargs) == BaseEventTrigger.hash(*rebuilt.serialize())
    other = SlackSocketModeTrigger(channel="C0OTHER").serialize()
    assert BaseEventTrigger.hash(classpath, kwargs) != BaseEventTrigger.hash(*other)


def test_slack_asset_is_watched_by_the_trigger() -> None:
    asset = slack_asset(CHANNEL)
    assert asset.name == events.SLACK_ASSET_NAME
    [watcher] = asset.watchers
    assert watcher.name == events.WATCHER_NAME
    assert isinstance(watcher.trigger, SlackSocketModeTrigger)
    assert watcher.trigger.channel == CHANNEL
    assert watcher.trigger.slack_conn_id == "slack_app_default"


# ---- the trigger against the sandbox -----------------------------------------------------------------


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A running sandbox whose app-level token is the one in AIRFLOW_CONN_SLACK_APP_DEFAULT."""
    data = json.loads(BASIC.read_text(encoding="utf-8"))
    data["slack"]["app_token"] = APP_TOKEN
    with Sandbox.from_dict(data, base_dir=BASIC.parent) as sb:
        conn = {"conn_type": "slack", "password": APP_TOKEN, "extra": {"base_url": sb.slack_base_url}}
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_APP_DEFAULT", json.dumps(conn))
        yield sb


def fast_trigger(**kwargs: Any) -> SlackSocketModeTrigger:
    """Short delays so reconnects happen quickly in tests (production defaults are seconds to minutes)."""
    options = {
        "channel": CHANNEL,
        "backoff_base_seconds": 0.05,
        "backoff_max_seconds": 0.5,
        "idle_recheck_seconds": 0.05,
        "ping_interval": 1.0,
        "connect_timeout": 10.0,
    }
    return SlackSocketModeTrigger(**{**options, **kwargs})


async def until(check: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class Running:
    """A trigger's run() being consumed the way the triggerer does, one event at a time."""

    def __init__(self, trigger: SlackSocketModeTrigger) -> None:
        self.stream: AsyncIterator[Any] = trigger.run()
        self.pending: asyncio.Future[Any] = asyncio.ensure_future(anext(self.stream))

    async def next(self) -> dict[str, Any]:
        event = await asyncio.wait_for(self.pending, WAIT)
        self.pending = asyncio.ensure_future(anext(self.stream))
        return event.payload

    async def close(self) -> None:
        self.pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.pending
        await self.stream.aclose()


def drive(body: Callable[[Running], Any], trigger: SlackSocketModeTrigger | None = None) -> None:
    async def main() -> None:
        running = Running(trigger or fast_trigger())
        try:
            await body(running)
        finally:
            await running.close()

    asyncio.run(main())


def test_trigger_fires_for_requests_edits_and_replies_and_acks_everything(sandbox: Sandbox) -> None:
    async def body(running: Running) -> None:
        await until(lambda: sandbox.socket_status()["connections"] == 1, "the trigger to connect")
        sandbox.add_message(CHANNEL, "<@U0OPERATOR> has joined", user="U0OPERATOR", subtype="channel_join")
        # Another app's post may be a workflow form in request_bots: the run decides.
        notice = sandbox.add_message(CHANNEL, "automated notice", user=None, bot_id="B0OTHERAPP")
        assert (await running.next())["ts"] == notice
        first = sandbox.add_message(CHANNEL, "Credit request for Gamma, link to follow")
        fired = await running.next()
        carried = fired.pop("message")
        assert fired == {"channel": CHANNEL, "ts": first, "kind": "new", "thread_ts": None}
        # The run works on the message as the event carried it: nothing to read back from Slack.
        assert (carried["ts"], carried["user"]) == (first, "U0REQUESTER")
        assert carried["text"] == "Credit request for Gamma, link to follow"
        assert "channel" not in carried
        assert "edited" not in carried
        # Slack's link preview a moment later: message_changed without "edited" fires nothing.
        sandbox.unfurl(CHANNEL, first, {"from_url": "https://example.com/", "title": "preview"})

        sandbox.edit_message(CHANNEL, first, "Credit request for Gamma, link to follow (typo)")
        sandbox.edit_message(CHANNEL, first, f"Credit request for Gamma {LINK}")
        fired = await running.next()
        carried = fired.pop("message")
        assert fired == {"channel": CHANNEL, "ts": first, "kind": "edited", "thread_ts": None}
        assert carried["text"] == f"Credit request for Gamma {LINK}"
        assert carried["ts"] == first
        assert carried["edited"]["user"] == "U0REQUESTER"

        sandbox.add_message(
            CHANNEL, "I am the bot", user="U0CREDITBOT", bot_id="B0CREDITBOT", thread_ts=PARENT_TS
        )
        reply = sandbox.add_message(CHANNEL, f"here: {LINK}", thread_ts=PARENT_TS)
        assert await running.next() == {
            "channel": CHANNEL,
            "ts": reply,
            "kind": "thread_reply",
            "thread_ts": PARENT_TS,
        }

        await until(lambda: sandbox.socket_status()["unacked"] == 0, "every envelope acked")

    drive(body)
    envelopes = sandbox.socket_envelopes()
    assert len(envelopes) == 8  # every event was pushed, the trigger fired for four
    assert all(e["acked"] for e in envelopes)


def test_bot_replies_posted_through_the_web_api_fire_nothing(sandbox: Sandbox) -> None:
    from slack_sdk import WebClient

    slack = WebClient(token=sandbox.slack_token, base_url=sandbox.slack_base_url)

    async def body(running: Running) -> None:
        await asyncio.to_thread(slack.chat_postMessage, channel=CHANNEL, text="Approved", thread_ts=PARENT_TS)
        await asyncio.to_thread(slack.chat_postMessage, channel=CHANNEL, text="a bot post")
        last = sandbox.add_message(CHANNEL, "Credit request for Eta")
        assert (await running.next())["ts"] == last

    drive(body)


@pytest.mark.parametrize(
    "disconnect",
    [
        pytest.param({}, id="close-frame"),
        pytest.param({"abort": True}, id="tcp-drop"),
        pytest.param({"reason": "refresh_requested"}, id="refresh-requested"),
    ],
)
def test_disconnect_loses_nothing(sandbox: Sandbox, disconnect: dict[str, Any]) -> None:
    async def body(running: Running) -> None:
        before = sandbox.add_message(CHANNEL, "Credit request before")
        assert (await running.next())["ts"] == before
        sandbox.socket_refuse(times=2)  # the first reconnects fail too: backoff, then success
        assert sandbox.socket_disconnect(**disconnect) == 1
        during = sandbox.add_message(CHANNEL, "Credit request during the outage")
        assert (await running.next())["ts"] == during
        after = sandbox.add_message(CHANNEL, "Credit request after")
        assert (await running.next())["ts"] == after
        await until(lambda: sandbox.socket_status()["unacked"] == 0, "every envelope acked")

    drive(body)
    assert sandbox.socket_status()["connects"] >= 2


def test_reconnects_after_connections_open_fails(sandbox: Sandbox) -> None:
    async def body(running: Running) -> None:
        await until(lambda: sandbox.socket_status()["connections"] == 1, "the trigger to connect")
        sandbox.inject("slack", "apps.connections.open", "server_error", times=3)
        sandbox.socket_disconnect()
        ts = sandbox.add_message(CHANNEL, "Credit request while Slack is down")
        assert (await running.next())["ts"] == ts

    drive(body)
    statuses = [c["status"] for c in sandbox.calls(api="slack", method="apps.connections.open")]
    assert statuses == [200, 500, 500, 500, 200]


def test_redelivered_event_fires_once(sandbox: Sandbox) -> None:
    """An envelope whose ack was lost comes again with retry_attempt 1; the trigger passes it on once."""

    async def body(running: Running) -> None:
        sandbox.socket_lose_acks(1)
        first = sandbox.add_message(CHANNEL, "Credit request one")
        assert (await running.next())["ts"] == first
        await until(lambda: sandbox.socket_status()["lost_acks"] == 1, "the ack to be lost")
        sandbox.socket_disconnect()
        await until(lambda: sandbox.socket_status()["unacked"] == 0, "the redelivery to be acked")
        second = sandbox.add_message(CHANNEL, "Credit request two")
        assert (await running.next())["ts"] == second  # not the redelivered first one

    drive(body)
    assert [e["deliveries"] for e in sandbox.socket_envelopes()] == [2, 1]


@pytest.mark.parametrize(
    ("conn", "says"),
    [
        pytest.param(None, "No usable Airflow connection 'slack_app_default'", id="missing"),
        pytest.param(
            {"conn_type": "slack", "password": "xoxb-not-a-real-token"},
            "does not hold an app-level token",
            id="bot-token",
        ),
        pytest.param(
            {"conn_type": "slack", "password": "xapp-1-wrong-not-a-real-token"},
            "invalid_auth",
            id="revoked-token",
        ),
    ],
)
def test_unusable_connection_idles_and_logs_once(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    conn: dict | None,
    says: str,
) -> None:
    if conn is None:
        monkeypatch.delenv("AIRFLOW_CONN_SLACK_APP_DEFAULT")
    else:
        conn["extra"] = {"base_url": sandbox.slack_base_url}
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_APP_DEFAULT", json.dumps(conn))
    output: list[str] = []

    def logged() -> str:  # Airflow's structlog writes the trigger's log to stdout
        output.append(capfd.readouterr().out)
        return "".join(output)

    async def body(running: Running) -> None:
        await until(lambda: says in logged(), "the problem to be logged")
        opened = len(sandbox.calls(method="apps.connections.open"))
        await asyncio.sleep(0.5)  # ten re-checks at 0.05 s: none may log again or end the trigger
        assert not running.pending.done()
        if conn is not None and conn["password"].startswith("xapp-"):
            assert len(sandbox.calls(method="apps.connections.open")) > opened  # it does look again

    drive(body)
    text = logged()
    assert text.count(says) == 1
    assert "cron schedule" in text  # the message says what still works
    assert "not-a-real-token" not in text  # the token itself is never logged
    assert sandbox.socket_status()["connects"] == 0
