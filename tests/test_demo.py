"""``make demo`` as a newcomer sees it: a short console, every sample request to its expected outcome."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import PROJECT_ROOT
from harness.local import DEMO_REQUESTS


@pytest.mark.integration
def test_demo_console_is_short_and_says_what_happened(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness.demo"],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "CREDIT_BOT_DEMO_OUTPUT": str(tmp_path),
            "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "plugins"), os.environ.get("PYTHONPATH", "")]),
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    console = done.stdout + done.stderr
    assert done.returncode == 0, console
    lines = console.splitlines()
    assert len(lines) < 75, console
    assert "Traceback" not in console
    assert "without encryption" not in console
    assert f"logs: {tmp_path / 'demo.log'}" in console
    log = (tmp_path / "demo.log").read_text()
    # The expected notebook error is in the log file, not on the console.
    assert "PapermillExecutionError" in log
    assert "without encryption" not in log  # kernels run over IPC
    for item in json.loads(DEMO_REQUESTS.read_text())["requests"]:
        if item["expect"].startswith(("Approved", "Please provide")):
            assert f"replied in thread: {item['expect']}" in console, item
    # Red by design: echo's notebook task fails, so report_failures fails both runs (ledger written).
    assert "First run: failed" in console
    assert "Second run: failed" in console
    assert "Both runs end failed by design" in console
    assert "thread replies in total: 6" in console
    # The supervised path, on Airflow's own components: a click on Approve posts, one on Reject does not.
    assert "[6/6] supervised" in console
    assert "threads so far: empty" in console
    assert "the demo clicks Approve as <@U0OPERATOR> in the DM (Socket Mode, acked in" in console
    assert "→ posted in the thread" in console
    assert "['Approved, $10,226.35, exceptions']" in console
    assert "Approved by <@U0OPERATOR>" in console
    assert "the demo clicks Reject" in console
    assert "→ nothing posted in the thread (0 replies)" in console
    assert "Rejected by <@U0OPERATOR>" in console
