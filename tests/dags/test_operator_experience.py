"""What an operator sees: status reactions, one DM per state change, a dry-run preview, task names."""

from __future__ import annotations

import pytest

from harness.testing.flows import CHANNEL, HOST, fixed_result_rule, thread_posts

pytestmark = pytest.mark.integration


def _run(dag, **conf):
    params = {"channel": None, "message_ts": None, "dry_run": None, "force": False, **conf}
    return dag.test(run_conf=params)


def _reactions(stack, ts: str) -> list[str]:
    return [r["name"] for r in stack.sandbox.reactions(CHANNEL) if r["timestamp"] == ts]


def test_reactions_show_status_and_tasks_are_named_after_request_and_outcome(dag, stack, post):
    stack.use_settings(products=[fixed_result_rule()], max_attempts=1)
    answered = post(f"<{HOST}/looks/901|spend>")
    escalated = post(f"<{HOST}/looks/902|negative>")
    asked = post("credit please")

    dag_run = _run(dag)

    assert str(dag_run.state) == "success"
    assert _reactions(stack, answered) == ["eyes", "white_check_mark"]
    assert _reactions(stack, escalated) == ["eyes", "rotating_light"]
    assert _reactions(stack, asked) == ["eyes"]
    names = _rendered_names(dag_run, "post_results")
    assert {name.split(" · ")[-1] for name in names} == {
        f"{answered} → answered $4,948.80",
        f"{escalated} → escalated",
        f"{asked} → asked for a link",
    }
    assert all(name.startswith("U0REQUESTER · ") for name in names)
    assert {name.split(" · ")[-1] for name in _rendered_names(dag_run, "resolve")} == {
        answered,
        escalated,
        asked,
    }
    assert any("“spend”" in name for name in names)  # the post's words, as a reader sees them
    # Running again adds nothing: reactions are idempotent and finished requests are left alone.
    _run(dag)
    assert _reactions(stack, answered) == ["eyes", "white_check_mark"]


def test_dry_run_is_silent_unless_a_preview_or_reactions_are_asked_for(dag, stack, post):
    stack.use_settings(products=[fixed_result_rule()], dry_run=True)
    quiet = post(f"<{HOST}/looks/901|spend>")
    assert str(_run(dag).state) == "success"
    assert stack.sandbox.reactions(CHANNEL) == []
    assert stack.sandbox.dms() == []
    assert thread_posts(stack, quiet) == []

    stack.use_settings(
        products=[fixed_result_rule()], dry_run=True, dry_run_preview=True, reactions_in_dry_run=True
    )
    previewed = post(f"<{HOST}/looks/907|spend>")
    assert str(_run(dag).state) == "success"
    [preview] = stack.sandbox.dms("U0OPERATOR")
    assert "DRY RUN" in preview["text"]
    assert "Approved, $12.35, exceptions" in preview["text"]
    assert f"p{previewed.replace('.', '')}" in preview["text"]
    assert _reactions(stack, previewed) == ["eyes", "white_check_mark"]
    assert thread_posts(stack, previewed) == []


def _rendered_names(dag_run, task_id: str) -> set[str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance.rendered_map_index).filter(
            TaskInstance.dag_id == dag_run.dag_id,
            TaskInstance.run_id == dag_run.run_id,
            TaskInstance.task_id == task_id,
        )
        return {row[0] for row in rows}
