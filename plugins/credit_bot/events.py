"""Event-driven intake: a Slack Socket Mode trigger that turns channel messages into asset events.

``SlackSocketModeTrigger`` runs in Airflow's triggerer as the ``AssetWatcher`` of the asset that
``slack_asset()`` builds. It opens Slack Socket Mode with the app-level token (``xapp-…``) of its own
connection (``slack_app_default``: token in password, ``base_url`` extra honoured like
``slack_api_default``), acknowledges every envelope, and fires one event per new top-level request,
per edit that adds a link, and per thread reply (the DAG decides whether that thread's request was
waiting for a link). New posts and edits carry their message (``carry_message``): the run they
start works on it without reading the channel again. Without the connection it logs once and
idles: the DAG then runs on cron only.

This module is imported when the DAG is parsed, so ``slack_sdk`` and ``aiohttp`` are imported inside
``run()`` only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Any, cast

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from credit_bot import intake, slack
from credit_bot.errors import SetupError
from credit_bot.links import find_urls, url_key
from credit_bot.model import Announced, SlackEvent, SlackMessage, TriggerPayload

if TYPE_CHECKING:
    from airflow.sdk import Asset
    from slack_sdk.socket_mode.aiohttp import SocketModeClient
    from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
    from slack_sdk.socket_mode.request import SocketModeRequest
    from slack_sdk.web.async_client import AsyncWebClient

SLACK_APP_CONN_ID = "slack_app_default"
SLACK_ASSET_NAME = "credit_bot_slack_messages"
WATCHER_NAME = "credit_bot_slack_socket_mode"

NEW, EDITED, THREAD_REPLY = "new", "edited", "thread_reply"
_SEEN_EVENT_IDS = 2000  # redelivered envelopes are recognised by event_id among this many recent ones
_STABLE_SECONDS = 60.0  # a connection that lasted this long resets the reconnect backoff


class SlackAppConnectionError(SetupError, RuntimeError):
    """The app-level connection is missing or unusable; the message says what to fix."""


def classify(
    event: SlackEvent,
    channel: str | None = None,
    *,
    bot_user_id: str | None = None,
    app_id: str | None = None,
) -> TriggerPayload | None:
    """The trigger payload for one Events API ``message`` event, or ``None`` when it cannot matter.

    Who counts as a requester is ``credit_bot.intake.skip_reason``'s decision, applied to the
    top-level post, the edited message, or the reply. ``bot_user_id`` and ``app_id`` are
    CreditBot's own (the envelope's ``authorizations`` and ``api_app_id``): its posts never fire.
    """
    if event.get("type") != "message" or (channel and event.get("channel") != channel):
        return None
    if event.get("subtype") == "message_changed":
        message, previous = event.get("message") or {}, event.get("previous_message") or {}
        if not message.get("edited"):
            # Slack adds link previews (unfurls), reply counters and reactions as message_changed
            # too, without "edited": nobody changed what the post says.
            return None
        added = _links(message) - _links(previous)
        if not added:
            return None  # a typo fixed, a link kept: nothing new to work on
        return _payload(event["channel"], message, edited=True, own=(bot_user_id, app_id))
    return _payload(event.get("channel"), event, edited=False, own=(bot_user_id, app_id))


def _links(message: SlackMessage) -> set[str]:
    return {url_key(u) for u in find_urls(intake.message_text(message))}


def _payload(
    channel: str | None,
    message: SlackMessage,
    *,
    edited: bool,
    own: tuple[str | None, str | None] = (None, None),
) -> TriggerPayload | None:
    ts, thread_ts = message.get("ts"), message.get("thread_ts")
    if not channel or not ts:
        return None
    if thread_ts and thread_ts != ts:
        # A reply, or a reply also sent to the channel: judge its author as if it were a post.
        as_post = {**message, "thread_ts": None}
        if as_post.get("subtype") == "thread_broadcast":
            as_post["subtype"] = None
        if intake.skip_reason(as_post, None) is not None:
            return None
        return {"channel": channel, "ts": ts, "kind": THREAD_REPLY, "thread_ts": thread_ts}
    # Which bots' posts are requests is a setting the trigger cannot read (it is built when the DAG
    # is parsed): a top-level bot post starts a run, and the run decides.
    if intake.skip_reason(message, own[0], request_bots=None, own_bot_id=own[1]) is not None:
        return None
    return {"channel": channel, "ts": ts, "kind": EDITED if edited else NEW, "thread_ts": None}


def requests_from_asset_events(
    triggering_asset_events: Mapping[Any, Iterable[Any]] | Iterable[Any] | None,
    channel: str | None = None,
) -> list[Announced]:
    """``[{"channel", "ts", "message"?}, …]`` of the requests named by a run's triggering asset events.

    Accepts ``context["triggering_asset_events"]`` (or a plain list of events or their ``extra``
    dicts). Thread replies name their top-level request; duplicates collapse; oldest first; events
    not from this trigger, or for another ``channel`` when one is given, are ignored.

    ``message`` is the request as its events carried it (the newest edit wins), so the run need
    not read it from Slack again. It is left out when an event lacks it (too large to carry, an
    older trigger) and when a thread reply names the request: the run then reads the top-level
    message, whose reply counters say whether the thread must be looked at.
    """
    if not triggering_asset_events:
        return []
    if isinstance(triggering_asset_events, Mapping):
        events: Iterable[Any] = (e for seq in triggering_asset_events.values() for e in seq)
    else:
        events = triggering_asset_events
    found: dict[tuple[str, str], Announced] = {}
    replied: set[tuple[str, str]] = set()
    for event in events:
        extra = event.get("extra", event) if isinstance(event, dict) else getattr(event, "extra", None)
        payload = (extra or {}).get("payload") if isinstance(extra, dict) else None
        if not isinstance(payload, dict) or not payload.get("channel") or not payload.get("ts"):
            continue
        if channel and payload["channel"] != channel:
            continue
        ts = str(payload.get("thread_ts") or payload["ts"])
        key = (str(payload["channel"]), ts)
        item = found.setdefault(key, {"channel": key[0], "ts": ts})
        if payload.get("thread_ts"):
            replied.add(key)
        carried = payload.get("message")
        if not isinstance(carried, dict) or carried.get("ts") != ts:
            continue
        if "message" not in item or _edited_at(carried) >= _edited_at(item["message"]):
            item["message"] = carried
    for key in replied:
        found[key].pop("message", None)
    return sorted(found.values(), key=lambda r: (float(r["ts"]), r["channel"]))


def _edited_at(message: SlackMessage) -> float:
    return float((message.get("edited") or {}).get("ts") or message.get("ts") or 0)


def carry_message(payload: TriggerPayload, event: SlackEvent) -> TriggerPayload:
    """``payload`` with the message its event carried, so the run reads nothing back from Slack.

    New posts and edits carry the whole message as the Events API gave it (text, user, ts,
    ``edited``, blocks, attachments, files' metadata); thread replies carry nothing (the run reads
    the top-level request). A message above :data:`MAX_CARRIED_BYTES` of JSON is left for the run
    to read: the asset event is stored in Airflow's metadata DB.
    """
    if payload.get("kind") not in (NEW, EDITED):
        return payload
    message = event.get("message") if event.get("subtype") == "message_changed" else event
    if not isinstance(message, dict) or message.get("ts") != payload["ts"]:
        return payload
    carried = {k: v for k, v in message.items() if k not in _NOT_CARRIED}
    if len(json.dumps(carried, default=str)) > MAX_CARRIED_BYTES:
        return payload
    return {**payload, "message": carried}


MAX_CARRIED_BYTES = 32_000
# Event envelope fields, not the message's: history never has them.
_NOT_CARRIED = frozenset({"channel", "channel_type", "event_ts", "previous_message"})


class SlackSocketModeTrigger(BaseEventTrigger):
    """Fires ``{"channel", "ts", "kind", "thread_ts"}`` for request-related messages seen over Socket Mode.

    :param channel: channel ID to watch; ``None`` = every channel the app is in (filter on the DAG side).
    :param slack_conn_id: connection with the app-level token (``xapp-…``) in its password.
    :param backoff_base_seconds: first reconnect delay; doubles per failed attempt, with jitter.
    :param backoff_max_seconds: longest reconnect delay.
    :param idle_recheck_seconds: how often a missing or unusable connection is looked at again.
    :param ping_interval: websocket ping interval; a connection silent for 4 pings is replaced.
    :param connect_timeout: longest wait for one connection attempt.
    """

    def __init__(
        self,
        *,
        channel: str | None = None,
        slack_conn_id: str = SLACK_APP_CONN_ID,
        backoff_base_seconds: float = 1.0,
        backoff_max_seconds: float = 60.0,
        idle_recheck_seconds: float = 300.0,
        ping_interval: float = 10.0,
        connect_timeout: float = 30.0,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow leaves it unannotated
        self.channel = channel
        self.slack_conn_id = slack_conn_id
        self.backoff_base_seconds = backoff_base_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.idle_recheck_seconds = idle_recheck_seconds
        self.ping_interval = ping_interval
        self.connect_timeout = connect_timeout
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._last_problem: str | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "channel": self.channel,
                "slack_conn_id": self.slack_conn_id,
                "backoff_base_seconds": self.backoff_base_seconds,
                "backoff_max_seconds": self.backoff_max_seconds,
                "idle_recheck_seconds": self.idle_recheck_seconds,
                "ping_interval": self.ping_interval,
                "connect_timeout": self.connect_timeout,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # Never returns and never raises: a watcher trigger that ends is restarted by the triggerer
        # at once, so failing here would be a crash loop. Problems are logged and waited out.
        queue: asyncio.Queue[TriggerPayload] = asyncio.Queue()
        keeper = asyncio.create_task(self._keep_connected(queue), name=f"socket-mode-{self.slack_conn_id}")
        getter: asyncio.Future[TriggerPayload] | None = None
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, keeper}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    keeper.result()  # _keep_connected never ends on its own: surface what ended it
                yield TriggerEvent(getter.result())
        finally:
            for task in (getter, keeper):
                if task is not None:
                    task.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

    # ---- connection loop ---------------------------------------------------------------------------

    async def _keep_connected(self, queue: asyncio.Queue[TriggerPayload]) -> None:
        import aiohttp
        from slack_sdk.errors import SlackApiError

        failures = 0
        while True:
            try:
                web = await self._web_client()
            except SlackAppConnectionError as exc:
                self._problem(str(exc))
                await asyncio.sleep(self.idle_recheck_seconds)
                continue
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                await self._session(web, queue)
            except SlackApiError as exc:
                code = str(exc.response.get("error") or exc.response.status_code)
                found = slack.refusal(exc)
                if found is not None and found.app_token:
                    self._problem(
                        f"Slack refused the app-level token of connection {self.slack_conn_id!r} "
                        f"({code}); event intake is off, the cron schedule still runs. Put a valid "
                        "xapp-… token with the connections:write scope in its password."
                    )
                    await asyncio.sleep(self.idle_recheck_seconds)
                    continue
                self.log.warning("Socket Mode: apps.connections.open failed (%s)", code)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                self.log.warning("Socket Mode: cannot connect (%s)", type(exc).__name__)
            except Exception:
                # Raising would end run(), and the triggerer restarts an ended watcher at once: a
                # crash loop. An unexpected failure is logged and retried with backoff instead.
                self.log.exception("Socket Mode: unexpected failure; reconnecting")
            self._last_problem = None
            failures = 0 if loop.time() - started >= _STABLE_SECONDS else failures + 1
            delay = min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** max(failures - 1, 0))
            delay *= random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not cryptography
            self.log.info("Socket Mode: reconnecting in %.1f s (attempt %d)", delay, failures + 1)
            await asyncio.sleep(delay)

    async def _web_client(self) -> AsyncWebClient:
        from airflow.providers.slack.hooks.slack import SlackHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            web = await SlackHook(slack_conn_id=self.slack_conn_id).get_async_client()
        except AirflowNotFoundException as exc:
            raise SlackAppConnectionError(
                f"No usable Airflow connection {self.slack_conn_id!r} (Slack app-level token) ({exc}); "
                "event intake is off and credit_bot runs on its cron schedule only. Add the connection "
                "(password = xapp-… token) to answer requests within seconds."
            ) from exc
        if not str(web.token or "").startswith("xapp-"):
            raise SlackAppConnectionError(
                f"Connection {self.slack_conn_id!r} does not hold an app-level token (xapp-…): Socket "
                "Mode cannot use a bot or user token. Event intake is off; the cron schedule still runs."
            )
        return web

    async def _session(self, web: AsyncWebClient, queue: asyncio.Queue[TriggerPayload]) -> None:
        """One Socket Mode client from connect to disconnect; returns when the connection is gone."""
        from slack_sdk.socket_mode.aiohttp import SocketModeClient

        closed = asyncio.Event()
        client = SocketModeClient(
            app_token=str(web.token),
            web_client=web,
            auto_reconnect_enabled=False,  # reconnects are ours: fresh URL, backoff, one place to log
            ping_interval=self.ping_interval,
            logger=cast(logging.Logger, self.log),
        )

        async def on_request(sm_client: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
            await self._on_request(sm_client, request, queue)

        async def on_close(message: Any) -> None:
            closed.set()

        client.socket_mode_request_listeners.append(on_request)
        client.on_close_listeners.append(on_close)
        try:
            async with asyncio.timeout(self.connect_timeout):
                # The URL is asked for here, not by slack_sdk, so that its errors are ours to log once.
                client.wss_uri = (await web.apps_connections_open(app_token=str(web.token)))["url"]
                await client.connect()
            self.log.info("Socket Mode: connected, watching %s", self.channel or "every channel")
            await self._until_disconnected(client, closed)
            self.log.warning("Socket Mode: disconnected")
        finally:
            await client.close()

    async def _until_disconnected(self, client: SocketModeClient, closed: asyncio.Event) -> None:
        while True:
            with suppress(TimeoutError):  # no close frame seen: poll the connection's health anyway
                await asyncio.wait_for(closed.wait(), self.ping_interval)
            closed.clear()
            if await client.is_connected():
                continue
            # Slack's "disconnect" message (refresh, server rotation) makes slack_sdk open a new
            # connection itself, under this lock: wait for it before declaring the session lost.
            try:
                async with asyncio.timeout(self.connect_timeout):
                    async with client.connect_operation_lock:
                        pass
            except TimeoutError:
                return
            if not await client.is_connected():
                return

    async def _on_request(
        self,
        client: AsyncBaseSocketModeClient,
        request: SocketModeRequest,
        queue: asyncio.Queue[TriggerPayload],
    ) -> None:
        from slack_sdk.socket_mode.response import SocketModeResponse

        try:
            # Slack expects the ack within 3 s, long before a DAG run could: ack first, always.
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        except (ConnectionError, OSError) as exc:
            self.log.warning("Socket Mode: ack failed (%s); Slack will redeliver", type(exc).__name__)
        if request.type == "interactive":  # a button click: credit_bot_interactions handles it
            from credit_bot import interactions

            await interactions.forward(request.payload, self.log)
            return
        if request.type != "events_api":
            return
        event_id = str(request.payload.get("event_id") or request.envelope_id)
        if event_id in self._seen:
            return  # a redelivery of an event already passed on
        self._seen[event_id] = None
        while len(self._seen) > _SEEN_EVENT_IDS:
            self._seen.popitem(last=False)
        bot_users = [a.get("user_id") for a in request.payload.get("authorizations") or [] if a.get("is_bot")]
        payload = classify(
            request.payload.get("event") or {},
            self.channel,
            bot_user_id=bot_users[0] if bot_users else None,
            app_id=request.payload.get("api_app_id"),
        )
        if payload is not None:
            queue.put_nowait(carry_message(payload, request.payload.get("event") or {}))

    def _problem(self, message: str) -> None:
        """Log a configuration problem once, not on every re-check."""
        if message != self._last_problem:
            self.log.error(message)
            self._last_problem = message


def slack_asset(channel: str | None = None, *, slack_conn_id: str = SLACK_APP_CONN_ID) -> Asset:
    """The asset credit_bot is scheduled on, watched by ``SlackSocketModeTrigger`` (cheap at parse)."""
    from airflow.sdk import Asset, AssetWatcher

    trigger = SlackSocketModeTrigger(channel=channel, slack_conn_id=slack_conn_id)
    return Asset(name=SLACK_ASSET_NAME, watchers=[AssetWatcher(name=WATCHER_NAME, trigger=trigger)])
