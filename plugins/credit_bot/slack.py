"""Slack: reading the request channel and posting replies and DMs through the provider's ``SlackHook``.

The hook is built on the ``slack_api_default`` connection (bot token; ``base_url`` and
``timeout`` extras honoured by the provider). Rate limits (429 + Retry-After), 5xx answers and
connection resets are retried by ``slack_sdk``'s own retry handlers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow.providers.slack.hooks.slack import SlackHook

if TYPE_CHECKING:
    from slack_sdk import WebClient

SLACK_CONN_ID = "slack_api_default"


def slack_hook(conn_id: str = SLACK_CONN_ID, *, rate_limit_retries: int = 5) -> SlackHook:
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )

    return SlackHook(
        slack_conn_id=conn_id,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
            ServerErrorRetryHandler(max_retry_count=2),
            ConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )


def history(client: WebClient, channel: str, *, oldest: str, page_size: int) -> Iterator[dict[str, Any]]:
    """Top-level messages newer than ``oldest``, following ``slack_sdk``'s cursor pagination."""
    first = client.conversations_history(channel=channel, oldest=oldest, limit=page_size)
    for page in first:  # SlackResponse iterates over pages using response_metadata.next_cursor
        yield from page.get("messages", [])


def message(client: WebClient, channel: str, ts: str) -> dict[str, Any] | None:
    """One top-level message by its ts, or ``None`` if it does not exist (any more)."""
    page = client.conversations_history(channel=channel, latest=ts, oldest=ts, inclusive=True, limit=1)
    found = [m for m in page.get("messages", []) if m.get("ts") == ts]
    return found[0] if found else None


def replies(client: WebClient, channel: str, ts: str) -> list[dict[str, Any]]:
    """The replies in a message's thread (without the parent), oldest first, with their metadata."""
    out: list[dict[str, Any]] = []
    first = client.conversations_replies(channel=channel, ts=ts, include_all_metadata=True, limit=200)
    for page in first:
        out.extend(m for m in page.get("messages", []) if m.get("ts") != ts)
    return out


def find_own_reply(
    thread: list[dict[str, Any]], *, bot_user_id: str, event_type: str, request_ts: str
) -> dict[str, Any] | None:
    """The bot's earlier reply of this kind to this request, recognised by its message metadata."""
    for reply in thread:
        meta = reply.get("metadata") or {}
        if (
            reply.get("user") == bot_user_id
            and meta.get("event_type") == event_type
            and (meta.get("event_payload") or {}).get("request_ts") == request_ts
        ):
            return reply
    return None


def post(
    client: WebClient,
    *,
    channel: str,
    text: str,
    thread_ts: str | None = None,
    event_type: str | None = None,
    payload: dict[str, Any] | None = None,
) -> str:
    """Post ``text`` (no unfurls, no mention parsing) and return the new message's ts."""
    kwargs: dict[str, Any] = {}
    if event_type:
        kwargs["metadata"] = {"event_type": event_type, "event_payload": payload or {}}
    response = client.chat_postMessage(
        channel=channel,
        text=text,
        thread_ts=thread_ts,
        unfurl_links=False,
        unfurl_media=False,
        parse="none",
        link_names=False,
        **kwargs,
    )
    return response["ts"]


def direct_message(client: WebClient, user: str, text: str) -> str:
    """A private message to one user (opens the DM channel first)."""
    dm_channel = client.conversations_open(users=user)["channel"]["id"]
    return post(client, channel=dm_channel, text=text)


def permalink(client: WebClient, channel: str, ts: str) -> str | None:
    from slack_sdk.errors import SlackApiError

    try:
        return client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"]
    except SlackApiError:
        return None
