"""Test setup shared by the whole suite: an isolated Airflow home with its own SQLite metadata DB.

Airflow reads its configuration when first imported, so the environment is set here, at the
top of the root conftest, before any test module imports Airflow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

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
