"""credit_bot.tasks.scopes: the scopes a run needs, and the message naming those missing."""

from __future__ import annotations

import pytest

from credit_bot.settings import Settings
from credit_bot.slack import missing_scopes, scope_failure
from credit_bot.tasks.scopes import needed_scopes

READ = "channels:history|groups:history"


@pytest.mark.parametrize(
    ("overrides", "now", "later"),
    [
        pytest.param({}, [READ, "chat:write", "im:write", "im:history", "reactions:write"], [], id="live"),
        pytest.param({"operators": ()}, [READ, "chat:write", "reactions:write"], [], id="live-no-operators"),
        pytest.param(
            {"reaction_picked_up": "", "reaction_answered": "", "reaction_escalated": ""},
            [READ, "chat:write", "im:write", "im:history"],
            [],
            id="live-no-reactions",
        ),
        pytest.param(
            {"dry_run": True},
            [READ],
            ["chat:write", "im:write", "im:history", "reactions:write"],
            id="dry-run-reads-only",
        ),
        pytest.param(
            {"dry_run": True, "dry_run_preview": True, "reactions_in_dry_run": True},
            [READ, "chat:write", "im:write", "im:history", "reactions:write"],
            [],
            id="dry-run-with-preview-and-reactions",
        ),
    ],
)
def test_needed_scopes(overrides: dict, now: list, later: list) -> None:
    base = {"looker_hosts": ("x.cloud.looker.com",), "operators": ("U0OPERATOR",), "dry_run": False}
    assert needed_scopes(Settings(**{**base, **overrides})) == (now, later)


def test_scope_failure_names_each_missing_scope_and_its_use() -> None:
    granted = frozenset({"groups:history", "chat:write", "im:write", "reactions:write"})
    missing = missing_scopes(granted, [READ, "chat:write", "im:write", "im:history", "reactions:write"])
    assert missing == ["im:history"]
    message = scope_failure(missing)
    assert "lacks 1 scope(s): im:history: to read an operator's DM back" in message
    assert "reinstall the app" in message
    assert scope_failure([READ]).count("channels:history or groups:history") == 1
