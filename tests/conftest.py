"""Test setup shared by the whole suite: an isolated Airflow home with its own SQLite metadata DB.

Airflow reads its configuration when first imported, so the environment is set here, at the
top of the root conftest, before any test module imports Airflow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.testing.object_storage import S3Server

ROOT = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="credit-bot-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME}/airflow.db",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        # Short retry delays so failure paths finish quickly under dag.test().
        "CREDIT_BOT_TASK_RETRIES": "1",
        "CREDIT_BOT_RETRY_DELAY_SECONDS": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
)
sys.path.insert(0, str(ROOT / "plugins"))


def pytest_sessionstart(session: object) -> None:
    """Create the metadata DB once (a few seconds on SQLite)."""
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ,
    )


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """moto's S3 server, one per session (papermill's S3 handler keeps its boto3 session per process)."""
    from harness.testing.object_storage import s3_server

    with s3_server() as server:
        yield server
