"""Emulated Slack Web API: the methods CreditBot uses, with Slack's documented responses and errors."""

from __future__ import annotations

import base64
import binascii
import copy
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from harness.sandbox.blocks import InvalidBlocks, find_button, parse_blocks
from harness.sandbox.faults import Fault
from harness.sandbox.scenario import SlackScenario
from harness.sandbox.wire import Reply, as_bool, bearer_token

# response_url: "up to 5 times within 30 minutes" of the interaction
# (https://docs.slack.dev/interactivity/handling-user-interaction, "Message responses").
RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_LIFETIME_SECONDS = 30 * 60
RESPONSE_URL_PREFIX = "/slack/actions/"

# Slack documents 1000 as the hard maximum; history defaults to 100, replies to 1000.
_MAX_LIMIT = 1000
_HISTORY_DEFAULT_LIMIT = 100
_REPLIES_DEFAULT_LIMIT = 1000

# The bot-token scopes each emulated method needs (any one of them), from each method's page on
# docs.slack.dev; history and replies depend on the conversation (see _needed_scopes).
# conversations.info (channels:read …) is left unchecked: the bot never calls it, and the default
# scope set is the one README asks an installer for.
_METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "conversations.open": ("im:write", "mpim:write", "channels:manage", "groups:write"),
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "reactions.add": ("reactions:write",),
}


class SlackError(Exception):
    """An API-level failure: HTTP 200 with ``{"ok": false, "error": code}``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def ts_to_micros(ts: str) -> int:
    """Slack "seconds.micros" timestamp -> integer microseconds; ValueError when malformed."""
    text = str(ts).strip()
    seconds, _, fraction = text.partition(".")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()) or len(fraction) > 6:
        raise ValueError(f"not a Slack timestamp: {ts!r}")
    return int(seconds) * 1_000_000 + int(fraction.ljust(6, "0") or "0")


def micros_to_ts(micros: int) -> str:
    """Integer microseconds -> Slack "seconds.micros" with six digits."""
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


class TsClock:
    """Hands out unique, increasing message timestamps: max(now, last + 1µs)."""

    def __init__(self) -> None:
        self._last = 0

    def observe(self, ts: str) -> None:
        """Account for an explicitly given timestamp so later ones sort after it."""
        self._last = max(self._last, ts_to_micros(ts))

    def next(self) -> str:
        """A fresh timestamp, strictly after every one seen so far."""
        self._last = max(time.time_ns() // 1000, self._last + 1)
        return micros_to_ts(self._last)


@dataclass
class Channel:
    """A public channel or a DM; messages (top-level and replies) keyed by ts."""

    id: str
    name: str | None = None
    is_im: bool = False
    user: str | None = None
    created: int = 0
    members: list[str] | None = None  # None: every scenario user (public channel); DMs: the DM's user
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)

    def ordered(self) -> list[dict[str, Any]]:
        """Every message, oldest first."""
        return sorted(self.messages.values(), key=lambda m: ts_to_micros(m["ts"]))


def _is_reply(msg: dict[str, Any]) -> bool:
    return bool(msg.get("thread_ts")) and msg["thread_ts"] != msg["ts"]


def _encode_cursor(ts: str) -> str:
    # Same shape as Slack's own cursors ("next_ts:<ts without dot>", base64): opaque to clients.
    return base64.b64encode(f"next_ts:{ts.replace('.', '')}".encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise SlackError("invalid_cursor") from exc
    prefix, _, digits = text.partition(":")
    if prefix != "next_ts" or not digits.isdigit():
        raise SlackError("invalid_cursor")
    return int(digits)


class SlackApi:
    """State of the emulated workspace plus one handler per Web API method."""

    def __init__(self, scenario: SlackScenario) -> None:
        self.scenario = scenario
        self._lock = threading.RLock()
        self._clock = TsClock()
        self._channels: dict[str, Channel] = {}
        self._users: dict[str, dict[str, Any]] = {u["id"]: dict(u) for u in scenario.users}
        self._posts: list[dict[str, Any]] = []
        self._reactions: list[dict[str, Any]] = []
        self._ephemerals: list[dict[str, Any]] = []
        self._updates: list[dict[str, Any]] = []
        self._response_urls: dict[str, dict[str, Any]] = {}
        self._response_url_calls: list[dict[str, Any]] = []
        # Socket Mode hooks, set by the Sandbox: where channel message events go, and where
        # apps.connections.open gets its websocket URL.
        self.event_listeners: list[Callable[[dict[str, Any]], Any]] = []
        self.open_socket_url: Callable[[], str] | None = None
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
            "conversations.info": self._info,
            "conversations.open": self._open,
            "chat.postMessage": self._post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.getPermalink": self._permalink,
            "chat.delete": self._chat_delete,
            "reactions.add": self._reactions_add,
            "apps.connections.open": self._connections_open,
        }
        self._seed(scenario)

    # ---- HTTP entry points -------------------------------------------------------------------------

    def handle(self, method: str, params: dict[str, Any], headers: dict[str, str]) -> Reply:
        """Answer one Web API call (``method`` like "chat.postMessage")."""
        handler = self._methods.get(method)
        if handler is None:
            return Reply.json({"ok": False, "error": "unknown_method", "req_method": method})
        token = bearer_token(headers) or params.get("token")
        if not token:
            return Reply.json({"ok": False, "error": "not_authed"})
        if method == "apps.connections.open":
            # The one method that takes the app-level token (xapp-…) and no other.
            if token == self.scenario.token:
                return Reply.json({"ok": False, "error": "not_allowed_token_type"})
            if token != self.scenario.app_token:
                return Reply.json({"ok": False, "error": "invalid_auth"})
        elif token == self.scenario.app_token:
            return Reply.json({"ok": False, "error": "not_allowed_token_type"})
        elif token != self.scenario.token:
            return Reply.json({"ok": False, "error": "invalid_auth"})
        if method == "apps.connections.open":
            headers_out: dict[str, str] = {}
        else:
            # Slack names the token's scopes on every Web API answer, and what the method accepts.
            headers_out = {"X-OAuth-Scopes": ",".join(self.scenario.scopes)}
        with self._lock:
            try:
                needed = self._needed_scopes(method, params)
                if needed:
                    headers_out["X-Accepted-OAuth-Scopes"] = ",".join(needed)
                    if not set(needed) & set(self.scenario.scopes):
                        return Reply.json(
                            {
                                "ok": False,
                                "error": "missing_scope",
                                "needed": needed[0],
                                "provided": ",".join(self.scenario.scopes),
                            },
                            headers=headers_out,
                        )
                payload = handler(params)
            except SlackError as exc:
                return Reply.json({"ok": False, "error": exc.code}, headers=headers_out)
        return Reply.json({"ok": True, **payload}, headers=headers_out)

    def set_scopes(self, scopes: list[str]) -> None:
        """Grant the bot token exactly ``scopes`` from now on (an install that missed some)."""
        with self._lock:
            self.scenario.scopes = list(scopes)

    def _needed_scopes(self, method: str, params: dict[str, Any]) -> tuple[str, ...]:
        if method in ("conversations.history", "conversations.replies"):
            ch = self._lookup_channel(str(params.get("channel") or ""))
            if ch is None:
                return ()  # the handler answers channel_not_found
            return ("im:history",) if ch.is_im else ("channels:history",)
        return _METHOD_SCOPES.get(method, ())

    @staticmethod
    def fault_reply(fault: Fault) -> Reply:
        """What Slack sends for an injected fault (``delay`` and ``reset`` are handled by the server)."""
        if fault.kind == "ratelimited":
            retry_after = str(int(fault.opts.get("retry_after", 1)))
            return Reply.json(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": retry_after}
            )
        if fault.kind == "server_error":
            status = int(fault.opts.get("status", 500))
            return Reply.json({"ok": False, "error": "fatal_error"}, status=status)
        if fault.kind == "slack_error":
            return Reply.json({"ok": False, "error": str(fault.opts.get("error", "internal_error"))})
        raise ValueError(f"fault kind {fault.kind!r} has no canned Slack reply")

    # ---- Python control API (used by Sandbox) ------------------------------------------------------

    def add_message(
        self,
        channel: str,
        text: str,
        user: str | None = "U0REQUESTER",
        ts: str | None = None,
        thread_ts: str | None = None,
        subtype: str | None = None,
        bot_id: str | None = None,
        **extra: Any,
    ) -> str:
        """Put a message into a channel (or a thread) as if a person or another app posted it."""
        with self._lock:
            ch = self._require_channel(channel)
            if thread_ts is not None:
                parent = ch.messages.get(thread_ts)
                if parent is None:
                    raise ValueError(f"no message {thread_ts} in {ch.id} to reply to")
                thread_ts = parent.get("thread_ts") or parent["ts"]
            if ts is None:
                ts = self._clock.next()
            else:
                self._clock.observe(ts)
                ts = micros_to_ts(ts_to_micros(ts))
                if ts in ch.messages:
                    raise ValueError(f"message {ts} already exists in {ch.id}")
            msg: dict[str, Any] = {
                **extra,
                "ts": ts,
                "user": user,
                "text": text,
                "subtype": subtype,
                "bot_id": bot_id,
                "thread_ts": thread_ts,
            }
            ch.messages[ts] = msg
            self._emit(ch, self._render(ch, msg, include_metadata=False))
            return ts

    def edit_message(self, channel: str, ts: str, text: str) -> None:
        """Change a message's text the way a user edit does (Slack then shows ``edited``)."""
        with self._lock:
            ch = self._require_channel(channel)
            msg = self._require_message(channel, ts)
            previous = self._render(ch, msg, include_metadata=False)
            edit_ts = self._clock.next()
            msg["text"] = text
            msg["edited"] = {"user": msg.get("user"), "ts": edit_ts}
            self._emit_changed(ch, msg, previous, edit_ts)

    def unfurl(self, channel: str, ts: str, attachment: dict[str, Any]) -> None:
        """Add a link preview to a message as Slack does just after the post: ``message_changed``
        with the new ``attachments`` and no ``edited`` (nobody edited the text)."""
        with self._lock:
            ch = self._require_channel(channel)
            msg = self._require_message(channel, ts)
            previous = self._render(ch, msg, include_metadata=False)
            msg["attachments"] = [*(msg.get("attachments") or []), copy.deepcopy(attachment)]
            self._emit(
                ch,
                {
                    "type": "message",
                    "subtype": "message_changed",
                    "hidden": True,
                    "message": self._render(ch, msg, include_metadata=False),
                    "previous_message": previous,
                    "ts": self._clock.next(),
                },
            )

    def delete_message(self, channel: str, ts: str) -> None:
        """Delete a message; a thread parent with replies becomes a tombstone, like in Slack."""
        with self._lock:
            ch = self._require_channel(channel)
            msg = self._require_message(channel, ts)
            previous = self._render(ch, msg, include_metadata=False)
            self._emit(
                ch,
                {
                    "type": "message",
                    "subtype": "message_deleted",
                    "hidden": True,
                    "deleted_ts": ts,
                    "previous_message": previous,
                    "ts": self._clock.next(),
                },
            )
            if not _is_reply(msg) and self._thread_replies(ch, ts):
                ch.messages[ts] = {
                    "ts": ts,
                    "thread_ts": ts,
                    "subtype": "tombstone",
                    "user": "USLACKBOT",
                    "text": "This message was deleted.",
                    "hidden": True,
                }
            else:
                del ch.messages[ts]

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages the bot posted (chat.postMessage, response_url in_channel), oldest first; as
        posted (later updates are in updates()); ``blocks`` only when the post had blocks."""
        with self._lock:
            channel_id = self._require_channel(channel).id if channel else None
            return [
                {k: copy.deepcopy(v) for k, v in p.items() if k != "dm_user"}
                for p in self._posts
                if channel_id is None or p["channel"] == channel_id
            ]

    def dms(self, user: str | None = None) -> list[dict[str, Any]]:
        """The bot's posts into DM channels, each with the ``user`` it went to."""
        with self._lock:
            out = []
            for post in self._posts:
                if post["dm_user"] is None or (user is not None and post["dm_user"] != user):
                    continue
                entry = {k: copy.deepcopy(v) for k, v in post.items() if k != "dm_user"}
                entry["user"] = post["dm_user"]
                out.append(entry)
            return out

    def reactions(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Reactions the bot added, oldest first."""
        with self._lock:
            channel_id = self._require_channel(channel).id if channel else None
            return [dict(r) for r in self._reactions if channel_id is None or r["channel"] == channel_id]

    def ephemerals(self, user: str | None = None, channel: str | None = None) -> list[dict[str, Any]]:
        """Ephemeral messages shown so far (chat.postEphemeral and response_url), oldest first:
        channel, user (the only one who sees it), ts, text, blocks, thread_ts, via, deleted."""
        with self._lock:
            channel_id = self._require_channel(channel).id if channel else None
            return [
                copy.deepcopy(e)
                for e in self._ephemerals
                if (user is None or e["user"] == user) and (channel_id is None or e["channel"] == channel_id)
            ]

    def updates(self, channel: str | None = None, ts: str | None = None) -> list[dict[str, Any]]:
        """Replacements of messages in place, oldest first: channel, ts, text, blocks, previous_text,
        via ("chat.update" or "response_url"), user (who clicked, for response_url), at."""
        with self._lock:
            channel_id = self._require_channel(channel).id if channel else None
            return [
                copy.deepcopy(u)
                for u in self._updates
                if (channel_id is None or u["channel"] == channel_id) and (ts is None or u["ts"] == ts)
            ]

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        """A message as it is now (after updates), as conversations.history would show it."""
        with self._lock:
            ch = self._require_channel(channel)
            return self._render(ch, self._require_message(ch.id, ts), include_metadata=True)

    def response_url_calls(self, user: str | None = None) -> list[dict[str, Any]]:
        """Every POST to a response_url, oldest first: the clicking ``user``, channel, message_ts,
        ``body`` (what arrived), ``status``/``error`` of the answer, ``effect`` ("replaced",
        "deleted", "ephemeral", "in_channel"; None when refused) and ``ts`` of a new message."""
        with self._lock:
            return [copy.deepcopy(c) for c in self._response_url_calls if user is None or c["user"] == user]

    def block_actions_payload(
        self,
        user: str,
        channel: str,
        message_ts: str,
        action_id: str,
        base_url: str,
        block_id: str | None = None,
    ) -> dict[str, Any]:
        """The ``block_actions`` payload Slack sends when ``user`` clicks the button ``action_id`` of the
        message ``message_ts`` in ``channel`` (a message in the conversation, or an ephemeral one shown
        to that user); registers its response_url under ``base_url``. ValueError when the user, the
        channel, the message or the button does not exist, or the user cannot see the message.

        Shape: https://docs.slack.dev/reference/interaction-payloads/block_actions-payload, and payloads
        captured from Slack in public code (e.g. ``container`` {type, message_ts, channel_id,
        is_ephemeral}; no ``message`` when the container is ephemeral; DM channels named
        "directmessage"; each action with action_id, block_id, text, value, style, type, action_ts).
        """
        with self._lock:
            if user not in self._users:
                raise ValueError(f"unknown user {user!r}")
            ch = self._require_channel(channel)
            msg = ch.messages.get(message_ts)
            ephemeral = None
            if msg is None:
                ephemeral = next(
                    (
                        e
                        for e in self._ephemerals
                        if e["channel"] == ch.id and e["ts"] == message_ts and not e["deleted"]
                    ),
                    None,
                )
                if ephemeral is None:
                    raise ValueError(f"no message {message_ts} in {ch.id}")
                if ephemeral["user"] != user:
                    shown_to = ephemeral["user"]
                    raise ValueError(f"the ephemeral message {message_ts} is shown to {shown_to}, not {user}")
            elif not self._is_member(ch, user):
                raise ValueError(f"{user} is not in {ch.id} and cannot see its messages")
            blocks = (ephemeral or msg or {}).get("blocks")
            try:
                button, found_block_id = find_button(blocks, action_id, block_id)
            except LookupError as exc:
                raise ValueError(f"message {message_ts} in {ch.id}: {exc}") from exc
            s = self.scenario
            action_ts = self._clock.next()
            key = f"{s.team_id}/{uuid.uuid4().int % 10**13}/{uuid.uuid4().hex[:24]}"
            self._response_urls[key] = {
                "user": user,
                "channel": ch.id,
                "message_ts": message_ts,
                "is_ephemeral": ephemeral is not None,
                "created": time.monotonic(),
                "uses": 0,
            }
            name = self._users[user].get("name") or user
            action: dict[str, Any] = {
                "action_id": action_id,
                "block_id": found_block_id,
                "text": copy.deepcopy(button["text"]),
                "type": "button",
                "action_ts": action_ts,
            }
            for optional in ("value", "style"):
                if optional in button:
                    action[optional] = button[optional]
            payload: dict[str, Any] = {
                "type": "block_actions",
                "user": {"id": user, "username": name, "name": name, "team_id": s.team_id},
                "api_app_id": s.app_id,
                # The deprecated verification token: a fake value (apps are told not to rely on it).
                "token": "sandbox-verification-token",
                "container": {
                    "type": "message",
                    "message_ts": message_ts,
                    "channel_id": ch.id,
                    "is_ephemeral": ephemeral is not None,
                },
                "trigger_id": f"{uuid.uuid4().int % 10**13}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}",
                "team": {"id": s.team_id, "domain": self._team_domain()},
                "enterprise": None,
                "is_enterprise_install": False,
                "channel": {"id": ch.id, "name": "directmessage" if ch.is_im else (ch.name or ch.id)},
                "response_url": f"{base_url.rstrip('/')}{RESPONSE_URL_PREFIX}{key}",
                "actions": [action],
            }
            if msg is not None:
                payload["message"] = self._render(ch, msg, include_metadata=False)
            return payload

    def response_url(self, path: str, params: dict[str, Any]) -> Reply:
        """Answer a POST to a response_url (the JSON slack_sdk's WebhookClient sends): ``text``,
        ``blocks``, ``replace_original``, ``delete_original``, ``response_type`` (``ephemeral``, the
        default, or ``in_channel``), ``thread_ts``. Usable 5 times within 30 minutes.

        Effects as docs.slack.dev/messaging/modifying-messages and
        docs.slack.dev/interactivity/handling-user-interaction describe them: replace_original replaces
        the clicked message in place (an ephemeral one too), delete_original deletes it, otherwise a new
        message is shown: only to the clicking user (ephemeral) or to the channel (in_channel).
        Slack publishes no schema for the answer; the sandbox answers 200 ``{"ok": true}``, and 404
        ``{"ok": false, "error": "expired_url" | "used_url" | "invalid_url"}`` or 400 ``no_text`` /
        ``invalid_blocks``."""
        key = path.removeprefix(RESPONSE_URL_PREFIX).strip("/")
        with self._lock:
            record = self._response_urls.get(key)
            call: dict[str, Any] = {
                "user": record["user"] if record else None,
                "channel": record["channel"] if record else None,
                "message_ts": record["message_ts"] if record else None,
                "body": copy.deepcopy(params),
                "at": time.time(),
                "effect": None,
                "ts": None,
            }
            self._response_url_calls.append(call)
            status, error = self._respond(record, params, call)
            call["status"], call["error"] = status, error
        if error is not None:
            return Reply.json({"ok": False, "error": error}, status=status)
        return Reply.json({"ok": True})

    def _respond(
        self, record: dict[str, Any] | None, params: dict[str, Any], call: dict[str, Any]
    ) -> tuple[int, str | None]:
        if record is None:
            return 404, "invalid_url"
        if time.monotonic() - record["created"] > RESPONSE_URL_LIFETIME_SECONDS:
            return 404, "expired_url"
        if record["uses"] >= RESPONSE_URL_MAX_USES:
            return 404, "used_url"
        record["uses"] += 1
        ch = self._channels[record["channel"]]
        target = (
            next(
                (e for e in self._ephemerals if e["channel"] == ch.id and e["ts"] == record["message_ts"]),
                None,
            )
            if record["is_ephemeral"]
            else ch.messages.get(record["message_ts"])
        )
        if as_bool(params.get("delete_original", False)):
            if target is not None and record["is_ephemeral"]:
                target["deleted"] = True
            elif target is not None:
                self.delete_message(ch.id, record["message_ts"])
            call["effect"] = "deleted"
            return 200, None
        try:
            blocks = parse_blocks(params.get("blocks"))
        except InvalidBlocks:
            return 400, "invalid_blocks"
        text = str(params.get("text") or "")
        if not text and not blocks and not params.get("attachments"):
            return 400, "no_text"
        if as_bool(params.get("replace_original", False)) and target is not None:
            if record["is_ephemeral"]:
                target.update({"text": text, "blocks": copy.deepcopy(blocks)})
                self._updates.append(
                    {
                        "channel": ch.id,
                        "ts": target["ts"],
                        "text": text,
                        "blocks": copy.deepcopy(blocks),
                        "previous_text": None,
                        "via": "response_url",
                        "user": record["user"],
                        "at": time.time(),
                    }
                )
            else:
                attachments = params.get("attachments")
                self._replace(ch, target, text, blocks, attachments, via="response_url", user=record["user"])
            call["effect"] = "replaced"
            return 200, None
        thread_ts = str(params.get("thread_ts") or "") or None
        if params.get("response_type") == "in_channel":
            ts, msg = self._bot_message(ch, text, blocks, params.get("attachments"), thread_ts)
            self._emit(ch, self._render(ch, msg, include_metadata=False))
            call["effect"], call["ts"] = "in_channel", ts
        else:
            ts = self._add_ephemeral(ch, record["user"], text, blocks, thread_ts, via="response_url")
            call["effect"], call["ts"] = "ephemeral", ts
        return 200, None

    def _team_domain(self) -> str:
        host = urlsplit(self.scenario.workspace_url).hostname or "sandbox"
        return host.split(".")[0]

    # ---- Web API methods ---------------------------------------------------------------------------

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        s = self.scenario
        return {
            "url": self._workspace_url(),
            "team": s.team,
            "user": s.bot_name,
            "team_id": s.team_id,
            "user_id": s.bot_user_id,
            "bot_id": s.bot_id,
            "is_enterprise_install": False,
        }

    def _history(self, params: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel_param(params)
        oldest, latest, inclusive = self._bounds(params)
        include_metadata = as_bool(params.get("include_all_metadata", False))
        # Thread replies stay out of history unless they were also sent to the channel.
        selected = [
            m
            for m in reversed(ch.ordered())
            if (not _is_reply(m) or m.get("subtype") == "thread_broadcast")
            and self._in_bounds(m, oldest, latest, inclusive)
        ]
        page, next_cursor = self._paginate(selected, params, _HISTORY_DEFAULT_LIMIT, descending=True)
        return {
            "messages": [self._render(ch, m, include_metadata) for m in page],
            "has_more": bool(next_cursor),
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _replies(self, params: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel_param(params)
        ts = str(params.get("ts") or "")
        msg = self._message(ch, ts, "thread_not_found")
        parent_ts = msg["thread_ts"] if _is_reply(msg) else ts
        parent = ch.messages.get(parent_ts)
        if parent is None:
            raise SlackError("thread_not_found")
        oldest, latest, inclusive = self._bounds(params)
        include_metadata = as_bool(params.get("include_all_metadata", False))
        replies = [
            m for m in self._thread_replies(ch, parent_ts) if self._in_bounds(m, oldest, latest, inclusive)
        ]
        page, next_cursor = self._paginate(
            [parent, *replies], params, _REPLIES_DEFAULT_LIMIT, descending=False
        )
        return {
            "messages": [self._render(ch, m, include_metadata) for m in page],
            "has_more": bool(next_cursor),
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"channel": self._channel_object(self._channel_param(params))}

    def _open(self, params: dict[str, Any]) -> dict[str, Any]:
        return_im = as_bool(params.get("return_im", False))
        if params.get("channel"):
            ch = self._channel_param(params)
            if not ch.is_im:
                raise SlackError("method_not_supported_for_channel_type")
            return {"no_op": True, "already_open": True, "channel": self._channel_object(ch)}
        users = [u.strip() for u in str(params.get("users") or "").split(",") if u.strip()]
        if not users:
            raise SlackError("users_list_not_supplied")
        if len(users) > 1:
            # Multi-person DMs (MPIMs) are not emulated: CreditBot only DMs one operator at a time.
            raise SlackError("not_supported_in_sandbox")
        user = users[0]
        if user == self.scenario.bot_user_id:
            raise SlackError("cannot_dm_bot")
        if user not in self._users:
            raise SlackError("user_not_found")
        if self._users[user].get("is_bot"):
            raise SlackError("cannot_dm_bot")
        if self._users[user].get("deleted"):
            raise SlackError("user_disabled")  # a deactivated account
        already = self._dm_id(user) in self._channels
        ch = self._dm_channel(user)
        channel = self._channel_object(ch) if return_im else {"id": ch.id}
        return {"no_op": already, "already_open": already, "channel": channel}

    def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel_param(params, allow_user=True)
        text = params.get("text")
        blocks = self._blocks_param(params.get("blocks"))
        if not text and not blocks and not params.get("attachments"):
            raise SlackError("no_text")
        thread_ts = params.get("thread_ts") or None
        if thread_ts is not None:
            parent = ch.messages.get(str(thread_ts))
            # Slack documents no error for a reply to a missing (e.g. just deleted) parent: the post
            # succeeds, un-threaded, as a top-level message without thread_ts (slack-go/slack issue
            # 1571 reports this from production). A caller sees it only in the answer's message.
            # Replying to a reply threads under the same parent, as Slack does.
            if parent is None:
                thread_ts = None
            elif _is_reply(parent):
                thread_ts = parent["thread_ts"]
            else:
                thread_ts = parent["ts"]
        metadata = self._metadata_param(params.get("metadata"))
        ts, msg = self._bot_message(ch, text or "", blocks, params.get("attachments"), thread_ts, metadata)
        if thread_ts is not None and as_bool(params.get("reply_broadcast", False)):
            msg["subtype"] = "thread_broadcast"
        self._emit(ch, self._render(ch, msg, include_metadata=False))
        return {"channel": ch.id, "ts": ts, "message": self._render(ch, msg, include_metadata=True)}

    def _bot_message(
        self,
        ch: Channel,
        text: str,
        blocks: list[dict[str, Any]] | None,
        attachments: Any,
        thread_ts: str | None,
        metadata: dict[str, Any] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """Store a message the bot posts (chat.postMessage, or response_url with in_channel)."""
        s = self.scenario
        ts = self._clock.next()
        msg: dict[str, Any] = {
            "ts": ts,
            "user": s.bot_user_id,
            "bot_id": s.bot_id,
            "app_id": s.app_id,
            "text": text,
            "team": s.team_id,
            "bot_profile": self._bot_profile(),
            "thread_ts": thread_ts,
            "metadata": metadata,
            "blocks": blocks,
            "attachments": attachments,
        }
        ch.messages[ts] = msg
        post: dict[str, Any] = {
            "channel": ch.id,
            "ts": ts,
            "text": text,
            "thread_ts": thread_ts,
            "metadata": copy.deepcopy(metadata),
            "dm_user": ch.user if ch.is_im else None,
        }
        if blocks is not None:
            post["blocks"] = copy.deepcopy(blocks)  # as stored: block_ids and action_ids filled in
        self._posts.append(post)
        return ts, msg

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        """chat.update (https://docs.slack.dev/reference/methods/chat.update): the app's own message
        only (``cant_update_message`` otherwise; docs.slack.dev/messaging/modifying-messages), never an
        ephemeral one (not in the conversation: ``message_not_found``). Left-out ``blocks`` or
        ``attachments`` keep the message's previous ones, an empty array removes them (the method's
        argument docs). ``edit_window_closed`` concerns user tokens under a workspace edit window, not
        bot tokens: inject it as a fault (``slack_error``) to test it."""
        ch = self._channel_param(params)
        ts = str(params.get("ts") or "")
        msg = self._message(ch, ts)
        if msg.get("user") != self.scenario.bot_user_id or msg.get("subtype") == "tombstone":
            raise SlackError("cant_update_message")
        blocks = self._blocks_param(params.get("blocks")) if "blocks" in params else msg.get("blocks")
        attachments = params.get("attachments") if "attachments" in params else msg.get("attachments")
        text = params.get("text")
        if not text and not blocks and not attachments:
            raise SlackError("no_text")
        self._replace(ch, msg, str(text or ""), blocks, attachments, via="chat.update")
        rendered = self._render(ch, msg, include_metadata=False)
        rendered.pop("ts", None)  # the docs' answer carries ts beside the message, not in it
        return {"channel": ch.id, "ts": ts, "text": msg["text"], "message": rendered}

    def _replace(
        self,
        ch: Channel,
        msg: dict[str, Any],
        text: str,
        blocks: list[dict[str, Any]] | None,
        attachments: Any,
        via: str,
        user: str | None = None,
    ) -> None:
        """Replace a message's content in place (same ts): ``message_changed``, recorded in updates."""
        previous = self._render(ch, msg, include_metadata=False)
        edit_ts = self._clock.next()
        msg["text"] = text
        msg["blocks"] = blocks or None
        msg["attachments"] = attachments or None
        if via == "chat.update":
            msg["edited"] = {"user": self.scenario.bot_user_id, "ts": edit_ts}
        self._updates.append(
            {
                "channel": ch.id,
                "ts": msg["ts"],
                "text": text,
                "blocks": copy.deepcopy(blocks),
                "previous_text": previous.get("text"),
                "via": via,
                "user": user,
                "at": time.time(),
            }
        )
        self._emit_changed(ch, msg, previous, edit_ts)

    def _post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        """chat.postEphemeral (https://docs.slack.dev/reference/methods/chat.postEphemeral): shown only to
        ``user``, who must be in the channel (``user_not_in_channel``); never in history and never an
        event; answers ``message_ts``. Recorded per user for ephemerals()."""
        ch = self._channel_param(params)
        user = str(params.get("user") or "")
        if not self._is_member(ch, user):
            raise SlackError("user_not_in_channel")
        text = params.get("text")
        blocks = self._blocks_param(params.get("blocks"))
        if not text and not blocks and not params.get("attachments"):
            raise SlackError("no_text")
        thread_ts = str(params.get("thread_ts") or "") or None
        ts = self._add_ephemeral(ch, user, str(text or ""), blocks, thread_ts, via="chat.postEphemeral")
        return {"message_ts": ts}

    def _add_ephemeral(
        self,
        ch: Channel,
        user: str,
        text: str,
        blocks: list[dict[str, Any]] | None,
        thread_ts: str | None,
        via: str,
    ) -> str:
        ts = self._clock.next()
        self._ephemerals.append(
            {
                "channel": ch.id,
                "user": user,
                "ts": ts,
                "text": text,
                "blocks": copy.deepcopy(blocks),
                "thread_ts": thread_ts,
                "via": via,
                "deleted": False,
            }
        )
        return ts

    def _is_member(self, ch: Channel, user: str) -> bool:
        if user not in self._users or self._users[user].get("deleted"):
            return False
        if ch.is_im:
            return user == ch.user
        return ch.members is None or user in ch.members

    def _blocks_param(self, value: Any) -> list[dict[str, Any]] | None:
        try:
            return parse_blocks(value)
        except InvalidBlocks as exc:
            raise SlackError("invalid_blocks") from exc

    def _chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel_param(params)
        ts = str(params.get("ts") or "")
        msg = self._message(ch, ts)
        if msg.get("user") != self.scenario.bot_user_id:
            # A bot token deletes only the app's own messages.
            raise SlackError("cant_delete_message")
        self.delete_message(ch.id, ts)
        return {"channel": ch.id, "ts": ts}

    def _bot_profile(self) -> dict[str, Any]:
        """The app's bot profile as messages carry it; Slack's spec requires every one of these fields."""
        s = self.scenario
        icon = "https://a.slack-edge.com/80588/img/plugins/app/bot_{}.png"
        return {
            "id": s.bot_id,
            "deleted": False,
            "name": s.bot_name,
            "updated": 1700000000,
            "app_id": s.app_id,
            "icons": {f"image_{size}": icon.format(size) for size in (36, 48, 72)},
            "team_id": s.team_id,
        }

    def _connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.open_socket_url is None:
            raise SlackError("not_supported_in_sandbox")
        return {"url": self.open_socket_url()}

    def _permalink(self, params: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel_param(params)
        ts = str(params.get("message_ts") or "")
        msg = self._message(ch, ts)
        link = f"{self._workspace_url()}archives/{ch.id}/p{ts.replace('.', '')}"
        if _is_reply(msg):
            link += f"?thread_ts={msg['thread_ts']}&cid={ch.id}"
        return {"channel": ch.id, "permalink": link}

    def _reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel_param(params)
        name = str(params.get("name") or "").strip(":")
        if not name:
            raise SlackError("invalid_name")
        ts = str(params.get("timestamp") or "")
        if not ts:
            raise SlackError("no_item_specified")
        msg = self._message(ch, ts)
        bot = self.scenario.bot_user_id
        reactions = msg.setdefault("reactions", [])
        existing = next((r for r in reactions if r["name"] == name), None)
        if existing is not None and bot in existing["users"]:
            raise SlackError("already_reacted")
        if existing is None:
            reactions.append({"name": name, "users": [bot], "count": 1})
        else:
            existing["users"].append(bot)
            existing["count"] += 1
        self._reactions.append({"channel": ch.id, "timestamp": ts, "name": name, "user": bot})
        return {}

    # ---- helpers -----------------------------------------------------------------------------------

    def _seed(self, scenario: SlackScenario) -> None:
        for spec in scenario.channels:
            ch = Channel(
                id=spec["id"],
                name=spec.get("name"),
                created=int(spec.get("created", 1700000000)),
                members=list(spec["members"]) if spec.get("members") is not None else None,
            )
            self._channels[ch.id] = ch
            for raw in spec.get("messages", []):
                raw = dict(raw)
                replies = raw.pop("replies", None) or []
                parent_ts = self._seed_message(ch, raw)
                for reply in replies:
                    self._seed_message(ch, {**reply, "thread_ts": parent_ts})

    def _seed_message(self, ch: Channel, raw: dict[str, Any]) -> str:
        if raw.get("ts"):
            self._clock.observe(raw["ts"])
            raw["ts"] = micros_to_ts(ts_to_micros(raw["ts"]))
        else:
            raw["ts"] = self._clock.next()
        ch.messages[raw["ts"]] = raw
        return raw["ts"]

    def _emit_changed(self, ch: Channel, msg: dict[str, Any], previous: dict[str, Any], edit_ts: str) -> None:
        """The ``message_changed`` event Slack sends after an edit (by the author or ``chat.update``)."""
        self._emit(
            ch,
            {
                "type": "message",
                "subtype": "message_changed",
                "hidden": True,
                "message": self._render(ch, msg, include_metadata=False),
                "previous_message": previous,
                "ts": edit_ts,
            },
        )

    def _emit(self, ch: Channel, event: dict[str, Any]) -> None:
        """Hand a message event in a channel to the Socket Mode listeners (the app sees no DMs)."""
        if ch.is_im or not self.event_listeners:
            return
        event = {**event, "channel": ch.id, "event_ts": event["ts"], "channel_type": "channel"}
        for listener in self.event_listeners:
            listener(event)

    def _workspace_url(self) -> str:
        url = self.scenario.workspace_url
        return url if url.endswith("/") else url + "/"

    def _require_channel(self, channel: str | None) -> Channel:
        ch = self._lookup_channel(channel or "")
        if ch is None:
            raise ValueError(f"unknown channel {channel!r}")
        return ch

    def _require_message(self, channel: str, ts: str) -> dict[str, Any]:
        ch = self._require_channel(channel)
        if ts not in ch.messages:
            raise ValueError(f"no message {ts} in {ch.id}")
        return ch.messages[ts]

    def _lookup_channel(self, ref: str) -> Channel | None:
        ref = ref.strip()
        if ref in self._channels:
            return self._channels[ref]
        name = ref.removeprefix("#")
        return next((c for c in self._channels.values() if c.name and c.name == name), None)

    def _channel_param(self, params: dict[str, Any], allow_user: bool = False) -> Channel:
        ref = str(params.get("channel") or "")
        ch = self._lookup_channel(ref)
        if ch is None and allow_user and ref in self._users:
            # chat.postMessage with a user ID posts into the app's DM with that user.
            ch = self._dm_channel(ref)
        if ch is None:
            raise SlackError("channel_not_found")
        return ch

    @staticmethod
    def _message(ch: Channel, ts: str, error: str = "message_not_found") -> dict[str, Any]:
        msg = ch.messages.get(ts)
        if msg is None:
            raise SlackError(error)
        return msg

    @staticmethod
    def _dm_id(user: str) -> str:
        # Stable and readable: U0OPERATOR -> D0OPERATOR.
        return "D" + user[1:]

    def _dm_channel(self, user: str) -> Channel:
        dm_id = self._dm_id(user)
        if dm_id not in self._channels:
            self._channels[dm_id] = Channel(id=dm_id, is_im=True, user=user, created=int(time.time()))
        return self._channels[dm_id]

    def _channel_object(self, ch: Channel) -> dict[str, Any]:
        if ch.is_im:
            return {
                "id": ch.id,
                "created": ch.created,
                "is_im": True,
                "is_org_shared": False,
                "user": ch.user,
                "is_user_deleted": False,
                "priority": 0,
            }
        return {
            "id": ch.id,
            "name": ch.name,
            "name_normalized": ch.name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": False,
            "is_archived": False,
            "is_general": False,
            "is_member": True,
            "created": ch.created,
            "context_team_id": self.scenario.team_id,
        }

    @staticmethod
    def _bounds(params: dict[str, Any]) -> tuple[int, int | None, bool]:
        try:
            oldest = ts_to_micros(params["oldest"]) if params.get("oldest") else 0
        except ValueError as exc:
            raise SlackError("invalid_ts_oldest") from exc
        try:
            latest = ts_to_micros(params["latest"]) if params.get("latest") else None
        except ValueError as exc:
            raise SlackError("invalid_ts_latest") from exc
        return oldest, latest, as_bool(params.get("inclusive", False))

    @staticmethod
    def _in_bounds(msg: dict[str, Any], oldest: int, latest: int | None, inclusive: bool) -> bool:
        key = ts_to_micros(msg["ts"])
        if inclusive:
            return key >= oldest and (latest is None or key <= latest)
        return key > oldest and (latest is None or key < latest)

    def _paginate(
        self, items: list[dict[str, Any]], params: dict[str, Any], default_limit: int, descending: bool
    ) -> tuple[list[dict[str, Any]], str]:
        try:
            limit = int(params.get("limit") or default_limit)
        except (TypeError, ValueError) as exc:
            # Slack documents no invalid_limit; a malformed argument is its generic invalid_arguments.
            raise SlackError("invalid_arguments") from exc
        limit = min(limit if limit > 0 else default_limit, _MAX_LIMIT)
        if self.scenario.max_page_size:
            limit = min(limit, int(self.scenario.max_page_size))
        start = 0
        cursor = str(params.get("cursor") or "")
        if cursor:
            mark = _decode_cursor(cursor)
            # Resume at the first message at or past the mark, so deletions mid-walk do not break it.
            start = next(
                (
                    i
                    for i, m in enumerate(items)
                    if (ts_to_micros(m["ts"]) <= mark if descending else ts_to_micros(m["ts"]) >= mark)
                ),
                len(items),
            )
        page = items[start : start + limit]
        rest = items[start + limit :]
        return page, (_encode_cursor(rest[0]["ts"]) if rest else "")

    @staticmethod
    def _thread_replies(ch: Channel, parent_ts: str) -> list[dict[str, Any]]:
        return [m for m in ch.ordered() if _is_reply(m) and m["thread_ts"] == parent_ts]

    @staticmethod
    def _metadata_param(value: Any) -> dict[str, Any] | None:
        if value in (None, ""):
            return None
        if isinstance(value, str):
            # Form-encoded calls carry metadata as a JSON string.
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise SlackError("invalid_metadata_format") from exc
        if not isinstance(value, dict) or not value.get("event_type"):
            raise SlackError("invalid_metadata_format")
        payload = value.get("event_payload", {})
        if not isinstance(payload, dict):
            raise SlackError("invalid_metadata_format")
        return {"event_type": str(value["event_type"]), "event_payload": payload}

    def _render(self, ch: Channel, msg: dict[str, Any], include_metadata: bool) -> dict[str, Any]:
        """The message as the Web API shows it: no nulls, thread fields, metadata only on request."""
        out: dict[str, Any] = {"type": "message"}
        out.update({k: copy.deepcopy(v) for k, v in msg.items() if v is not None})
        if not include_metadata:
            out.pop("metadata", None)
        if _is_reply(msg):
            parent = ch.messages.get(msg["thread_ts"])
            if parent is not None and parent.get("user"):
                out["parent_user_id"] = parent["user"]
            return out
        replies = self._thread_replies(ch, msg["ts"])
        if replies:
            reply_users = list(dict.fromkeys(r.get("user") for r in replies if r.get("user")))
            out.update(
                {
                    "thread_ts": msg["ts"],
                    "reply_count": len(replies),
                    "reply_users_count": len(reply_users),
                    "reply_users": reply_users,
                    "latest_reply": replies[-1]["ts"],
                    "is_locked": False,
                }
            )
        return out
