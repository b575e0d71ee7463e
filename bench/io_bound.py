"""The io-bound burst: requests whose notebooks wait on the warehouse, answered side by side.

The team's notebook spends its time waiting for Presto, and requests come in bursts. This case
points the warehouse connection at the Trino protocol sandbox with the team's kind of query times
(``harness.warehouse_latency``: every table read takes ``query_seconds``; the notebook makes four),
posts ``requests`` Verify requests at once, and runs CreditBot on them under LocalExecutor with
``parallelism`` slots, sampling the memory of every Airflow process and kernel meanwhile. Then it
runs the same notebooks with papermill one after another, as the team's cron script does:

* **sequential floor**: their sum, what the cron script takes;
* **parallel floor**: the slowest one alone, what no amount of parallelism can beat;
* **ratio** = CreditBot's run (queued → finished, Airflow's timestamps) ÷ the parallel floor.

It also counts the machine's busy CPU (every core, every process: Airflow's components, the task
processes, the kernels, the sandboxes) during the run and during the floor. The run cannot end
sooner than that work spread over all cores (**CPU floor**): when it is above the parallel floor,
the burst is bound by CPU, not by waiting, and more slots or pools do not help — more cores do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.environment import epoch, progress
from bench.measuring import notebook_floor, one_run
from bench.memory import MemorySampler
from bench.runners import local_executor_runner
from bench.scenarios import IO_BOUND_CHANNEL, expected_reply, request_text

WAREHOUSE_ENV = "AIRFLOW_CONN_CREDIT_WAREHOUSE_DEFAULT"


@contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


@contextmanager
def busy_cpu() -> Iterator[dict[str, float]]:
    """Core-seconds the whole machine was busy (not idle or waiting on I/O) inside the block."""
    import psutil

    def busy() -> float:
        t = psutil.cpu_times()
        return t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)

    figures: dict[str, float] = {}
    before = busy()
    try:
        yield figures
    finally:
        figures["busy_core_s"] = busy() - before


def io_bound_case(
    stack: Any,
    workdir: Path,
    *,
    requests: int,
    query_seconds: float,
    parallelism: int,
    floor_sample: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(io_bound, memory)`` figures of one burst of ``requests`` and its floors."""
    from harness.warehouse_latency import SlowWarehouseServer

    with SlowWarehouseServer(stack.warehouse, query_seconds=query_seconds, dialect="trino") as server:
        connection = json.dumps(server.connection(login="credit-bot-bench"))
        progress(
            f"io-bound burst: {requests} requests, warehouse reads of {query_seconds:g} s each, "
            f"LocalExecutor with parallelism {parallelism}"
        )
        with local_executor_runner(stack, parallelism, env={WAREHOUSE_ENV: connection}) as runner:
            deployment = runner.deployment
            roots = [c.pid for c in deployment.components.values() if c.pid]
            posted = [
                (stack.sandbox.add_message(IO_BOUND_CHANNEL, request_text(i)), expected_reply(i))
                for i in range(requests)
            ]
            with MemorySampler(roots) as memory, busy_cpu() as run_cpu:
                run = one_run(stack, runner, IO_BOUND_CHANNEL, posted)
            finished = runner.api.dag_run("credit_bot", run["run_id"])
            tis = runner.api.task_instances("credit_bot", run["run_id"])
            task_of = {ti["id"]: ti["task_id"] for ti in tis}
        progress(f"the same {requests} notebooks with papermill, one after another, same warehouse")
        with _environ(WAREHOUSE_ENV, connection), busy_cpu() as floor_cpu:
            floor = notebook_floor(stack, requests, workdir / "io-bound-floor", floor_sample)
        queries = len(server.queries())
    figures = io_bound_figures(run, finished, floor, query_seconds, parallelism, queries)
    figures["cpu"] = cpu_figures(run_cpu["busy_core_s"], floor_cpu["busy_core_s"], len(floor["notebook_s"]))
    figures["cpu"]["by_kind_core_s"] = {
        **memory.cpu_by_kind(),
        "bench process (sandboxes)": round(run["bench_process_cpu_s"], 1),
    }
    figures["cpu"]["per_task_process"] = memory.cpu_per_task(task_of)
    return figures, memory.summary()


def cpu_figures(run_busy_s: float, floor_busy_s: float, floor_notebooks: int) -> dict[str, Any]:
    """What the burst's CPU work says: the CPU floor, and how much of the work is the notebooks'."""
    cores = os.cpu_count() or 1
    per_notebook = floor_busy_s / floor_notebooks if floor_notebooks else None
    return {
        "cores": cores,
        "run_busy_core_s": round(run_busy_s, 1),
        "cpu_floor_s": round(run_busy_s / cores, 1),
        "floor_busy_core_s_per_notebook": round(per_notebook, 2) if per_notebook is not None else None,
    }


def io_bound_figures(
    run: dict[str, Any],
    finished: dict[str, Any],
    floor: dict[str, Any],
    query_seconds: float,
    parallelism: int,
    warehouse_queries: int,
) -> dict[str, Any]:
    """The ``io_bound`` result from one run (``one_run``), its DAG run (REST API) and its floor."""
    queued, ended = epoch(finished.get("queued_at")), epoch(finished.get("end_date"))
    wall = ended - queued if queued and ended else run["wall_s"]
    parallel_floor = max(floor["notebook_s"])
    sequential_floor = floor["wall_s"]  # scaled when only floor_sample notebooks ran
    notebooks = [(start, end) for start, end in run["task_instances"]["notebook_spans"]]
    return {
        "requests": run["requests"],
        "state": run["state"],
        "replies_correct": run["replies_correct"],
        "wall_s": wall,
        "wall_polled_s": run["wall_s"],
        "sequential_floor_s": sequential_floor,
        "sequential_floor_scaled": floor["scaled"],
        "parallel_floor_s": parallel_floor,
        "ratio_to_parallel_floor": wall / parallel_floor if parallel_floor else None,
        "ratio_to_sequential_floor": wall / sequential_floor if sequential_floor else None,
        "notebook_floor_s": floor["notebook_s"],
        "query_seconds": query_seconds,
        "parallelism": parallelism,
        "warehouse_queries": warehouse_queries,
        "most_notebooks_at_once": most_at_once(notebooks),
        "task_instances": run["task_instances"],
        "calls": run["calls"],
    }


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The largest number of ``(start, end)`` intervals open at one moment."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = running = 0
    for _, step in edges:  # an end sorts before a start at the same instant: -1 < 1
        running += step
        most = max(most, running)
    return most
