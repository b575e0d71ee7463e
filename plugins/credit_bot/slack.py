"""Slack: reading the request channel and posting replies and DMs through the provider's ``SlackHook``.

The hook is built on the ``slack_api_default`` connection (bot token; ``base_url`` and
``timeout`` extras honoured by the provider). Rate limits (429 + Retry-After), 5xx answers and
connection resets are retried by ``slack_sdk``'s own retry handlers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from credit_bot.errors import SetupError, TransientError
from credit_bot.model import SlackMessage
from credit_bot.settings import SLACK_CONN_ID

if TYPE_CHECKING:
    from airflow.providers.slack.hooks.slack import SlackHook
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError


log = logging.getLogger(__name__)


class ReplyNotThreaded(TransientError):
    """Slack posted a thread reply as a top-level message: its parent was deleted in the meantime.

    The task fails and is retried; by then the request reads as deleted and is closed.
    """


class SlackSetupError(SetupError):
    """Slack refused a call in a way only a person can fix (a token, a scope, the channel)."""


class MissingScopes(SlackSetupError):
    """The bot token lacks scopes the run needs; the message names each one and what it is for."""


# ── Slack's answers that waiting does not fix ────────────────────────────────────────────────────
@dataclass(frozen=True)
class Identity:
    """Who the bot token belongs to (``auth.test``): to recognise the bot's own posts."""

    user_id: str | None
    bot_id: str | None


@dataclass(frozen=True)
class Refusal:
    """What one of Slack's error codes means for CreditBot, and what a person does about it."""

    fix: str
    reading: bool = False  # reading the request channel: the run fails at once (SlackSetupError)
    recipient: bool = False  # a DM: that operator cannot be told this way (the alert channel instead)
    app_token: bool = False  # opening Socket Mode: the app-level connection must change


# The one table of Slack error codes CreditBot acts on; any other code is worth a retry.
SLACK_ERRORS = {
    "channel_not_found": Refusal(
        "the 'channel' setting or param is not a channel this bot can see (check the ID)",
        reading=True,
        recipient=True,
    ),
    "not_in_channel": Refusal(
        "invite the bot to the channel (/invite @CreditBot)", reading=True, recipient=True
    ),
    "missing_scope": Refusal(
        "the Slack app lacks a scope: see README, 'Run it for real'", reading=True, recipient=True
    ),
    "invalid_auth": Refusal(
        "the token in connection 'slack_api_default' is not valid", reading=True, app_token=True
    ),
    "not_authed": Refusal(
        "connection 'slack_api_default' has no token (password field)", reading=True, app_token=True
    ),
    "token_revoked": Refusal(
        "the token in connection 'slack_api_default' was revoked: install the app again",
        reading=True,
        app_token=True,
    ),
    "not_allowed_token_type": Refusal("the connection holds another kind of token", app_token=True),
    "account_inactive": Refusal("the account is deactivated", recipient=True, app_token=True),
    "user_not_found": Refusal("a bad or foreign user id (setting 'operators')", recipient=True),
    "user_disabled": Refusal("a deactivated account (setting 'operators')", recipient=True),
    "user_not_visible": Refusal("a user the bot cannot see (setting 'operators')", recipient=True),
    "cannot_dm_bot": Refusal("a bot's user id (setting 'operators')", recipient=True),
    "invalid_user_combination": Refusal("a user the bot cannot DM (setting 'operators')", recipient=True),
    "is_archived": Refusal("the channel is archived", recipient=True),
    "restricted_action": Refusal("the workspace does not let the bot post there", recipient=True),
}


def error_code(exc: SlackApiError) -> str:
    """Slack's error code of a refused call (``"ratelimited"``, ``"channel_not_found"`` …)."""
    return str(exc.response.get("error"))


def refusal(exc: SlackApiError) -> Refusal | None:
    """What Slack's refusal means (:data:`SLACK_ERRORS`), or ``None`` when waiting may fix it."""
    return SLACK_ERRORS.get(error_code(exc))


def reading_error(exc: SlackApiError, channel: str) -> SlackSetupError | None:
    """The setup error a refused read of ``channel`` means, or ``None`` when waiting may fix it."""
    found = refusal(exc)
    if found is None or not found.reading:
        return None
    return SlackSetupError(f"Slack answered {error_code(exc)!r} for channel {channel}: {found.fix}")


def slack_hook(conn_id: str = SLACK_CONN_ID, *, for_posting: bool = False) -> SlackHook:
    """The provider's hook with ``slack_sdk``'s retry handlers.

    Reads retry rate limits, 5xx answers and dropped connections. Posting retries only rate
    limits (a 429 means Slack did not take the message): after a 5xx or a dropped connection the
    message may already be posted, so the task fails instead and Airflow's retry first looks for
    the bot's earlier message (``find_own``) rather than sending it blind a second time.
    """
    from airflow.providers.slack.hooks.slack import SlackHook
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )
    from slack_sdk.http_retry.handler import RetryHandler

    handlers: list[RetryHandler] = [RateLimitErrorRetryHandler(max_retry_count=5)]
    if not for_posting:
        handlers += [
            ServerErrorRetryHandler(max_retry_count=2),
            ConnectionErrorRetryHandler(max_retry_count=2),
        ]
    return SlackHook(slack_conn_id=conn_id, retry_handlers=handlers)


def history(client: WebClient, channel: str, *, oldest: str, page_size: int) -> Iterator[SlackMessage]:
    """Top-level messages newer than ``oldest``, following ``slack_sdk``'s cursor pagination."""
    first = client.conversations_history(channel=channel, oldest=oldest, limit=page_size)
    for page in first:  # SlackResponse iterates over pages using response_metadata.next_cursor
        yield from page.get("messages", [])


def message(client: WebClient, channel: str, ts: str) -> SlackMessage | None:
    """One top-level message by its ts, or ``None`` if it does not exist (any more)."""
    page = client.conversations_history(channel=channel, latest=ts, oldest=ts, inclusive=True, limit=1)
    messages: list[SlackMessage] = page.get("messages", [])
    found = [m for m in messages if m.get("ts") == ts]
    return found[0] if found else None


def replies(client: WebClient, channel: str, ts: str) -> list[SlackMessage]:
    """The replies in a message's thread (without the parent), oldest first, with their metadata."""
    out: list[SlackMessage] = []
    first = client.conversations_replies(channel=channel, ts=ts, include_all_metadata=True, limit=200)
    for page in first:
        out.extend(m for m in page.get("messages", []) if m.get("ts") != ts)
    return out


def find_own(
    messages: list[SlackMessage], *, bot_user_id: str, event_type: str, **payload: str
) -> SlackMessage | None:
    """The bot's earlier message of this kind, recognised by its metadata (every ``payload`` item)."""
    for message in messages:
        meta = message.get("metadata") or {}
        found = meta.get("event_payload") or {}
        if (
            message.get("user") == bot_user_id
            and meta.get("event_type") == event_type
            and all(found.get(key) == value for key, value in payload.items())
        ):
            return message
    return None


def post(
    client: WebClient,
    *,
    channel: str,
    text: str,
    thread_ts: str | None = None,
    event_type: str | None = None,
    payload: Mapping[str, str] | None = None,
    blocks: list[dict[str, Any]] | None = None,
) -> str:
    """Post ``text`` (no unfurls, no mention parsing) and return the new message's ts.

    Slack answers a reply whose parent is gone (deleted after it was read) with success, posting it
    top-level in the channel; the answer's ``message`` then has no ``thread_ts``. Such a post is
    deleted at once and :class:`ReplyNotThreaded` raised, so an amount never stays in the channel.
    """
    metadata = {"event_type": event_type, "event_payload": dict(payload or {})} if event_type else None
    response = client.chat_postMessage(
        channel=channel,
        text=text,
        thread_ts=thread_ts,
        unfurl_links=False,
        unfurl_media=False,
        parse="none",
        link_names=False,
        metadata=metadata,
        blocks=blocks or None,  # ``text`` stays the notification's and screen readers' text
    )
    posted = response.get("message") or {}
    if thread_ts and not posted.get("thread_ts"):
        client.chat_delete(channel=channel, ts=response["ts"])
        raise ReplyNotThreaded(
            f"message {thread_ts} in {channel} was deleted before its reply was posted; Slack posted "
            f"the reply top-level as {response['ts']}, which was deleted again"
        )
    return str(response["ts"])


def direct_message(
    reader: WebClient,
    poster: WebClient,
    user: str,
    text: str,
    *,
    bot_user_id: str,
    event_type: str,
    payload: Mapping[str, str],
    since_ts: str,
    blocks: list[dict[str, Any]] | None = None,
) -> str:
    """A private message to one user, sent once: an earlier DM with the same metadata is reused.

    ``reader`` opens the DM and reads it back (``im:history``); ``poster`` sends.
    """
    dm_channel = reader.conversations_open(users=user)["channel"]["id"]
    return post_once(
        reader,
        poster,
        dm_channel,
        text,
        bot_user_id=bot_user_id,
        event_type=event_type,
        payload=payload,
        since_ts=since_ts,
        blocks=blocks,
    )


def post_once(
    reader: WebClient,
    poster: WebClient,
    channel: str,
    text: str,
    *,
    bot_user_id: str,
    event_type: str,
    payload: Mapping[str, str],
    since_ts: str,
    blocks: list[dict[str, Any]] | None = None,
) -> str:
    """Post ``text`` to ``channel`` unless the bot's message with the same metadata is already there."""
    recent = reader.conversations_history(
        channel=channel, oldest=since_ts, limit=100, include_all_metadata=True
    )
    earlier = find_own(recent.get("messages", []), bot_user_id=bot_user_id, event_type=event_type, **payload)
    if earlier:
        return str(earlier["ts"])
    return post(poster, channel=channel, text=text, event_type=event_type, payload=payload, blocks=blocks)


def react(client: WebClient, channel: str, ts: str, name: str) -> None:
    """Add reaction ``name`` to a message; status only, so a failure is logged, never raised."""
    from slack_sdk.errors import SlackApiError

    try:
        client.reactions_add(channel=channel, timestamp=ts, name=name)
    except SlackApiError as exc:
        if exc.response.get("error") != "already_reacted":
            log.warning("could not add :%s: to %s: %s", name, ts, exc.response.get("error"))


def permalink(client: WebClient, channel: str, ts: str) -> str | None:
    from slack_sdk.errors import SlackApiError

    try:
        return str(client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"])
    except SlackApiError:
        return None


# ── the bot token's scopes ───────────────────────────────────────────────────────────────────────
# What each scope is for, in the words the failure names it with. "a|b" = either will do.
SCOPE_PURPOSES = {
    "channels:history|groups:history": "read the request channel (conversations.history and .replies; "
    "groups:history for a private channel)",
    "chat:write": "post thread replies, operator DMs and alerts (chat.postMessage)",
    "im:write": "open the DM with an operator (conversations.open)",
    "im:history": "read an operator's DM back so that a DM is never sent twice (conversations.history)",
    "reactions:write": 'add the status reactions (reactions.add); or set the reaction_* settings to ""',
}


def granted_scopes(client: WebClient) -> tuple[Identity, frozenset[str] | None]:
    """``auth.test`` (who the bot is) and the token's scopes from its ``X-OAuth-Scopes`` header.

    Slack sends that header on every Web API answer; ``None`` when it is absent (then nothing
    can be checked).
    """
    response = client.auth_test()
    headers = {str(k).lower(): v for k, v in (response.headers or {}).items()}
    raw = headers.get("x-oauth-scopes")
    if isinstance(raw, list):  # some HTTP clients hand repeated headers over as a list
        raw = ",".join(raw)
    scopes = None if raw is None else frozenset(s.strip() for s in str(raw).split(",") if s.strip())
    data = response.data if isinstance(response.data, dict) else {}
    return Identity(user_id=data.get("user_id"), bot_id=data.get("bot_id")), scopes


def missing_scopes(granted: frozenset[str], needed: list[str]) -> list[str]:
    """The entries of ``needed`` (``"a|b"`` = either) that ``granted`` does not cover."""
    return [need for need in needed if not set(need.split("|")) & granted]


def scope_failure(missing: list[str]) -> str:
    """One message naming each missing scope and what the bot needs it for."""
    items = "; ".join(f"{need.replace('|', ' or ')}: to {SCOPE_PURPOSES[need]}" for need in missing)
    return (
        f"the Slack bot token lacks {len(missing)} scope(s): {items}. Add them under OAuth & Permissions "
        "→ Bot Token Scopes, reinstall the app, and put the new token in connection 'slack_api_default' "
        "(README, 'Run it for real')"
    )
