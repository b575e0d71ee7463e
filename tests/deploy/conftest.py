"""Fixtures for the real-deployment tests: one deployment per executor serves all the tests of a module
(starting one takes ~35 s); helpers in ``harness.testing.live``. Measured times are printed at the end."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.deployment import EXECUTORS
from harness.testing.live import FAST, PRODUCTS, SCHEDULED_CHANNEL, TIMINGS, Live, started


@pytest.fixture(scope="module", params=EXECUTORS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    executor: str = request.param
    workdir = tmp_path_factory.mktemp(f"deployment-{executor}")
    with started(executor, workdir, {"channel": SCHEDULED_CHANNEL, "products": PRODUCTS}, FAST) as live:
        yield live


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        terminalreporter.section("real-deployment timings")
        for what, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{what}: {seconds:.1f} s")


@pytest.fixture(scope="module")
def live_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """Like ``live``, LocalExecutor only: scheduler, dag-processor, triggerer (Socket Mode intake), API.

    The settings channel is ``SCHEDULED_CHANNEL``: asset-triggered runs read it and answer only
    the messages posted there.
    """
    workdir = tmp_path_factory.mktemp("deployment-events")
    settings = {"channel": SCHEDULED_CHANNEL, "products": PRODUCTS}
    with started("LocalExecutor", workdir, settings, FAST, label="LocalExecutor + triggerer") as live:
        assert "triggerer" in live.deployment.components
        yield live
