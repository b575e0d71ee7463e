"""The bench's measuring code that needs no run: memory (RSS and PSS), overlap, stages, Slack reads,
io-bound figures, the team notebook's figures and rows."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.io_bound import busy_cpu, cpu_figures, io_bound_figures, most_at_once
from bench.measuring import slack_reads, stages, stages_median_s, summarize_task_instances
from bench.memory import (
    MB,
    CpuReading,
    MemorySampler,
    Sample,
    cpu_by_kind,
    cpu_per_task,
    parse_pss,
    process_kind,
    read_pss,
    summarize,
)
from bench.table import render
from bench.team_notebook import in_flight_memory

# /proc/<pid>/smaps_rollup as Linux 6.x writes it: Pss is one line among its parts and SwapPss.
SMAPS_ROLLUP = """\
55d0c0a3e000-7ffd5e3f1000 ---p 00000000 00:00 0                          [rollup]
Rss:              204800 kB
Pss:               51234 kB
Pss_Dirty:         40000 kB
Pss_Anon:          40000 kB
Pss_File:          11234 kB
Pss_Shmem:             0 kB
Shared_Clean:     150000 kB
Private_Dirty:     40000 kB
Swap:                  0 kB
SwapPss:            9999 kB
"""


@pytest.mark.parametrize(
    ("cmdline", "kind"),
    [
        pytest.param(["/venv/bin/python", "-m", "ipykernel_launcher", "-f", "k.json"], "kernel", id="kernel"),
        pytest.param(["airflow worker -- 0199-ti-id"], "task", id="task-process"),
        pytest.param(["airflow supervisor: run_notebook"], "supervisor", id="supervisor"),
        pytest.param(["airflow executor -- LocalExecutor <idle>"], "executor slot", id="executor-slot"),
        pytest.param(["python", "-c", "from multiprocessing.forkserver import main"], "forkserver", id="fs"),
        pytest.param(["airflow api_server -- host:127.0.0.1 port:8080"], "api-server", id="api-server"),
        pytest.param(["/venv/bin/python", "-m", "airflow", "scheduler"], "scheduler", id="scheduler"),
        pytest.param(["/venv/bin/python", "-m", "airflow", "dag-processor"], "dag-processor", id="dagproc"),
        pytest.param(["/bin/sh"], "other", id="other"),
    ],
)
def test_process_kind(cmdline: list[str], kind: str) -> None:
    assert process_kind(cmdline) == kind


def test_memory_summary_is_the_peak_sample_with_its_breakdown() -> None:
    samples = [
        Sample(1000 * MB, {"scheduler": 1000 * MB}, {"scheduler": 1}),  # idle, before the burst
        Sample(2000 * MB, {"scheduler": 1000 * MB, "kernel": 1000 * MB}, {"scheduler": 1, "kernel": 10}),
        Sample(1500 * MB, {"scheduler": 1000 * MB, "kernel": 500 * MB}, {"scheduler": 1, "kernel": 5}),
    ]
    summary = summarize(samples)
    assert summary["peak_rss_mb"] == 2000.0
    assert summary["idle_rss_mb"] == 1000.0
    assert summary["kernels_at_peak"] == 10
    assert summary["rss_per_kernel_mb"] == 100.0
    assert summary["rss_per_in_flight_request_mb"] == 100.0  # (2000 - 1000) / 10
    assert summary["at_peak_mb"] == {"kernel": 1000.0, "scheduler": 1000.0}
    assert summary["peak_pss_mb"] is None  # no PSS was read: not a measured 0
    assert summary["pss_per_in_flight_request_mb"] is None
    assert summarize([]) == {"samples": 0, "peak_rss_mb": None, "peak_pss_mb": None}


def test_memory_summary_reports_pss_at_its_own_peak_per_in_flight_request() -> None:
    # Ten forked task processes share the forkserver's pages: RSS counts them ten times, PSS once.
    idle = Sample(1000 * MB, {"scheduler": 1000 * MB}, {"scheduler": 1}, 600 * MB, {"scheduler": 600 * MB})
    burst = Sample(
        7500 * MB,
        {"scheduler": 1000 * MB, "task": 4000 * MB, "kernel": 2500 * MB},
        {"scheduler": 1, "task": 10, "kernel": 10},
        3100 * MB,
        {"scheduler": 600 * MB, "task": 600 * MB, "kernel": 1900 * MB},
    )
    fewer = Sample(5000 * MB, {"kernel": 1000 * MB}, {"kernel": 4}, 2000 * MB, {"kernel": 760 * MB})
    summary = summarize([idle, burst, fewer])
    assert summary["peak_rss_mb"] == 7500.0
    assert summary["peak_pss_mb"] == 3100.0
    assert summary["idle_pss_mb"] == 600.0
    assert summary["kernels_at_pss_peak"] == 10
    assert summary["pss_per_kernel_mb"] == 190.0
    assert summary["pss_per_in_flight_request_mb"] == 250.0  # (3100 - 600) / 10
    assert summary["rss_per_in_flight_request_mb"] == 650.0  # (7500 - 1000) / 10: overstated
    assert summary["pss_at_peak_mb"] == {"kernel": 1900.0, "scheduler": 600.0, "task": 600.0}


def test_pss_is_read_from_the_pss_line_of_smaps_rollup_in_bytes() -> None:
    assert parse_pss(SMAPS_ROLLUP) == 51234 * 1024  # not Pss_Anon/Pss_File (its parts), not SwapPss
    assert parse_pss("Rss:  100 kB\n") == 0  # no Pss line: nothing to count


def test_pss_of_this_process_is_positive_and_at_most_its_rss() -> None:
    import psutil

    rollup = Path("/proc/self/smaps_rollup")
    if not rollup.exists():
        pytest.skip("no /proc/self/smaps_rollup (Linux 4.14 or later)")
    from_file = parse_pss(rollup.read_text())
    pss = read_pss(os.getpid())
    rss = psutil.Process().memory_info().rss
    assert pss is not None
    assert 0 < from_file <= rss
    assert 0 < pss <= rss


def test_pss_of_a_process_that_ended_is_none() -> None:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # reaped: its /proc entry is gone
    assert read_pss(ended.pid) is None


def test_memory_sampler_counts_a_process_tree_with_its_children() -> None:
    # A real child process of a real parent: its RSS must be in the sum, and it must be counted.
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; b = bytearray(64 * 1024 * 1024); time.sleep(30)"]
    )
    try:
        import psutil

        for _ in range(100):  # until the child has allocated its 64 MB
            if psutil.Process(child.pid).memory_info().rss >= 60 * MB:
                break
            time.sleep(0.1)
        alone = MemorySampler([child.pid]).sample()
        with_parent = MemorySampler([os.getpid()]).sample()
    finally:
        child.kill()
        child.wait()
    assert alone.rss_bytes >= 60 * MB
    assert sum(alone.processes.values()) == 1
    assert with_parent.rss_bytes > alone.rss_bytes  # this process, plus the child found below it
    assert sum(with_parent.processes.values()) >= 2
    if Path("/proc/self/smaps_rollup").exists():
        # The 64 MB bytearray is the child's own: its PSS counts it whole, and PSS never exceeds RSS.
        assert 60 * MB <= alone.pss_bytes <= alone.rss_bytes
        assert alone.pss_by_kind == {"other": alone.pss_bytes}
        assert alone.pss_bytes < with_parent.pss_bytes <= with_parent.rss_bytes


@pytest.mark.parametrize(
    ("spans", "most"),
    [
        pytest.param([], 0, id="none"),
        pytest.param([(0, 20), (21, 40)], 1, id="one-after-another"),
        pytest.param([(0, 20), (1, 21), (2, 22)], 3, id="side-by-side"),
        pytest.param([(0, 10), (10, 20)], 1, id="touching-is-not-overlapping"),
    ],
)
def test_most_at_once(spans: list[tuple[float, float]], most: int) -> None:
    assert most_at_once(spans) == most


def test_slack_reads_count_only_what_reads_the_workspace() -> None:
    calls = {"conversations.history": 1, "conversations.replies": 2, "chat.postMessage": 1, "auth.test": 1}
    assert slack_reads(calls) == 3
    assert slack_reads({"chat.postMessage": 1, "reactions.add": 2}) == 0


def test_stages_are_seconds_after_the_post_in_flow_order() -> None:
    tis = [
        {"task_id": "fetch_requests", "start": 101.0, "end": 101.5},
        {"task_id": "resolve", "start": 102.0, "end": 102.4},
        {"task_id": "run_notebook", "start": 103.0, "end": 105.0},
        {"task_id": "post_results", "start": 105.5, "end": 106.0},
        {"task_id": "record_ledger", "start": None, "end": None},  # not started yet
    ]
    got = stages(100.0, 100.5, 100.6, tis, replied=105.9)
    assert list(got)[:4] == ["run queued", "run started", "fetch_requests start", "fetch_requests end"]
    assert got["run queued"] == pytest.approx(0.5)
    assert got["run_notebook end"] == pytest.approx(5.0)
    assert got["reply"] == pytest.approx(5.9)
    assert got["record_ledger start"] is None
    medians = stages_median_s([{"stages": got}, {"stages": {**got, "reply": 7.9}}, {"stages": got}])
    assert medians["reply"] == pytest.approx(5.9)
    assert list(medians) == list(got)


def test_io_bound_figures_ratio_is_airflow_run_time_over_the_slowest_notebook() -> None:
    run = {
        "requests": 3,
        "state": "success",
        "replies_correct": 3,
        "wall_s": 27.0,
        "calls": {},
        "task_instances": {"notebook_spans": [[10.0, 30.0], [10.5, 31.0], [11.0, 29.0]]},
    }
    finished = {"queued_at": "2026-12-02T06:00:00+00:00", "end_date": "2026-12-02T06:00:26+00:00"}
    floor = {"wall_s": 61.0, "scaled": False, "notebook_s": [20.0, 20.5, 20.0]}
    got = io_bound_figures(run, finished, floor, query_seconds=5.0, parallelism=16, warehouse_queries=30)
    assert got["wall_s"] == pytest.approx(26.0)
    assert got["parallel_floor_s"] == 20.5
    assert got["sequential_floor_s"] == 61.0
    assert got["ratio_to_parallel_floor"] == pytest.approx(26.0 / 20.5)
    assert got["most_notebooks_at_once"] == 3


def test_the_cpu_floor_is_the_runs_busy_cpu_spread_over_every_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    got = cpu_figures(run_busy_s=90.0, floor_busy_s=30.0, floor_notebooks=10)
    assert got == {
        "cores": 2,
        "run_busy_core_s": 90.0,
        "cpu_floor_s": 45.0,
        "floor_busy_core_s_per_notebook": 3.0,
    }


def test_busy_cpu_counts_work_done_inside_the_block() -> None:
    with busy_cpu() as cpu:
        sum(i * i for i in range(2_000_000))  # about 0.1 s of one core
    assert cpu["busy_core_s"] > 0.02


def test_cpu_counts_what_each_process_used_inside_the_block_and_names_task_processes() -> None:
    first = {1: CpuReading("scheduler", "airflow scheduler", 10.0)}  # running before: 10 s not counted
    last = {
        1: CpuReading("scheduler", "airflow scheduler", 12.5),
        2: CpuReading("task", "airflow worker -- LocalExecutor: ti-a", 0.5),  # started inside
        3: CpuReading("task", "airflow worker -- LocalExecutor: ti-b", 1.5),
        4: CpuReading("kernel", "python -m ipykernel_launcher -f k.json", 0.75),
    }
    assert cpu_by_kind(first, last) == {"scheduler": 2.5, "task": 2.0, "kernel": 0.8}
    per_task = cpu_per_task(first, last, {"ti-a": "resolve", "ti-b": "resolve"})
    assert per_task == {"resolve": {"processes": 2, "mean_core_s": 1.0}}


def test_task_spans_are_seconds_after_the_runs_first_task_start() -> None:
    def ti(task_id: str, start: float | None, end: float | None, map_index: int = -1) -> dict:
        return {
            "task_id": task_id,
            "state": "success",
            "duration_s": 1.0,
            "map_index": map_index,
            "try_number": 1,
            "start": start,
            "end": end,
        }

    tis = [
        ti("fetch", 100.0, 100.5),
        ti("notebook", 101.0, 121.0, 0),
        ti("notebook", 101.5, 123.25, 1),
        ti("post", None, None),
    ]
    by_task = summarize_task_instances(tis)["by_task"]
    assert (by_task["fetch"]["first_start_s"], by_task["fetch"]["last_end_s"]) == (0.0, 0.5)
    assert (by_task["notebook"]["first_start_s"], by_task["notebook"]["last_end_s"]) == (1.0, 23.25)
    assert (by_task["post"]["first_start_s"], by_task["post"]["last_end_s"]) == (None, None)


def test_in_flight_memory_is_the_median_growth_of_one_request_over_its_runs() -> None:
    def run(idle_pss: float, peak_pss: float, idle_rss: float, peak_rss: float) -> dict:
        return {
            "samples": 10,
            "idle_pss_mb": idle_pss,
            "peak_pss_mb": peak_pss,
            "idle_rss_mb": idle_rss,
            "peak_rss_mb": peak_rss,
            "pss_at_peak_mb": {"kernel": peak_pss - idle_pss - 10},
            "at_peak_mb": {"kernel": peak_rss - idle_rss - 10},
        }

    got = in_flight_memory([run(400, 630, 420, 690), run(400, 640, 420, 700), run(410, 700, 430, 760)])
    assert got["pss_per_in_flight_request_mb"] == 240.0
    assert got["rss_per_in_flight_request_mb"] == 280.0
    assert got["peak_pss_mb"] == 700
    assert got["kernel_pss_mb"] == 230.0
    assert got["samples"] == 30
    assert in_flight_memory([{"samples": 0}]) == {"samples": 0}


def _team_result(team: dict) -> dict:
    meta = {
        "commit": "abc1234",
        "dirty": False,
        "timestamp": "2026-12-04T16:00:00Z",
        "executor": "dag.test",
        "cpus": 2,
        "load_before": 0.5,
        "load_after": 0.7,
        "team_notebook_only": True,
        "team_notebook_repeats": 3,
    }
    return {"schema": 2, "meta": meta, "team_notebook": team}


def test_team_notebook_rows_show_papermill_alone_the_bot_and_its_overhead() -> None:
    team = {
        "state": "success",
        "repeats": 3,
        "replies_correct": 3,
        "credit": "$10,226.35",
        "papermill_s": 3.2,
        "bot_run_s": 4.3,
        "run_notebook_task_s": 3.1,
        "overhead_s": 1.1,
        "task_overhead_s": -0.1,
        "queries": 8,
        "table_reads": 7,
        "memory": {
            "peak_pss_mb": 627.2,
            "peak_rss_mb": 686.0,
            "pss_per_in_flight_request_mb": 236.0,
            "rss_per_in_flight_request_mb": 272.0,
            "kernel_pss_mb": 220.6,
            "kernel_rss_mb": 246.6,
        },
        "slow": {
            "query_seconds": 5.0,
            "correct": True,
            "papermill_s": 38.4,
            "bot_run_s": 39.6,
            "overhead_s": 1.2,
            "table_reads": 7,
            "extrapolated_s": 38.2,
        },
    }
    table = render(_team_result(team))
    lines = {line.strip().split("  ")[0]: line for line in table.splitlines()}
    assert "success, 3/3 replies with papermill's $10,226.35" in table
    assert lines["papermill alone, median (s)"].endswith("3.2")
    assert lines["under the bot: DAG run, median (s)"].endswith("4.3")
    assert lines["bot overhead = DAG run - papermill alone (s)"].endswith("1.1")
    assert lines["warehouse statements per notebook (table reads)"].endswith("8 (7)")
    assert lines["PSS one in-flight request adds (MB)"].endswith("236")
    assert "38.4 / 39.6 / 1.2 (7 reads of 5 s)" in table
    assert "DAG parse" not in table  # --team-notebook-only: the other rows are not shown


def test_team_notebook_row_says_why_it_was_skipped() -> None:
    table = render(_team_result({"skipped": "the team's notebook is not at /nowhere.ipynb"}))
    assert "skipped: the team's notebook is not at /nowhere.ipynb" in table


def test_team_notebook_flags() -> None:
    from bench.__main__ import parse_args

    assert parse_args(["--quick"]).team_notebook_repeats == 1
    assert parse_args([]).team_notebook_repeats == 3
    assert parse_args([]).team_notebook_query_seconds == 0  # the slow pass is off by default
    only = parse_args(["--team-notebook-only", "--team-notebook-query-seconds", "5"])
    assert (only.team_notebook_only, only.team_notebook_query_seconds) == (True, 5.0)
    with pytest.raises(SystemExit):
        parse_args(["--team-notebook-only", "--team-notebook-repeats", "0"])
