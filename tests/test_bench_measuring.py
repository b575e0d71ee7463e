"""The bench's measuring code that needs no run: memory, overlap, stages, Slack reads, io-bound figures."""

from __future__ import annotations

import os
import subprocess
import sys
import time

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
    process_kind,
    summarize,
)


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
    assert summary["at_peak_mb"] == {"kernel": 1000.0, "scheduler": 1000.0}
    assert summarize([]) == {"samples": 0, "peak_rss_mb": None}


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
