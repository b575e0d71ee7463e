"""What one case measures: calls, task instances, wall and busy time, the papermill floor, latency."""

from __future__ import annotations

import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.environment import NOTEBOOK, SCHEDULE_MINUTES, BenchError, epoch, progress
from bench.runners import DagTestRunner, Runner
from bench.scenarios import IDLE_CHANNEL, case_channel, expected_reply, request_sql, request_text


# measuring ──────────────────────────────────────────────────────────────────────────────────
def calls_by_endpoint(calls: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for call in calls:
        api = out.setdefault(call["api"], {})
        api[call["method"]] = api.get(call["method"], 0) + 1
    return {api: dict(sorted(methods.items())) for api, methods in sorted(out.items())}


def busy_seconds(tis: list[dict[str, Any]]) -> float:
    """How long at least one task instance was running (the union of their start..end intervals)."""
    spans = sorted((ti["start"], ti["end"]) for ti in tis if ti.get("start") and ti.get("end"))
    busy, reach = 0.0, float("-inf")
    for start, end in spans:
        if end > reach:
            busy += end - max(start, reach)
            reach = end
    return busy


def summarize_task_instances(tis: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and times of a run's task instances; per task, its first start and last end in seconds
    after the run's first task started (the run's stages, when tasks overlap)."""
    by_task: dict[str, dict[str, Any]] = {}
    for ti in tis:
        entry = by_task.setdefault(ti["task_id"], {"count": 0, "states": Counter(), "total_s": 0.0})
        entry["count"] += 1
        entry["states"][ti["state"] or "none"] += 1
        entry["total_s"] += ti["duration_s"] or 0.0
    origin = min((ti["start"] for ti in tis if ti.get("start")), default=0.0)

    def after_origin(task: str, key: str, pick: Any) -> float | None:
        times = [ti[key] for ti in tis if ti["task_id"] == task and ti.get(key)]
        return round(pick(times) - origin, 2) if times else None

    started = [ti for ti in tis if ti["state"] not in (None, "skipped", "removed", "upstream_failed")]
    return {
        "total": len(tis),
        "started": len(started),
        "mapped_started": sum(1 for ti in started if ti["map_index"] >= 0),
        "retried": sum(1 for ti in tis if (ti["try_number"] or 0) > 1),
        "task_time_s": sum(ti["duration_s"] or 0.0 for ti in tis),
        "busy_s": busy_seconds(tis),
        "notebook_spans": sorted(
            [ti["start"], ti["end"]]
            for ti in tis
            if ti["task_id"] == "run_notebook" and ti.get("start") and ti.get("end")
        ),
        "by_task": {
            task: {
                **entry,
                "states": dict(entry["states"]),
                "total_s": round(entry["total_s"], 3),
                "first_start_s": after_origin(task, "start", min),
                "last_end_s": after_origin(task, "end", max),
            }
            for task, entry in sorted(by_task.items())
        },
    }


@contextmanager
def watchdog(what: str, seconds: float) -> Iterator[None]:
    """Dump every thread's stack and exit if ``what`` takes longer than ``seconds``.

    A kernel whose ZMQ port was taken by another process between jupyter_client picking it and the
    kernel binding it leaves nbclient blocked in a ZMQ send that no signal interrupts (seen on this
    shared machine); without this the bench would hang instead of failing.
    """
    import faulthandler

    print(f"bench watchdog: {what} (limit {seconds:.0f} s)", file=sys.stderr, flush=True)
    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def run_limit(requests: int) -> float:
    return 300 + 30 * requests


def one_run(stack: Any, runner: Runner, channel: str, posted: list[tuple[str, str]]) -> dict[str, Any]:
    """Run the DAG once on ``channel`` and measure it; ``posted`` = (ts, expected reply) added before."""
    sandbox = stack.sandbox
    sandbox.reset_calls()
    cpu = cpu_seconds()
    started = time.perf_counter()
    with watchdog(f"run of {len(posted)} request(s) on {channel}", run_limit(len(posted))):
        outcome = runner.run(channel)
    wall = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    calls = sandbox.calls()
    replies = {p.get("thread_ts"): p for p in sandbox.posts(channel) if p.get("thread_ts")}
    latencies = [float(replies[ts]["ts"]) - float(ts) for ts, _ in posted if ts in replies]
    ledger = runner.ledger_text()
    tis = summarize_task_instances(outcome.task_instances)
    n = len(posted)
    return {
        "requests": n,
        "state": outcome.state,
        "run_id": outcome.run_id,
        "wall_s": wall,
        # Only under dag.test does the run's CPU time belong to this process tree.
        "cpu_s": cpu if isinstance(runner, DagTestRunner) else None,
        # This process's share either way: under a deployment, the Slack and Looker sandboxes'.
        "bench_process_cpu_s": cpu,
        "calls": calls_by_endpoint(calls),
        "slack_calls": sum(1 for c in calls if c["api"] == "slack"),
        "looker_calls": sum(1 for c in calls if c["api"] == "looker"),
        "replies_correct": sum(1 for ts, text in posted if replies.get(ts, {}).get("text") == text),
        "replies_total": len(replies),
        "dms": len(sandbox.dms()),
        "ledger_bytes": len(ledger.encode()) if ledger else 0,
        "latency_s": {
            "min": min(latencies),
            "median": statistics.median(latencies),
            "max": max(latencies),
        }
        if latencies
        else None,
        "task_instances": tis,
        # Run start and end, and the hand-offs between stages: no task instance was running.
        "between_tasks_s": wall - tis["busy_s"],
    }


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the kernels): less disturbed by other
    processes on the machine than wall time, so the CPU ratio is the steadier of the two."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def notebook_floor(stack: Any, requests: int, workdir: Path, sample: int) -> dict[str, Any]:
    """The same notebooks the bot ran, with papermill, one after another in this process.

    Runs the first ``sample`` of them when ``requests`` is larger (they cycle through the four sample
    customers) and scales by ``requests / sample``; ``scaled`` says so.
    """
    import papermill

    from credit_bot.notebooks.engine import register_engine

    count = min(requests, sample)
    out_dir = workdir / f"floor-{requests}"
    out_dir.mkdir(parents=True, exist_ok=True)
    cpu = cpu_seconds()
    started = time.perf_counter()
    # The kernels get the shutdown wait the bot's notebook task gives them: the floor measures the
    # notebooks, not ipykernel's occasional 3-s hang at exit (credit_bot.notebooks.engine).
    each: list[float] = []
    with watchdog(f"papermill floor of {count} notebook(s)", run_limit(count)):
        for i in range(count):
            one = time.perf_counter()
            papermill.execute_notebook(
                str(NOTEBOOK),
                str(out_dir / f"{i}.ipynb"),
                parameters={"looker": request_sql(stack, i)},
                kernel_name="python3",
                progress_bar=False,
                log_output=False,
                engine_name=register_engine(),
            )
            each.append(time.perf_counter() - one)
    wall = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    scale = requests / count
    return {
        "notebooks": requests,
        "measured_notebooks": count,
        "scaled": count < requests,
        "wall_s": wall * scale,
        "cpu_s": cpu * scale,
        "per_notebook_s": wall / count,
        "notebook_s": each,
    }


def backlog_case(
    stack: Any, runner: Runner, size: int, workdir: Path, floor_sample: int, repeat: int = 0
) -> dict[str, Any]:
    """``size`` Verify requests waiting in a fresh channel with a fresh ledger: one run, then the floor."""
    channel = case_channel(size, repeat)
    runner.reset_ledger()
    posted = [(stack.sandbox.add_message(channel, request_text(i)), expected_reply(i)) for i in range(size)]
    result = one_run(stack, runner, channel, posted)
    floor = notebook_floor(stack, size, workdir / f"repeat-{repeat}", floor_sample)
    result["floor"] = floor
    result["overhead_ratio"] = result["wall_s"] / floor["wall_s"] if floor["wall_s"] else None
    result["cpu_overhead_ratio"] = (
        result["cpu_s"] / floor["cpu_s"] if result["cpu_s"] and floor["cpu_s"] else None
    )
    result["per_request"] = {
        "wall_s": result["wall_s"] / size,
        "slack_calls": result["slack_calls"] / size,
        "looker_calls": result["looker_calls"] / size,
        "ledger_bytes": result["ledger_bytes"] / size,
    }
    return result


def median_case(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """The repetition with the median overhead ratio, with every repetition's figures attached.

    A run and its floor are measured back to back, so their ratio is steadier than either figure;
    a failed repetition makes the result that repetition, so a failure is never hidden by a median.
    """
    failed = [c for c in cases if c["state"] != "success" or c["overhead_ratio"] is None]
    if failed:
        chosen = dict(failed[0])
    else:
        chosen = dict(sorted(cases, key=lambda c: c["overhead_ratio"])[(len(cases) - 1) // 2])
    chosen["repeats"] = [
        {"wall_s": c["wall_s"], "floor_s": c["floor"]["wall_s"], "overhead_ratio": c["overhead_ratio"]}
        for c in cases
    ]
    return chosen


def _unfinished_runs(api: Any) -> list[dict[str, Any]]:
    return [r for r in api.dag_runs("credit_bot") if r["state"] in ("queued", "running")]


def _wait_runs_idle(api: Any, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while _unfinished_runs(api):
        if time.monotonic() > deadline:
            raise BenchError(f"credit_bot runs still unfinished after {timeout:.0f} s")
        time.sleep(0.5)


def _wait_socket_connected(stack: Any, deployment: Any, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while stack.sandbox.socket_status()["connections"] < 1:
        deployment.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(
                f"the Slack watcher did not connect within {timeout:.0f} s; triggerer log:\n"
                + deployment.component("triggerer").log_tail(40)
            )
        time.sleep(0.2)


def event_latency(stack: Any, runner: Any, messages: int, channel: str = IDLE_CHANNEL) -> dict[str, Any]:
    """Post ``messages`` single requests to the settings channel one at a time, each answered by the
    asset-triggered run its Socket Mode event starts: post → reply per message (the sandbox's ts of
    the request and of the reply, as the backlog latency), and which run types answered.

    Each message is posted only when no run is active, so each figure is one request alone.
    """
    deployment, api, sandbox = runner.deployment, runner.api, stack.sandbox
    started = time.monotonic()
    deployment.start("triggerer")
    _wait_socket_connected(stack, deployment)
    connect_s = time.monotonic() - started
    # The envelopes Slack held while no triggerer ran (the backlog cases' messages) arrive on the new
    # connection; their asset-triggered run reads the settings channel and answers nothing: let it end.
    settle = time.monotonic() + 15
    while time.monotonic() < settle and sandbox.socket_status()["unacked"]:
        time.sleep(0.2)
    time.sleep(5)  # time for the scheduler to turn those asset events into a run
    _wait_runs_idle(api)
    samples: list[dict[str, Any]] = []
    for i in range(messages):
        known = {r["dag_run_id"] for r in api.dag_runs("credit_bot")}
        sandbox.reset_calls()
        ts = sandbox.add_message(channel, request_text(i))
        posted = time.monotonic()
        deadline = posted + run_limit(1)
        while not (reply := next((p for p in sandbox.posts(channel) if p.get("thread_ts") == ts), None)):
            deployment.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"no reply to event-announced message {ts} within {run_limit(1):.0f} s")
            time.sleep(0.2)
        seen_s = time.monotonic() - posted
        _wait_runs_idle(api)
        runs = [r for r in api.dag_runs("credit_bot") if r["dag_run_id"] not in known]
        slack = calls_by_endpoint(sandbox.calls()).get("slack", {})
        samples.append(
            {
                "ts": ts,
                "slack_calls": slack,
                "slack_reads": slack_reads(slack),
                "latency_s": float(reply["ts"]) - float(ts),
                "seen_s": seen_s,
                **_latency_breakdown(runner, runs, float(ts), float(reply["ts"])),
                "correct": reply.get("text") == expected_reply(i),
                "replies": sum(1 for p in sandbox.posts(channel) if p.get("thread_ts") == ts),
                "run_types": sorted(r["run_type"] for r in runs),
                "run_states": sorted(r["state"] for r in runs),
            }
        )
        progress(f"  event {i + 1}/{messages}: post → reply {samples[-1]['latency_s']:.1f} s")
    latencies = [s["latency_s"] for s in samples]
    run_types = Counter(t for s in samples for t in s["run_types"])
    # A */10 tick that fell into a sample's window read the channel too: only event-only samples count.
    alone = [s for s in samples if s["run_types"] == ["asset_triggered"]]

    def median_of(key: str) -> float | None:
        values = [s[key] for s in samples if s.get(key) is not None]
        return statistics.median(values) if values else None

    return {
        "messages": messages,
        "posts": messages,
        "post_to_reply_median_s": statistics.median(latencies) if latencies else None,
        "post_to_reply_max_s": max(latencies) if latencies else None,
        "slack_reads_per_event_request": (
            sum(s["slack_reads"] for s in alone) / len(alone) if alone else None
        ),
        "slack_calls_per_event_request": _mean_calls([s["slack_calls"] for s in alone]),
        "event_only_samples": len(alone),
        "stages_median_s": stages_median_s(samples),
        "channel": channel,
        "triggerer_start_to_connected_s": connect_s,
        "answered_correct": sum(1 for s in samples if s["correct"] and s["replies"] == 1),
        "run_types": dict(run_types),
        "latency_s": {
            "min": min(latencies),
            "median": statistics.median(latencies),
            "max": max(latencies),
        }
        if latencies
        else None,
        "breakdown_median_s": {
            key: median_of(key)
            for key in (
                "post_to_run_queued_s",
                "run_queued_to_started_s",
                "run_started_to_reply_s",
                "notebook_task_s",
            )
        },
        "samples": samples,
    }


def _latency_breakdown(
    runner: Any, runs: list[dict[str, Any]], posted: float, replied: float
) -> dict[str, Any]:
    """Where one event-announced message's post → reply went (epoch seconds; the sandbox's ts are too)."""
    if not runs:
        return {}
    # The event's own run; a cron tick that fell in the same window only found the message answered.
    run = min(runs, key=lambda r: (r["run_type"] != "asset_triggered", r["queued_at"] or ""))

    queued, started = epoch(run["queued_at"]), epoch(run["start_date"])
    tis = runner._task_instances(run["dag_run_id"])
    notebook = sum(t["duration_s"] or 0.0 for t in tis if t["task_id"] == "run_notebook")
    return {
        "run_id": run["dag_run_id"],
        "stages": stages(posted, queued, started, tis, replied),
        "post_to_run_queued_s": queued - posted if queued else None,
        "run_queued_to_started_s": started - queued if started and queued else None,
        "run_started_to_reply_s": replied - started if started else None,
        "notebook_task_s": notebook,
    }


# Slack Web API methods that read what is in Slack (as opposed to posting, reacting, auth.test).
SLACK_READS = frozenset({"conversations.history", "conversations.replies", "conversations.info"})
TASK_ORDER = ("fetch_requests", "resolve", "run_notebook", "post_results", "record_ledger")


def slack_reads(calls: dict[str, int]) -> int:
    """How many of one request's Slack calls (by method) read the workspace."""
    return sum(n for method, n in calls.items() if method in SLACK_READS)


def _mean_calls(per_request: list[dict[str, int]]) -> dict[str, float]:
    methods = sorted({m for calls in per_request for m in calls})
    return (
        {m: sum(c.get(m, 0) for c in per_request) / len(per_request) for m in methods} if per_request else {}
    )


def stages(
    posted: float,
    queued: float | None,
    started: float | None,
    tis: list[dict[str, Any]],
    replied: float,
) -> dict[str, float | None]:
    """Seconds after the post at which each stage of one request's run began or ended.

    ``run queued`` and ``run started`` from the DAG run, each task's first instance ``start`` and
    its last instance's ``end`` (a mapped task of one request has one), then the reply.
    """
    out: dict[str, float | None] = {
        "run queued": queued - posted if queued else None,
        "run started": started - posted if started else None,
    }
    for task in TASK_ORDER:
        mine = [t for t in tis if t["task_id"] == task and t.get("start")]
        if task == "record_ledger":
            out["reply"] = replied - posted
        out[f"{task} start"] = min(t["start"] for t in mine) - posted if mine else None
        ends = [t["end"] for t in mine if t.get("end")]
        out[f"{task} end"] = max(ends) - posted if ends else None
    return out


def stages_median_s(samples: list[dict[str, Any]]) -> dict[str, float | None]:
    """Each stage's median over the samples, in the order a request passes them."""
    keys = [k for s in samples[:1] for k in (s.get("stages") or {})]
    out: dict[str, float | None] = {}
    for key in keys:
        values = [s["stages"][key] for s in samples if (s.get("stages") or {}).get(key) is not None]
        out[key] = statistics.median(values) if values else None
    return out


def latency_summary(results: dict[str, Any]) -> dict[str, Any]:
    """Measured processing latency of one new message, and the schedule wait computed from */10.

    Without events a message waits for the next cron tick (computed) and is then processed
    (measured: the 1-request backlog case). With events the whole post → reply is measured.
    """
    interval = SCHEDULE_MINUTES * 60
    single = (results.get("backlog") or {}).get("1") or {}
    processing = (single.get("latency_s") or {}).get("median")
    source = "backlog of 1"
    if processing is None and dig(results, "events", "latency_s", "median") is not None:
        # --latency-only: no backlog case; an event-announced request is the same processing plus
        # the event's few seconds, so this slightly overstates the cron path.
        processing, source = results["events"]["latency_s"]["median"], "events (upper bound)"
    summary: dict[str, Any] = {
        "schedule": f"*/{SCHEDULE_MINUTES} * * * *",
        "processing_s_measured": processing,
        "processing_source": source,
        "wait_expected_s_computed": interval / 2,
        "wait_worst_s_computed": interval,
    }
    if processing is not None:
        summary["total_expected_s_computed"] = interval / 2 + processing
        summary["total_worst_s_computed"] = interval + processing
    events = results.get("events") or {}
    if events.get("latency_s"):
        summary["events_median_s_measured"] = events["latency_s"]["median"]
        summary["events_max_s_measured"] = events["latency_s"]["max"]
    return summary


def dig(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data
