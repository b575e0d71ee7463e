"""Event-driven intake on a real deployment: scheduler, dag-processor, triggerer and LocalExecutor on
PostgreSQL, the Slack Socket Mode trigger (``credit_bot.events``) connected to the sandbox.

* a message posted to the request channel is answered by an asset-triggered run, without waiting
  for the */10 cron tick;
* a triggerer killed, a message posted while it is down, the triggerer started again: the envelope
  Slack held (never acked) is delivered on the new connection and answered, exactly once;
* a message seen by both paths (its event's run and a channel-reading run) is answered once.

The tests run in order on one deployment (module-scoped ``live_local``).
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import pytest

from harness.deployment import AirflowApi, AirflowApiError
from harness.testing.live import DAG_ID, HOST, SCHEDULED_CHANNEL, TIMINGS, Live

pytestmark = [pytest.mark.deploy, pytest.mark.integration]

ACME = f"Credit request acme\nFraud spend: <{HOST}/looks/101|$20,902.40>"
ACME_REPLY = "Approved, $10,226.35, exceptions"
BOLT = f"Credit memo for bolt: <{HOST}/explore/billing/counters_by_billable_item?qid=qBolt01|$2,389.84>"
BOLT_REPLY = "Approved, $1,283.00, exceptions"
UNFINISHED = ("queued", "running")


# ---- helpers ----------------------------------------------------------------------------------------


def _wait_connected(live: Live, timeout: float = 120.0) -> float:
    """Wait until the watcher's trigger holds a Socket Mode connection to the sandbox; seconds waited."""
    started = time.monotonic()
    deadline = started + timeout
    while live.stack.sandbox.socket_status()["connections"] < 1:
        live.deployment.check_alive()
        if time.monotonic() > deadline:
            log = live.deployment.component("triggerer").log_tail(60)
            pytest.fail(
                f"no Socket Mode connection after {timeout:.0f}s: {live.stack.sandbox.socket_status()}\n{log}"
            )
        time.sleep(0.2)
    return time.monotonic() - started


def _wait_disconnected(live: Live, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while live.stack.sandbox.socket_status()["connections"] > 0:
        assert time.monotonic() < deadline, f"still connected: {live.stack.sandbox.socket_status()}"
        time.sleep(0.2)


def _wait_idle(api: AirflowApi, timeout: float = 300.0) -> list[dict[str, Any]]:
    """Wait until no run is queued or running; every run so far."""
    deadline = time.monotonic() + timeout
    while True:
        runs = api.dag_runs(DAG_ID)
        if not [r for r in runs if r["state"] in UNFINISHED]:
            return runs
        assert time.monotonic() < deadline, f"runs still unfinished after {timeout:.0f}s: {runs}"
        time.sleep(0.5)


def _fetched(api: AirflowApi, run_id: str) -> list[str]:
    """The ts of the requests the run's fetch_requests selected (its return value), [] if none."""
    run = quote(run_id, safe="")
    path = f"/dags/{DAG_ID}/dagRuns/{run}/taskInstances/fetch_requests/xcomEntries/return_value"
    try:
        value = api.request("GET", path)["value"]
    except AirflowApiError as exc:
        if exc.status == 404:
            return []
        raise
    if isinstance(value, str):
        value = json.loads(value)
    return [r["ts"] for r in value or []]


def _runs_that_took(api: AirflowApi, ts: str) -> list[dict[str, Any]]:
    return [r for r in api.dag_runs(DAG_ID) if ts in _fetched(api, r["dag_run_id"])]


def _replies_posted(live: Live, ts: str) -> int:
    calls = live.stack.sandbox.calls(api="slack", method="chat.postMessage")
    return sum(1 for c in calls if c["params"].get("thread_ts") == ts)


def _envelope(live: Live, ts: str) -> dict[str, Any]:
    [envelope] = [e for e in live.stack.sandbox.socket_envelopes() if e["ts"] == ts and not e["subtype"]]
    return envelope


# ---- tests --------------------------------------------------------------------------------------------


def test_posted_message_is_answered_by_an_asset_triggered_run(live_local: Live) -> None:
    live, api = live_local, live_local.deployment.api
    assert api.dag(DAG_ID)["is_paused"], "DAGs must start paused, as in production"
    api.set_paused(DAG_ID, False)
    # Unpausing makes the scheduler start the latest cron tick's run (catchup=False): let it finish.
    deadline = time.monotonic() + 60
    while not api.dag_runs(DAG_ID):
        assert time.monotonic() < deadline, "no run created within 60 s of unpausing"
        time.sleep(0.5)
    _wait_idle(api)
    TIMINGS["events: unpaused, first run finished -> Socket Mode connected"] = _wait_connected(live)

    ts = live.post(SCHEDULED_CHANNEL, ACME)
    posted = time.monotonic()
    replied = live.wait_for_reply(SCHEDULED_CHANNEL, ts, timeout=180)
    TIMINGS["events: post -> reply (asset-triggered run)"] = replied - posted

    assert live.thread(SCHEDULED_CHANNEL, ts) == [ACME_REPLY]
    [run] = _runs_that_took(api, ts)
    assert run["run_type"] == "asset_triggered", run
    assert run["logical_date"] is None  # Airflow 3: an asset-triggered run has no logical date
    assert api.wait_for_run(DAG_ID, run["dag_run_id"], timeout=120)["state"] == "success", live.states(
        run["dag_run_id"]
    )
    envelope = _envelope(live, ts)
    assert (envelope["acked"], envelope["deliveries"]) == (True, 1), envelope
    assert _replies_posted(live, ts) == 1
    assert live.stack.sandbox.dms() == []


def test_triggerer_restart_loses_nothing(live_local: Live) -> None:
    live, deployment, api = live_local, live_local.deployment, live_local.deployment.api
    api.set_paused(DAG_ID, False)
    _wait_idle(api)
    _wait_connected(live)

    deployment.kill("triggerer")  # SIGKILL: no graceful close of the websocket
    _wait_disconnected(live)
    ts = live.post(SCHEDULED_CHANNEL, BOLT)
    posted = time.monotonic()
    time.sleep(2)
    held = _envelope(live, ts)
    # Nobody to push it to: Slack holds it, unacked, for the next connection.
    assert (held["acked"], held["deliveries"]) == (False, 0), held
    assert live.thread(SCHEDULED_CHANNEL, ts) == []

    deployment.start("triggerer")
    started = time.monotonic()
    TIMINGS["events: triggerer started -> Socket Mode connected again"] = _wait_connected(live, timeout=180)
    replied = live.wait_for_reply(SCHEDULED_CHANNEL, ts, timeout=240)
    TIMINGS["events: triggerer started -> reply to the message posted while it was down"] = replied - started
    TIMINGS["events: post (triggerer down) -> reply"] = replied - posted

    runs = _wait_idle(api)
    assert live.thread(SCHEDULED_CHANNEL, ts) == [BOLT_REPLY]
    assert _replies_posted(live, ts) == 1
    [run] = _runs_that_took(api, ts)
    assert run["run_type"] == "asset_triggered", run
    assert all(r["state"] == "success" for r in runs), runs
    delivered = _envelope(live, ts)
    assert delivered["acked"], delivered
    assert delivered["deliveries"] >= 1, delivered
    assert live.stack.sandbox.dms() == []


def test_message_seen_by_event_and_by_a_channel_run_is_answered_once(live_local: Live) -> None:
    live, api = live_local, live_local.deployment.api
    api.set_paused(DAG_ID, False)
    _wait_idle(api)
    _wait_connected(live)
    before = {r["dag_run_id"] for r in api.dag_runs(DAG_ID)}

    ts = live.post(SCHEDULED_CHANNEL, ACME)
    # What the cron tick does: read the settings channel (no params), racing the event's run.
    channel_run = api.trigger(DAG_ID, conf={})["dag_run_id"]
    live.wait_for_reply(SCHEDULED_CHANNEL, ts, timeout=180)
    deadline = time.monotonic() + 120
    while not [r for r in api.dag_runs(DAG_ID, run_type="asset_triggered") if r["dag_run_id"] not in before]:
        assert time.monotonic() < deadline, "the message's event started no run"
        time.sleep(0.5)
    runs = [r for r in _wait_idle(api) if r["dag_run_id"] not in before]

    assert {r["run_type"] for r in runs} == {"manual", "asset_triggered"}, runs
    assert all(r["state"] == "success" for r in runs), [
        (r["dag_run_id"], live.states(r["dag_run_id"])) for r in runs
    ]
    assert channel_run in {r["dag_run_id"] for r in runs}
    took = [r["dag_run_id"] for r in runs if ts in _fetched(api, r["dag_run_id"])]
    assert len(took) == 1, took  # the other run found it answered in the ledger
    assert live.thread(SCHEDULED_CHANNEL, ts) == [ACME_REPLY]
    assert _replies_posted(live, ts) == 1
    assert live.stack.sandbox.dms() == []
