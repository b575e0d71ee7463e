"""Tests for credit_bot.notebooks.engine: papermill's engine with a kernel manager of CreditBot's.

The kernel manager's settings (IPC in a private folder, the short shutdown wait) apply to the
kernels of this engine only: nothing process-wide is patched. The ``integration`` tests start kernels.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import papermill
import pytest
from jupyter_client.manager import AsyncKernelManager, KernelManager
from papermill.engines import papermill_engines

from credit_bot.notebooks import PLUGINS_DIR, instrumented_copy, read_result
from credit_bot.notebooks.engine import (
    ENGINE_NAME,
    KERNEL_SHUTDOWN_WAIT_S,
    CreditBotEngine,
    PrivateKernelManager,
    register_engine,
)
from harness.testing.notebook_files import write_code_notebook

_write = write_code_notebook


def _run(tmp_path: Path, engine_name: str | None) -> str:
    tmp_path.mkdir(exist_ok=True)
    source = _write(tmp_path / "credit.ipynb", "credit_amount = 1")
    output = tmp_path / "credit.out.ipynb"
    papermill.execute_notebook(
        str(instrumented_copy(str(source), tmp_path / ".instrumented")),
        str(output),
        kernel_name="python3",
        progress_bar=False,
        engine_name=engine_name,
    )
    return str(output)


def test_registered_under_its_name() -> None:
    assert register_engine() == ENGINE_NAME
    assert papermill_engines.get_engine(ENGINE_NAME) is CreditBotEngine
    assert papermill_engines.get_engine(None) is not CreditBotEngine  # papermill's default stays


def test_kernel_manager_settings_are_its_own() -> None:
    km = PrivateKernelManager(kernel_name="python3")
    try:
        assert km.shutdown_wait_time == KERNEL_SHUTDOWN_WAIT_S
        assert km.transport == "ipc"
    finally:
        km.remove_folder()
    # Nothing process-wide: papermill's default engine and everyone else get jupyter_client's defaults.
    assert (
        AsyncKernelManager().shutdown_wait_time == KernelManager().shutdown_wait_time > KERNEL_SHUTDOWN_WAIT_S
    )
    assert AsyncKernelManager().transport == "tcp"


def test_each_kernel_has_its_own_private_socket_folder() -> None:
    """Two notebooks at once (two worker slots) must never share IPC sockets: they did, as
    ./kernel-ipc-1…5 for every kernel, and kernels took each other's messages (the soak found it)."""
    first, second = PrivateKernelManager(), PrivateKernelManager()
    try:
        ips = [Path(first.ip), Path(second.ip)]
        assert all(ip.is_absolute() for ip in ips)
        assert ips[0] != ips[1]
        assert ips[0].parent == Path(first.folder) != Path.cwd()
        assert Path(first.connection_file).parent == Path(first.folder)
        assert oct(Path(first.folder).stat().st_mode & 0o777) == "0o700"
    finally:
        first.remove_folder()
        second.remove_folder()
    assert not Path(first.folder).exists()


@pytest.mark.integration
def test_kernels_run_over_ipc_without_the_plain_text_warning(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The kernel's stderr is the task log's: over TCP ipykernel warns there at every start."""
    _run(tmp_path / "tcp", None)  # papermill's own engine
    assert "without encryption" in capfd.readouterr().err  # what the test would catch
    _run(tmp_path / "ipc", register_engine())
    assert "without encryption" not in capfd.readouterr().err


@pytest.mark.integration
def test_the_kernel_is_stopped_and_its_folder_removed(tmp_path: Path) -> None:
    folders = Path(tempfile.gettempdir()).glob
    before = set(folders("credit-bot-kernel-*"))
    assert read_result(_run(tmp_path, register_engine())).credit == 1
    assert set(folders("credit-bot-kernel-*")) <= before


_CONCURRENT = """
import sys
from pathlib import Path
import papermill
from credit_bot.notebooks import instrumented_copy, read_result
from credit_bot.notebooks.engine import register_engine
work = Path(sys.argv[1])
for i in range(2):
    out = work / f"out-{i}.ipynb"
    papermill.execute_notebook(
        str(instrumented_copy(sys.argv[2], work / ".instrumented")), str(out),
        parameters={"delay": 0.5}, kernel_name="python3", progress_bar=False,
        engine_name=register_engine(),
    )
    print("CREDIT", read_result(str(out)).credit)
"""


@pytest.mark.integration
def test_kernels_of_two_tasks_started_at_once_never_share_sockets(tmp_path: Path) -> None:
    """Three task processes on one host, one working directory, kernels starting together (a burst)."""
    source = _write(
        tmp_path / "credit.ipynb", "delay = 0", "import time\ntime.sleep(delay)\ncredit_amount = 7.5"
    )
    nb = nbformat.read(source, as_version=4)
    nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, source)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGINS_DIR), os.environ.get("PYTHONPATH", "")])}
    procs = []
    for n in range(3):
        (work := tmp_path / f"task-{n}").mkdir()
        argv = [sys.executable, "-c", _CONCURRENT, str(work), str(source)]
        procs.append(subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outcomes = [(p.communicate(timeout=240), p.returncode) for p in procs]  # reads both pipes
    for (out, err), code in outcomes:
        assert code == 0, err.decode()[-2000:]
        assert [line for line in out.decode().splitlines() if line.startswith("CREDIT")] == ["CREDIT 7.5"] * 2
        assert b"Invalid Signature" not in err
    assert list(cwd.iterdir()) == []  # no socket files left in the working directory
