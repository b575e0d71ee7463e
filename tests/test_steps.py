"""Pure parts of the task bodies: the run note's summary line, which failures fail the run, the scopes."""

from __future__ import annotations

import pytest

from credit_bot.settings import Settings
from credit_bot.slack import missing_scopes, scope_failure
from credit_bot.steps import failed_request_tasks, needed_scopes, run_summary, untold_failures


def _o(outcome: str, amount: str | None = None) -> dict:
    return {"ts": "1764000000.000100", "outcome": outcome, **({"amount": amount} if amount else {})}


@pytest.mark.parametrize(
    ("outcomes", "dry_run", "summary"),
    [
        pytest.param([], False, "Nothing new", id="idle"),
        pytest.param([], True, "Nothing new (dry run)", id="idle-dry-run"),
        pytest.param(
            [_o("answered", "1000.00"), _o("answered", "204.10"), _o("escalated")],
            False,
            "3 requests: 2 answered ($1,204.10 total), 1 escalated",
            id="issue-example",
        ),
        pytest.param(
            [_o("link_requested"), _o("retrying"), _o("ignored"), _o("expired"), _o("deleted")],
            False,
            "5 requests: 1 link requested, 1 retrying, 1 ignored, 1 deleted, 1 expired",
            id="every-other-outcome",
        ),
        pytest.param(
            [_o("answered", "0.10"), _o("answered", "0.20")],
            True,
            "2 requests: 2 answered ($0.30 total) — DRY RUN, nothing posted",
            id="exact-cents-dry-run",
        ),
        pytest.param([_o("answered", "12.35")], False, "1 request: 1 answered ($12.35 total)", id="one"),
    ],
)
def test_run_summary(outcomes: list, dry_run: bool, summary: str) -> None:
    assert run_summary(outcomes, dry_run) == summary


# ── which request tasks fail the run; which scopes a run needs ─────────────────────────────────
@pytest.mark.parametrize(
    ("states", "failed"),
    [
        pytest.param({"resolve_0": "success", "post_results_0": "success"}, [], id="all-green"),
        pytest.param({"run_notebook_0": "success"}, [], id="retried-then-succeeded-is-success"),
        pytest.param(
            {"resolve_0": "failed", "resolve_1": "success", "run_notebook_12": "upstream_failed"},
            ["resolve[0]", "run_notebook[12]"],
            id="mapped-failures",
        ),
        pytest.param({"resolve": "failed"}, ["resolve"], id="unmapped"),
        pytest.param(
            {"fetch_requests": "failed", "record_ledger": "failed", "report_failures": "running"},
            [],
            id="not-request-tasks",
        ),
        pytest.param({"post_results_x": "failed"}, [], id="not-a-map-index"),
    ],
)
def test_failed_request_tasks(states: dict, failed: list) -> None:
    assert failed_request_tasks(states) == failed


def _done(index: int, outcome: str, **extra: str) -> dict:
    return {"ts": f"1764000000.00010{index}", "map_index": index, "outcome": outcome, **extra}


@pytest.mark.parametrize(
    ("failed", "outcomes", "untold"),
    [
        # A failed notebook whose request was DMed (retrying, then escalated): the DM told it.
        pytest.param([("run_notebook", 0)], [_done(0, "retrying")], [], id="first-failure-dm"),
        pytest.param([("resolve", 1)], [_done(1, "escalated")], [], id="give-up-dm"),
        # The one that tells failed, or nothing was DMed, or the DM reached nobody: the run alert.
        pytest.param([("post_results", 0)], [], ["post_results[0]"], id="post-results-failed"),
        pytest.param([("run_notebook", 0)], [_done(0, "answered")], ["run_notebook[0]"], id="answered"),
        pytest.param(
            [("run_notebook", 0)],
            [_done(0, "escalated", undelivered="could not DM U0GONE (user_disabled)")],
            ["run_notebook[0]"],
            id="undelivered",
        ),
        pytest.param([("run_notebook", 2)], [_done(0, "retrying")], ["run_notebook[2]"], id="other-request"),
        pytest.param([("resolve", None)], [_done(0, "retrying")], ["resolve"], id="unmapped"),
    ],
)
def test_untold_failures(failed: list, outcomes: list, untold: list) -> None:
    assert untold_failures(failed, outcomes) == untold


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


# ── decide: the fraud spend the request states ─────────────────────────────────────────────────
def _executed_notebook(path, credit: str) -> str:
    import nbformat

    from credit_bot.notebooks import RESULT_MIME

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("# read-out")
    result = {"has_credit_amount": True, "credit_amount": {"type": "float", "value": credit}}
    cell.outputs.append(nbformat.v4.new_output("display_data", data={RESULT_MIME: result}))
    nb.cells.append(cell)
    nbformat.write(nb, path)
    return str(path)


LINK = "https://credit-sandbox.cloud.looker.com/dashboards/7"


@pytest.mark.parametrize(
    ("credits", "stated", "action", "problem"),
    [
        pytest.param(["60.004", "40"], "100.00", "answer", None, id="tiles-sum-equal-after-rounding"),
        pytest.param(["60", "40.01"], "100", "escalate", "the credit $100.01", id="tiles-sum-above"),
        pytest.param(["179.74"], "179.73", "escalate", "fraud spend $179.73 stated", id="one-cent-above"),
        pytest.param(["179.74"], None, "answer", None, id="nothing-stated"),
    ],
)
def test_decide_checks_the_stated_spend_per_link(tmp_path, credits, stated, action, problem) -> None:
    from credit_bot.links import LABEL
    from credit_bot.steps import decide

    jobs = [
        {
            "link": LINK,
            "output_nb": _executed_notebook(tmp_path / f"{i}.ipynb", credit),
            "stated_spend": {"amount": stated, "where": LABEL} if stated else None,
        }
        for i, credit in enumerate(credits)
    ]
    resolved = {"status": "ready", "links": [LINK], "jobs": jobs}
    decision = decide(resolved)
    assert decision["action"] == action
    if problem:
        assert problem in decision["error"]
        assert f"computed for {LINK}" in decision["error"]
        assert "(the link's label); not posted" in decision["error"]


@pytest.mark.parametrize(
    ("credits", "amount"),
    [
        pytest.param(["10.005", "20.005"], "30.01", id="two-half-cents-round-once"),
        pytest.param(["0.004", "0.004", "0.004"], "0.01", id="three-fractions-make-a-cent"),
        pytest.param(["0.004"], None, id="rounds-to-zero-is-escalated"),
        pytest.param(["12.345"], "12.35", id="one-link-half-up"),
        pytest.param(["4948.8"], "4948.80", id="whole-cents"),
    ],
)
def test_decide_sums_the_links_then_rounds_once(tmp_path, credits: list, amount: str | None) -> None:
    """README: summed over a request's links, rounded to cents half up once (the soak found each
    link rounded before the sum: $30.02 for the first case)."""
    from decimal import Decimal

    from credit_bot.steps import decide

    jobs = [
        {
            "link": f"https://x.cloud.looker.com/looks/{i}",
            "output_nb": _executed_notebook(tmp_path / f"{i}.ipynb", c),
        }
        for i, c in enumerate(credits)
    ]
    resolved = {"status": "ready", "jobs": jobs, "links": [j["link"] for j in jobs]}
    decision = decide(resolved)
    if amount is None:  # no "Approved, $0.00" without a person deciding it
        assert decision["action"] == "escalate"
        assert "a credit of $0.00 is never posted" in decision["error"]
        return
    assert decision["action"] == "answer"
    assert decision["amount"] == Decimal(amount)
    assert str(decision["amount"]) == amount


@pytest.mark.parametrize(
    ("value", "configured", "dry_run"),
    [
        pytest.param(None, True, True, id="as-configured-dry"),
        pytest.param(None, False, False, id="as-configured-live"),
        pytest.param("dry_run", False, True, id="form-dry-run"),
        pytest.param("live", True, False, id="form-live"),
        pytest.param(True, False, True, id="rest-true"),
        pytest.param(False, True, False, id="rest-false"),
    ],
)
def test_dry_run_param(value, configured: bool, dry_run: bool) -> None:
    from credit_bot.steps import dry_run_choice

    assert dry_run_choice(value, configured) is dry_run


@pytest.mark.parametrize("value", ["yes", "", 1, 0])
def test_dry_run_param_rejects_anything_else(value) -> None:
    from credit_bot.settings import SettingsError
    from credit_bot.steps import dry_run_choice

    with pytest.raises(SettingsError, match="'dry_run' param"):
        dry_run_choice(value, True)
