"""Executed notebooks on an ``s3://bucket/prefix`` output_dir, against a real S3 API (moto's server).

Written by the notebook task (papermill, a real kernel), read back by the bot (read_result, the
secret scrub, the failing cell's log line), shown by the UI's notebook view and removed by
retention — each checked on the objects in the bucket, and with no local ``s3:`` folder made on the
way (the old code did ``Path(output_nb).parent.mkdir(...)`` on the URL).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import nbformat
import pytest
from papermill.exceptions import PapermillExecutionError

from credit_bot.notebook_store import NotebookRef, NotebookStore, output_path, read_text, write_text
from credit_bot.notebooks import CreditNotebookOperator, NotebookRejected, read_result
from harness.testing.object_storage import S3Server

RUN_ID = "manual__2026-12-01T10:00:00+00:00"
RUN_DIR = "manual__2026-12-01T10_00_00_00_00"
CHANNEL = "C0CREDITTEST"
PASSWORD = "fake-warehouse-pw-s3Qz"


@pytest.fixture
def output_dir(s3: S3Server) -> str:
    return f"s3://{s3.new_bucket()}/credit-bot/notebooks"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The task's working directory: the old code made ``s3:/bucket/…`` folders in it."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield cwd
    assert not (cwd / "s3:").exists(), "a local folder named after the s3:// URL was made"
    assert list(cwd.iterdir()) == []


def _notebook(path: Path, *sources: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('looker = ""'), *(nbformat.v4.new_code_cell(s) for s in sources)]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return str(path)


def _run(notebook: str, output_nb: str, **operator: Any) -> list[str]:
    task = CreditNotebookOperator(
        task_id="run_notebook",
        jobs=[{"input_nb": notebook, "output_nb": output_nb, "parameters": {"looker": "SELECT 1"}}],
        kernel_name="python3",
        **operator,
    )
    return task.execute(context={})  # type: ignore[arg-type]


def _bucket_key(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


@pytest.mark.integration
def test_a_notebook_run_writes_to_s3_and_the_bot_reads_it_back(
    s3: S3Server, output_dir: str, workdir: Path, tmp_path: Path
) -> None:
    notebook = _notebook(tmp_path / "credit.ipynb", "credit_amount = 4948.8 if looker else 0")
    output_nb = output_path(output_dir, RUN_ID, CHANNEL, "1796190000.000100", 0)
    assert _run(notebook, output_nb) == [output_nb]
    bucket, key = _bucket_key(output_nb)
    assert s3.keys(bucket) == [key]  # the executed notebook, and nothing else, in the bucket
    result = read_result(output_nb)
    assert result.credit == Decimal("4948.8")
    executed = nbformat.reads(read_text(output_nb), as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)


@pytest.mark.integration
def test_a_failing_cell_on_s3_is_logged_by_its_number(
    output_dir: str, workdir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    notebook = _notebook(tmp_path / "credit.ipynb", "credit_amount = 1", 'raise KeyError("fake_column")')
    output_nb = output_path(output_dir, RUN_ID, CHANNEL, "1796190000.000200", 0)
    with pytest.raises(PapermillExecutionError):
        _run(notebook, output_nb)
    task_log = "".join(capfd.readouterr())
    assert "failed in cell 3: KeyError: 'fake_column'" in task_log  # read from the object on s3
    with pytest.raises(Exception, match="failed in cell 3"):
        read_result(output_nb)


@pytest.mark.integration
def test_a_secret_printed_on_s3_is_scrubbed_and_the_notebook_rejected(
    s3: S3Server, output_dir: str, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {"conn_type": "trino", "host": "warehouse.invalid", "password": PASSWORD}
    monkeypatch.setenv("AIRFLOW_CONN_FAKE_S3_WAREHOUSE", json.dumps(conn))
    notebook = _notebook(
        tmp_path / "leaky.ipynb",
        "import json, os\nprint(json.loads(os.environ['AIRFLOW_CONN_FAKE_S3_WAREHOUSE'])['password'])",
        "credit_amount = 1",
    )
    output_nb = output_path(output_dir, RUN_ID, CHANNEL, "1796190000.000300", 0)
    from airflow.sdk.exceptions import AirflowFailException

    # Failed for good (a retry would print the secret again), the cause kept.
    with pytest.raises(AirflowFailException, match="scrubbed") as raised:
        _run(notebook, output_nb, warehouse_conn_id="fake_s3_warehouse")
    assert isinstance(raised.value.__cause__, NotebookRejected)
    bucket, key = _bucket_key(output_nb)
    stored = s3.client().get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert PASSWORD not in stored
    assert "***" in stored
    with pytest.raises(NotebookRejected):
        read_result(output_nb)


def _executed(credit: str) -> str:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("credit_amount = ...")
    cell.outputs.append(
        nbformat.v4.new_output(
            "display_data",
            data={
                "application/vnd.credit-bot.result+json": {
                    "has_credit_amount": True,
                    "credit_amount": {"type": "float", "value": credit},
                }
            },
        )
    )
    nb.cells.append(cell)
    return nbformat.writes(nb)


def test_the_ui_shows_a_notebook_written_after_it_listed_the_run(
    s3: S3Server, output_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The notebook view reads from s3; a listing the requests page made earlier does not hide a
    notebook written since (s3fs caches listings for the life of the process unless told not to)."""
    from fastapi.testclient import TestClient

    from credit_bot.settings import SETTINGS_VARIABLE
    from credit_bot.ui import app as app_module

    settings = {"output_dir": output_dir, "looker_hosts": ["credit-sandbox.cloud.looker.com"]}
    monkeypatch.setenv(f"AIRFLOW_VAR_{SETTINGS_VARIABLE.upper()}", json.dumps(settings))
    first = output_path(output_dir, RUN_ID, CHANNEL, "1796190000.000100", 0)
    second = output_path(output_dir, RUN_ID, CHANNEL, "1796190000.000200", 0)
    write_text(first, _executed("12.5"))
    store = NotebookStore(output_dir)
    assert store.existing({RUN_DIR}) == {first}  # the run folder is listed (the requests page does)
    bucket, key = _bucket_key(second)  # written by the worker (papermill), not by this process's s3fs
    s3.client().put_object(Bucket=bucket, Key=key, Body=_executed("4948.8").encode())
    second_ref = NotebookRef.from_path(output_dir, second)
    assert second_ref is not None
    assert '"4948.8"' in store.read(second_ref)  # same thread, same s3fs instance as the listing
    app = app_module.create_app()
    app.dependency_overrides[app.state.authorize] = lambda: None
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get(f"/notebooks/{RUN_DIR}/{second_ref.name}")
        missing = client.get(f"/notebooks/{RUN_DIR}/{CHANNEL}-1796190000.000999-0.ipynb")
    assert response.status_code == 200
    assert "CreditBot read <b>credit_amount = $4,948.80</b> from this notebook" in response.text
    assert missing.status_code == 404
    assert store.existing({RUN_DIR}) == {first, second}


def test_retention_removes_old_notebooks_from_s3(s3: S3Server, output_dir: str) -> None:
    from credit_bot.settings import Settings
    from credit_bot.tasks.record import remove_old_notebooks

    kept = output_path(output_dir, RUN_ID, CHANNEL, "1796190000.000100", 0)
    write_text(kept, _executed("1"))
    bucket, key = _bucket_key(kept)
    # Not ours: never removed, whatever its age.
    s3.client().put_object(Bucket=bucket, Key=f"{key.rsplit('/', 2)[0]}/{RUN_DIR}/notes.txt", Body=b"x")
    store = NotebookStore(output_dir)
    assert store.remove_older_than(1) == []  # written just now
    assert remove_old_notebooks(Settings(output_dir=output_dir, notebook_retention_days=1)) == 0
    in_two_days = datetime.now(UTC) + timedelta(days=2)
    assert store.remove_older_than(1, now=in_two_days) == [kept]
    assert s3.keys(bucket) == [f"{key.rsplit('/', 2)[0]}/{RUN_DIR}/notes.txt"]
    assert store.existing({RUN_DIR}) == {f"{output_dir}/{RUN_DIR}/notes.txt"}
