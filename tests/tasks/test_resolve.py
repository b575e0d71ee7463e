"""credit_bot.tasks.resolve: one request's links to notebook jobs, against the Looker sandbox."""

from __future__ import annotations

from credit_bot.model import ResolveStatus
from credit_bot.tasks.resolve import notebook_task, resolve
from harness.testing.flows import HOST
from tests.tasks.conftest import request


def test_a_look_link_becomes_one_notebook_job(store, run, stack) -> None:
    asked = request(stack, f"credit please <{HOST}/looks/901|$9,000.00>")

    resolved = resolve(asked, run, "manual__2026-01-01", store)

    assert resolved["status"] == ResolveStatus.READY
    [job] = resolved["jobs"]
    assert job["link"] == f"{HOST}/looks/901"
    assert "RESULT=4948.8" in job["sql"]
    assert job["output_nb"].endswith(f"/manual__2026-01-01/{asked['channel']}-{asked['ts']}-0.ipynb")
    assert job["stated_spend"] == {"amount": "9000.00", "where": "the link's label"}
    assert [q["text"] for q in resolved["queries"]] == [job["query_text"]]
    task = notebook_task(resolved)
    assert task["jobs"] == [
        {"input_nb": job["input_nb"], "output_nb": job["output_nb"], "parameters": {"looker": job["sql"]}}
    ]
    assert task["request_label"].endswith(" · verify")
    assert store.values.keys() == {"credit_bot_settings"}  # resolve keeps no state of its own


def test_no_link_and_a_missing_look(store, run, stack) -> None:
    assert resolve(request(stack, "credit please"), run, "r", store)["status"] == ResolveStatus.NO_LINK
    missing = resolve(request(stack, f"<{HOST}/looks/999999>"), run, "r", store)
    assert missing["status"] == ResolveStatus.FAILED
    assert missing["jobs"] == []
    assert "not found in Looker (404)" in missing["problems"][0]
    assert notebook_task(missing)["jobs"] == []  # its run_notebook skips
