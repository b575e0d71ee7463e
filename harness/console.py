"""A console apart from the logs: what a person came to read, while libraries' output goes to a file."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


@contextmanager
def console_apart(log_file: Path) -> Iterator[TextIO]:
    """Everything written to stdout/stderr in the block goes to ``log_file``; the stream yielded is the
    console, for what the person who typed the command came to read.

    File descriptors are redirected, not just ``sys.stdout``: Airflow's loggers and the notebook
    kernels (child processes inherit the descriptors) write to them directly.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    console = os.fdopen(os.dup(1), "w", buffering=1)
    with log_file.open("w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield console
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            console.close()
