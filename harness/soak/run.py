"""One soak: a real LocalExecutor deployment, the generator's traffic and the injector's faults together.

The sandbox and the deployment come up as in ``tests/deploy`` (PostgreSQL, scheduler, dag-processor,
triggerer with Socket Mode, API server) with the cron tick compressed to every minute
(``CREDIT_BOT_CRON``). Two threads then play the plan: one posts, edits, replies and deletes as the
requesters do; one injects faults. The faults are then cleared and the system settles (every
request in an outcome it may end with, no run active); the history goes to the checker.
"""

from __future__ import annotations

import copy
import heapq
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import PROJECT_ROOT
from harness.soak import checker, generator, notebook
from harness.soak.faults import CLIENT_TIMEOUT, DAG_ID, LEDGER_VARIABLE, Injector, schedule

RESULTS_DIR = PROJECT_ROOT / "soak-results"
REQUESTER = "U0REQUESTER"
MAX_ATTEMPTS = 4
# What only makes the soak quicker; everything else is as docker-compose.yaml has it.
SOAK_CONFIG = {
    "CREDIT_BOT_CRON": "* * * * *",  # a day in minutes: the safety-net tick every minute
    "CREDIT_BOT_TASK_RETRIES": "2",
    "CREDIT_BOT_RETRY_DELAY_SECONDS": "2",
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "12",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    # LocalExecutor's tasks die with a killed scheduler, and only the scheduler that queued a task
    # fails it for a missing heartbeat. The new scheduler resets them once the old one's job has not
    # beaten for scheduler_health_check_threshold (30 s), at its orphan check: at start, then every
    # orphaned_tasks_check_interval (300 s). With max_active_runs=1 that stalled the bot ~5 minutes
    # per scheduler kill: a day's dozen kills left it an hour behind.
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "15",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "10",
}


@dataclass
class Played:
    """What the requesters did: each request's ts and when things happened (monotonic seconds)."""

    ts: dict[str, str] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    waiting_for_ask: dict[str, str] = field(default_factory=dict)  # key -> reply text, once asked
    done: bool = False


def soak_scenario(plan: generator.Plan) -> dict[str, Any]:
    from harness.local import DEMO_SCENARIO

    data = copy.deepcopy(json.loads(DEMO_SCENARIO.read_text()))
    queries, looks = generator.sandbox_looker(plan.looks)
    data["looker"]["queries"].extend(queries)
    data["looker"]["looks"].extend(looks)
    return data


def soak_settings(nb: Path) -> dict[str, Any]:
    return {
        "products": [{"name": "verify", "pattern": "authy", "notebook": str(nb)}],
        "max_attempts": MAX_ATTEMPTS,
        "notebook_timeout_seconds": 60,
        "request_bots": [generator.WORKFLOW_BOT],
    }


def short_timeouts(env: dict[str, str]) -> dict[str, str]:
    """Slack and Looker connections with the soak's client timeout, so "timeout" faults time out."""
    out = dict(env)
    for name in ("AIRFLOW_CONN_SLACK_API_DEFAULT", "AIRFLOW_CONN_LOOKER_DEFAULT"):
        conn = json.loads(out[name])
        conn["extra"]["timeout"] = CLIENT_TIMEOUT
        out[name] = json.dumps(conn)
    return out


class Traffic(threading.Thread):
    """Plays the requesters: posts at their times, then their edits, thread replies and deletions."""

    def __init__(self, plan: generator.Plan, sandbox: Any, channel: str, started: float) -> None:
        super().__init__(name="soak-traffic", daemon=True)
        self.plan, self.sandbox, self.channel, self.started = plan, sandbox, channel, started
        self.played = Played()
        self.stop_reacting = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        queue: list[tuple[float, int, str, str, str]] = []
        for i, request in enumerate(self.plan.requests):
            heapq.heappush(queue, (request.at, i, "post", request.key, request.text))
        by_key = {r.key: r for r in self.plan.requests}
        n = len(queue)
        while queue or self.played.waiting_for_ask:
            if self.stop_reacting.is_set() and not queue:
                break
            now = time.monotonic() - self.started
            while queue and queue[0][0] <= now:
                _, _, action, key, text = heapq.heappop(queue)
                try:
                    n += self._act(action, key, text, by_key[key], now, queue, n)
                except Exception as exc:  # reported with the result, never hidden
                    self.errors.append(f"{key} {action}: {type(exc).__name__}: {exc}")
            self._react(queue, now, n)
            n += 1
            time.sleep(0.05)
        self.played.done = True

    def _act(self, action: str, key: str, text: str, request: Any, now: float, queue: list, n: int) -> int:
        ts = self.played.ts.get(key)
        if action == "post":
            ts = self.sandbox.add_message(self.channel, text, **{"user": REQUESTER, **request.fields})
            self.played.ts[key] = ts
            for i, (what, delay, later_text) in enumerate(request.later):
                if what == "thread" and delay is None:
                    self.played.waiting_for_ask[key] = later_text
                else:
                    heapq.heappush(queue, (now + float(delay or 0), n + i, what, key, later_text))
            return len(request.later)
        if key in self.played.deleted:
            return 0
        if action == "edit":
            self.sandbox.edit_message(self.channel, ts, text)
        elif action == "thread":
            self.sandbox.add_message(self.channel, text, user=REQUESTER, thread_ts=ts)
        elif action == "delete":
            self.sandbox.delete_message(self.channel, ts)
            self.played.deleted.add(key)
        return 0

    def _react(self, queue: list, now: float, n: int) -> None:
        """A requester answers the bot's ask for a link a few seconds after it appears."""
        if not self.played.waiting_for_ask:
            return
        asked = {
            p["thread_ts"]
            for p in self.sandbox.posts(self.channel)
            if p.get("thread_ts") and p["text"].startswith("Please provide a Looker link")
        }
        for key, text in list(self.played.waiting_for_ask.items()):
            if self.played.ts.get(key) in asked:
                del self.played.waiting_for_ask[key]
                heapq.heappush(queue, (now + 2.0, n, "thread", key, text))


def collect(
    plan: generator.Plan,
    played: Played,
    sandbox: Any,
    channel: str,
    operators: list[str],
    ledger_text: str | None,
    markers: list[str],
    faults: list[dict[str, Any]],
    restarts: dict[str, int],
) -> dict[str, Any]:
    """The history the checker reads: plain JSON, nothing of the bot's."""
    requests = []
    for request in plan.requests:
        item = request.as_dict()
        item["ts"] = played.ts.get(request.key)
        item["deleted"] = request.key in played.deleted
        requests.append(item)
    dm_posts = [{**dm, "channel": f"DM:{dm['user']}"} for dm in sandbox.dms()]
    return {
        "seed": plan.seed,
        "channel": channel,
        "operators": operators,
        "requests": requests,
        "posts": [*sandbox.posts(channel), *dm_posts],
        # Messages the bot deleted (chat.delete answered ok): an answer Slack posted top-level
        # because its request was deleted mid-run, taken back at once.
        "deleted_posts": [
            c["params"].get("ts")
            for c in sandbox.calls(api="slack", method="chat.delete")
            if c["status"] == 200 and c["params"].get("channel") == channel
        ],
        "ledger": ledger_text,
        "markers": markers,
        "faults": faults,
        "restarts": restarts,
    }


def _variables(api: Any) -> dict[str, str]:
    body = api.request("GET", "/variables", params={"limit": 1000})
    return {v["key"]: v.get("value") for v in body["variables"]}


def _active_runs(api: Any) -> int:
    total = 0
    for state in ("queued", "running"):
        total += api.request("GET", f"/dags/{DAG_ID}/dagRuns", params={"state": state, "limit": 1})[
            "total_entries"
        ]
    return total


def _settled(plan: generator.Plan, played: Played, ledger_text: str | None, channel: str) -> bool:
    """Every request in an outcome it may end with (unseen only if deleted), no reply still to make."""
    entries = ((json.loads(ledger_text or "{}").get("channels") or {}).get(channel) or {}).get("live", {})
    entries = entries.get("requests", {})
    for request in plan.requests:
        outcome = (entries.get(played.ts.get(request.key, "")) or {}).get("outcome", "unseen")
        if outcome == "retrying" or outcome not in request.outcomes:
            return False
    return True


def soak(
    seconds: float,
    seed: int,
    *,
    workdir: Path,
    requests: int | None = None,
    faults: int | None = None,
    settle_timeout: float = 240.0,
    extra_env: dict[str, str] | None = None,
    say: Callable[[str], None] = print,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one soak; returns the result (``checker.summary``) and the full history."""
    from harness.deployment import DEFAULT_POSTGRES_URL, airflow_deployment
    from harness.local import local_stack

    rng = random.Random(seed)  # noqa: S311 - seeded on purpose: a run replays from its seed
    plan = generator.plan(seed, seconds, requests or max(40, round(seconds * 12 / 60)))
    fault_plan = schedule(rng, seconds, faults or max(22, round(seconds / 8)))
    say(f"soak seed {seed}: {len(plan.requests)} requests {plan.kinds()}, {len(fault_plan)} faults")
    fault_dir = workdir / "notebook-faults"
    nb = notebook.write(workdir / "soak_result.ipynb", fault_dir)
    begun = time.monotonic()
    with local_stack(workdir / "notebooks", scenario=soak_scenario(plan)) as stack:
        settings = stack.settings(**soak_settings(nb))
        env = {**short_timeouts(stack.environment(**soak_settings(nb))), **SOAK_CONFIG, **(extra_env or {})}
        with airflow_deployment("LocalExecutor", env=env, workdir=workdir / "deployment") as deployment:
            deployment.wait_for_dag(DAG_ID)
            api = deployment.api
            injector = Injector(stack.sandbox, deployment, fault_dir, DEFAULT_POSTGRES_URL, rng=rng)
            injector.install()
            api.set_paused(DAG_ID, False)
            deadline = time.monotonic() + 120
            while stack.sandbox.socket_status()["connections"] < 1:
                deployment.check_alive()
                if time.monotonic() > deadline:
                    raise RuntimeError("the triggerer never connected to Socket Mode")
                time.sleep(0.5)
            say(f"deployment up in {time.monotonic() - begun:.0f} s; playing the day")

            started = time.monotonic()
            injector.started = started
            traffic = Traffic(plan, stack.sandbox, settings["channel"], started)
            traffic.start()
            for at, name in fault_plan:
                time.sleep(max(0.0, started + at - time.monotonic()))
                entry = injector.apply(name)
                say(f"  {entry.at:6.1f} s  fault: {name} ({entry.detail})")
            time.sleep(max(0.0, started + seconds - time.monotonic()))
            injector.calm()
            say(f"traffic over after {time.monotonic() - started:.0f} s; faults cleared, settling")

            settle_deadline = time.monotonic() + settle_timeout
            settled = False
            while not settled and time.monotonic() < settle_deadline:
                deployment.check_alive()
                ledger_text = _variables(api).get(LEDGER_VARIABLE)
                settled = _settled(plan, traffic.played, ledger_text, settings["channel"])
                settled = settled and not _active_runs(api)
                time.sleep(0 if settled else 2)
            traffic.stop_reacting.set()
            traffic.join(timeout=10)
            time.sleep(3)  # a last quiet moment: nothing more may happen
            variables = _variables(api)
            settled_in = time.monotonic() - started - seconds
            history = collect(
                plan,
                traffic.played,
                stack.sandbox,
                settings["channel"],
                list(settings["operators"]),
                variables.get(LEDGER_VARIABLE),
                sorted(k for k in variables if k.startswith(checker.MARKER_PREFIX)),
                [f.as_dict() for f in injector.log],
                dict(injector.restarts),
            )
            history["traffic_errors"] = traffic.errors
            runs = api.request("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 1, "state": "failed"})
            history["failed_runs"] = runs["total_entries"]
            history["runs"] = api.request("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 1})[
                "total_entries"
            ]
    report = checker.check(history)
    result = checker.summary(report, history)
    result.update(
        traffic_seconds=seconds,
        settle_seconds=round(settled_in, 1),
        wall_seconds=round(time.monotonic() - begun, 1),
        runs=history["runs"],
        failed_runs=history["failed_runs"],
        traffic_errors=traffic.errors,
    )
    if not settled:
        result["violations"].insert(
            0,
            {
                "key": "soak",
                "rule": "the system settled",
                "detail": f"requests still open or runs active {settle_timeout:.0f} s after the traffic",
            },
        )
    if traffic.errors:
        result["violations"].append(
            {"key": "soak", "rule": "the generator played its plan", "detail": "; ".join(traffic.errors[:5])}
        )
    return result, history


def write_result(result: dict[str, Any], history: dict[str, Any], out_dir: Path = RESULTS_DIR) -> Path:
    """``soak-results/<time>.json`` (and the history beside it, to look into a failure)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"{stamp}.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    (out_dir / f"{stamp}-history.json").write_text(json.dumps(history, indent=1, default=str))
    return path
