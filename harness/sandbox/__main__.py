"""Command line: `python -m harness.sandbox --scenario PATH [--port 8765]`; serves until Ctrl-C/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from harness.sandbox.app import Sandbox
from harness.sandbox.scenario import ScenarioError


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, start the sandbox, print its base URLs, and wait for a stop signal."""
    parser = argparse.ArgumentParser(prog="python -m harness.sandbox", description=__doc__)
    parser.add_argument("--scenario", required=True, help="scenario JSON file")
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 = any free port)")
    args = parser.parse_args(argv)

    try:
        sandbox = Sandbox.from_scenario(args.scenario, port=args.port)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with sandbox:
        # Credentials are the scenario's fake ones, but are still not printed: people paste this output.
        print(f"Slack base URL:  {sandbox.slack_base_url}", flush=True)
        print(f"Looker base URL: {sandbox.looker_base_url}", flush=True)
        print(f"Control API:     {sandbox.url}/_sandbox/", flush=True)
        print("Serving; press Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
