"""The bad-input corpus (tests/data/bad_input_corpus.json) through one full DAG run.

Every case is posted (edited, deleted, threaded) into the sandbox channel, then ONE run works
on all of them: each must reach its own expected outcome, so no case can crash the run or
change what happens to another.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.local import DEMO_OPERATOR, LOOKER_HOST
from harness.testing.flows import CHANNEL, HOST, fixed_result_rule, thread_posts

pytestmark = pytest.mark.integration

CORPUS = json.loads((Path(__file__).parents[1] / "data" / "bad_input_corpus.json").read_text())["cases"]
LINK_REQUEST = "Please provide a Looker link"
FILLER = "lorem ipsum "


def _text(case: dict[str, Any], key: str = "text") -> str:
    text = case[key].replace("{HOST}", HOST).replace("{BARE_HOST}", LOOKER_HOST)
    pad = case.get("pad", 0)
    return text + (" " + (FILLER * (pad // len(FILLER) + 1))[:pad] if pad else "")


def test_corpus_is_large_and_well_formed():
    ids = [case["id"] for case in CORPUS]
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids)
    expects = {case["expect"] for case in CORPUS}
    assert expects == {"answer", "ask_link", "ignore", "skip", "escalate"}
    for case in CORPUS:
        assert ("reply" in case) == (case["expect"] == "answer"), case["id"]
        assert ("problem" in case) == (case["expect"] == "escalate"), case["id"]


def test_every_case_reaches_its_outcome_in_one_run(dag, stack, capfd):
    from airflow.models.variable import Variable

    from credit_bot.ledger import LEDGER_VARIABLE

    stack.use_settings(products=[fixed_result_rule(), {"name": "psms", "pattern": "PSMS", "notebook": None}])
    sandbox = stack.sandbox
    ts_of: dict[str, str] = {}
    for case in CORPUS:
        parent = ts_of.get(case.get("reply_to", ""))
        ts = sandbox.add_message(
            CHANNEL,
            _text(case),
            user=case.get("user", "U0REQUESTER"),
            thread_ts=parent,
            **case.get("extra", {}),
        )
        if "edit" in case:
            sandbox.edit_message(CHANNEL, ts, _text(case, "edit"))
        if case.get("delete"):
            sandbox.delete_message(CHANNEL, ts)
        ts_of[case["id"]] = ts

    params = {"channel": None, "message_ts": None, "dry_run": None, "force": False}
    assert str(dag.test(run_conf=params).state) == "success"

    book = json.loads(Variable.get(LEDGER_VARIABLE))["channels"][CHANNEL]["live"]["requests"]
    dms = {d["metadata"]["event_payload"]["request_ts"]: d["text"] for d in sandbox.dms(DEMO_OPERATOR)}
    outcomes = {}
    for case in CORPUS:
        ts, expect = ts_of[case["id"]], case["expect"]
        posts = thread_posts(stack, ts)
        recorded = book.get(ts, {}).get("outcome")
        if expect == "answer":
            got = (recorded, posts, ts in dms)
            want = ("answered", [case["reply"]], False)
        elif expect == "ask_link":
            got = (recorded, [p[: len(LINK_REQUEST)] for p in posts], ts in dms)
            want = ("link_requested", [LINK_REQUEST], False)
        elif expect == "escalate":
            got = (recorded, posts, case["problem"] in dms.get(ts, ""))
            want = ("escalated", [], True)
        elif expect == "ignore":
            got, want = (recorded, posts, ts in dms), ("ignored", [], False)
        else:  # skip: not a request at all; only a thread reply of the bot's own may exist
            bot_posts = [p for p in posts if not p.startswith(("Approved", LINK_REQUEST))]
            got, want = (recorded, bot_posts, ts in dms), (None, [], False)
        outcomes[case["id"]] = got == want or (got, want)
    assert {k: v for k, v in outcomes.items() if v is not True} == {}

    # Nothing the bot posted can ping anyone, and it never echoed a requester's text.
    for post in sandbox.posts(CHANNEL):
        if post["metadata"]:
            assert "<!" not in post["text"]
            assert "<@" not in post["text"]
    # Only the configured Looker host was asked; the look-alike hosts never left the bot.
    assert all("evil" not in json.dumps(c["params"]) for c in sandbox.calls(api="looker"))
    assert "Traceback" not in capfd.readouterr().out.split("record_ledger")[-1]
