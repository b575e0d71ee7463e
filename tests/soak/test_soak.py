"""The short soak inside ``make test``: 100 s of traffic (40 requests, a burst of 20) and 22 random
faults on a real LocalExecutor deployment with Socket Mode and the cron tick, then the checker.

``SOAK_SEED`` replays a failure (the seed is in the failure message and in soak-results/).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.deployment import postgres_unreachable
from harness.soak import checker
from harness.soak.run import soak, write_result

pytestmark = [pytest.mark.deploy, pytest.mark.integration]

SECONDS = 100
REQUESTS = 40
FAULTS = 22


def test_a_short_day_with_random_faults_keeps_every_promise(tmp_path: Path) -> None:
    if reason := postgres_unreachable():
        pytest.skip(reason)
    seed = int(os.environ.get("SOAK_SEED", "2026"))
    result, history = soak(
        SECONDS, seed, workdir=tmp_path, requests=REQUESTS, faults=FAULTS, settle_timeout=480, say=print
    )
    path = write_result(result, history)
    table = checker.table(result)
    print(table)
    assert result["requests"] >= REQUESTS
    assert result["faults_total"] >= 20, result["faults"]
    assert sum(result["restarts"].values()) >= 1, result["restarts"]
    assert result["violations"] == [], f"seed {seed}, {path}:\n{table}"
    assert result["outcomes"].get("answered", 0) >= REQUESTS // 2, result["outcomes"]
