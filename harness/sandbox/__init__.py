"""Local emulator ("sandbox") of the Slack Web API and Looker API 4.0 that the real slack_sdk and
looker_sdk clients run against, in tests, in the demo and from Airflow workers.

Start one with ``Sandbox.from_scenario(path).start()`` or ``python -m harness.sandbox --scenario PATH``.
"""

from __future__ import annotations

from harness.sandbox.app import Sandbox
from harness.sandbox.client import SandboxClient, SandboxControlError
from harness.sandbox.scenario import Scenario, ScenarioError

__all__ = ["Sandbox", "SandboxClient", "SandboxControlError", "Scenario", "ScenarioError"]
