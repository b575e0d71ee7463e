"""Button clicks from Slack: Approve / Reject on an approval DM, Retry now on an operator DM.

Slack delivers a click as an ``interactive`` envelope (payload type ``block_actions``) over the Socket
Mode connection the triggerer already holds (``credit_bot.events``). The trigger acknowledges it at
once (Slack wants the ack within 3 s) and hands the click on as an asset event on
:data:`INTERACTIONS_ASSET_NAME` (:func:`forward`, through Airflow's REST API: a trigger's own events
go to the message asset, and ``credit_bot`` must not run per click). That asset schedules the
``credit_bot_interactions`` DAG, whose task calls :func:`handle` per click:

* **who may click** — Approve / Reject: the approvers (setting ``approvers``, else ``operators``);
  Retry now: the operators and the approvers. Anyone else gets an ephemeral "not taken" and a log line.
  Over Socket Mode a payload carries no request signature: the app-level token authenticates the
  stream; this list is what authorizes a click (README, "Who may click").
* **Approve / Reject** — the answer to the ``decide`` task (HITL) named by the button's value,
  through the REST API, with the Slack user in the response's ``slack_user`` field.
* **Retry now** — the forced one-message ``credit_bot`` run (what the trigger form does), and a
  reply under the DM with the run's link.

Imported by the triggerer and at DAG parse: Slack and HTTP clients are imported where used.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from credit_bot.airflow_api import AIRFLOW_API_CONN_ID, AirflowApi, AirflowApiError

if TYPE_CHECKING:
    from airflow.sdk import Asset

log = logging.getLogger(__name__)

INTERACTIONS_ASSET_NAME = "credit_bot_slack_interactions"
INTERACTIONS_DAG_ID = "credit_bot_interactions"
ACTION_RETRY = "credit_bot_retry"
# Mirrors credit_bot.approval's action ids (not imported: that module imports the HITL operator).
ACTION_APPROVE = "credit_bot_approve"
ACTION_REJECT = "credit_bot_reject"
ACTIONS = frozenset({ACTION_APPROVE, ACTION_REJECT, ACTION_RETRY})
MAIN_DAG_ID = "credit_bot"


def interactions_asset() -> Asset:
    """The asset ``credit_bot_interactions`` is scheduled on; its events are clicks (cheap at parse)."""
    from airflow.sdk import Asset

    return Asset(name=INTERACTIONS_ASSET_NAME)


# ── in the triggerer ───────────────────────────────────────────────────────────────────────────
def click_of(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """The small part of a ``block_actions`` payload a click needs, or None when it is not ours.

    ``{"user", "action_id", "value", "channel", "message_ts", "action_ts"}``: who clicked which of
    CreditBot's buttons, on which message.
    """
    if payload.get("type") != "block_actions":
        return None
    actions = [a for a in payload.get("actions") or [] if a.get("action_id") in ACTIONS]
    if not actions:
        return None
    action = actions[0]
    container = payload.get("container") or {}
    channel = container.get("channel_id") or (payload.get("channel") or {}).get("id")
    user = (payload.get("user") or {}).get("id")
    if not user or not channel:
        return None
    return {
        "user": user,
        "action_id": action["action_id"],
        "value": str(action.get("value") or ""),
        "channel": channel,
        "message_ts": container.get("message_ts") or (payload.get("message") or {}).get("ts"),
        "action_ts": str(action.get("action_ts") or ""),
    }


_ASSET_IDS: dict[str, int] = {}


async def forward(payload: Mapping[str, Any], logger: Any = log, conn_id: str = AIRFLOW_API_CONN_ID) -> bool:
    """Hand one acknowledged click on as an asset event (three tries); False when it could not be.

    A click that could not be handed on is logged; the person can click again.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    click = click_of(payload)
    if click is None:
        logger.info(
            "Socket Mode: interactive payload %r is not a CreditBot button; ignored", payload.get("type")
        )
        return False
    try:
        api = AirflowApi.from_connection(await BaseHook.aget_connection(conn_id))
    except AirflowNotFoundException:
        logger.error(
            "Socket Mode: a click by %s (%s) was not taken: no %r connection to Airflow's REST API (README)",
            click["user"],
            click["action_id"],
            conn_id,
        )
        return False
    for attempt in range(3):
        try:
            await asyncio.to_thread(_add_event, api, click)
        except AirflowApiError as exc:
            logger.warning("Socket Mode: handing on a click failed (%s), try %d of 3", exc, attempt + 1)
            await asyncio.sleep(1 + attempt)
            continue
        logger.info("Socket Mode: click %s by %s handed on", click["action_id"], click["user"])
        return True
    logger.error(
        "Socket Mode: a click by %s (%s) was lost; they can click again", click["user"], click["action_id"]
    )
    return False


def _add_event(api: AirflowApi, click: dict[str, Any]) -> None:
    if INTERACTIONS_ASSET_NAME not in _ASSET_IDS:
        _ASSET_IDS[INTERACTIONS_ASSET_NAME] = api.asset_id(INTERACTIONS_ASSET_NAME)
    api.add_asset_event(_ASSET_IDS[INTERACTIONS_ASSET_NAME], {"click": click})


# ── in credit_bot_interactions ─────────────────────────────────────────────────────────────────
def clicks_from_asset_events(
    triggering_asset_events: Mapping[Any, Iterable[Any]] | Iterable[Any] | None,
) -> list[dict[str, Any]]:
    """The clicks a run's triggering asset events carry, in order (a run may gather several)."""
    if not triggering_asset_events:
        return []
    if isinstance(triggering_asset_events, Mapping):
        events: Iterable[Any] = (e for seq in triggering_asset_events.values() for e in seq)
    else:
        events = triggering_asset_events
    clicks = []
    for event in events:
        extra = event.get("extra", event) if isinstance(event, dict) else getattr(event, "extra", None)
        click = (extra or {}).get("click") if isinstance(extra, Mapping) else None
        if isinstance(click, Mapping) and click.get("user") and click.get("action_id"):
            clicks.append(dict(click))
    return clicks


def allowed(action_id: str, user: str, *, approvers: Iterable[str], operators: Iterable[str]) -> bool:
    """Approve / Reject: approvers only. Retry now: operators and approvers."""
    if action_id in (ACTION_APPROVE, ACTION_REJECT):
        return user in set(approvers)
    if action_id == ACTION_RETRY:
        return user in set(approvers) | set(operators)
    return False


def handle(click: dict[str, Any], api: AirflowApi | None = None) -> dict[str, Any]:
    """Authorize and carry out one click; ``{"user", "action", "result"}`` for the task's return value."""
    from credit_bot import approval, slack
    from credit_bot.store import VariableStore

    settings = approval.current_settings(VariableStore())
    client = slack.slack_hook(for_posting=True).client
    user, action = click["user"], click["action_id"]
    done = {"user": user, "action": action}
    if not allowed(action, user, approvers=settings.approval_users, operators=settings.operators):
        who = "approvers" if action != ACTION_RETRY else "operators and approvers"
        log.warning("refused: %s clicked %s but is not one of the %s", user, action, who)
        _ephemeral(client, click, f"Not taken: only CreditBot's {who} can use this button.")
        return {**done, "result": "refused"}
    api = api or AirflowApi.from_conn_id()
    if action == ACTION_RETRY:
        return {**done, **_retry(api, client, click)}
    return {**done, **_decide(api, client, click)}


def _decide(api: AirflowApi, client: Any, click: dict[str, Any]) -> dict[str, Any]:
    from credit_bot import approval

    target = json.loads(click["value"])
    chosen = approval.APPROVE if click["action_id"] == ACTION_APPROVE else approval.REJECT
    path = (
        f"/dags/{quote(target['dag_id'], safe='')}/dagRuns/{quote(target['run_id'], safe='')}"
        f"/taskInstances/{quote(target['task_id'], safe='')}/-1/hitlDetails"
    )
    try:
        detail = _parked(api, target, path)
        # Every form field must be answered: its defaults, with who clicked.
        inputs = {key: _default(value) for key, value in (detail.get("params") or {}).items()}
        inputs.update(slack_user=click["user"])
        api.request("PATCH", path, json={"chosen_options": [chosen], "params_input": inputs})
    except AirflowApiError as exc:
        if exc.status == 409:
            _ephemeral(client, click, "Already decided: this approval has its answer.")
            return {"result": "already decided"}
        if exc.status == 404:
            _ephemeral(client, click, "This approval is no longer waiting (its run was cleared or removed).")
            return {"result": "not waiting"}
        raise
    log.info("%s chose %s for %s", click["user"], chosen, target["run_id"])
    return {"result": chosen, "run_id": target["run_id"]}


PARK_SETTLE_SECONDS = 3.0


# Task states in which ``decide`` will never park again: a click on its DM then decides nothing.
_DONE_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


def _parked(api: AirflowApi, target: dict[str, Any], path: str, wait: float = 60.0) -> dict[str, Any]:
    """The HITL detail once ``decide`` is parked (awaiting_input) and has been for a few seconds.

    The DM is sent by ``ask``, before ``decide`` starts: a click that comes first finds no HITL detail
    yet (404) and waits for it while the task is still to run. And an Airflow 3.3 race: an answer
    within about a second of the task parking resumes it before the executor has reported the
    parking process's end, and that late report then marks the resumed task failed ("state changed
    externally"). A click that fast is waited out here.
    """
    import time
    from datetime import UTC, datetime

    ti_path = path.removesuffix("/-1/hitlDetails")
    deadline = time.monotonic() + wait
    while True:
        state = (api.request("GET", ti_path) or {}).get("state")  # 404: the run is gone
        try:
            detail: dict[str, Any] = api.request("GET", path)
        except AirflowApiError as exc:
            if exc.status != 404 or state in _DONE_STATES or time.monotonic() > deadline:
                raise
            time.sleep(0.5)  # decide has not started yet: the DM came first
            continue
        created = datetime.fromisoformat(str(detail.get("created_at")).replace("Z", "+00:00"))
        age = (datetime.now(UTC) - created).total_seconds()
        if state == "awaiting_input" and age >= PARK_SETTLE_SECONDS:
            return detail
        if detail.get("response_received") or time.monotonic() > deadline:
            return detail  # answered already (the PATCH says 409), or let the PATCH say what it is
        time.sleep(max(0.2, PARK_SETTLE_SECONDS - age) if state == "awaiting_input" else 0.5)


def _default(value: Any) -> Any:
    return value.get("value") if isinstance(value, Mapping) and "value" in value else value


def _retry(api: AirflowApi, client: Any, click: dict[str, Any]) -> dict[str, Any]:
    from credit_bot.ui.urls import configured_base_url

    target = json.loads(click["value"])
    run_id = f"retry_from_slack__{target['ts']}__{click.get('action_ts') or click.get('message_ts')}"
    conf = {"channel": target["channel"], "message_ts": target["ts"], "force": True}
    try:
        api.request(
            "POST",
            f"/dags/{MAIN_DAG_ID}/dagRuns",
            json={"dag_run_id": run_id, "logical_date": None, "conf": conf},
        )
    except AirflowApiError as exc:
        if exc.status != 409:  # 409: this very click was handled already (a retried task)
            raise
    base = (configured_base_url() or "").rstrip("/")
    link = f"{base}/dags/{MAIN_DAG_ID}/runs/{quote(run_id, safe='')}" if base else run_id
    text = f"<@{click['user']}> started a forced run for this request: {link}"
    if click.get("message_ts"):
        client.chat_postMessage(channel=click["channel"], thread_ts=click["message_ts"], text=text)
    else:
        _ephemeral(client, click, text)
    log.info("%s retried %s: run %s", click["user"], target["ts"], run_id)
    return {"result": "retried", "run_id": run_id}


def _ephemeral(client: Any, click: dict[str, Any], text: str) -> None:
    from slack_sdk.errors import SlackApiError

    try:
        client.chat_postEphemeral(channel=click["channel"], user=click["user"], text=text)
    except SlackApiError as exc:
        log.warning("could not answer %s ephemerally: %s", click["user"], exc.response.get("error"))


# ── the Retry now button on operator DMs ───────────────────────────────────────────────────────
def retry_blocks(text: str, channel: str, ts: str) -> list[dict[str, Any]]:
    """An operator DM as Block Kit: its text, then **Retry now** (the forced one-message run)."""
    value = json.dumps({"channel": channel, "ts": ts}, separators=(",", ":"))
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
        {
            "type": "actions",
            "block_id": "credit_bot_retry",
            "elements": [
                {
                    "type": "button",
                    "action_id": ACTION_RETRY,
                    "text": {"type": "plain_text", "text": "Retry now"},
                    "value": value,
                }
            ],
        },
    ]
