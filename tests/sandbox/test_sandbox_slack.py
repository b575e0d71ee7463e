"""The Slack half of the sandbox, driven through the real slack_sdk WebClient over HTTP."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.client import RemoteDisconnected
from typing import Any
from urllib.error import URLError

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from harness.sandbox import Sandbox

CHANNEL = "C0CREDITTEST"
PARENT_TS = "1764000000.000100"  # seeded thread parent with one reply
REPLY_TS = "1764000050.000100"
TOP_LEVEL = ["1764000400.000500", "1764000300.000400", "1764000200.000300", "1764000100.000200", PARENT_TS]
FAST_RETRY = FixedValueRetryIntervalCalculator(fixed_internal=0.01)


def client(sb: Sandbox, **kwargs: Any) -> WebClient:
    return WebClient(token=sb.slack_token, base_url=sb.slack_base_url, **kwargs)


def history_ts(slack: WebClient, **kwargs: Any) -> list[str]:
    return [m["ts"] for m in slack.conversations_history(channel=CHANNEL, **kwargs)["messages"]]


# ---- auth --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "error"),
    [
        pytest.param(None, "not_authed", id="missing"),
        pytest.param("xoxb-not-the-sandbox-token", "invalid_auth", id="wrong"),
    ],
)
def test_bad_token_raises_slack_api_error(sandbox: Sandbox, token: str | None, error: str) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        WebClient(token=token, base_url=sandbox.slack_base_url).conversations_history(channel=CHANNEL)
    assert excinfo.value.response["error"] == error


def test_auth_test_identifies_the_bot(slack: WebClient) -> None:
    data = slack.auth_test().data
    assert data["user_id"] == "U0CREDITBOT"
    assert data["bot_id"] == "B0CREDITBOT"
    assert data["team_id"] == "T0SANDBOX"
    assert data["url"] == "https://credit-sandbox.slack.com/"


# ---- conversations.history ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "max_page_size", "page_sizes"),
    [
        pytest.param(10, None, [10, 10, 10, 10], id="limit-10"),
        pytest.param(100, 15, [15, 15, 10], id="capped-by-max-page-size"),
        pytest.param(7, 15, [7, 7, 7, 7, 7, 5], id="limit-below-cap"),
    ],
)
def test_history_paginates_with_cursor(
    make_sandbox: Callable[..., Sandbox], limit: int, max_page_size: int | None, page_sizes: list[int]
) -> None:
    sb = make_sandbox(slack={"max_page_size": max_page_size})
    channel = "C0PRODMEMOS"
    posted = [sb.add_message(channel, f"request {i}") for i in range(40)]

    # SlackResponse iterates by replacing its own .data, so keep each page's data as it goes by.
    pages = [page.data for page in client(sb).conversations_history(channel=channel, limit=limit)]

    assert [len(p["messages"]) for p in pages] == page_sizes
    assert [p["has_more"] for p in pages] == [True] * (len(pages) - 1) + [False]
    assert pages[-1]["response_metadata"]["next_cursor"] == ""
    seen = [m["ts"] for p in pages for m in p["messages"]]
    assert seen == list(reversed(posted))  # newest first, nothing lost or repeated
    assert len(sb.calls(method="conversations.history")) == len(page_sizes)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({}, TOP_LEVEL, id="everything-newest-first"),
        pytest.param({"oldest": TOP_LEVEL[3]}, TOP_LEVEL[:3], id="oldest-exclusive"),
        pytest.param({"oldest": TOP_LEVEL[3], "inclusive": True}, TOP_LEVEL[:4], id="oldest-inclusive"),
        pytest.param({"latest": TOP_LEVEL[1]}, TOP_LEVEL[2:], id="latest-exclusive"),
        pytest.param(
            {"oldest": TOP_LEVEL[3], "latest": TOP_LEVEL[1], "inclusive": True},
            TOP_LEVEL[1:4],
            id="window-inclusive",
        ),
        pytest.param({"oldest": TOP_LEVEL[3], "latest": TOP_LEVEL[1]}, TOP_LEVEL[2:3], id="window-exclusive"),
    ],
)
def test_history_bounds(slack: WebClient, kwargs: dict[str, Any], expected: list[str]) -> None:
    assert history_ts(slack, **kwargs) == expected


def test_history_shows_threads_edits_deletes_like_slack(sandbox: Sandbox, slack: WebClient) -> None:
    sandbox.edit_message(CHANNEL, TOP_LEVEL[2], "Credit request for Beta, link: <https://x/looks/1>")
    sandbox.delete_message(CHANNEL, TOP_LEVEL[0])
    broadcast = sandbox.add_message(
        CHANNEL, "also to channel", thread_ts=PARENT_TS, subtype="thread_broadcast"
    )

    messages = {m["ts"]: m for m in slack.conversations_history(channel=CHANNEL)["messages"]}

    assert TOP_LEVEL[0] not in messages  # deleted
    assert REPLY_TS not in messages  # plain thread replies stay in the thread
    assert broadcast in messages
    parent = messages[PARENT_TS]
    assert parent["thread_ts"] == PARENT_TS
    assert parent["reply_count"] == 2
    assert parent["latest_reply"] == broadcast
    edited = messages[TOP_LEVEL[2]]
    assert edited["text"].endswith("<https://x/looks/1>")
    assert edited["edited"]["user"] == "U0REQUESTER"
    assert float(edited["edited"]["ts"]) > float(TOP_LEVEL[2])
    assert messages[TOP_LEVEL[3]]["subtype"] == "channel_join"


def test_deleting_a_thread_parent_leaves_a_tombstone(sandbox: Sandbox, slack: WebClient) -> None:
    sandbox.delete_message(CHANNEL, PARENT_TS)
    parent = next(m for m in slack.conversations_history(channel=CHANNEL)["messages"] if m["ts"] == PARENT_TS)
    assert parent["subtype"] == "tombstone"
    assert parent["reply_count"] == 1


# ---- conversations.replies ---------------------------------------------------------------------------


def test_replies_parent_first_then_ascending_pages(sandbox: Sandbox) -> None:
    replies = [sandbox.add_message(CHANNEL, f"reply {i}", thread_ts=PARENT_TS) for i in range(5)]

    pages = [
        page.data for page in client(sandbox).conversations_replies(channel=CHANNEL, ts=PARENT_TS, limit=2)
    ]

    assert [len(p["messages"]) for p in pages] == [2, 2, 2, 1]
    seen = [m["ts"] for p in pages for m in p["messages"]]
    assert seen == [PARENT_TS, REPLY_TS, *replies]
    assert all(m["thread_ts"] == PARENT_TS for p in pages for m in p["messages"])


# ---- chat.postMessage --------------------------------------------------------------------------------


def test_post_in_thread_with_metadata_reads_back(sandbox: Sandbox, slack: WebClient) -> None:
    metadata = {
        "event_type": "credit_bot_reply",
        "event_payload": {"message_ts": PARENT_TS, "amount": "4948.80"},
    }

    resp = slack.chat_postMessage(
        channel=CHANNEL, text="Approved, $4,948.80, exceptions", thread_ts=PARENT_TS, metadata=metadata
    )

    ts = resp["ts"]
    assert resp["channel"] == CHANNEL
    assert resp["message"]["bot_id"] == "B0CREDITBOT"
    assert "subtype" not in resp["message"]
    with_meta = slack.conversations_replies(channel=CHANNEL, ts=PARENT_TS, include_all_metadata=True)
    posted = next(m for m in with_meta["messages"] if m["ts"] == ts)
    assert posted["metadata"] == metadata
    assert posted["user"] == "U0CREDITBOT"
    without = slack.conversations_replies(channel=CHANNEL, ts=PARENT_TS)["messages"]
    assert "metadata" not in next(m for m in without if m["ts"] == ts)
    parent = next(m for m in slack.conversations_history(channel=CHANNEL)["messages"] if m["ts"] == PARENT_TS)
    assert parent["reply_count"] == 2
    expected_post = {
        "channel": CHANNEL,
        "ts": ts,
        "text": "Approved, $4,948.80, exceptions",
        "thread_ts": PARENT_TS,
        "metadata": metadata,
    }
    assert sandbox.posts(CHANNEL) == [expected_post]
    assert sandbox.calls(method="chat.postMessage")[0]["params"]["thread_ts"] == PARENT_TS


def ts_key(ts: str) -> tuple[int, int]:
    seconds, micros = ts.split(".")
    return int(seconds), int(micros)


def test_a_reply_to_a_deleted_parent_is_posted_unthreaded(sandbox: Sandbox, slack: WebClient) -> None:
    """Slack documents no error for it: the post succeeds as a top-level message without thread_ts."""
    parent = sandbox.add_message(CHANNEL, "credit please, then deleted")
    sandbox.delete_message(CHANNEL, parent)
    answer = slack.chat_postMessage(channel=CHANNEL, thread_ts=parent, text="Approved, $1.00, exceptions")
    assert "thread_ts" not in answer["message"]
    assert history_ts(slack)[0] == answer["ts"]


def test_post_timestamps_are_unique_and_increasing(slack: WebClient) -> None:
    stamps = [slack.chat_postMessage(channel=CHANNEL, text=f"n{i}")["ts"] for i in range(15)]
    assert all(re.fullmatch(r"\d{10}\.\d{6}", ts) for ts in stamps)
    assert stamps == sorted(set(stamps), key=ts_key)
    assert ts_key(stamps[0]) > ts_key(TOP_LEVEL[0])


def test_concurrent_posts_stay_consistent(sandbox: Sandbox) -> None:
    def post(i: int) -> str:
        return client(sandbox).chat_postMessage(channel=CHANNEL, text=f"p{i}", thread_ts=PARENT_TS)["ts"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        stamps = list(pool.map(post, range(40)))

    assert len(set(stamps)) == 40
    assert sorted(p["ts"] for p in sandbox.posts()) == sorted(stamps)
    parent = client(sandbox).conversations_replies(channel=CHANNEL, ts=PARENT_TS, limit=1)["messages"][0]
    assert parent["reply_count"] == 41


def test_dm_via_conversations_open(sandbox: Sandbox, slack: WebClient) -> None:
    first = slack.conversations_open(users="U0OPERATOR")
    second = slack.conversations_open(users=["U0OPERATOR"])
    dm = first["channel"]["id"]
    assert dm.startswith("D")
    assert second["channel"]["id"] == dm
    assert second["already_open"] is True

    slack.chat_postMessage(channel=dm, text="CreditBot failed on a request")

    assert [(d["user"], d["channel"], d["text"]) for d in sandbox.dms()] == [
        ("U0OPERATOR", dm, "CreditBot failed on a request")
    ]
    assert sandbox.dms(user="U0REQUESTER") == []
    assert sandbox.posts(channel=CHANNEL) == []
    assert slack.conversations_info(channel=dm)["channel"]["user"] == "U0OPERATOR"


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        pytest.param(
            PARENT_TS, "https://credit-sandbox.slack.com/archives/C0CREDITTEST/p1764000000000100", id="top"
        ),
        pytest.param(
            REPLY_TS,
            "https://credit-sandbox.slack.com/archives/C0CREDITTEST/p1764000050000100"
            f"?thread_ts={PARENT_TS}&cid=C0CREDITTEST",
            id="reply",
        ),
    ],
)
def test_permalink(slack: WebClient, ts: str, expected: str) -> None:
    assert slack.chat_getPermalink(channel=CHANNEL, message_ts=ts)["permalink"] == expected


def test_reactions_add_then_already_reacted(sandbox: Sandbox, slack: WebClient) -> None:
    slack.reactions_add(channel=CHANNEL, timestamp=PARENT_TS, name="white_check_mark")
    with pytest.raises(SlackApiError) as excinfo:
        slack.reactions_add(channel=CHANNEL, timestamp=PARENT_TS, name="white_check_mark")
    assert excinfo.value.response["error"] == "already_reacted"
    assert [(r["timestamp"], r["name"]) for r in sandbox.reactions(CHANNEL)] == [
        (PARENT_TS, "white_check_mark")
    ]
    parent = next(m for m in slack.conversations_history(channel=CHANNEL)["messages"] if m["ts"] == PARENT_TS)
    assert parent["reactions"] == [{"name": "white_check_mark", "users": ["U0CREDITBOT"], "count": 1}]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        pytest.param(lambda c: c.conversations_history(channel="C0NOPE"), "channel_not_found", id="history"),
        pytest.param(lambda c: c.conversations_info(channel="C0NOPE"), "channel_not_found", id="info"),
        pytest.param(
            lambda c: c.chat_postMessage(channel="C0NOPE", text="x"), "channel_not_found", id="post"
        ),
        pytest.param(
            lambda c: c.conversations_replies(channel=CHANNEL, ts="1.000001"),
            "thread_not_found",
            id="replies",
        ),
        pytest.param(
            lambda c: c.chat_getPermalink(channel=CHANNEL, message_ts="1.000001"),
            "message_not_found",
            id="link",
        ),
        pytest.param(
            lambda c: c.reactions_add(channel=CHANNEL, timestamp="1.000001", name="eyes"),
            "message_not_found",
            id="reaction",
        ),
        pytest.param(lambda c: c.conversations_open(users="U0NOBODY"), "user_not_found", id="open"),
        pytest.param(
            lambda c: c.conversations_history(channel=CHANNEL, cursor="garbage!"),
            "invalid_cursor",
            id="cursor",
        ),
        pytest.param(lambda c: c.api_call("chat.fooBar"), "unknown_method", id="unknown-method"),
    ],
)
def test_api_errors(slack: WebClient, call: Callable[[WebClient], Any], error: str) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        call(slack)
    assert excinfo.value.response.status_code == 200
    assert excinfo.value.response["error"] == error


# ---- faults and the real retry handlers --------------------------------------------------------------


def test_ratelimited_then_retry_after_is_honoured(sandbox: Sandbox) -> None:
    sandbox.inject("slack", "conversations.history", "ratelimited", retry_after=0)
    slack = client(sandbox, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])

    assert history_ts(slack) == TOP_LEVEL

    assert [c["status"] for c in sandbox.calls(method="conversations.history")] == [429, 200]


def test_ratelimited_without_handler_raises_with_retry_after(sandbox: Sandbox) -> None:
    sandbox.inject("slack", "conversations.history", "ratelimited", retry_after=30)
    with pytest.raises(SlackApiError) as excinfo:
        client(sandbox, retry_handlers=[]).conversations_history(channel=CHANNEL)
    assert excinfo.value.response.status_code == 429
    assert excinfo.value.response.headers["Retry-After"] == "30"
    assert excinfo.value.response["error"] == "ratelimited"


@pytest.mark.parametrize("status", [pytest.param(500, id="500"), pytest.param(503, id="503")])
def test_server_error_retried_by_server_error_handler(sandbox: Sandbox, status: int) -> None:
    sandbox.inject("slack", "conversations.history", "server_error", status=status)
    slack = client(sandbox, retry_handlers=[ServerErrorRetryHandler(interval_calculator=FAST_RETRY)])

    assert history_ts(slack) == TOP_LEVEL

    assert [c["status"] for c in sandbox.calls(method="conversations.history")] == [status, 200]


def test_connection_reset_retried_by_connection_error_handler(sandbox: Sandbox) -> None:
    sandbox.inject("slack", "conversations.history", "reset")
    slack = client(sandbox, retry_handlers=[ConnectionErrorRetryHandler(interval_calculator=FAST_RETRY)])

    assert history_ts(slack) == TOP_LEVEL

    assert [c["status"] for c in sandbox.calls(method="conversations.history")] == [0, 200]


def test_connection_reset_without_handler_raises(sandbox: Sandbox) -> None:
    sandbox.inject("slack", "auth.test", "reset")
    with pytest.raises((RemoteDisconnected, ConnectionResetError, URLError)):
        client(sandbox, retry_handlers=[]).auth_test()


def test_lost_response_stores_the_post_but_the_client_sees_a_dropped_connection(sandbox: Sandbox) -> None:
    sandbox.inject("slack", "chat.postMessage", "lost_response")
    with pytest.raises((RemoteDisconnected, ConnectionResetError, URLError)):
        client(sandbox, retry_handlers=[]).chat_postMessage(channel=CHANNEL, text="posted anyway")

    assert [p["text"] for p in sandbox.posts(CHANNEL)][-1] == "posted anyway"
    assert [c["status"] for c in sandbox.calls(method="chat.postMessage")] == [200]


def test_slack_error_for_n_calls_on_any_method(sandbox: Sandbox, slack: WebClient) -> None:
    sandbox.inject("slack", "*", "slack_error", times=2, error="internal_error")
    errors = []
    for call in (slack.auth_test, lambda: slack.conversations_info(channel=CHANNEL)):
        with pytest.raises(SlackApiError) as excinfo:
            call()
        errors.append(excinfo.value.response["error"])
    assert errors == ["internal_error", "internal_error"]
    assert slack.auth_test()["ok"] is True  # fault used up


def test_delay_slows_the_answer_down(sandbox: Sandbox, slack: WebClient) -> None:
    sandbox.inject("slack", "auth.test", "delay", seconds=0.3)
    started = time.monotonic()
    assert slack.auth_test()["ok"] is True
    assert time.monotonic() - started >= 0.3


# ---- scopes, refused DMs, unfurls (issue 16) -----------------------------------------------------


def test_every_answer_names_the_token_scopes_and_each_method_needs_its_own(
    sandbox: Sandbox, slack: WebClient
) -> None:
    granted = slack.auth_test().headers
    assert set(granted["X-OAuth-Scopes"].split(",")) >= {"channels:history", "im:history", "chat:write"}
    history = slack.conversations_history(channel=CHANNEL, limit=1)
    assert history.headers["X-Accepted-OAuth-Scopes"] == "channels:history"

    sandbox.set_slack_scopes(["channels:history", "chat:write", "im:write"])
    dm = slack.conversations_open(users="U0OPERATOR")["channel"]["id"]
    with pytest.raises(SlackApiError) as excinfo:
        slack.conversations_history(channel=dm)
    assert excinfo.value.response["error"] == "missing_scope"
    assert excinfo.value.response["needed"] == "im:history"
    assert excinfo.value.response.headers["X-OAuth-Scopes"] == "channels:history,chat:write,im:write"
    with pytest.raises(SlackApiError, match="missing_scope"):
        slack.reactions_add(channel=CHANNEL, timestamp=PARENT_TS, name="eyes")


@pytest.mark.parametrize(
    ("user", "error"),
    [
        pytest.param({"id": "U0GONE", "deleted": True}, "user_disabled", id="deactivated"),
        pytest.param({"id": "U0SOMEBOT", "is_bot": True}, "cannot_dm_bot", id="a-bot-user"),
        pytest.param(None, "user_not_found", id="unknown-id"),
    ],
)
def test_dm_that_slack_refuses(
    basic_scenario: dict[str, Any], user: dict[str, Any] | None, error: str
) -> None:
    if user:
        basic_scenario["slack"]["users"].append(user)
    with Sandbox.from_dict(basic_scenario) as sb, pytest.raises(SlackApiError) as excinfo:
        client(sb).conversations_open(users=user["id"] if user else "U0NOSUCHUSER")
    assert excinfo.value.response["error"] == error


def test_unfurl_is_a_change_without_edited(sandbox: Sandbox, slack: WebClient) -> None:
    events: list[dict[str, Any]] = []
    sandbox.slack.event_listeners.append(events.append)
    sandbox.unfurl(CHANNEL, PARENT_TS, {"from_url": "https://example.com/", "title": "preview"})
    [event] = events
    assert event["subtype"] == "message_changed"
    assert "edited" not in event["message"]
    assert event["message"]["attachments"][0]["from_url"] == "https://example.com/"
    [shown] = slack.conversations_history(
        channel=CHANNEL, latest=PARENT_TS, oldest=PARENT_TS, inclusive=True
    )["messages"]
    assert shown["attachments"][0]["title"] == "preview"
