"""Paths, sizes and the private Airflow home the bench runs in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TextIO

from harness import PROJECT_ROOT as ROOT

DAG_FILE = ROOT / "dags" / "credit_bot.py"
PLUGINS = ROOT / "plugins"
NOTEBOOK = ROOT / "include" / "notebooks" / "verify_credit.ipynb"
RESULTS_DIR = ROOT / "bench-results"
# 2: the team_notebook section; PSS next to RSS in memory (keys added, none changed).
SCHEMA_VERSION = 2

SIZES = (1, 10, 50)
QUICK_SIZES = (1,)
FLOOR_SAMPLE = 10  # notebooks the floor runs at most; larger backlogs are scaled from them
# Run + floor pairs for the backlog the overhead target is set on: the median pair is reported. On a
# shared machine the same ten notebooks took from 9.6 s to 16.8 s from one minute to the next.
REPEATS = 3
REPEATED_SIZE = 10
SCHEDULE_MINUTES = 10  # dags/credit_bot.py: CronTriggerTimetable("*/10 * * * *") (or the Slack asset)
LATENCY_MESSAGES = 10  # single messages the "with events" latency posts, one at a time
# The io-bound burst (--executor local): requests at once, each notebook's warehouse reads held
# this long by the Trino sandbox (four reads: about 20 s a notebook), on a deployment with this
# many slots.
IO_BOUND_REQUESTS = 10
IO_BOUND_QUERY_SECONDS = 5.0
IO_BOUND_PARALLELISM = 16
# The team's notebook (bench/team_notebook.py): papermill-alone + bot pairs, the median shown; each
# table read of the optional slow pass takes --team-notebook-query-seconds (0: no slow pass).
TEAM_REPEATS = 3
TEAM_QUERY_SECONDS = 0.0
HEAVY_MODULES = frozenset({"papermill", "looker_sdk", "slack_sdk", "pandas", "numpy", "duckdb", "nbformat"})


class BenchError(RuntimeError):
    """The bench cannot run as asked (a missing mode, a failed setup step)."""


# Airflow home ───────────────────────────────────────────────────────────────────────────────
def airflow_environment(home: Path) -> dict[str, str]:
    """What the Makefile exports, pointed at a private home with its own SQLite DB."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        # Per-task log lines would bury the table; the cost of logging at INFO is not what we measure.
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "CREDIT_BOT_RETRY_DELAY_SECONDS": "2",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")])),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


@contextmanager
def private_airflow_home(keep: bool = False) -> Iterator[Path]:
    """A fresh, migrated AIRFLOW_HOME in this process's environment; removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix="credit-bot-bench-"))
    os.environ.update(airflow_environment(home))
    if str(PLUGINS) not in sys.path:
        sys.path.insert(0, str(PLUGINS))
    airflow_cli = Path(sys.executable).parent / "airflow"
    migrate = subprocess.run(  # noqa: S603 - our own argv: the venv's airflow CLI
        [str(airflow_cli), "db", "migrate"], capture_output=True, text=True, env=os.environ, check=False
    )
    if migrate.returncode != 0:
        raise BenchError(
            f"airflow db migrate failed in {home}:\n{migrate.stdout[-2000:]}{migrate.stderr[-2000:]}"
        )
    try:
        yield home
    finally:
        if not keep:
            shutil.rmtree(home, ignore_errors=True)


def epoch(iso: str | None) -> float | None:
    """Seconds since the epoch of a REST API timestamp (``…Z``: Python 3.11 parses it)."""
    return datetime.fromisoformat(iso).timestamp() if iso else None


_console: list[TextIO] = [sys.stderr]


def progress(message: str) -> None:
    """A line on the terminal, wherever the rest of the output goes (``progress_to``)."""
    print(f"· {message} …", file=_console[-1], flush=True)


@contextmanager
def progress_to(stream: TextIO) -> Iterator[None]:
    _console.append(stream)
    try:
        yield
    finally:
        _console.pop()
