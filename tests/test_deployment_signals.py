"""A killed bench or soak cleans up its deployment (``harness.deployment.unwind_on_sigterm``)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from harness.deployment import unwind_on_sigterm


def test_sigterm_unwinds_through_finally_and_the_old_handler_comes_back() -> None:
    # Python's default SIGTERM ends the process without running any finally: the deployment's
    # scheduler, workers, kernels and database would outlive a `kill` of the bench or soak.
    previous = signal.getsignal(signal.SIGTERM)
    cleaned_up = []

    def killed_mid_run() -> None:
        try:
            with unwind_on_sigterm():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # interrupted: the handler raises at the next bytecode
                cleaned_up.append("not interrupted")
        finally:
            cleaned_up.append("finally ran")

    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        killed_mid_run()
    assert cleaned_up == ["finally ran"]
    assert signal.getsignal(signal.SIGTERM) is previous
