"""A full run (``dag.test()``) with ``output_dir`` on object storage: moto's S3 server, configured
as a deployment configures S3 (the standard AWS environment; see credit_bot.notebook_store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.testing.flows import HOST, ledger_entry, thread_posts
from harness.testing.object_storage import S3Server

pytestmark = pytest.mark.integration


def test_a_request_answered_with_its_notebook_on_s3(
    dag, stack, post, s3: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from credit_bot.notebook_store import NotebookStore
    from credit_bot.notebooks import read_result

    bucket = s3.new_bucket()
    output_dir = f"s3://{bucket}/credit-bot/notebooks"
    stack.use_settings(output_dir=output_dir)
    monkeypatch.chdir(tmp_path)
    look = post(f"Credit request acme\nFraud spend: <{HOST}/looks/101|$20,902.40>")

    params = {"channel": None, "message_ts": None, "dry_run": None, "force": False}
    assert str(dag.test(run_conf=params).state) == "success"

    assert thread_posts(stack, look) == ["Approved, $10,226.35, exceptions"]
    [notebook] = ledger_entry(look)["notebooks"]
    assert notebook.startswith(f"{output_dir}/")
    assert len(s3.keys(bucket)) == 1  # the executed notebook, in the bucket
    assert str(read_result(notebook).credit).startswith("10226.3")
    assert not (tmp_path / "s3:").exists()
    assert NotebookStore(output_dir).existing({notebook.split("/")[-2]}) == {notebook}
