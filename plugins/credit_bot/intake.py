"""Which Slack messages are credit requests, and which of them this run should work on.

Pure functions over Slack message dicts and the ledger, so the rules are easy to test: bot
messages (except those of the ``request_bots``, e.g. a Workflow Builder form), joins and other
subtypes, and thread replies are not requests; requests the ledger has finished with are skipped;
requests waiting for a link come back when a link appears; a deleted parent (tombstone) closes
its request.

What a request says is everything a person sees in the post (``message_text``): its ``text``,
its rich-text blocks, and the messages it forwards or shares, as one Slack-markup text; link
previews (unfurls) of links already in the post add nothing.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, cast

from credit_bot import ledger
from credit_bot.errors import SetupError
from credit_bot.links import find_urls, looker_urls, url_key
from credit_bot.model import (
    FINAL,
    Ledger,
    LedgerEntry,
    Outcome,
    RequestDict,
    RequestOutcome,
    RequestReason,
    SlackMessage,
)

# Subtypes that are still a person's post. Everything else (channel_join, message_changed, …) is
# not a request; bot_message is one only from a bot listed in the request_bots setting.
_REQUEST_SUBTYPES = frozenset({None, "", "thread_broadcast", "file_share"})
_BOT_SUBTYPES = frozenset({None, "", "bot_message"})
TOMBSTONE = "tombstone"  # a deleted thread parent that Slack keeps because it has replies
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>")
_PERMALINK = re.compile(r"/archives/([A-Z0-9]+)/p(\d{10})(\d{6})(?:[/?#]|$)")
_TS = re.compile(r"^\d{10}\.\d{6}$")
MAX_TEXT_CHARS = 40_000  # Slack's own limit for a message's text
_SLACK_MARKUP_WITH_LABEL = re.compile(r"<[^<>|]*\|([^<>]*)>")
_SLACK_MARKUP = re.compile(r"<[^<>]*>")


class InvalidMessageRef(SetupError, ValueError):
    """A ``message_ts`` param that is neither a Slack ts nor a permalink: the run's params to fix."""


@dataclass(frozen=True)
class Request:
    """A message CreditBot will work on in this run: small enough to pass between tasks."""

    channel: str
    ts: str
    user: str
    text: str
    attempt: int
    reason: RequestReason
    forced: bool = False

    def as_dict(self) -> RequestDict:
        return cast(RequestDict, asdict(self))

    @property
    def label(self) -> str:
        """How the Airflow UI names this request's tasks: who, when (UTC), the post's first words, its ts."""
        when = datetime.fromtimestamp(float(self.ts), UTC).strftime("%b %d %H:%M UTC")
        return f"{self.user or 'unknown'} · {when} · “{snippet(self.text)}” · {self.ts}"


def snippet(text: str, limit: int = 40) -> str:
    """The first words of a post, Slack markup reduced to what a reader sees (link labels)."""
    text = _SLACK_MARKUP_WITH_LABEL.sub(r"\1", text)
    text = " ".join(_SLACK_MARKUP.sub("…", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_message_ref(value: str, default_channel: str | None) -> tuple[str, str]:
    """``(channel, ts)`` from a ts (``1764000000.000100``) or a Slack permalink."""
    value = value.strip()
    match = _PERMALINK.search(value)
    if match:
        return match.group(1), f"{match.group(2)}.{match.group(3)}"
    if _TS.match(value):
        if not default_channel:
            raise InvalidMessageRef("message_ts given without a channel: set the 'channel' param or setting")
        return default_channel, value
    raise InvalidMessageRef(
        f"message_ts {value!r} is neither a Slack timestamp (1764000000.000100) nor a permalink "
        "(https://…slack.com/archives/C…/p1764000000000100)"
    )


def bot_ids(message: SlackMessage) -> set[str]:
    """The bot and app ids a message was posted by (empty for a person's post)."""
    profile = message.get("bot_profile") or {}
    ids = {message.get("bot_id"), message.get("app_id"), profile.get("id"), profile.get("app_id")}
    return {i for i in ids if isinstance(i, str) and i}


def from_bot(message: SlackMessage) -> bool:
    """Posted by a bot or an app (a workflow, an integration, an app's bot token), not a person."""
    return bool(bot_ids(message) or message.get("bot_profile") or message.get("subtype") == "bot_message")


def skip_reason(
    message: SlackMessage,
    bot_user_id: str | None,
    *,
    request_bots: Collection[str] | None = (),
    own_bot_id: str | None = None,
) -> str | None:
    """Why a message is not a credit request, or ``None`` when it is one.

    ``request_bots`` are the bot/app ids whose posts are requests; ``None`` lets every other
    bot's top-level post through, for a caller that cannot know the setting (the Socket Mode
    trigger: the run then decides). CreditBot's own posts (``bot_user_id``, ``own_bot_id``) never are.
    """
    if message.get("type", "message") != "message":
        return f"not a message ({message.get('type')})"
    subtype = message.get("subtype")
    if subtype == TOMBSTONE:
        return "deleted (a tombstone kept for its thread)"
    posted_by = bot_ids(message)
    own = (bot_user_id and message.get("user") == bot_user_id) or (own_bot_id and own_bot_id in posted_by)
    if own:
        return "posted by a bot (CreditBot itself)"
    if from_bot(message):
        if request_bots is not None and not posted_by & set(request_bots):
            return f"posted by a bot ({', '.join(sorted(posted_by)) or 'no bot id'}, not in request_bots)"
        if subtype not in _BOT_SUBTYPES:
            return f"subtype {subtype}"
    elif subtype not in _REQUEST_SUBTYPES:
        return f"subtype {subtype}"
    thread_ts = message.get("thread_ts")
    if thread_ts and thread_ts != message.get("ts") and subtype != "thread_broadcast":
        return "a reply in a thread"
    if subtype == "thread_broadcast":
        return "a thread reply broadcast to the channel"
    if not from_bot(message) and not message.get("user"):
        return "no author"
    return None


def requester(message: SlackMessage) -> str:
    """Who asks: the poster, or for a bot's post (a workflow form) the first person it mentions.

    A form names the person asking in a user field; without one the bot itself is the requester.
    """
    if not from_bot(message):
        return str(message.get("user") or "")
    mention = _MENTION.search(message_text(message))
    if mention:
        return mention.group(1)
    return str(message.get("user") or message.get("bot_id") or min(bot_ids(message), default=""))


# ── what a post says: text, rich-text blocks, forwarded and shared messages ──────────────────────
def _escape(text: str) -> str:
    """Plain text as Slack message text carries it (``&``, ``<``, ``>`` escaped)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _rich_element(element: dict[str, Any]) -> str:
    kind = element.get("type")
    if kind == "text":
        return _escape(str(element.get("text") or ""))
    if kind == "link":
        url = _escape(str(element.get("url") or ""))
        label = element.get("text")
        return f"<{url}|{_escape(str(label))}>" if label else f"<{url}>"
    if kind == "user":
        return f"<@{element.get('user_id', '')}>"
    if kind == "channel":
        return f"<#{element.get('channel_id', '')}>"
    if kind == "usergroup":
        return f"<!subteam^{element.get('usergroup_id', '')}>"
    if kind == "broadcast":
        return f"<!{element.get('range', '')}>"
    if kind == "emoji":
        return f":{element.get('name', '')}:"
    if kind in ("rich_text_section", "rich_text_preformatted", "rich_text_quote"):
        return "".join(_rich_element(e) for e in element.get("elements") or [] if isinstance(e, dict))
    if kind == "rich_text_list":
        items = [_rich_element(e) for e in element.get("elements") or [] if isinstance(e, dict)]
        return "\n".join(f"• {item}" for item in items)
    return _escape(str(element.get("fallback") or element.get("text") or ""))


def _text_object(obj: Any) -> str:
    if not isinstance(obj, dict):
        return ""
    text = str(obj.get("text") or "")
    return text if obj.get("type") == "mrkdwn" else _escape(text)


def blocks_text(blocks: Any) -> str:
    """Rich-text, section and context blocks as Slack-markup text (links as ``<url|label>``)."""
    lines: list[str] = []
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "rich_text":
            lines += [_rich_element(e) for e in block.get("elements") or [] if isinstance(e, dict)]
        elif kind == "section":
            lines += [_text_object(block.get("text")), *map(_text_object, block.get("fields") or [])]
        elif kind == "context":
            lines += [_text_object(e) for e in block.get("elements") or []]
    return "\n".join(line for line in lines if line)


def _combine(texts: list[str], seen: set[str]) -> list[str]:
    """The first non-empty text, then each later one only if it brings a link not seen yet.

    A person's post carries the same content twice (``text`` and its rich-text blocks), and so
    does a shared message (``text`` and ``message_blocks``): the copy adds nothing.
    """
    kept: list[str] = []
    for text in texts:
        urls = {url_key(u) for u in find_urls(text)}
        if text.strip() and (not kept or urls - seen):
            kept.append(text)
            seen.update(urls)
    return kept


def message_text(message: SlackMessage) -> str:
    """Everything a person sees in the post, as one Slack-markup text; each link in it once.

    ``text``; the rich-text blocks when they hold what ``text`` does not (a workflow form's
    ``text`` is often empty or a summary); the forwarded or shared messages in ``attachments``
    (``is_share`` / ``is_msg_unfurl``: their ``text`` and ``message_blocks``). An attachment that
    previews a link already in the post (``from_url`` / ``original_url``) adds nothing.
    """
    seen: set[str] = set()
    parts = _combine([str(message.get("text") or ""), blocks_text(message.get("blocks"))], seen)
    for attachment in message.get("attachments") or []:
        if not isinstance(attachment, dict) or not (
            attachment.get("is_share") or attachment.get("is_msg_unfurl")
        ):
            continue  # link previews of other sites, app attachments: not what was asked
        previewed = [str(attachment[k]) for k in ("from_url", "original_url") if attachment.get(k)]
        if any(url_key(u) in seen for u in previewed):
            continue  # the preview of a link already in the post
        shared = [str(attachment.get("text") or "")]
        shared += [
            blocks_text((item.get("message") or {}).get("blocks"))
            for item in attachment.get("message_blocks") or []
            if isinstance(item, dict)
        ]
        parts += _combine(shared, seen)
    return "\n".join(parts)


def thread_has_new_replies(message: SlackMessage, since_ts: str | None) -> bool:
    latest = message.get("latest_reply")
    return bool(latest and since_ts and float(latest) > float(since_ts))


def thread_has_unread_early_reply(message: SlackMessage, entry: LedgerEntry) -> bool:
    """Someone besides the bot replied in the thread, and the thread was never read since the ask.

    A requester who adds the link in the thread before the bot's ask is posted (a few seconds
    apart) leaves ``latest_reply`` at the bot's own ask, so only the thread's repliers show it.
    """
    return not entry.get("thread_checked") and int(message.get("reply_users_count") or 0) >= 2


@dataclass
class _Selection:
    """What :func:`select` found: requests to work on, outcomes to record, and log lines."""

    dry_run: bool
    requests: list[Request] = field(default_factory=list)
    outcomes: list[RequestOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def close(self, ts: str, outcome: Outcome, error: str, note: str) -> None:
        self.outcomes.append({"ts": ts, "outcome": outcome, "dry_run": self.dry_run, "last_error": error})
        self.notes.append(f"{ts}: {note}")


def select(
    messages: list[SlackMessage],
    *,
    channel: str,
    book: Ledger,
    dry_run: bool,
    bot_user_id: str | None,
    looker_hosts: tuple[str, ...],
    max_attempts: int,
    link_wait_hours: int,
    force: bool = False,
    manual: bool = False,
    now: datetime | None = None,
    request_bots: Collection[str] = (),
    own_bot_id: str | None = None,
) -> tuple[list[Request], list[RequestOutcome], list[str]]:
    """Split fetched messages into requests to work on, ledger updates (expiries), and log lines.

    Returns ``(requests, outcomes, notes)``; a request whose thread must be read to see a link
    added in a reply has ``reason`` :attr:`RequestReason.CHECK_THREAD` and is finished by the caller.
    """
    now = now or datetime.now(UTC)
    found = _Selection(dry_run)
    for message in sorted(messages, key=lambda m: float(m["ts"])):
        ts = message["ts"]
        entry = ledger.lookup(book, channel, ts, dry_run)
        if message.get("subtype") == TOMBSTONE:
            # Deleted, kept only for its replies: close it like a deleted message; a reply under
            # it (even one with a link) never makes it a request again.
            if entry is not None and entry.get("outcome") not in FINAL:
                found.close(
                    ts, Outcome.DELETED, "message deleted", "the message was deleted; closing its request"
                )
            else:
                found.notes.append(f"{ts}: skipped, deleted (a tombstone kept for its thread)")
            continue
        why = skip_reason(message, bot_user_id, request_bots=request_bots, own_bot_id=own_bot_id)
        if why:
            found.notes.append(f"{ts}: skipped, {why}")
            continue
        text = message_text(message)[:MAX_TEXT_CHARS]
        attempt = (entry or {}).get("attempts", 0) + 1
        request = Request(channel, ts, requester(message), text, attempt, RequestReason.NEW)
        if entry is None or force:
            reason = RequestReason.MANUAL if manual else RequestReason.NEW
            found.requests.append(replace(request, reason=reason, forced=force and entry is not None))
            continue
        again = _again(message, request, entry, max_attempts, link_wait_hours, looker_hosts, now, found)
        if again is not None:
            found.requests.append(replace(request, reason=again))
    return found.requests, found.outcomes, found.notes


def _again(
    message: SlackMessage,
    request: Request,
    entry: LedgerEntry,
    max_attempts: int,
    link_wait_hours: int,
    looker_hosts: tuple[str, ...],
    now: datetime,
    found: _Selection,
) -> RequestReason | None:
    """Why a request the ledger knows is worked on again, or ``None`` (then closed, or left alone)."""
    ts, outcome = request.ts, entry.get("outcome")
    # A request still "retrying" at max_attempts is one whose post_results never finished
    # (a normal failure at the last attempt is escalated there): give it one final pass so it
    # ends answered or escalated by DM instead of silently stuck.
    if outcome == Outcome.RETRYING and entry.get("attempts", 0) <= max_attempts:
        return RequestReason.RETRY
    if outcome == Outcome.RETRYING:
        # Even the final pass did not finish (record_ledger has already tried the DM): close it.
        gave_up = f"gave up after {entry.get('attempts')} attempts"
        found.close(ts, Outcome.ESCALATED, f"{gave_up}: {entry.get('last_error')}", gave_up)
        return None
    if outcome != Outcome.LINK_REQUESTED:
        found.notes.append(f"{ts}: already {outcome}")
        return None
    asked_at = float(entry.get("reply_ts") or ts)
    # A link already in the (edited) post is worked on even when the wait is over, e.g. after
    # an outage: expiring it would drop a request that did get its link.
    if looker_urls(request.text, list(looker_hosts)):
        return RequestReason.LINK_ADDED
    if now.timestamp() - asked_at > link_wait_hours * 3600:
        wait = f"{link_wait_hours} h"
        found.close(ts, Outcome.EXPIRED, f"no Looker link after {wait}", f"link request expired after {wait}")
        return None
    since = entry.get("thread_checked") or entry.get("reply_ts")
    if thread_has_new_replies(message, since) or thread_has_unread_early_reply(message, entry):
        return RequestReason.CHECK_THREAD
    return None
