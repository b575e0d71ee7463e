"""Which Slack messages are credit requests, and which of them this run should work on.

Pure functions over Slack message dicts and the ledger, so the rules are easy to test: bot
messages, joins and other subtypes, and thread replies are not requests; requests the ledger
has finished with are skipped; requests waiting for a link come back when a link appears.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from credit_bot import ledger
from credit_bot.links import looker_urls

# Subtypes that are still a person's post. Everything else (channel_join, bot_message,
# message_changed, …) is not a request.
_REQUEST_SUBTYPES = frozenset({None, "", "thread_broadcast", "file_share"})
_PERMALINK = re.compile(r"/archives/([A-Z0-9]+)/p(\d{10})(\d{6})(?:[/?#]|$)")
_TS = re.compile(r"^\d{10}\.\d{6}$")
MAX_TEXT_CHARS = 40_000  # Slack's own limit for a message's text
_SLACK_MARKUP_WITH_LABEL = re.compile(r"<[^<>|]*\|([^<>]*)>")
_SLACK_MARKUP = re.compile(r"<[^<>]*>")


class InvalidMessageRef(ValueError):
    """A ``message_ts`` param that is neither a Slack ts nor a permalink."""


@dataclass(frozen=True)
class Request:
    """A message CreditBot will work on in this run: small enough to pass between tasks."""

    channel: str
    ts: str
    user: str
    text: str
    attempt: int
    reason: str  # "new", "retry", "link_added", "manual"
    forced: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

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


def skip_reason(message: dict[str, Any], bot_user_id: str | None) -> str | None:
    """Why a message is not a credit request, or ``None`` when it is one."""
    if message.get("type", "message") != "message":
        return f"not a message ({message.get('type')})"
    subtype = message.get("subtype")
    if subtype not in _REQUEST_SUBTYPES:
        return f"subtype {subtype}"
    if (
        message.get("bot_id")
        or message.get("bot_profile")
        or (bot_user_id and message.get("user") == bot_user_id)
    ):
        return "posted by a bot"
    thread_ts = message.get("thread_ts")
    if thread_ts and thread_ts != message.get("ts") and subtype != "thread_broadcast":
        return "a reply in a thread"
    if subtype == "thread_broadcast":
        return "a thread reply broadcast to the channel"
    if not message.get("user"):
        return "no author"
    return None


def thread_has_new_replies(message: dict[str, Any], since_ts: str | None) -> bool:
    latest = message.get("latest_reply")
    return bool(latest and since_ts and float(latest) > float(since_ts))


def thread_has_unread_early_reply(message: dict[str, Any], entry: dict[str, Any]) -> bool:
    """Someone besides the bot replied in the thread, and the thread was never read since the ask.

    A requester who adds the link in the thread before the bot's ask is posted (a few seconds
    apart) leaves ``latest_reply`` at the bot's own ask, so only the thread's repliers show it.
    """
    return not entry.get("thread_checked") and int(message.get("reply_users_count") or 0) >= 2


def select(
    messages: list[dict[str, Any]],
    *,
    channel: str,
    book: dict[str, Any],
    dry_run: bool,
    bot_user_id: str | None,
    looker_hosts: tuple[str, ...],
    max_attempts: int,
    link_wait_hours: int,
    force: bool = False,
    manual: bool = False,
    now: datetime | None = None,
) -> tuple[list[Request], list[dict[str, Any]], list[str]]:
    """Split fetched messages into requests to work on, ledger updates (expiries), and log lines.

    Returns ``(requests, outcomes, notes)``; a request whose thread must be read to see a link
    added in a reply has ``reason == "check_thread"`` and is finished by the caller.
    """
    now = now or datetime.now(UTC)
    requests: list[Request] = []
    outcomes: list[dict[str, Any]] = []
    notes: list[str] = []
    for message in sorted(messages, key=lambda m: float(m["ts"])):
        ts = message["ts"]
        why = skip_reason(message, bot_user_id)
        if why:
            notes.append(f"{ts}: skipped, {why}")
            continue
        text = message.get("text") or ""
        if len(text) > MAX_TEXT_CHARS:
            text = text[:MAX_TEXT_CHARS]
        entry = ledger.lookup(book, channel, ts, dry_run)
        attempt = (entry or {}).get("attempts", 0) + 1
        base = {
            "channel": channel,
            "ts": ts,
            "user": message.get("user", ""),
            "text": text,
            "attempt": attempt,
        }
        if entry is None or force:
            reason = "manual" if manual else "new"
            requests.append(Request(**base, reason=reason, forced=force and entry is not None))
            continue
        outcome = entry.get("outcome")
        # A request still "retrying" at max_attempts is one whose post_results never finished
        # (a normal failure at the last attempt is escalated there): give it one final pass so it
        # ends answered or escalated by DM instead of silently stuck.
        if outcome == ledger.RETRYING and entry.get("attempts", 0) <= max_attempts:
            requests.append(Request(**base, reason="retry"))
        elif outcome == ledger.RETRYING:
            # Even the final pass did not finish (record_ledger has already tried the DM): close it.
            gave_up = f"gave up after {entry.get('attempts')} attempts"
            outcomes.append(
                {
                    "ts": ts,
                    "outcome": ledger.ESCALATED,
                    "dry_run": dry_run,
                    "last_error": f"{gave_up}: {entry.get('last_error')}",
                }
            )
            notes.append(f"{ts}: {gave_up}")
        elif outcome == ledger.LINK_REQUESTED:
            asked_at = float(entry.get("reply_ts") or ts)
            # A link already in the (edited) post is worked on even when the wait is over, e.g. after
            # an outage: expiring it would drop a request that did get its link.
            if looker_urls(text, list(looker_hosts)):
                requests.append(Request(**base, reason="link_added"))
            elif now.timestamp() - asked_at > link_wait_hours * 3600:
                outcomes.append(
                    {
                        "ts": ts,
                        "outcome": ledger.EXPIRED,
                        "dry_run": dry_run,
                        "last_error": f"no Looker link after {link_wait_hours} h",
                    }
                )
                notes.append(f"{ts}: link request expired after {link_wait_hours} h")
            elif thread_has_new_replies(
                message, entry.get("thread_checked") or entry.get("reply_ts")
            ) or thread_has_unread_early_reply(message, entry):
                requests.append(Request(**base, reason="check_thread"))
        else:
            notes.append(f"{ts}: already {outcome}")
    return requests, outcomes, notes
