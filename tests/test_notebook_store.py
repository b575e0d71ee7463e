"""Executed notebooks: addressing (only CreditBot's own names) and retention, on disk and object storage."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fsspec
import pytest

from credit_bot.notebook_store import NotebookNotFound, NotebookRef, NotebookStore
from credit_bot.notebooks import output_path

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RUN = "scheduled__2026-08-01T10:00:00+00:00"


@pytest.mark.parametrize(
    ("run_dir", "name"),
    [
        pytest.param("..", "C0CREDITTEST-1796190000.000100-0.ipynb", id="parent"),
        pytest.param(".instrumented", "C0CREDITTEST-1796190000.000100-0.ipynb", id="dot-folder"),
        pytest.param("a/b", "C0CREDITTEST-1796190000.000100-0.ipynb", id="slash"),
        pytest.param("run", "../C0CREDITTEST-1796190000.000100-0.ipynb", id="name-traversal"),
        pytest.param("run", "verify_credit.ipynb", id="not-a-request-name"),
        pytest.param("run", "C0CREDITTEST-1796190000.000100-0.ipynb.bak", id="suffix"),
        pytest.param("run", "c0credittest-1796190000.000100-0.ipynb", id="lowercase-channel"),
    ],
)
def test_only_names_output_path_makes_are_addressable(run_dir: str, name: str) -> None:
    with pytest.raises(NotebookNotFound):
        NotebookRef.parse(run_dir, name)


def test_output_path_round_trips() -> None:
    path = output_path("s3://bucket/nb", RUN, "C0CREDITTEST", "1796190000.000100", 2)
    assert NotebookRef.from_path("s3://bucket/nb", path) == NotebookRef(
        "scheduled__2026-08-01T10_00_00_00_00", "C0CREDITTEST-1796190000.000100-2.ipynb"
    )
    assert NotebookRef.from_path("s3://other", path) is None


def _age(path: Path, days: float) -> None:
    stamp = (NOW - timedelta(days=days)).timestamp()
    os.utime(path, (stamp, stamp))


def test_retention_on_local_disk(tmp_path: Path) -> None:
    out = tmp_path / "notebooks"
    old = Path(output_path(str(out), RUN, "C0CREDITTEST", "1790000000.000100", 0))
    recent = Path(output_path(str(out), "manual__recent", "C0CREDITTEST", "1796190000.000100", 0))
    mixed_old = Path(output_path(str(out), "manual__mixed", "C0CREDITTEST", "1791000000.000100", 0))
    mixed_new = mixed_old.with_name("C0CREDITTEST-1791000000.000100-1.ipynb")
    foreign = out / "manual__mixed" / "README.txt"
    instrumented = out / ".instrumented" / "verify_credit.0123456789abcdef.ipynb"
    for path, days in [
        (old, 91),
        (recent, 1),
        (mixed_old, 120),
        (mixed_new, 89),
        (foreign, 400),
        (instrumented, 400),
    ]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
        _age(path, days)

    removed = NotebookStore(str(out)).remove_older_than(90, now=NOW)

    assert sorted(removed) == sorted([str(old), str(mixed_old)])
    assert not old.parent.exists()  # an emptied run folder goes too
    assert recent.exists()
    assert mixed_new.exists()
    assert foreign.exists()  # not a name CreditBot writes: never touched
    assert instrumented.exists()
    assert NotebookStore(str(out)).remove_older_than(90, now=NOW) == []


def test_retention_on_object_storage() -> None:
    fs = fsspec.filesystem("memory")
    root = "memory://credit-bot-retention/notebooks"
    old = output_path(root, RUN, "C0CREDITTEST", "1790000000.000100", 0)
    new = output_path(root, "manual__recent", "C0CREDITTEST", "1796190000.000100", 0)
    for path, days in [(old, 100), (new, 10)]:
        fs.pipe(path, b"{}")
        fs.store[fs._strip_protocol(path)].modified = NOW - timedelta(days=days)
    try:
        assert NotebookStore(root).remove_older_than(90, now=NOW) == [old]
        assert not fs.exists(old)
        assert fs.exists(new)
        assert NotebookStore(root).existing({"manual__recent", "scheduled__2026-08-01T10_00_00_00_00"}) == {
            new
        }
    finally:
        fs.rm("/credit-bot-retention", recursive=True)


def test_a_missing_output_dir_removes_nothing(tmp_path: Path) -> None:
    assert NotebookStore(str(tmp_path / "never-written")).remove_older_than(1, now=NOW) == []


def test_record_ledger_applies_the_setting(tmp_path: Path) -> None:
    from credit_bot.settings import Settings
    from credit_bot.tasks.record import remove_old_notebooks

    old = Path(output_path(str(tmp_path), RUN, "C0CREDITTEST", "1790000000.000100", 0))
    old.parent.mkdir(parents=True)
    old.write_text("{}")
    _age(old, 10)
    keep = Settings(output_dir=str(tmp_path), notebook_retention_days=30, looker_hosts=("x",))
    assert remove_old_notebooks(keep) == 0
    assert remove_old_notebooks(Settings(output_dir=str(tmp_path), notebook_retention_days=5)) == 1
    assert not old.exists()


def test_notebook_retention_days_is_validated() -> None:
    from credit_bot.settings import Settings, SettingsError

    assert Settings().notebook_retention_days == 90
    with pytest.raises(SettingsError, match="notebook_retention_days"):
        Settings.from_dict({"looker_hosts": ["x"], "notebook_retention_days": 0})
