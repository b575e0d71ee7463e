"""How long Airflow takes to parse the DAG file, in a fresh interpreter."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.environment import DAG_FILE, HEAVY_MODULES, BenchError

# DAG parse ──────────────────────────────────────────────────────────────────────────────────
# Runs in a fresh interpreter: load Airflow and its DagBag first (a DAG processor has them), then
# time filling a DagBag from the one DAG file and list the modules that parse added.
PARSE_PROBE = r"""
import json, sys, time
started = time.perf_counter()
import airflow
from airflow.dag_processing.dagbag import DagBag
booted = time.perf_counter()
before = set(sys.modules)
t0 = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
parse = time.perf_counter() - t0
print(json.dumps({
    "boot_s": booted - started,
    "parse_s": parse,
    "modules": sorted(m for m in set(sys.modules) - before if not m.startswith("unusual_prefix_")),
    "dags": sorted(bag.dags),
    "errors": {k: str(v)[-300:] for k, v in bag.import_errors.items()},
}))
"""


def measure_parse(runs: int) -> dict[str, Any]:
    """Median DagBag parse time of the DAG file over ``runs`` fresh interpreters, and its imports."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        out = subprocess.run(  # noqa: S603 - our own argv: this interpreter and a constant probe
            [sys.executable, "-c", PARSE_PROBE, str(DAG_FILE)],
            capture_output=True,
            text=True,
            env=os.environ,
            check=False,
            timeout=300,
        )
        process_s = time.perf_counter() - started
        if out.returncode != 0:
            raise BenchError(f"parse probe failed:\n{out.stderr[-2000:]}")
        report = json.loads(out.stdout.strip().splitlines()[-1])
        if report["errors"] or report["dags"] != ["credit_bot"]:
            raise BenchError(
                f"dags/credit_bot.py did not parse cleanly: {report['errors'] or report['dags']}"
            )
        samples.append({**report, "process_s": process_s})
    modules = samples[-1]["modules"]
    top_level = sorted({m.split(".")[0] for m in modules})
    return {
        "runs": runs,
        "median_s": statistics.median(s["parse_s"] for s in samples),
        "samples_s": [round(s["parse_s"], 4) for s in samples],
        "process_median_s": statistics.median(s["process_s"] for s in samples),
        "airflow_import_median_s": statistics.median(s["boot_s"] for s in samples),
        "modules_count": len(modules),
        "modules_top_level": top_level,
        "heavy": sorted(m for m in top_level if m in HEAVY_MODULES),
        "modules": modules,
    }
