"""``make bench`` (``python -m bench``): runs the cases, writes the JSON, prints the table."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.environment import (
    DAG_FILE,
    FLOOR_SAMPLE,
    IO_BOUND_PARALLELISM,
    IO_BOUND_QUERY_SECONDS,
    IO_BOUND_REQUESTS,
    LATENCY_MESSAGES,
    QUICK_SIZES,
    REPEATED_SIZE,
    REPEATS,
    RESULTS_DIR,
    ROOT,
    SCHEMA_VERSION,
    SIZES,
    TEAM_QUERY_SECONDS,
    TEAM_REPEATS,
    BenchError,
    private_airflow_home,
    progress,
    progress_to,
)
from bench.io_bound import io_bound_case
from bench.measuring import (
    backlog_case,
    event_latency,
    latency_summary,
    median_case,
    one_run,
    run_limit,
    watchdog,
)
from bench.parse import measure_parse
from bench.runners import RUNNERS, DagTestRunner
from bench.scenarios import IDLE_CHANNEL, bench_scenario, case_channel, repeats_of
from bench.table import render, result_cases
from bench.team_notebook import team_notebook_case
from harness.console import console_apart


# the run ────────────────────────────────────────────────────────────────────────────────────
def git_info() -> dict[str, Any]:
    def git(*args: str) -> str:
        argv = ["git", *args]  # read-only queries; git from PATH
        out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603
        return out.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD") or "nogit",
        "dirty": bool(git("status", "--porcelain")),
    }


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    sizes = tuple(args.sizes) if args.sizes else QUICK_SIZES if args.quick else SIZES
    only = args.latency_only or args.io_bound_only or args.team_notebook_only
    if only:
        sizes = ()
    events = (
        args.executor == "local"
        and args.latency_messages > 0
        and not (args.io_bound_only or args.team_notebook_only)
    )
    io_bound = (
        args.executor == "local"
        and args.io_bound_requests > 0
        and not args.quick
        and (args.io_bound_only or not (args.latency_only or args.team_notebook_only))
    )
    team_runs = args.team_notebook_repeats if not (args.latency_only or args.io_bound_only) else 0
    parse_runs = args.parse_runs or (3 if args.quick else 5)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "meta": {
            **git_info(),
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "executor": args.executor,
            "quick": args.quick,
            "sizes": list(sizes),
            "repeat": args.repeat,
            "latency_messages": args.latency_messages if events else 0,
            "io_bound_requests": args.io_bound_requests if io_bound else 0,
            "team_notebook_repeats": team_runs,
            "team_notebook_query_seconds": args.team_notebook_query_seconds if team_runs else 0,
            "team_notebook_only": args.team_notebook_only,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_before": os.getloadavg()[0],
        },
    }
    with private_airflow_home(keep=args.keep) as home:
        results["meta"]["airflow_home"] = str(home)
        if not args.team_notebook_only:
            progress(f"parsing {DAG_FILE.relative_to(ROOT)} in {parse_runs} fresh interpreters")
            results["parse"] = measure_parse(parse_runs)

        import airflow

        from harness.local import local_stack

        results["meta"]["airflow"] = airflow.__version__
        scenario = bench_scenario(
            sizes,
            args.latency_messages if events else 0,
            args.repeat,
            args.io_bound_requests if io_bound else 0,
            team_runs,
        )
        with local_stack(home / "notebooks", scenario=scenario, channel=IDLE_CHANNEL) as stack:
            if not only:
                _main_cases(args, results, stack, home, sizes, events)
            if team_runs:
                # Always dag.test, in this process: one request at a time, against papermill in this process.
                progress("the team's notebook: papermill alone against the bot, through the Presto sandbox")
                results["team_notebook"] = team_notebook_case(
                    stack,
                    DagTestRunner(),
                    home / "team-notebook",
                    repeats=team_runs,
                    query_seconds=args.team_notebook_query_seconds,
                )
            if io_bound:
                # A deployment of its own: its warehouse is the slow one, and it has a burst's slots.
                results["io_bound"], results["memory"] = io_bound_case(
                    stack,
                    home,
                    requests=args.io_bound_requests,
                    query_seconds=args.io_bound_query_seconds,
                    parallelism=args.io_bound_parallelism,
                    floor_sample=args.floor_sample,
                )
                results["meta"].setdefault(
                    "runner", f"LocalExecutor, parallelism {args.io_bound_parallelism}"
                )
    results["latency"] = latency_summary(results)
    results["meta"]["load_after"] = os.getloadavg()[0]
    results["meta"]["bench_wall_s"] = time.perf_counter() - started
    return results


def _main_cases(
    args: argparse.Namespace,
    results: dict[str, Any],
    stack: Any,
    home: Any,
    sizes: tuple[int, ...],
    events: bool,
) -> None:
    """Idle runs, backlogs and the latency with events, on one runner (dag.test or a deployment)."""
    with RUNNERS[args.executor](stack, args.parallelism, events=events) as runner:
        results["meta"]["runner"] = runner.name
        if not args.latency_only:
            # The first run of a process pays one-off costs (imports, serializing the DAG).
            progress("idle run, first in this process (empty channel, no ledger)")
            runner.reset_ledger()
            results["idle_first"] = one_run(stack, runner, IDLE_CHANNEL, [])
        results["backlog"] = {}
        for size in sizes:
            cases = []
            for repeat in range(repeats := repeats_of(size, args.repeat)):
                of = f" ({repeat + 1} of {repeats})" if repeats > 1 else ""
                progress(f"backlog of {size} request(s), then the same notebooks with papermill{of}")
                cases.append(backlog_case(stack, runner, size, home, args.floor_sample, repeat))
            results["backlog"][str(size)] = median_case(cases)
            if size == sizes[0]:
                progress("idle run (steady state: the channel's requests are all answered)")
                results["idle"] = one_run(stack, runner, case_channel(size), [])
        if events:
            progress(
                f"latency with events: {args.latency_messages} single messages, one at a time, "
                "each answered by its asset-triggered run"
            )
            runner.reset_ledger()
            limit = 300 + run_limit(1) * args.latency_messages
            with watchdog(f"{args.latency_messages} event-announced messages", limit):
                results["events"] = event_latency(stack, runner, args.latency_messages)


# command line ───────────────────────────────────────────────────────────────────────────────
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: 3 parses, idle run, 1 request")
    parser.add_argument("--sizes", type=int, nargs="+", help="backlog sizes (default 1 10 50; --quick: 1)")
    parser.add_argument("--parse-runs", type=int, help="fresh-interpreter parses (default 5; --quick: 3)")
    parser.add_argument(
        "--executor",
        choices=sorted(RUNNERS),
        default="dag.test",
        help="dag.test (default): in this process; local: LocalExecutor on PostgreSQL (deployment.py)",
    )
    parser.add_argument("--parallelism", type=int, default=2, help="LocalExecutor slots (default 2)")
    parser.add_argument(
        "--repeat",
        type=int,
        help=f"run + floor pairs for the backlog of {REPEATED_SIZE} requests; the median is shown "
        f"(default {REPEATS}; --quick: 1)",
    )
    parser.add_argument(
        "--latency-messages",
        type=int,
        default=LATENCY_MESSAGES,
        metavar="N",
        help=f"--executor local: single messages for the latency with events (default {LATENCY_MESSAGES}; "
        "0: no triggerer, no events)",
    )
    parser.add_argument(
        "--latency-only",
        action="store_true",
        help="--executor local: only the latency with events (no idle run, no backlog, no floor)",
    )
    parser.add_argument(
        "--io-bound-only",
        action="store_true",
        help="--executor local: only the io-bound burst (no idle run, backlog or events)",
    )
    parser.add_argument(
        "--io-bound-requests",
        type=int,
        default=IO_BOUND_REQUESTS,
        metavar="N",
        help=f"--executor local: requests in the io-bound burst (default {IO_BOUND_REQUESTS}; 0: none)",
    )
    parser.add_argument(
        "--io-bound-query-seconds",
        type=float,
        default=IO_BOUND_QUERY_SECONDS,
        metavar="S",
        help="each warehouse read of the io-bound burst takes this long "
        f"(default {IO_BOUND_QUERY_SECONDS:g}; the reference notebook makes four)",
    )
    parser.add_argument(
        "--io-bound-parallelism",
        type=int,
        default=IO_BOUND_PARALLELISM,
        help=f"LocalExecutor slots of the io-bound deployment (default {IO_BOUND_PARALLELISM})",
    )
    parser.add_argument(
        "--team-notebook-only",
        action="store_true",
        help="only the team's notebook: papermill alone against the bot (no parse, idle run or backlog)",
    )
    parser.add_argument(
        "--team-notebook-repeats",
        type=int,
        metavar="N",
        help=f"papermill-alone + bot pairs on the team's notebook; the medians are shown "
        f"(default {TEAM_REPEATS}; --quick: 1; 0: not run)",
    )
    parser.add_argument(
        "--team-notebook-query-seconds",
        type=float,
        default=TEAM_QUERY_SECONDS,
        metavar="S",
        help="also run the team's notebook once more, papermill alone and under the bot, with each "
        "warehouse table read taking S seconds (default: off; production's one read takes minutes)",
    )
    parser.add_argument(
        "--floor-sample",
        type=int,
        default=FLOOR_SAMPLE,
        help=f"papermill floor: at most this many notebooks, scaled to the backlog (default {FLOOR_SAMPLE})",
    )
    parser.add_argument(
        "--compare", type=Path, metavar="OLD.json", help="print deltas against an earlier result"
    )
    parser.add_argument("--show", type=Path, metavar="NEW.json", help="print a saved result; run nothing")
    parser.add_argument("--out", type=Path, help="result file (default bench-results/<time>-<sha>.json)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary AIRFLOW_HOME")
    args = parser.parse_args(argv)
    if args.sizes and any(n < 1 for n in args.sizes):
        parser.error("--sizes must be positive")
    if args.repeat is None:
        args.repeat = 1 if args.quick else REPEATS
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.latency_messages < 0:
        parser.error("--latency-messages must not be negative")
    if args.latency_only and (args.executor != "local" or args.latency_messages < 1):
        parser.error("--latency-only needs --executor local and --latency-messages of at least 1")
    if args.io_bound_only and (args.executor != "local" or args.io_bound_requests < 1 or args.latency_only):
        parser.error("--io-bound-only needs --executor local and --io-bound-requests of at least 1")
    if args.team_notebook_repeats is None:
        args.team_notebook_repeats = 1 if args.quick else TEAM_REPEATS
    if args.team_notebook_repeats < 0 or args.team_notebook_query_seconds < 0:
        parser.error("--team-notebook-repeats and --team-notebook-query-seconds must not be negative")
    others = args.latency_only or args.io_bound_only
    if args.team_notebook_only and (args.team_notebook_repeats < 1 or others):
        parser.error("--team-notebook-only needs --team-notebook-repeats of at least 1, and no other *-only")
    if args.io_bound_query_seconds < 0 or args.io_bound_parallelism < 1:
        parser.error("--io-bound-query-seconds must not be negative, --io-bound-parallelism at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    old = json.loads(args.compare.read_text()) if args.compare else None
    if args.show:
        print(render(json.loads(args.show.read_text()), old))
        return 0
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or RESULTS_DIR / f"{stamp}-{git_info()['commit']}.json"
    log_path = out.with_suffix(".log")
    try:
        with console_apart(log_path) as console, progress_to(console):
            results = run_bench(args)
    except BenchError as exc:
        print(f"bench: {exc} (log: {log_path})", file=sys.stderr)
        return 2
    except Exception:
        print(f"bench: failed; Airflow's and the kernels' output is in {log_path}", file=sys.stderr)
        raise
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(render(results, old))
    print(f"Results: {out} (Airflow's and the kernels' output: {log_path.name})")
    failed = [name for name, case in result_cases(results).items() if case and case.get("state") != "success"]
    burst = results.get("io_bound")
    if burst and (burst["state"] != "success" or burst["replies_correct"] < burst["requests"]):
        failed.append("io_bound")
    events = results.get("events")
    if events and events["answered_correct"] < events["messages"]:
        failed.append("events")
    team = results.get("team_notebook")
    slow_wrong = bool(team and team.get("slow") and not team["slow"]["correct"])
    if team and not team.get("skipped") and (team.get("state") != "success" or slow_wrong):
        failed.append("team_notebook")  # absent (skipped, with its reason) is not a failure
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
