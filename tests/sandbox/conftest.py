"""Fixtures for the sandbox tests: a running sandbox per test, real slack_sdk and looker_sdk clients."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import looker_sdk
import pytest
from looker_sdk.rtl import api_settings
from looker_sdk.sdk.api40.methods import Looker40SDK
from slack_sdk import WebClient

from harness.sandbox import Sandbox
from harness.testing.network import loopback_only

REPO = Path(__file__).resolve().parents[2]
BASIC_SCENARIO = REPO / "include" / "sandbox" / "scenarios" / "basic.json"
CHANNEL = "C0CREDITTEST"


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy configured in the environment must not intercept calls to the local sandbox."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(autouse=True)
def _loopback_only() -> Iterator[None]:
    """These tests drive the stock looker_sdk, which follows a Looker error's documentation link to
    Looker's CDN: refused here at once, so a machine whose firewall drops packets never hangs them."""
    with loopback_only():
        yield


@pytest.fixture
def basic_scenario() -> dict[str, Any]:
    """The basic scenario as a dict, for tests that tweak it."""
    return json.loads(BASIC_SCENARIO.read_text(encoding="utf-8"))


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A running sandbox seeded from basic.json."""
    with Sandbox.from_scenario(BASIC_SCENARIO) as sb:
        yield sb


@pytest.fixture
def make_sandbox(basic_scenario: dict[str, Any]) -> Iterator[Callable[..., Sandbox]]:
    """Start sandboxes from basic.json with overrides, e.g. make_sandbox(looker={"token_ttl_seconds": 1})."""
    started: list[Sandbox] = []

    def make(slack: dict[str, Any] | None = None, looker: dict[str, Any] | None = None) -> Sandbox:
        data = copy.deepcopy(basic_scenario)
        data["slack"].update(slack or {})
        data["looker"].update(looker or {})
        sb = Sandbox.from_dict(data, base_dir=BASIC_SCENARIO.parent).start()
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


@pytest.fixture
def slack(sandbox: Sandbox) -> WebClient:
    """The real slack_sdk client pointed at the sandbox (default retry handlers)."""
    return WebClient(token=sandbox.slack_token, base_url=sandbox.slack_base_url)


class SandboxLookerSettings(api_settings.ApiSettings):
    """looker_sdk settings from code instead of looker.ini (how the bot configures it from a connection)."""

    def __init__(self, base_url: str, client_id: str, client_secret: str) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        # filename "" makes ApiSettings skip ini files; env_prefix None skips LOOKERSDK_* variables.
        super().__init__(filename="", env_prefix=None)
        self.base_url = base_url
        self.verify_ssl = False
        self.timeout = 10

    def read_config(self) -> api_settings.SettingsConfig:
        return {"client_id": self._client_id, "client_secret": self._client_secret}


def looker_client(sb: Sandbox, client_secret: str | None = None) -> Looker40SDK:
    """The real looker_sdk 4.0 client pointed at the sandbox."""
    settings = SandboxLookerSettings(
        sb.looker_base_url, sb.looker_client_id, client_secret or sb.looker_client_secret
    )
    return looker_sdk.init40(config_settings=settings)


@pytest.fixture
def make_looker() -> Callable[..., Looker40SDK]:
    """Factory: make_looker(sb, client_secret=None) -> a real looker_sdk 4.0 client for that sandbox."""
    return looker_client


@pytest.fixture
def looker(sandbox: Sandbox) -> Looker40SDK:
    """looker_sdk 4.0 against the basic sandbox."""
    return looker_client(sandbox)
