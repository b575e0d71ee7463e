"""Tests for credit_bot.settings: the JSON settings Variable, its defaults and its validation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from credit_bot.settings import DEFAULT_PRODUCTS, ProductRule, Settings, SettingsError

HOST = "credit-sandbox.cloud.looker.com"
MINIMAL: dict[str, Any] = {"looker_hosts": [HOST]}


def _from(**overrides: Any) -> Settings:
    return Settings.from_json(json.dumps({**MINIMAL, **overrides}))


def test_defaults() -> None:
    settings = Settings()
    assert settings.dry_run is True
    assert settings.category == "exceptions"
    assert settings.channel == ""
    assert settings.operators == ()
    assert settings.looker_hosts == ()
    assert settings.products == DEFAULT_PRODUCTS
    assert [(r.name, r.pattern) for r in settings.products] == [("verify", "authy")]
    assert settings.products[0].notebook == "verify_credit.ipynb"
    assert settings.kernel_name == "python3"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(None, id="variable-unset"),
        pytest.param("", id="empty"),
        pytest.param("  \n ", id="blank"),
    ],
)
def test_unset_variable_gives_unvalidated_defaults(text: str | None) -> None:
    # from_json returns the defaults without validating them: they have no looker_hosts, which
    # validate() rejects. Callers that need a usable config must not rely on from_json(None).
    settings = Settings.from_json(text)
    assert settings == Settings()
    with pytest.raises(SettingsError, match="looker_hosts"):
        settings.validate()


def test_empty_object_is_validated() -> None:
    with pytest.raises(SettingsError, match="looker_hosts"):
        Settings.from_json("{}")


def test_minimal_valid_settings() -> None:
    settings = _from()
    assert settings.looker_hosts == (HOST,)
    assert settings.dry_run is True
    assert settings.products == DEFAULT_PRODUCTS


def test_full_settings() -> None:
    settings = _from(
        channel="C0123ABCD",
        dry_run=False,
        operators=["U0123ABC", " W0456DEF "],
        looker_hosts=f" {HOST} ",
        category=" goodwill ",
        products=[
            {"name": "verify", "pattern": "authy", "notebook": "verify.ipynb"},
            {"name": "psms", "pattern": "psms", "notebook": None},
        ],
        max_attempts=5,
        page_size=999,
    )
    assert settings.channel == "C0123ABCD"
    assert settings.dry_run is False
    assert settings.operators == ("U0123ABC", "W0456DEF")
    assert settings.looker_hosts == (HOST,)  # a single string becomes a one-item list
    assert settings.category == "goodwill"
    assert settings.products == (
        ProductRule("verify", "authy", "verify.ipynb"),
        ProductRule("psms", "psms", None),
    )
    assert (settings.max_attempts, settings.page_size) == (5, 999)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param('{"looker_hosts": [1,]}', r"line 1, column \d+", id="trailing-comma"),
        pytest.param(
            '{\n  "channel": "C0123ABCD"\n  "dry_run": true\n}', "line 3, column 3", id="missing-comma"
        ),
        pytest.param("{'looker_hosts': []}", "line 1, column 2", id="single-quotes"),
        pytest.param("not json", "not valid JSON", id="garbage"),
    ],
)
def test_invalid_json_names_line_and_column(text: str, match: str) -> None:
    with pytest.raises(SettingsError, match=match):
        Settings.from_json(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[]", id="list"),
        pytest.param('"a string"', id="string"),
        pytest.param("42", id="number"),
        pytest.param("null", id="null"),
    ],
)
def test_non_object_json(text: str) -> None:
    with pytest.raises(SettingsError, match="must be a JSON object"):
        Settings.from_json(text)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        pytest.param({"chanel": "C0123ABCD"}, r"unknown key\(s\) \['chanel'\]", id="unknown-key"),
        pytest.param({"extra": {}}, "unknown key", id="extra-is-not-a-setting"),
        pytest.param({"channel": "general"}, "channel ID", id="channel-name"),
        pytest.param({"channel": "#C0123ABCD"}, "channel ID", id="channel-with-hash"),
        pytest.param({"channel": "c0123abcd"}, "channel ID", id="channel-lowercase"),
        pytest.param({"channel": "U0123ABCD"}, "channel ID", id="channel-is-user-id"),
        pytest.param({"channel": 123}, "must be a string", id="channel-number"),
        pytest.param({"operators": ["alice"]}, "user IDs", id="operator-name"),
        pytest.param({"operators": ["C0123ABCD"]}, "user IDs", id="operator-is-channel"),
        pytest.param({"operators": ["<@U0123ABC>"]}, "user IDs", id="operator-mention"),
        pytest.param({"operators": [1]}, "list of strings", id="operator-number"),
        pytest.param({"operators": {"a": "U0123ABC"}}, "list of strings", id="operators-object"),
        pytest.param({"looker_hosts": []}, "looker_hosts", id="empty-hosts"),
        pytest.param({"looker_hosts": ["  "]}, "looker_hosts", id="blank-hosts"),
        pytest.param({"looker_hosts": ""}, "looker_hosts", id="empty-host-string"),
        pytest.param({"products": [{"name": "v", "pattern": "(authy"}]}, "invalid", id="bad-regex"),
        pytest.param({"products": [{"name": "v"}]}, "'name' and 'pattern'", id="rule-without-pattern"),
        pytest.param(
            {"products": [{"name": "v", "pattern": "a", "nb": "x"}]},
            "'name' and 'pattern'",
            id="rule-extra-key",
        ),
        pytest.param({"products": ["authy"]}, "'name' and 'pattern'", id="rule-not-object"),
        pytest.param({"products": {"name": "v", "pattern": "a"}}, "must be a list", id="products-object"),
        pytest.param({"dry_run": "false"}, "true or false", id="dry-run-string"),
        pytest.param({"dry_run": 0}, "true or false", id="dry-run-int"),
        pytest.param({"max_attempts": "3"}, "whole number", id="int-as-string"),
        pytest.param({"max_attempts": True}, "whole number", id="int-as-bool"),
        pytest.param({"max_attempts": 2.5}, "whole number", id="int-as-float"),
        pytest.param({"lookback_hours": None}, "whole number", id="int-as-null"),
        pytest.param({"max_attempts": 0}, "at least 1", id="zero-attempts"),
        pytest.param({"notebook_timeout_seconds": -1}, "at least 1", id="negative-timeout"),
        pytest.param({"page_size": 1000}, "999", id="page-size-too-big"),
        pytest.param({"category": ["exceptions"]}, "must be a string", id="category-list"),
        pytest.param({"request_bots": ["U0WORKFLOW"]}, "bot IDs", id="request-bot-is-a-user"),
        pytest.param({"request_bots": ["Credit form"]}, "bot IDs", id="request-bot-name"),
        pytest.param({"request_bots": [7]}, "list of strings", id="request-bot-number"),
        pytest.param({"alert_channel": "#alerts"}, "channel ID", id="alert-channel-name"),
        pytest.param({"alert_channel": "U0OPERATOR"}, "channel ID", id="alert-channel-user"),
    ],
)
def test_rejected_settings(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(SettingsError, match=match):
        _from(**overrides)


def test_product_rule_without_notebook_is_kept() -> None:
    settings = _from(
        products=[{"name": "psms", "pattern": "psms", "notebook": None}, {"name": "x", "pattern": "y"}]
    )
    assert settings.products == (ProductRule("psms", "psms", None), ProductRule("x", "y", None))


@pytest.mark.parametrize(
    ("notebook", "expected"),
    [
        pytest.param("verify.ipynb", "/fake/notebooks/verify.ipynb", id="relative"),
        pytest.param("/abs/verify.ipynb", "/abs/verify.ipynb", id="absolute"),
        pytest.param("s3://bucket/verify.ipynb", "s3://bucket/verify.ipynb", id="remote"),
    ],
)
def test_notebook_path(notebook: str, expected: str) -> None:
    settings = _from(notebooks_dir="/fake/notebooks")
    assert settings.notebook_path(ProductRule("verify", "authy", notebook)) == expected


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="minimal"),
        pytest.param(
            {
                "channel": "C0123ABCD",
                "dry_run": False,
                "operators": ["U0123ABC"],
                "looker_hosts": [HOST, "other.cloud.looker.com"],
                "products": [{"name": "psms", "pattern": "psms|sms", "notebook": None}],
                "max_attempts": 7,
            },
            id="everything",
        ),
    ],
)
def test_task_value_round_trip(overrides: dict[str, Any]) -> None:
    settings = _from(**overrides)
    # The task value goes through XCom as JSON: tuples come back as lists.
    value = json.loads(json.dumps(settings.to_dict()))
    assert "extra" not in value
    rebuilt = Settings.from_task_value(value)
    assert rebuilt == settings
    assert isinstance(rebuilt.products[0], ProductRule)
    assert isinstance(rebuilt.looker_hosts, tuple)


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        pytest.param({"lookback_hours": 0}, "'lookback_hours' must be at least 1", id="no-lookback"),
        pytest.param({"link_wait_hours": -5}, "'link_wait_hours' must be at least 1", id="negative-wait"),
        pytest.param(
            {"ledger_retention_days": 0}, "'ledger_retention_days' must be at least 1", id="no-retention"
        ),
        pytest.param(
            {"ledger_retention_days": 2, "lookback_hours": 72},
            r"must cover 'lookback_hours' and 'link_wait_hours' \(2 days < 72 hours\)",
            id="retention-shorter-than-lookback",
        ),
    ],
)
def test_time_windows_are_range_checked(values: dict, problem: str) -> None:
    with pytest.raises(SettingsError, match=problem):
        _from(**values)


def test_request_bots_and_alert_channel() -> None:
    assert Settings().request_bots == ()
    assert Settings().alert_channel == ""
    settings = _from(request_bots=["B0WORKFLOW", " A0FORMAPP "], alert_channel="C0ALERTS")
    assert settings.request_bots == ("B0WORKFLOW", "A0FORMAPP")
    assert settings.alert_channel == "C0ALERTS"
    assert Settings.from_task_value(settings.to_dict()) == settings


# ── approval (issue 31) ────────────────────────────────────────────────────────────────────────
def test_approval_defaults_to_none_with_documented_timings() -> None:
    settings = _from()
    assert (settings.approval, settings.approvers) == ("none", ())
    assert (settings.approval_reminder_minutes, settings.approval_timeout_hours) == (60, 24)


@pytest.mark.parametrize(
    ("approval", "amount", "needed"),
    [
        pytest.param("none", "99999.00", False, id="none"),
        pytest.param("all", "0.01", True, id="all-supervised"),
        pytest.param("1000.00", "1000.00", False, id="threshold-equal-is-posted"),
        pytest.param("1000.00", "1000.01", True, id="threshold-above-waits"),
        pytest.param(1000, "1283.00", True, id="json-number-threshold"),
    ],
)
def test_which_amounts_need_approval(approval: Any, amount: str, needed: bool) -> None:
    from decimal import Decimal

    settings = _from(approval=approval, operators=["U0OPERATOR"], dry_run=False)
    assert settings.needs_approval(Decimal(amount)) is needed


def test_dry_run_never_waits_for_approval() -> None:
    from decimal import Decimal

    assert _from(approval="all", operators=["U0OPERATOR"]).needs_approval(Decimal("5.00")) is False


def test_approvers_default_to_the_operators() -> None:
    assert _from(operators=["U0OPERATOR"]).approval_users == ("U0OPERATOR",)
    assert _from(operators=["U0OPERATOR"], approvers=["U0BOSS"]).approval_users == ("U0BOSS",)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"approval": "some"}, "'approval' must be", id="bad-level"),
        pytest.param({"approval": "$1,000"}, "'approval' must be", id="formatted-amount"),
        pytest.param({"approval": "all"}, "no 'approvers'", id="nobody-to-ask"),
        pytest.param({"approvers": ["bob"]}, "'approvers' must be Slack user IDs", id="bad-approver"),
        pytest.param(
            {"approval_timeout_hours": 0}, "'approval_timeout_hours' must be at least 1", id="timeout"
        ),
    ],
)
def test_bad_approval_settings(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        _from(**overrides)


def test_approvers_survive_the_task_value_round_trip() -> None:
    settings = _from(approval="all", approvers=["U0BOSS"])
    assert Settings.from_task_value(settings.to_dict()).approvers == ("U0BOSS",)
