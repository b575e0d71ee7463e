"""The soak's generator and fault schedule: seeded (a seed replays a run), and as varied as promised."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from harness.soak import faults, generator


def test_a_seed_replays_the_same_day() -> None:
    first, again = generator.plan(5, 100, 40), generator.plan(5, 100, 40)
    assert [r.as_dict() for r in first.requests] == [r.as_dict() for r in again.requests]
    assert [r.text for r in generator.plan(6, 100, 40).requests] != [r.text for r in first.requests]
    assert faults.schedule(random.Random(5), 100, 22) == faults.schedule(random.Random(5), 100, 22)


def test_the_plan_has_the_requests_and_a_burst_of_20_asked_for() -> None:
    plan = generator.plan(1, 100, 40)
    assert len(plan.requests) == 40
    burst = [r for r in plan.requests if r.burst == 0]
    assert len(burst) == generator.BURST_SIZE
    assert max(r.at for r in burst) - min(r.at for r in burst) < 3
    assert [r.at for r in plan.requests] == sorted(r.at for r in plan.requests)
    day = generator.plan(1, 1200, 240)
    assert set(day.kinds()) == set(generator.KINDS)


@pytest.mark.parametrize(
    ("results", "amount"),
    [
        pytest.param(["10.005", "20.005"], "30.01", id="rounded-once-not-per-link"),
        pytest.param(["0.125"], "0.13", id="half-up"),
        pytest.param(["4948.80"], "4948.80", id="cents"),
    ],
)
def test_expected_amounts_come_from_the_generators_own_table(results: list[str], amount: str) -> None:
    table = {i: generator.Look(i, "verify", r, "99999.00") for i, r in enumerate(results)}
    assert generator.expected_amount(table, list(table)) == amount


def test_a_short_soak_still_gets_the_deployment_faults() -> None:
    chosen = faults.schedule(random.Random(3), 100, 22)
    assert len(chosen) == 22
    heavy = [(at, name) for at, name in chosen if name in faults.HEAVY]
    assert len({name for _, name in heavy}) >= 4
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(heavy)]
    assert min(gaps) >= 4  # one deployment fault at a time, each in its own 20-s slot
    assert set(faults.WEIGHTS) >= set(faults.SANDBOX_FAULTS) | faults.HEAVY


def test_every_request_may_end_escalated_but_only_the_kinds_outcomes_otherwise() -> None:
    for request in generator.plan(9, 600, 120).requests:
        if request.kind == "other_bot":
            continue  # never a request: it must stay unseen
        assert "escalated" in request.outcomes
        if request.kind in ("no_link", "lookalike"):
            assert request.link_request == "once"
            assert request.amount is None
        if request.kind in ("verify", "verify_multi"):
            assert request.link_request == "never"
            assert request.amount is not None


def test_workflow_forms_carry_the_link_only_in_blocks_and_other_apps_posts_are_never_requests() -> None:
    plan = generator.plan(9, 1200, 240)
    forms = [r for r in plan.requests if r.kind == "workflow_form"]
    others = [r for r in plan.requests if r.kind == "other_bot"]
    assert forms
    assert others
    for form in forms:
        assert form.text == ""
        assert form.fields["subtype"] == "bot_message"
        assert form.fields["bot_id"] == generator.WORKFLOW_BOT
        assert form.fields["user"] is None
        assert f"https://{generator.HOST}/looks/" in json.dumps(form.fields["blocks"])
        assert form.requester == generator.FORM_REQUESTER
        assert form.amount is not None
    for other in others:
        assert other.fields["bot_id"] == generator.OTHER_BOT
        assert other.outcomes == ("unseen",)
        assert other.amount is None


def test_deployment_faults_are_spread_over_the_whole_day() -> None:
    chosen = faults.schedule(random.Random(20), 1200, 150)
    heavy = [at for at, name in chosen if name in faults.HEAVY]
    assert len(heavy) == 150 // 4 + 1
    assert max(heavy) > 1100  # not all in the first part of the day
    assert min(b - a for a, b in itertools.pairwise(heavy)) >= 4
