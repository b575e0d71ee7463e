"""Tests for credit_bot.intake: which Slack messages are requests and which this run works on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from credit_bot import intake, ledger
from credit_bot.intake import (
    MAX_TEXT_CHARS,
    InvalidMessageRef,
    Request,
    parse_message_ref,
    select,
    skip_reason,
)
from credit_bot.links import looker_urls
from harness.testing import slack_shapes as shapes

CHANNEL = "C0123ABCD"
BOT = "U0BOT0001"
HOST = "credit-sandbox.cloud.looker.com"
LOOK = f"https://{HOST}/looks/123"
NOW = datetime.fromtimestamp(1_764_000_000, UTC)
TS = f"{(NOW - timedelta(hours=1)).timestamp():.6f}"
PERMALINK = "https://fake-workspace.slack.com/archives/C0123ABCD/p1764000000000100"


# ── parse_message_ref ──────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize(
    ("value", "default_channel", "expected"),
    [
        pytest.param("1764000000.000100", CHANNEL, (CHANNEL, "1764000000.000100"), id="ts"),
        pytest.param("  1764000000.000100\n", CHANNEL, (CHANNEL, "1764000000.000100"), id="ts-whitespace"),
        pytest.param(PERMALINK, None, ("C0123ABCD", "1764000000.000100"), id="permalink"),
        pytest.param(PERMALINK, "C9999ZZZZ", ("C0123ABCD", "1764000000.000100"), id="permalink-channel-wins"),
        pytest.param(
            f"{PERMALINK}?thread_ts=1763999999.000050&cid=C0123ABCD",
            None,
            ("C0123ABCD", "1764000000.000100"),
            id="permalink-thread-ts-uses-message-ts",
        ),
        pytest.param(f"{PERMALINK}/", None, ("C0123ABCD", "1764000000.000100"), id="permalink-slash"),
    ],
)
def test_parse_message_ref(value: str, default_channel: str | None, expected: tuple[str, str]) -> None:
    assert parse_message_ref(value, default_channel) == expected


@pytest.mark.parametrize(
    ("value", "default_channel", "match"),
    [
        pytest.param("garbage", CHANNEL, "neither", id="garbage"),
        pytest.param("", CHANNEL, "neither", id="empty"),
        pytest.param("1764000000.100", CHANNEL, "neither", id="short-ts"),
        pytest.param("1764000000000100", CHANNEL, "neither", id="ts-without-dot"),
        pytest.param(f"{PERMALINK}7", CHANNEL, "neither", id="permalink-too-many-digits"),
        pytest.param("1764000000.000100", None, "without a channel", id="ts-without-channel"),
        pytest.param("1764000000.000100", "", "without a channel", id="ts-empty-channel"),
    ],
)
def test_parse_message_ref_invalid(value: str, default_channel: str | None, match: str) -> None:
    with pytest.raises(InvalidMessageRef, match=match):
        parse_message_ref(value, default_channel)


# ── skip_reason ────────────────────────────────────────────────────────────────────────────────
def _msg(**fields: Any) -> dict[str, Any]:
    return {"type": "message", "ts": TS, "user": "U0REQ0001", "text": f"credit please <{LOOK}>", **fields}


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        pytest.param(_msg(bot_id="B0123"), "posted by a bot", id="bot-id"),
        pytest.param(_msg(bot_profile={"name": "x"}), "posted by a bot", id="bot-profile"),
        pytest.param(_msg(user=BOT), "posted by a bot", id="own-user-id"),
        pytest.param(_msg(subtype="bot_message"), "posted by a bot", id="bot-message-subtype"),
        pytest.param(_msg(subtype="tombstone", user="USLACKBOT"), "deleted", id="tombstone"),
        pytest.param(_msg(subtype="channel_join"), "subtype channel_join", id="channel-join"),
        pytest.param(_msg(subtype="message_changed"), "subtype message_changed", id="message-changed"),
        pytest.param(_msg(subtype="message_deleted"), "subtype message_deleted", id="message-deleted"),
        pytest.param(_msg(thread_ts="1763999999.000050"), "a reply in a thread", id="thread-reply"),
        pytest.param(
            _msg(subtype="thread_broadcast", thread_ts="1763999999.000050"),
            "broadcast",
            id="thread-broadcast",
        ),
        pytest.param(_msg(user=None), "no author", id="missing-user"),
        pytest.param(_msg(user=""), "no author", id="empty-user"),
        pytest.param(_msg(type="reaction_added"), "not a message", id="not-a-message"),
    ],
)
def test_skip_reason(message: dict[str, Any], reason: str) -> None:
    why = skip_reason(message, BOT)
    assert why is not None
    assert reason in why


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(_msg(), id="plain"),
        pytest.param(_msg(subtype="file_share"), id="file-share"),
        pytest.param(_msg(subtype=""), id="empty-subtype"),
        pytest.param(_msg(thread_ts=TS, reply_count=2), id="thread-parent"),
        pytest.param({k: v for k, v in _msg().items() if k != "type"}, id="no-type"),
    ],
)
def test_requests_are_not_skipped(message: dict[str, Any]) -> None:
    assert skip_reason(message, BOT) is None


def test_own_user_only_skipped_when_known() -> None:
    assert skip_reason(_msg(user=BOT), None) is None


# ── select ─────────────────────────────────────────────────────────────────────────────────────
def _book(outcome: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
    return ledger.record(
        ledger.empty(),
        channel=CHANNEL,
        dry_run=dry_run,
        outcomes=[{"ts": TS, **outcome}],
        newest_ts=None,
        now=NOW,
    )


def _select(
    messages: list[dict[str, Any]], book: dict[str, Any] | None = None, **kwargs: Any
) -> tuple[list[Request], list[dict[str, Any]], list[str]]:
    kwargs.setdefault("dry_run", False)
    return select(
        messages,
        channel=CHANNEL,
        book=book if book is not None else ledger.empty(),
        bot_user_id=BOT,
        looker_hosts=(HOST,),
        max_attempts=3,
        link_wait_hours=48,
        now=NOW,
        **kwargs,
    )


def test_new_message_is_a_request() -> None:
    requests, outcomes, _ = _select([_msg()])
    assert requests == [
        Request(
            channel=CHANNEL, ts=TS, user="U0REQ0001", text=f"credit please <{LOOK}>", attempt=1, reason="new"
        )
    ]
    assert outcomes == []
    assert requests[0].label.startswith("U0REQ0001 · ")
    assert requests[0].label.endswith(f" · {TS}")
    assert Request(**requests[0].as_dict()) == requests[0]


def test_manual_run_reason() -> None:
    requests, _, _ = _select([_msg()], manual=True)
    assert [r.reason for r in requests] == ["manual"]


def test_skipped_messages_are_noted() -> None:
    requests, _, notes = _select([_msg(subtype="channel_join"), _msg(ts="1763990000.000001", bot_id="B1")])
    assert requests == []
    assert len(notes) == 2
    assert all("skipped" in n for n in notes)


def test_requests_come_oldest_first() -> None:
    messages = [_msg(ts="1763999000.000002"), _msg(ts="999999999.000001"), _msg(ts="1763999000.000001")]
    requests, _, _ = _select(messages)
    assert [r.ts for r in requests] == ["999999999.000001", "1763999000.000001", "1763999000.000002"]


def test_long_text_is_truncated() -> None:
    requests, _, _ = _select([_msg(text="x" * (MAX_TEXT_CHARS + 10))])
    assert len(requests[0].text) == MAX_TEXT_CHARS


@pytest.mark.parametrize(
    ("recorded_dry", "run_dry", "selected"),
    [
        pytest.param(False, False, False, id="live-done-for-live"),
        pytest.param(False, True, False, id="live-done-for-dry-run"),
        pytest.param(True, True, False, id="dry-done-for-dry-run"),
        pytest.param(True, False, True, id="dry-run-not-done-for-live"),
    ],
)
def test_answered_in_ledger(recorded_dry: bool, run_dry: bool, selected: bool) -> None:
    book = _book({"outcome": ledger.ANSWERED, "attempts": 1}, dry_run=recorded_dry)
    requests, _, notes = _select([_msg()], book, dry_run=run_dry)
    assert bool(requests) is selected
    if not selected:
        assert notes == [f"{TS}: already answered"]


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [
        pytest.param(1, [("retry", 2)], id="first-retry"),
        pytest.param(2, [("retry", 3)], id="last-retry"),
        pytest.param(3, [("retry", 4)], id="at-max-after-a-crashed-post-step"),
    ],
)
def test_retrying(attempts: int, expected: list[tuple[str, int]]) -> None:
    book = _book({"outcome": ledger.RETRYING, "attempts": attempts})
    requests, outcomes, _ = _select([_msg()], book)
    assert [(r.reason, r.attempt) for r in requests] == expected
    assert outcomes == []


def test_retrying_past_the_final_pass_is_closed_as_escalated() -> None:
    book = _book({"outcome": ledger.RETRYING, "attempts": 4, "last_error": "post_results did not finish"})
    requests, outcomes, notes = _select([_msg()], book)
    assert requests == []
    assert [(o["ts"], o["outcome"]) for o in outcomes] == [(TS, ledger.ESCALATED)]
    assert outcomes[0]["last_error"] == "gave up after 4 attempts: post_results did not finish"
    assert notes == [f"{TS}: gave up after 4 attempts"]


def _link_requested(reply_age_hours: float) -> dict[str, Any]:
    reply_ts = f"{(NOW - timedelta(hours=reply_age_hours)).timestamp():.6f}"
    return _book({"outcome": ledger.LINK_REQUESTED, "attempts": 1, "reply_ts": reply_ts})


@pytest.mark.parametrize(
    ("message", "reply_age_hours", "reasons"),
    [
        pytest.param(_msg(text="credit please, edited: " + LOOK), 1, ["link_added"], id="link-edited-in"),
        pytest.param(_msg(text="credit please"), 1, [], id="still-no-link"),
        pytest.param(
            _msg(text="credit please <https://evil.example/looks/1>"), 1, [], id="non-looker-link-not-added"
        ),
        pytest.param(
            _msg(text="credit please", latest_reply=f"{NOW.timestamp() - 60:.6f}"),
            1,
            ["check_thread"],
            id="newer-thread-reply",
        ),
        pytest.param(
            _msg(text="credit please", latest_reply=f"{NOW.timestamp() - 7200:.6f}"),
            1,
            [],
            id="thread-reply-older-than-ours",
        ),
        pytest.param(
            _msg(text="credit please " + LOOK), 50, ["link_added"], id="link-present-when-wait-is-over"
        ),
    ],
)
def test_link_requested(message: dict[str, Any], reply_age_hours: float, reasons: list[str]) -> None:
    requests, outcomes, _ = _select([message], _link_requested(reply_age_hours))
    assert [r.reason for r in requests] == reasons
    assert all(r.attempt == 2 for r in requests)
    assert outcomes == []


def test_a_thread_reply_before_the_ask_is_read_once() -> None:
    book = _link_requested(1)
    [entry] = book["channels"][CHANNEL]["live"]["requests"].values()
    # The requester replied, then the bot asked: latest_reply is the bot's own ask.
    early = _msg(text="credit please", latest_reply=entry["reply_ts"], reply_users_count=2)
    assert [r.reason for r in _select([early], book)[0]] == ["check_thread"]
    entry["thread_checked"] = entry["reply_ts"]
    assert _select([early], book)[0] == []
    newer = {**early, "latest_reply": f"{NOW.timestamp() - 60:.6f}"}
    assert [r.reason for r in _select([newer], book)[0]] == ["check_thread"]
    alone = _msg(text="credit please", latest_reply=entry["reply_ts"], reply_users_count=1)
    assert _select([alone], _link_requested(1))[0] == []


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(_msg(text="credit please"), id="no-link"),
        pytest.param(
            _msg(text="credit please", latest_reply=f"{NOW.timestamp() - 60:.6f}"),
            id="even-with-thread-reply",
        ),
    ],
)
def test_link_request_expires(message: dict[str, Any]) -> None:
    requests, outcomes, notes = _select([message], _link_requested(49))
    assert requests == []
    assert outcomes == [
        {"ts": TS, "outcome": ledger.EXPIRED, "dry_run": False, "last_error": "no Looker link after 48 h"}
    ]
    assert any("expired" in n for n in notes)


def test_expiry_without_reply_ts_counts_from_message() -> None:
    old_ts = f"{(NOW - timedelta(hours=49)).timestamp():.6f}"
    book = ledger.record(
        ledger.empty(),
        channel=CHANNEL,
        dry_run=True,
        outcomes=[{"ts": old_ts, "outcome": ledger.LINK_REQUESTED, "attempts": 1}],
        newest_ts=None,
        now=NOW,
    )
    _, outcomes, _ = _select([_msg(ts=old_ts, text="no link")], book, dry_run=True)
    assert [(o["ts"], o["outcome"], o["dry_run"]) for o in outcomes] == [(old_ts, ledger.EXPIRED, True)]


@pytest.mark.parametrize(
    ("outcome", "forced"),
    [
        pytest.param(ledger.ANSWERED, True, id="answered"),
        pytest.param(ledger.ESCALATED, True, id="escalated"),
    ],
)
def test_force_reselects_done_message(outcome: str, forced: bool) -> None:
    requests, _, _ = _select([_msg()], _book({"outcome": outcome, "attempts": 2}), force=True, manual=True)
    assert [(r.reason, r.forced, r.attempt) for r in requests] == [("manual", forced, 3)]


def test_force_on_new_message_is_not_marked_forced() -> None:
    requests, _, _ = _select([_msg()], force=True)
    assert [(r.reason, r.forced) for r in requests] == [("new", False)]


def test_force_does_not_override_skip_rules() -> None:
    requests, _, _ = _select([_msg(bot_id="B0123")], force=True)
    assert requests == []


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param(
            "Credit acme\nFraud spend: <https://x/looks/1|$20,902.40>",
            "Credit acme Fraud spend: $20,902.40",
            id="link-label",
        ),
        pytest.param("<!here> please <https://x/looks/1>", "… please …", id="mention-and-bare-link"),
        pytest.param("a" * 60, "a" * 39 + "…", id="cut"),
    ],
)
def test_snippet_is_what_a_reader_sees(text: str, shown: str) -> None:
    assert intake.snippet(text) == shown


def test_label_names_who_when_what_and_ts() -> None:
    request = intake.Request(
        channel="C0CREDITTEST",
        ts="1764000000.000100",
        user="U0REQ0001",
        text="credit acme",
        attempt=1,
        reason="new",
    )
    assert request.label == "U0REQ0001 · Nov 24 16:00 UTC · “credit acme” · 1764000000.000100"


# ── workflow and app posts; what a post says beyond its text ───────────────────────────────────
LOOK_B = f"https://{HOST}/looks/456"


def _workflow(*elements: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"type": "message", "ts": TS, "text": "", **shapes.workflow_post(*elements), **fields}


@pytest.mark.parametrize(
    ("message", "request_bots", "reason"),
    [
        pytest.param(_workflow(), [shapes.WORKFLOW_BOT], None, id="allowed-by-bot-id"),
        pytest.param(_workflow(), [shapes.WORKFLOW_APP], None, id="allowed-by-app-id"),
        pytest.param(_workflow(), [], "not in request_bots", id="not-allowed"),
        pytest.param(_workflow(), ["B0SOMEONE"], "not in request_bots", id="another-bot-allowed"),
        pytest.param(
            _msg(user="U0APPBOT", bot_id="B0APP", app_id="A0APP"), ["A0APP"], None, id="app-post-no-subtype"
        ),
        pytest.param(_msg(bot_id="B0OWN"), ["B0OWN"], "CreditBot itself", id="own-bot-even-if-listed"),
        pytest.param(_msg(user=BOT, bot_id="B0X"), ["B0X"], "CreditBot itself", id="own-user-even-if-listed"),
        pytest.param(
            _workflow(thread_ts="1763999999.000050"), [shapes.WORKFLOW_BOT], "reply", id="allowed-bot-reply"
        ),
        pytest.param(
            _workflow(subtype="bot_add"),
            [shapes.WORKFLOW_BOT],
            "subtype bot_add",
            id="allowed-bot-other-subtype",
        ),
    ],
)
def test_bot_posts_are_requests_only_from_request_bots(
    message: dict[str, Any], request_bots: list[str], reason: str | None
) -> None:
    why = skip_reason(message, BOT, request_bots=request_bots, own_bot_id="B0OWN")
    assert why is None if reason is None else reason in why


@pytest.mark.parametrize(
    ("message", "requester"),
    [
        pytest.param(_workflow(*shapes.workflow_form("U0ASKER", None)), "U0ASKER", id="form-user-field"),
        pytest.param(_workflow(shapes.text("no one named")), shapes.WORKFLOW_BOT, id="form-without-mention"),
        pytest.param(
            _workflow(text="for <@U0TEXTUSER|asker>: see form"), "U0TEXTUSER", id="mention-in-text-wins"
        ),
        pytest.param(_msg(text="cc <@U0OTHER> please"), "U0REQ0001", id="person-is-the-requester"),
    ],
)
def test_requester(message: dict[str, Any], requester: str) -> None:
    assert intake.requester(message) == requester


SECTION = {"type": "rich_text_section", "elements": [shapes.link(LOOK, "$1")]}


@pytest.mark.parametrize(
    ("message", "urls"),
    [
        pytest.param(
            _workflow(shapes.text("Fraud spend: "), shapes.link(LOOK, "$9,000")), [LOOK], id="blocks-only"
        ),
        pytest.param(
            _msg(
                text=f"spend <{LOOK}|$1>",
                blocks=shapes.rich_text([shapes.text("spend "), shapes.link(LOOK, "$1")]),
            ),
            [LOOK],
            id="text-and-its-blocks-once",
        ),
        pytest.param(
            _msg(text="see form", blocks=shapes.rich_text([shapes.link(LOOK_B)])), [LOOK_B], id="summary-text"
        ),
        pytest.param(
            _msg(
                text="",
                blocks=[
                    {"type": "rich_text", "elements": [{"type": "rich_text_list", "elements": [SECTION]}]}
                ],
            ),
            [LOOK],
            id="in-a-list",
        ),
        pytest.param(
            _msg(
                text="", blocks=[{"type": "rich_text", "elements": [{**SECTION, "type": "rich_text_quote"}]}]
            ),
            [LOOK],
            id="in-a-quote",
        ),
        pytest.param(
            _msg(
                text="",
                blocks=[{"type": "rich_text", "elements": [{**SECTION, "type": "rich_text_preformatted"}]}],
            ),
            [LOOK],
            id="in-preformatted",
        ),
        pytest.param(
            _msg(
                text="", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": f"<{LOOK}|spend>"}}]
            ),
            [LOOK],
            id="section-mrkdwn",
        ),
        pytest.param(
            _msg(
                text="",
                **shapes.forwarded(
                    f"spend <{LOOK}|$1>",
                    shapes.rich_text([shapes.link(LOOK, "$1")]),
                    channel="C0OTHER",
                    ts=TS,
                ),
            ),
            [LOOK],
            id="forwarded-text-and-blocks",
        ),
        pytest.param(
            _msg(
                text="",
                **shapes.forwarded(
                    "", shapes.rich_text([shapes.link(LOOK_B, "$2")]), channel="C0OTHER", ts=TS
                ),
            ),
            [LOOK_B],
            id="forwarded-blocks-only",
        ),
        pytest.param(
            _msg(
                text=f"please credit, also <{LOOK_B}>",
                **shapes.forwarded(f"<{LOOK}>", [], channel="C0OTHER", ts=TS),
            ),
            [LOOK_B, LOOK],
            id="share-with-comment",
        ),
        pytest.param(
            _msg(text=f"<{LOOK}>", attachments=[shapes.unfurl(LOOK)]), [LOOK], id="unfurl-adds-nothing"
        ),
        pytest.param(
            # A pasted permalink unfurls into the linked message, Looker link and all: that is a
            # preview of a link in the post, not part of this request.
            _msg(
                text="<https://credit-sandbox.slack.com/archives/C0OTHER/p1763990000000100>",
                **shapes.forwarded(f"<{LOOK}>", [], channel="C0OTHER", ts="1763990000.000100"),
            ),
            [],
            id="permalink-unfurl-adds-nothing",
        ),
        pytest.param(
            _msg(text="", attachments=[{"text": f"<{LOOK}>", "title": "an app's attachment"}]),
            [],
            id="plain-app-attachment-ignored",
        ),
        pytest.param(
            _msg(text=f"<{LOOK}>", blocks=shapes.rich_text([shapes.link("https://evil.example/looks/1")])),
            [LOOK],
            id="looker-hosts-apply-to-blocks",
        ),
        pytest.param(
            _msg(text=f"<{LOOK}/>", blocks=shapes.rich_text([shapes.link(LOOK.replace(HOST, HOST.upper()))])),
            [f"{LOOK}/"],
            id="same-link-spelled-differently-once",
        ),
    ],
)
def test_message_text_holds_every_link_a_person_sees_once(message: dict[str, Any], urls: list[str]) -> None:
    assert looker_urls(intake.message_text(message), [HOST]) == urls


def test_block_text_keeps_labels_and_escapes_like_slack_text() -> None:
    blocks = shapes.rich_text(
        [shapes.text("a < b & c: "), shapes.link(f"{LOOK}?x=1&y=2", "$179.73"), shapes.user("U0A")]
    )
    assert intake.blocks_text(blocks) == f"a &lt; b &amp; c: <{LOOK}?x=1&amp;y=2|$179.73><@U0A>"
    assert looker_urls(intake.blocks_text(blocks), [HOST]) == [f"{LOOK}?x=1&y=2"]


def test_select_takes_workflow_posts_with_their_requester_and_blocks() -> None:
    form = _workflow(*shapes.workflow_form("U0ASKER", shapes.link(LOOK, "$9,000.00")))
    other = _workflow(ts="1763990000.000002", bot_id="B0DIGEST", bot_profile={"id": "B0DIGEST"})
    requests, _, notes = _select([form, other], request_bots=(shapes.WORKFLOW_BOT,))
    [request] = requests
    assert request.user == "U0ASKER"
    assert looker_urls(request.text, [HOST]) == [LOOK]
    assert request.label.startswith("U0ASKER · ")
    assert any("not in request_bots" in n for n in notes)


@pytest.mark.parametrize(
    ("outcome", "closed"),
    [
        pytest.param(ledger.LINK_REQUESTED, True, id="waiting-for-a-link"),
        pytest.param(ledger.RETRYING, True, id="retrying"),
        pytest.param(ledger.ANSWERED, False, id="answered-stays"),
    ],
)
def test_tombstone_closes_its_request_and_is_never_one(outcome: str, closed: bool) -> None:
    tombstone = {
        "type": "message",
        "subtype": "tombstone",
        "ts": TS,
        "thread_ts": TS,
        "user": "USLACKBOT",
        "text": "This message was deleted.",
        "hidden": True,
        "reply_count": 2,
        "latest_reply": f"{float(TS) + 60:.6f}",
    }
    requests, outcomes, _ = _select([tombstone], _book({"outcome": outcome, "attempts": 1, "reply_ts": TS}))
    assert requests == []
    assert [o["outcome"] for o in outcomes] == ([ledger.DELETED] if closed else [])
    requests, outcomes, notes = _select([tombstone], force=True)
    assert (requests, outcomes) == ([], [])
    assert "tombstone" in notes[0]
