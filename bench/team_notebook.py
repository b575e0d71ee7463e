"""The team's own notebook: its time under the bot against papermill alone, and its memory as PSS.

The reference notebook (``include/notebooks``) is CreditBot's stand-in; the notebook the bot will run
is the team's, ``verify_credit_recommendation.ipynb``, read from where the team shares it (never
copied into the project; ``$CREDIT_BOT_TEAM_NOTEBOOK`` overrides the path). When it is not there the
case is skipped with the reason in the result.

``harness.team_notebook.port`` makes README's edits on a copy (the copy is what runs). The team's SQL is
Presto's, so the case starts the Presto protocol sandbox (``harness.warehouse_server``, over TLS with a
password, as production's would be) on the sample warehouse and points the warehouse connection at it.
Then, ``repeats`` times, back to back so that the machine's drift hits both alike:

* **papermill alone**: ``papermill.execute_notebook`` of the very file the bot runs (the ported copy with
  its parameters cell tagged and CreditBot's read-out cell: ``instrumented_copy``), with ``looker`` = the
  acme Look's SQL, the settings' kernel, and the warehouse connection exported as the bot exports it;
* **under the bot**: a full ``dag.test()`` run of ``credit_bot`` answering one request for the same Look,
  with the settings' Verify rule pointing at the ported notebook: the run's wall time and its
  ``run_notebook`` task's.

The medians give the bot's overhead on one request (run - papermill alone) and the notebook task's own
(task - papermill alone). Memory is sampled during the bot runs (this process and its children: the
task runs in this process under dag.test, the kernel is its child): peak PSS and RSS, and the PSS one
in-flight request added over the idle process.

With ``query_seconds`` > 0 the case runs once more, papermill alone and under the bot, against
``SlowWarehouseServer`` (every table read takes that long): the team's notebook waits on Presto for
minutes in production, so notebook time ≈ table reads x seconds per read + the fast figures.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.environment import progress
from bench.measuring import one_run, run_limit, watchdog
from bench.memory import MemorySampler
from bench.runners import Runner
from bench.scenarios import IDLE_CHANNEL, request_sql, request_text, team_channel

TEAM_NOTEBOOK = Path(
    os.environ.get("CREDIT_BOT_TEAM_NOTEBOOK", "/work/shared/team/verify_credit_recommendation.ipynb")
)
WAREHOUSE_CONN_ID = "credit_warehouse_default"  # credit_bot.settings' default warehouse_conn_id
WAREHOUSE_ENV = f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}"
WAREHOUSE_USER = "credit-bot-bench"
REQUEST = 0  # request_text(0): the acme Look (query 1001, include/sandbox/sql/verify_acme.sql)
# What harness.warehouse_latency delays: a statement that reads a table (not SELECT 1 or SET SESSION).
READS_A_TABLE = re.compile(r"\bFROM\b", re.IGNORECASE)


@contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """``values`` in this process's environment for the block (dag.test's tasks and the kernels read it)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def presto_warehouse(database: Path, query_seconds: float = 0.0) -> Iterator[tuple[Any, str]]:
    """The sample warehouse behind the Presto protocol over TLS with a throwaway password, and the
    warehouse connection as the bot exports it to the kernel (``Connection.as_json()``)."""
    import secrets

    from airflow.sdk import Connection

    from harness.warehouse_latency import SlowWarehouseServer
    from harness.warehouse_server import WarehouseServer, self_signed_tls

    with tempfile.TemporaryDirectory(prefix="credit-bot-bench-presto-") as tls_dir:
        password = "fake-warehouse-" + secrets.token_hex(8)
        options: dict[str, Any] = {
            "dialect": "presto",
            "users": {WAREHOUSE_USER: password},
            "tls": self_signed_tls(Path(tls_dir)),
        }
        server = (
            SlowWarehouseServer(database, query_seconds=query_seconds, **options)
            if query_seconds > 0
            else WarehouseServer(database, **options)
        )
        with server:
            conn = json.dumps(server.connection(WAREHOUSE_USER, password))
            yield server, Connection.from_json(conn, conn_id=WAREHOUSE_CONN_ID).as_json()


def query_counts(server: Any, before: int) -> dict[str, int]:
    """Statements the server received after the first ``before``, and how many of them read a table."""
    sent = server.queries()[before:]
    return {"queries": len(sent), "table_reads": sum(1 for q in sent if READS_A_TABLE.search(q.sql))}


def papermill_alone(notebook: Path, output: Path, sql: str, kernel: str) -> float:
    """Wall seconds of one papermill run of ``notebook`` with ``looker`` = ``sql``, kernels launched as
    the bot's notebook task launches them (IPC, the same shutdown wait)."""
    import papermill

    from credit_bot.notebooks.engine import register_engine

    output.parent.mkdir(parents=True, exist_ok=True)
    with watchdog("papermill alone: the team's notebook", run_limit(1)):
        started = time.perf_counter()
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters={"looker": sql},
            kernel_name=kernel,
            progress_bar=False,
            log_output=False,
            engine_name=register_engine(),
        )
        return time.perf_counter() - started


def bot_run(stack: Any, runner: Runner, channel: str, amount: str | None) -> dict[str, Any]:
    """One ``credit_bot`` run answering the acme request in ``channel``; the reply must carry ``amount``
    (the credit papermill alone computed, as the bot formats it)."""
    runner.reset_ledger()
    ts = stack.sandbox.add_message(channel, request_text(REQUEST))
    run = one_run(stack, runner, channel, [])  # no expected text: the team's credit is not the reference's
    replies = [p for p in stack.sandbox.posts(channel) if p.get("thread_ts") == ts]
    by_task = run["task_instances"]["by_task"].get("run_notebook") or {}
    return {
        "state": run["state"],
        "wall_s": run["wall_s"],
        "run_notebook_task_s": by_task.get("total_s"),
        "run_notebook_states": by_task.get("states"),
        "reply": replies[0].get("text") if replies else None,
        "replies": len(replies),
        "correct": len(replies) == 1 and amount is not None and amount in (replies[0].get("text") or ""),
        "calls": run["calls"],
    }


def team_notebook_case(
    stack: Any, runner: Runner, workdir: Path, *, repeats: int, query_seconds: float = 0.0
) -> dict[str, Any]:
    """The ``team_notebook`` result (module docstring); ``{"skipped": why}`` without the team's file."""
    if not TEAM_NOTEBOOK.is_file():
        why = f"the team's notebook is not at {TEAM_NOTEBOOK} (set CREDIT_BOT_TEAM_NOTEBOOK)"
        progress(f"team notebook: skipped, {why}")
        return {"skipped": why}
    from credit_bot.notebooks import instrumented_copy
    from credit_bot.settings import Settings
    from harness.team_notebook import port

    workdir.mkdir(parents=True, exist_ok=True)
    ported = port(TEAM_NOTEBOOK, workdir / "team_ported.ipynb")
    # The file the bot's task runs: the parameters cell tagged, the read-out cell appended.
    runnable = instrumented_copy(str(ported), workdir / ".instrumented", ("looker",))
    kernel = Settings().kernel_name
    products = [{"name": "verify", "pattern": "authy", "notebook": str(ported)}]
    setup = _Setup(stack, runner, runnable, workdir, request_sql(stack, REQUEST), kernel)
    result: dict[str, Any] = {"notebook": str(TEAM_NOTEBOOK), "kernel": kernel, "repeats": repeats}
    saved_settings = dict(os.environ)
    try:
        stack.use_settings(products=products)
        with presto_warehouse(stack.warehouse) as (server, connection), environ({WAREHOUSE_ENV: connection}):
            # The first run in a process pays one-off costs (the DAG's serialization, imports): not timed.
            progress("team notebook: a warm-up run of the DAG (idle channel)")
            runner.run(IDLE_CHANNEL)
            result.update(_fast_pairs(setup, server, repeats))
        if query_seconds > 0 and result["state"] == "success":
            with (
                presto_warehouse(stack.warehouse, query_seconds) as (server, connection),
                environ({WAREHOUSE_ENV: connection}),
            ):
                result["slow"] = _slow_pair(setup, server, query_seconds)
                result["slow"]["extrapolated_s"] = (
                    result["slow"]["table_reads"] * query_seconds + result["papermill_s"]
                )
    finally:
        # use_settings wrote the settings Variable into the environment: the other cases use the defaults.
        os.environ.clear()
        os.environ.update(saved_settings)
    return result


@dataclass(frozen=True)
class _Setup:
    """What every run of the case uses."""

    stack: Any
    runner: Runner
    notebook: Path  # the instrumented copy: what the bot's task runs
    workdir: Path
    sql: str
    kernel: str


def _credit_text(output: Path) -> str | None:
    """The credit of an executed notebook as the bot writes it in its reply, or None if it has none."""
    from credit_bot.money import format_usd
    from credit_bot.notebooks import read_result

    try:
        return format_usd(read_result(str(output)).credit)
    except Exception:  # any unreadable result: the reply is then not checked against it
        return None


def _fast_pairs(setup: _Setup, server: Any, repeats: int) -> dict[str, Any]:
    """``repeats`` pairs of papermill alone then the bot, against the fast warehouse: the medians."""
    from papermill.exceptions import PapermillExecutionError

    alone: list[float] = []
    bot: list[dict[str, Any]] = []
    memory: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    amount: str | None = None
    for repeat in range(repeats):
        of = f" ({repeat + 1} of {repeats})" if repeats > 1 else ""
        progress(f"team notebook: papermill alone, then the bot on the same request{of}")
        before = len(server.queries())
        output = setup.workdir / f"papermill-{repeat}.ipynb"
        try:
            alone.append(papermill_alone(setup.notebook, output, setup.sql, setup.kernel))
        except PapermillExecutionError as exc:
            # The team's own failure or a Presto function the sandbox does not translate yet: say which.
            return {"state": "failed", "error": f"papermill alone: {exc.ename}: {exc.evalue[:500]}"}
        if repeat == 0:
            counts = query_counts(server, before)
            amount = _credit_text(output)
        # Sampled per run, so each run's idle figure is this process just before its request's
        # kernel (papermill and the DAG already imported), not the bench before its first notebook.
        with MemorySampler([os.getpid()]) as sampler:
            bot.append(bot_run(setup.stack, setup.runner, team_channel(repeat), amount))
        memory.append(sampler.summary())
    walls = [b["wall_s"] for b in bot]
    tasks = [b["run_notebook_task_s"] for b in bot if b["run_notebook_task_s"] is not None]
    papermill_s, bot_run_s = statistics.median(alone), statistics.median(walls)
    task_s = statistics.median(tasks) if tasks else None
    failed = [b for b in bot if b["state"] != "success" or not b["correct"]]
    return {
        "state": "success" if not failed else "failed",
        "credit": amount,
        "reply": bot[0]["reply"],
        "replies_correct": sum(1 for b in bot if b["correct"]),
        "papermill_s": papermill_s,
        "bot_run_s": bot_run_s,
        "run_notebook_task_s": task_s,
        "overhead_s": bot_run_s - papermill_s,
        "task_overhead_s": task_s - papermill_s if task_s is not None else None,
        **counts,
        "papermill_runs_s": alone,
        "bot_runs": bot,
        "memory": in_flight_memory(memory),
    }


def _slow_pair(setup: _Setup, server: Any, seconds: float) -> dict[str, Any]:
    """One pair against the warehouse whose every table read takes ``seconds``."""
    progress(f"team notebook: every table read taking {seconds:g} s, papermill alone then the bot")
    output = setup.workdir / "papermill-slow.ipynb"
    before = len(server.queries())
    alone = papermill_alone(setup.notebook, output, setup.sql, setup.kernel)
    counts = query_counts(server, before)
    bot = bot_run(setup.stack, setup.runner, team_channel("SLOW"), _credit_text(output))
    return {
        "query_seconds": seconds,
        "state": bot["state"],
        "correct": bot["correct"],
        "papermill_s": alone,
        "bot_run_s": bot["wall_s"],
        "run_notebook_task_s": bot["run_notebook_task_s"],
        "overhead_s": bot["wall_s"] - alone,
        **counts,
    }


def in_flight_memory(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The memory of one request in flight under dag.test, from each bot run's ``MemorySampler.summary()``.

    Each run's idle figure is its first sample, taken before its request's kernel started; its peak
    came with that one kernel (one request at a time), so peak - idle is what one in-flight request
    added: its kernel, and what the task grew this process by. Medians over the runs; the peak is the
    highest.
    """
    runs = [r for r in runs if r.get("samples")]
    if not runs:
        return {"samples": 0}

    def median(key: str) -> float | None:
        values = [r[key] for r in runs if r.get(key) is not None]
        return round(statistics.median(values), 1) if values else None

    for r in runs:
        pss = r.get("peak_pss_mb") is not None
        r["pss_added_mb"] = r["peak_pss_mb"] - r["idle_pss_mb"] if pss else None
        r["rss_added_mb"] = r["peak_rss_mb"] - r["idle_rss_mb"]
        r["kernel_pss_mb"] = r["pss_at_peak_mb"].get("kernel")
        r["kernel_rss_mb"] = r["at_peak_mb"].get("kernel")
    peaks = [r["peak_pss_mb"] for r in runs if r.get("peak_pss_mb") is not None]
    return {
        "peak_pss_mb": max(peaks) if peaks else None,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "idle_pss_mb": median("idle_pss_mb"),
        "idle_rss_mb": median("idle_rss_mb"),
        "pss_per_in_flight_request_mb": median("pss_added_mb"),
        "rss_per_in_flight_request_mb": median("rss_added_mb"),
        "kernel_pss_mb": median("kernel_pss_mb"),
        "kernel_rss_mb": median("kernel_rss_mb"),
        "samples": sum(r["samples"] for r in runs),
    }
