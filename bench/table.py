"""The bench table: one row per figure, one column per case."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.compare import delta
from bench.environment import FLOOR_SAMPLE, REPEATED_SIZE, SCHEDULE_MINUTES
from bench.measuring import dig


# the table ──────────────────────────────────────────────────────────────────────────────────
@dataclass
class Row:
    label: str
    kind: str  # "measured", "computed", "ratio", "difference"
    get: Callable[[dict[str, Any]], Any]  # one case (or the whole result for single-value rows)
    fmt: str = "{:.2f}"
    scope: str = "case"  # "case": a value per column; "whole": one value for the row
    better: str = "lower"  # for deltas: which direction is an improvement ("lower", "higher", "")
    children: list[str] = field(default_factory=list)


def _per_request(case: dict[str, Any], api: str, method: str) -> float | None:
    count = dig(case, "calls", api, method) or 0
    return count / case["requests"] if case.get("requests") else float(count)


def rows(results: dict[str, Any]) -> list[Row]:
    endpoints: set[tuple[str, str]] = set()
    for case in result_cases(results).values():
        for api, methods in (case.get("calls") or {}).items():
            endpoints.update((api, m) for m in methods)
    table = [
        Row(
            "DAG parse: DagBag fill, median (s)",
            "measured",
            lambda r: dig(r, "parse", "median_s"),
            "{:.3f}",
            "whole",
        ),
        Row(
            "DAG parse: fresh process incl. Airflow import (s)",
            "measured",
            lambda r: dig(r, "parse", "process_median_s"),
            "{:.2f}",
            "whole",
        ),
        Row(
            "modules the parse imports",
            "measured",
            lambda r: dig(r, "parse", "modules_count"),
            "{}",
            "whole",
        ),
        Row(
            "  top-level packages / heavy ones",
            "measured",
            lambda r: (
                f"{', '.join(dig(r, 'parse', 'modules_top_level') or [])}"
                f" / heavy: {', '.join(dig(r, 'parse', 'heavy') or []) or 'none'}"
            ),
            "{}",
            "whole",
            "",
        ),
        Row("run state", "measured", lambda c: c.get("state"), "{}", better=""),
        Row("replies correct / requests", "measured", _replies, "{}", better=""),
        Row("run wall time (s)", "measured", lambda c: c.get("wall_s"), "{:.1f}"),
        Row("notebook floor: papermill, 1 process (s)", "measured", _floor, "{:.1f}"),
        Row("overhead ratio = wall ÷ floor", "ratio", lambda c: c.get("overhead_ratio")),
        Row("  each repetition (median above)", "ratio", _repeat_ratios, "{}", better=""),
        Row("CPU overhead ratio = CPU ÷ floor CPU", "ratio", lambda c: c.get("cpu_overhead_ratio")),
        Row("wall per request (s)", "measured", lambda c: dig(c, "per_request", "wall_s"), "{:.2f}"),
        Row("task instances run (mapped ones)", "measured", _tis, "{}", better=""),
        Row("task instances retried", "measured", lambda c: dig(c, "task_instances", "retried"), "{}"),
        Row("time with no task running (s)", "measured", lambda c: c.get("between_tasks_s"), "{:.1f}"),
        Row("Slack calls (per request)", "measured", lambda c: _calls(c, "slack"), "{}", better=""),
    ]
    table += [
        Row(f"  {method}", "measured", lambda c, a=api, m=method: _per_request(c, a, m), "{:.2f}")
        for api, method in sorted(endpoints)
        if api == "slack"
    ]
    table.append(
        Row("Looker calls (per request)", "measured", lambda c: _calls(c, "looker"), "{}", better="")
    )
    table += [
        Row(f"  {method}", "measured", lambda c, a=api, m=method: _per_request(c, a, m), "{:.2f}")
        for api, method in sorted(endpoints)
        if api == "looker"
    ]
    table += [
        Row("ledger size (bytes)", "measured", lambda c: c.get("ledger_bytes"), "{:,}"),
        Row("message → reply, median (s)", "measured", lambda c: dig(c, "latency_s", "median"), "{:.1f}"),
        Row("message → reply, max (s)", "measured", lambda c: dig(c, "latency_s", "max"), "{:.1f}"),
        Row(
            f"wait for next */{SCHEDULE_MINUTES} run: mean / worst (s)",
            "computed",
            lambda r: (
                f"{dig(r, 'latency', 'wait_expected_s_computed'):.0f}"
                f" / {dig(r, 'latency', 'wait_worst_s_computed'):.0f}"
            ),
            "{}",
            "whole",
            "",
        ),
        Row(
            "without events: 1 new message, appears → reply: mean (s)",
            "computed",
            lambda r: dig(r, "latency", "total_expected_s_computed"),
            "{:.0f}",
            "whole",
        ),
        Row(
            "without events: 1 new message, appears → reply: worst (s)",
            "computed",
            lambda r: dig(r, "latency", "total_worst_s_computed"),
            "{:.0f}",
            "whole",
        ),
        Row(
            "with events: 1 new message, post → reply: median (s)",
            "measured",
            lambda r: dig(r, "events", "latency_s", "median"),
            "{:.1f}",
            "whole",
        ),
        Row(
            "with events: 1 new message, post → reply: max (s)",
            "measured",
            lambda r: dig(r, "events", "latency_s", "max"),
            "{:.1f}",
            "whole",
        ),
        Row("  answered once, correctly / posted (runs)", "measured", _event_runs, "{}", "whole", ""),
        Row(
            "  median: post → run queued / → started / → reply (s)",
            "measured",
            _event_breakdown,
            "{}",
            "whole",
            "",
        ),
        Row(
            "  median: run_notebook task (s)",
            "measured",
            lambda r: dig(r, "events", "breakdown_median_s", "notebook_task_s"),
            "{:.1f}",
            "whole",
        ),
        Row(
            "  Slack reads per event-driven request (history, replies)",
            "measured",
            lambda r: dig(r, "events", "slack_reads_per_event_request"),
            "{:.2f}",
            "whole",
        ),
        Row("  Slack calls per event-driven request", "measured", _event_calls, "{}", "whole", ""),
        Row("  median stage ends after the post (s)", "measured", _event_stages, "{}", "whole", ""),
        Row(
            "  triggerer start → Socket Mode connected (s)",
            "measured",
            lambda r: dig(r, "events", "triggerer_start_to_connected_s"),
            "{:.1f}",
            "whole",
        ),
        Row("io-bound burst (LocalExecutor)", "measured", _burst, "{}", "whole", ""),
        Row(
            "  CreditBot run: queued → finished (s)",
            "measured",
            lambda r: dig(r, "io_bound", "wall_s"),
            "{:.1f}",
            "whole",
        ),
        Row(
            "  sequential floor: the notebooks one after another (s)",
            "measured",
            lambda r: dig(r, "io_bound", "sequential_floor_s"),
            "{:.1f}",
            "whole",
        ),
        Row(
            "  parallel floor: the slowest notebook alone (s)",
            "measured",
            lambda r: dig(r, "io_bound", "parallel_floor_s"),
            "{:.1f}",
            "whole",
        ),
        Row(
            "  ratio = run ÷ parallel floor (target ≤ 1.3)",
            "ratio",
            lambda r: dig(r, "io_bound", "ratio_to_parallel_floor"),
            "{:.2f}",
            "whole",
        ),
        Row(
            "  ratio = run ÷ sequential floor",
            "ratio",
            lambda r: dig(r, "io_bound", "ratio_to_sequential_floor"),
            "{:.2f}",
            "whole",
        ),
        Row(
            "  CPU floor: the run's busy CPU ÷ cores (s)",
            "measured",
            lambda r: dig(r, "io_bound", "cpu", "cpu_floor_s"),
            "{:.1f}",
            "whole",
        ),
        Row("  busy CPU: the run, one notebook alone (core-s)", "measured", _burst_cpu, "{}", "whole", ""),
        Row(
            "  notebooks running at once, most",
            "measured",
            lambda r: dig(r, "io_bound", "most_notebooks_at_once"),
            "{}",
            "whole",
            "higher",
        ),
        Row(
            "  peak RSS, every Airflow process and kernel (MB)",
            "measured",
            lambda r: dig(r, "memory", "peak_rss_mb"),
            "{:,.0f}",
            "whole",
        ),
        Row("  at the peak: kernels, MB per kernel, idle MB", "measured", _memory, "{}", "whole", ""),
        Row(
            "  peak PSS, every Airflow process and kernel (MB)",
            "measured",
            lambda r: dig(r, "memory", "peak_pss_mb"),
            "{:,.0f}",
            "whole",
        ),
        Row("  at the PSS peak: kernels, PSS MB per kernel, idle MB", "measured", _pss, "{}", "whole", ""),
        Row(
            "  PSS per in-flight request = (peak - idle) ÷ kernels (MB)",
            "measured",
            lambda r: dig(r, "memory", "pss_per_in_flight_request_mb"),
            "{:,.0f}",
            "whole",
        ),
        Row(
            "  RSS per in-flight request, same way (MB)",
            "measured",
            lambda r: dig(r, "memory", "rss_per_in_flight_request_mb"),
            "{:,.0f}",
            "whole",
        ),
        *team_rows(),
    ]
    return table


def team_rows() -> list[Row]:
    """The team notebook's rows (bench/team_notebook.py): one value each, for the whole run."""

    def team(*keys: str) -> Callable[[dict[str, Any]], Any]:
        return lambda r: dig(r, "team_notebook", *keys)

    return [
        Row(
            "team notebook, 1 request (ported, Presto sandbox, dag.test)",
            "measured",
            _team,
            "{}",
            "whole",
            "",
        ),
        Row("  papermill alone, median (s)", "measured", team("papermill_s"), "{:.1f}", "whole"),
        Row("  under the bot: DAG run, median (s)", "measured", team("bot_run_s"), "{:.1f}", "whole"),
        Row(
            "  under the bot: run_notebook task, median (s)",
            "measured",
            team("run_notebook_task_s"),
            "{:.1f}",
            "whole",
        ),
        Row(
            "  bot overhead = DAG run - papermill alone (s)",
            "difference",
            team("overhead_s"),
            "{:.1f}",
            "whole",
        ),
        Row(
            "  notebook task overhead = task - papermill alone (s)",
            "difference",
            team("task_overhead_s"),
            "{:.1f}",
            "whole",
        ),
        Row(
            "  warehouse statements per notebook (table reads)", "measured", _team_queries, "{}", "whole", ""
        ),
        Row(
            "  1 request in flight, this process + kernel: peak PSS / RSS (MB)",
            "measured",
            _team_peaks,
            "{}",
            "whole",
            "",
        ),
        Row(
            "  PSS one in-flight request adds (MB)",
            "measured",
            team("memory", "pss_per_in_flight_request_mb"),
            "{:,.0f}",
            "whole",
        ),
        Row(
            "  RSS one in-flight request adds (MB)",
            "measured",
            team("memory", "rss_per_in_flight_request_mb"),
            "{:,.0f}",
            "whole",
        ),
        Row("  its kernel: PSS / RSS (MB)", "measured", _team_kernel, "{}", "whole", ""),
        Row("  slow reads: papermill / DAG run / overhead (s)", "measured", _team_slow, "{}", "whole", ""),
        Row(
            "  slow reads: ≈ table reads x s per read + papermill alone (s)",
            "computed",
            team("slow", "extrapolated_s"),
            "{:.1f}",
            "whole",
        ),
    ]


def _team(results: dict[str, Any]) -> str | None:
    team = results.get("team_notebook")
    if not team:
        return None
    if team.get("skipped"):
        return f"skipped: {team['skipped']}"
    if team.get("error"):
        return f"{team['state']}: {team['error'][:120]}"
    return (
        f"{team['state']}, {team['replies_correct']}/{team['repeats']} replies with papermill's "
        f"{team.get('credit') or '?'}"
    )


def _team_queries(results: dict[str, Any]) -> str | None:
    team = results.get("team_notebook") or {}
    if team.get("queries") is None:
        return None
    return f"{team['queries']} ({team['table_reads']})"


def _team_peaks(results: dict[str, Any]) -> str | None:
    memory = dig(results, "team_notebook", "memory") or {}
    if memory.get("peak_rss_mb") is None:
        return None
    pss = memory.get("peak_pss_mb")
    return f"{pss if pss is not None else '-':,} / {memory['peak_rss_mb']:,}"


def _team_kernel(results: dict[str, Any]) -> str | None:
    memory = dig(results, "team_notebook", "memory") or {}
    if memory.get("kernel_rss_mb") is None:
        return None
    pss = memory.get("kernel_pss_mb")
    return f"{pss if pss is not None else '-'} / {memory['kernel_rss_mb']}"


def _team_slow(results: dict[str, Any]) -> str | None:
    slow = dig(results, "team_notebook", "slow")
    if not slow:
        return None
    wrong = "" if slow["correct"] else ", reply wrong"
    return (
        f"{slow['papermill_s']:.1f} / {slow['bot_run_s']:.1f} / {slow['overhead_s']:.1f} "
        f"({slow['table_reads']} reads of {slow['query_seconds']:g} s{wrong})"
    )


def _pss(results: dict[str, Any]) -> str | None:
    memory = results.get("memory")
    if not memory or memory.get("peak_pss_mb") is None:
        return None
    per_kernel = memory.get("pss_per_kernel_mb")
    return (
        f"{memory['kernels_at_pss_peak']}, {per_kernel if per_kernel is not None else '-'}, "
        f"{memory['idle_pss_mb']:,.0f}"
    )


def _burst(results: dict[str, Any]) -> str | None:
    burst = results.get("io_bound")
    if not burst:
        return None
    return (
        f"{burst['replies_correct']}/{burst['requests']} answered, reads of {burst['query_seconds']:g} s, "
        f"{burst['parallelism']} slots"
    )


def _burst_cpu(results: dict[str, Any]) -> str | None:
    cpu = dig(results, "io_bound", "cpu")
    if not cpu:
        return None
    alone = cpu.get("floor_busy_core_s_per_notebook")
    return f"{cpu['run_busy_core_s']:.0f} on {cpu['cores']} cores, {alone:.1f}" if alone is not None else None


def _memory(results: dict[str, Any]) -> str | None:
    memory = results.get("memory")
    if not memory or memory.get("peak_rss_mb") is None:
        return None
    per_kernel = memory.get("rss_per_kernel_mb")
    return (
        f"{memory['kernels_at_peak']}, {per_kernel if per_kernel is not None else '-'}, "
        f"{memory['idle_rss_mb']:,.0f}"
    )


def _event_calls(results: dict[str, Any]) -> str | None:
    calls = dig(results, "events", "slack_calls_per_event_request")
    if not calls:
        return None
    return ", ".join(f"{method} {n:.2f}" for method, n in calls.items())


def _event_stages(results: dict[str, Any]) -> str | None:
    stages = dig(results, "events", "stages_median_s")
    if not stages:
        return None
    shown = [k for k in stages if not k.endswith(" start") and not k.startswith("record_ledger")]
    return ", ".join(f"{k.removesuffix(' end')} {stages[k]:.1f}" for k in shown if stages[k] is not None)


def _event_breakdown(results: dict[str, Any]) -> str | None:
    parts = dig(results, "events", "breakdown_median_s")
    if not parts:
        return None
    keys = ("post_to_run_queued_s", "run_queued_to_started_s", "run_started_to_reply_s")
    return " / ".join("-" if parts.get(k) is None else f"{parts[k]:.1f}" for k in keys)


def _event_runs(results: dict[str, Any]) -> str | None:
    events = results.get("events")
    if not events:
        return None
    runs = ", ".join(f"{n} {kind}" for kind, n in sorted(events["run_types"].items()))
    return f"{events['answered_correct']}/{events['messages']} ({runs or 'no run'})"


def _floor(case: dict[str, Any]) -> float | str | None:
    floor = case.get("floor")
    if not floor:
        return None
    if floor.get("scaled"):  # a string: no delta is computed for a partly extrapolated figure
        return f"{floor['wall_s']:.1f}*"
    return float(floor["wall_s"])


def _repeat_ratios(case: dict[str, Any]) -> str | None:
    repeats = case.get("repeats") or []
    if len(repeats) < 2:
        return None
    return " ".join(f"{r['overhead_ratio']:.2f}" if r["overhead_ratio"] else "-" for r in repeats)


def _replies(case: dict[str, Any]) -> str | None:
    if "replies_correct" not in case:
        return None
    return f"{case['replies_correct']}/{case['requests']}" + (
        f" +{case['dms']} DM" if case.get("dms") else ""
    )


def _tis(case: dict[str, Any]) -> str | None:
    tis = case.get("task_instances")
    return f"{tis['started']} ({tis['mapped_started']})" if tis else None


def _calls(case: dict[str, Any], api: str) -> str | None:
    if "requests" not in case:
        return None
    total = case[f"{api}_calls"]
    return f"{total} ({total / case['requests']:.2f})" if case["requests"] else str(total)


def result_cases(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    cases = {"idle": results.get("idle") or {}}
    cases.update({f"{n} req": case for n, case in (results.get("backlog") or {}).items()})
    return cases


def _format(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return fmt.format(value)


def render(results: dict[str, Any], old: dict[str, Any] | None = None) -> str:
    meta = results["meta"]
    team_only = bool(meta.get("team_notebook_only"))
    # --team-notebook-only ran nothing else: the other rows and the cases' columns would all be "-".
    cases = {} if team_only else result_cases(results)
    old_cases = result_cases(old) if old and not team_only else {}
    table = team_rows() if team_only else rows(results)
    cells: list[list[str]] = []
    for row in table:
        if row.scope == "whole":
            value = row.get(results)
            text = _format(value, row.fmt) + (delta(value, row.get(old), row.better) if old else "")
            cells.append([text])
        else:
            line = []
            for name, case in cases.items():
                value = row.get(case) if case else None
                text = _format(value, row.fmt)
                if old and old_cases.get(name):
                    text += delta(value, row.get(old_cases[name]), row.better)
                line.append(text)
            cells.append(line)
    label_w = max(len(r.label) for r in table)
    kind_w = max(len(r.kind) for r in table)
    col_w = max([len(c) for line in cells if len(line) > 1 for c in line] + [len(n) for n in cases] + [8])
    width = label_w + kind_w + 4 + (col_w + 2) * len(cases)
    head = (
        f"CreditBot bench · commit {meta['commit']}{' (uncommitted changes)' if meta['dirty'] else ''} · "
        f"{meta['timestamp']} · executor {meta.get('runner', meta['executor'])} · "
        f"Airflow {meta.get('airflow', '?')} · "
        f"{meta['cpus']} CPUs, load {meta['load_before']:.1f}→{meta.get('load_after', 0):.1f}"
    )
    out = [head]
    if old:
        out.append(
            f"(±%) = change against commit {old['meta']['commit']} of {old['meta']['timestamp']}; ! = worse"
        )
    out.append("─" * width)
    if cases:  # a column per case; the team notebook's rows alone have one value each
        out.append(f"{'':<{label_w}}  {'':<{kind_w}}  " + "".join(f"{n:>{col_w}}  " for n in cases))
        out.append("─" * width)
    for row, line in zip(table, cells, strict=True):
        prefix = f"{row.label:<{label_w}}  {row.kind:<{kind_w}}  "
        if row.scope == "whole":
            out.append(prefix + line[0])
        else:
            out.append(prefix + "".join(f"{c:>{col_w}}  " for c in line).rstrip())
    out.append("─" * width)
    out.append(
        "measured = timed or counted in this run; computed = from the schedule or a model, not measured; "
        "ratio, difference = two figures of this run. Per-request call counts are calls ÷ requests "
        "(idle: absolute). PSS shares each page among the processes mapping it; RSS counts it in each."
    )
    if results.get("team_notebook") and not results["team_notebook"].get("skipped"):
        out.append(
            "team notebook: the ported copy of the team's file, acme's Look; papermill alone runs the same "
            f"file in this process; {meta.get('team_notebook_repeats', 1)} pair(s), medians. Its time with "
            "slow reads ≈ table reads x seconds per read + papermill alone (production: minutes per read)."
        )
    if not team_only:
        out.append(
            "floor = the same notebooks run with papermill one after another in one process (one kernel "
            f"each); * = the first {FLOOR_SAMPLE} measured, scaled to the backlog. {REPEATED_SIZE} requests: "
            f"{meta.get('repeat', 1)} run + floor pair(s), the one with the median ratio shown."
        )
    out.append(f"Bench wall time {meta.get('bench_wall_s', 0):.0f} s.")
    return "\n".join(out)
