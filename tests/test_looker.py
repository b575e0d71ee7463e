"""LookerHook against the sandbox with the real looker_sdk: errors map to specific classes, and no error
makes the SDK reach past the connection's host (the socket-level guard in ``harness.testing.network``)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from credit_bot.links import parse_looker_url
from credit_bot.looker import LookerAuthError, LookerError, LookerHook, LookerNotFound, LookerUnavailable
from harness import PROJECT_ROOT
from harness.local import LOOKER_HOST
from harness.sandbox import Sandbox
from harness.testing.network import is_loopback, loopback_only

BASIC_SCENARIO = PROJECT_ROOT / "include" / "sandbox" / "scenarios" / "basic.json"
LOOKER_CDN = "static-a.cdn.looker.app"


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with Sandbox.from_scenario(BASIC_SCENARIO) as sb:
        conn = {
            "conn_type": "http",
            "host": sb.looker_base_url,
            "login": sb.looker_client_id,
            "password": sb.looker_client_secret,
            "extra": {"timeout": 5},
        }
        monkeypatch.setenv("AIRFLOW_CONN_LOOKER_DEFAULT", json.dumps(conn))
        yield sb


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        pytest.param("127.0.0.1", True, id="ipv4-loopback"),
        pytest.param("127.8.9.10", True, id="loopback-range"),
        pytest.param("::1", True, id="ipv6-loopback"),
        pytest.param("localhost", True, id="localhost"),
        pytest.param(None, True, id="no-host"),
        pytest.param(LOOKER_CDN, False, id="looker-cdn"),
        pytest.param("10.0.0.1", False, id="private-range"),
        pytest.param(LOOKER_HOST, False, id="looker-instance-name"),
    ],
)
def test_loopback_guard_tells_local_from_outbound(host: str | None, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_the_stock_sdk_follows_the_documentation_url_of_a_404(sandbox: Sandbox) -> None:
    """The guard's own check: with the sandbox's real error shape, stock looker_sdk reaches for the CDN."""
    import looker_sdk
    from looker_sdk.error import SDKError
    from looker_sdk.rtl import api_settings

    class Settings(api_settings.ApiSettings):
        def __init__(self) -> None:
            super().__init__(filename="", env_prefix=None)
            self.base_url = sandbox.looker_base_url
            self.timeout = 5

        def read_config(self) -> api_settings.SettingsConfig:
            return {"client_id": sandbox.looker_client_id, "client_secret": sandbox.looker_client_secret}

    sdk = looker_sdk.init40(config_settings=Settings())
    with loopback_only() as outbound, pytest.raises(SDKError) as caught:
        sdk.look("424242")
    assert caught.value.documentation_url.endswith("/r/err/4.0/404/get/looks/:look_id")
    assert outbound.hosts == [LOOKER_CDN]


@pytest.mark.parametrize(
    ("url", "fault", "expected"),
    [
        pytest.param(f"https://{LOOKER_HOST}/looks/424242", None, LookerNotFound, id="look-404"),
        pytest.param(f"https://{LOOKER_HOST}/x/noSuchSlug", None, LookerNotFound, id="slug-404"),
        pytest.param(f"https://{LOOKER_HOST}/dashboards/424242", None, LookerNotFound, id="dashboard-404"),
        pytest.param(
            f"https://{LOOKER_HOST}/looks/123",
            ("GET /looks/{id}", "unauthorized", 2),
            LookerAuthError,
            id="look-401-twice",
        ),
        pytest.param(
            f"https://{LOOKER_HOST}/looks/123",
            ("GET /looks/{id}", "ratelimited", 10),
            LookerUnavailable,
            id="look-429",
        ),
        pytest.param(
            f"https://{LOOKER_HOST}/looks/123",
            ("GET /queries/{id}/run/{format}", "server_error", 10),
            LookerUnavailable,
            id="sql-500",
        ),
    ],
)
def test_no_looker_error_leaves_the_connections_host(
    sandbox: Sandbox, url: str, fault: tuple[str, str, int] | None, expected: type[LookerError]
) -> None:
    if fault is not None:
        method, kind, times = fault
        sandbox.inject("looker", method, kind, times=times, retry_after=0)
    hook = LookerHook()
    with loopback_only() as outbound, pytest.raises(expected):
        hook.resolve(parse_looker_url(url))
    assert outbound.attempts == []
    assert sandbox.calls(api="looker")  # the error did come from the sandbox


def test_the_hook_still_resolves_after_an_error(sandbox: Sandbox) -> None:
    hook = LookerHook()
    with loopback_only() as outbound:
        with pytest.raises(LookerNotFound, match=r"Look 424242 was not found in Looker \(404\)"):
            hook.resolve(parse_looker_url(f"https://{LOOKER_HOST}/looks/424242"))
        (resolved,) = hook.resolve(parse_looker_url(f"https://{LOOKER_HOST}/looks/123"))
    assert re.search(r"authy", resolved.sql, re.IGNORECASE)
    assert outbound.attempts == []
