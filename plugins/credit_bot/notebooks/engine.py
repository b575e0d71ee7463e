"""CreditBot's papermill engine: each notebook's kernel started by a kernel manager of its own.

Registered with papermill under :data:`ENGINE_NAME` (``papermill_engines.register``), the way the
papermill provider registers its remote-kernel engine, and chosen per call with
``papermill.execute_notebook(..., engine_name=ENGINE_NAME)``. It is papermill's nbclient engine,
except that nbclient is handed a :class:`PrivateKernelManager` (``km=``) instead of making one.
Nothing process-wide is changed: other papermill calls in the process keep papermill's defaults.

Imported only when a notebook runs (it imports papermill, which the DAG file must not).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from papermill.clientwrap import PapermillNotebookClient  # noqa: TID253 - only imported to run a notebook
from papermill.engines import NBClientEngine  # noqa: TID253 - only imported to run a notebook
from papermill.log import logger  # noqa: TID253 - only imported to run a notebook
from papermill.utils import merge_kwargs, remove_args  # noqa: TID253 - only imported to run a notebook

ENGINE_NAME = "credit_bot"

# jupyter_client asks a finished kernel to shut down, waits half of KernelManager.shutdown_wait_time
# (5 s by default) for it to exit, then sends SIGTERM. ipykernel 7.4 now and then hangs in its own
# shutdown (its control thread waits for a flush from the IOPub thread that has already stopped;
# py-spy showed it), so about one notebook in ten or thirty took 3 s longer, in tasks and in plain
# papermill alike. It exits within 0.2 s when it does not hang; the notebook has run and its
# outputs are received by then, so 0.5 s before SIGTERM loses nothing.
KERNEL_SHUTDOWN_WAIT_S = 1.0


class PrivateKernelManager(AsyncKernelManager):
    """A kernel that talks over IPC, in a socket folder of its own, and gets
    :data:`KERNEL_SHUTDOWN_WAIT_S` to exit once the notebook has run (ipykernel's shutdown hang, above).

    IPC (Unix sockets, owner-only) instead of TCP on loopback: no port another local user could
    connect to, and none of ipykernel's "running over TCP without encryption" warning in every task
    log. The connection file, after which jupyter_client names the sockets, goes in a fresh private
    folder (``mkdtemp``: mode 0700): without one jupyter_client names them ``kernel-ipc-1``…``-5`` in
    the working directory, the same names for every kernel, so two notebooks running at once (two
    worker slots) read each other's messages ("Invalid Signature") and failed.
    Call :meth:`remove_folder` once the kernel has stopped.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.folder = tempfile.mkdtemp(prefix="credit-bot-kernel-")
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("connection_file", os.path.join(self.folder, "kernel.json"))
        kwargs.setdefault("shutdown_wait_time", KERNEL_SHUTDOWN_WAIT_S)
        super().__init__(**kwargs)

    def remove_folder(self) -> None:
        """Remove the socket folder (jupyter_client removes the files in it when the kernel stops)."""
        shutil.rmtree(self.folder, ignore_errors=True)


class CreditBotEngine(NBClientEngine):  # type: ignore[misc]
    """papermill's nbclient engine, with the kernel started by a :class:`PrivateKernelManager`."""

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man: Any,
        kernel_name: str,
        log_output: bool = False,
        stdout_file: Any = None,
        stderr_file: Any = None,
        start_timeout: int = 60,
        execution_timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run the notebook as ``NBClientEngine`` does, in a kernel of this engine's kernel manager."""
        kwargs = remove_args(["input_path"], **kwargs)
        final_kwargs = merge_kwargs(
            remove_args(["timeout", "startup_timeout"], **kwargs),
            timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
            startup_timeout=start_timeout,
            kernel_name=kernel_name,
            log=logger,
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
        )
        km = PrivateKernelManager(kernel_name=kernel_name)
        try:
            # nbclient stops only kernels whose manager it made itself; cleanup_kc: stop this one too.
            return PapermillNotebookClient(nb_man, km=km, **final_kwargs).execute(cleanup_kc=True)
        finally:
            km.remove_folder()


def register_engine() -> str:
    """Make :class:`CreditBotEngine` known to papermill (idempotent); its name, for ``engine_name=``."""
    from papermill.engines import papermill_engines

    papermill_engines.register(ENGINE_NAME, CreditBotEngine)
    return ENGINE_NAME
