"""``make demo``: CreditBot answers the sample requests in the sandbox, and says what it did.

Posts the requests of ``include/sandbox/demo_requests.json`` into the sandbox channel, runs the
``credit_bot`` DAG once through Airflow (``dag.test()``, SQLite metadata DB), then runs it again
to show that nothing is answered twice. The sandbox stands in for Slack, so the demo runs live
(``dry_run`` false); against real Slack, dry-run stays on until you switch it off. Last, the
supervised path (``harness.demo_supervised``): with ``approval`` = "all", on Airflow's own
components, the demo clicks Approve on one approval DM and Reject on another.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from harness import PROJECT_ROOT, demo_supervised
from harness.console import console_apart
from harness.local import DEMO_REQUESTS, load_dag, local_stack

# Where the demo keeps what it wrote; CREDIT_BOT_DEMO_OUTPUT moves it (the test of the demo does).
OUTPUT = Path(os.environ.get("CREDIT_BOT_DEMO_OUTPUT", PROJECT_ROOT / "output"))
LOG_FILE = OUTPUT / "demo.log"


def main() -> int:
    with console_apart(LOG_FILE) as console:
        try:
            return _demo(console)
        except Exception:
            # The demo itself broke: this traceback is for the person, not only the log.
            console.write(traceback.format_exc())
            console.write(f"The demo failed; the full log is {LOG_FILE}\n")
            return 1


def _demo(console: TextIO) -> int:
    def say(line: str = "") -> None:
        print(line, file=console, flush=True)

    logging.basicConfig(level=logging.INFO)
    # The demo's one failing request is retried within the run; no need to wait the default 30 s.
    os.environ.setdefault("CREDIT_BOT_RETRY_DELAY_SECONDS", "2")
    demo = json.loads(DEMO_REQUESTS.read_text())
    output_dir = OUTPUT / "notebooks"
    # NOTEBOOK=path (make demo NOTEBOOK=../shared/team/verify_credit_recommendation.ipynb): the demo runs
    # that notebook instead of the reference one, after saying what it would need to change.
    notebook = os.environ.get("NOTEBOOK")
    products = _bring_your_own(Path(notebook), say) if notebook else None
    # WAREHOUSE=trino or presto (make demo WAREHOUSE=presto): the notebook then queries the sample
    # warehouse through that protocol and its real client, over HTTPS with basic auth. A notebook of
    # one's own speaks its warehouse's dialect (the team's: Presto), so it gets Presto unless told.
    protocol = os.environ.get("WAREHOUSE") or ("presto" if notebook else "duckdb")
    say("[1/6] starting the Slack/Looker sandbox and the sample warehouse …")
    with local_stack(output_dir, warehouse_protocol=protocol) as stack:
        if products:
            stack.use_settings(products=products)
        sandbox = stack.sandbox
        warehouse = f"{stack.warehouse.relative_to(PROJECT_ROOT)}"
        if stack.warehouse_server:
            warehouse += f" behind {protocol} at {stack.warehouse_server.url}"
        say(f"      sandbox at {sandbox.url}, warehouse {warehouse}")
        posted = []
        for item in demo["requests"]:
            extra = {"subtype": item["subtype"]} if item.get("subtype") else {}
            ts = sandbox.add_message(demo["channel"], item["text"], user=item["user"], **extra)
            posted.append((ts, item))
        say(f"[2/6] {len(posted)} sample requests posted to #credit_memo_testing")
        dag = load_dag()
        say("[3/6] first run of the credit_bot DAG (dag.test(), live against the sandbox) …")
        started = time.monotonic()
        first = dag.test()
        first_wall = time.monotonic() - started
        calls_first = len(sandbox.calls())
        say(f"      {first.state} in {first_wall:.1f} s")
        say("[4/6] second run: nothing should be answered again …")
        started = time.monotonic()
        second = dag.test()
        second_wall = time.monotonic() - started
        say(f"      {second.state} in {second_wall:.1f} s")
        say("[5/6] what CreditBot did")
        replies = {p.get("thread_ts"): p for p in sandbox.posts(demo["channel"])}
        dms = sandbox.dms()
        say()
        say(f"{'request':<62} what CreditBot did")
        say("-" * 120)
        for ts, item in posted:
            first_line = item["text"].splitlines()[0][:60]
            reply = replies.get(ts)
            did = f"replied in thread: {reply['text'][:80]}" if reply else "no reply"
            say(f"{first_line:<62} {did}")
            say(f"{'':<62} expected: {item['expect'][:80]}")
        say("-" * 120)
        say(f"Operator DMs: {len(dms)}")
        for dm in dms:
            # Whole: a DM is a few short lines, and a cut-off log URL would send a reader nowhere.
            say("  " + dm["text"].replace("\n", "\n  "))
        posts_total = len(sandbox.posts(demo["channel"]))
        say(
            f"First run: {first.state}, {first_wall:.1f} s, {calls_first} API calls. "
            f"Second run: {second.state}, {second_wall:.1f} s, thread replies in total: {posts_total} "
            "(the second run answered nothing again)."
        )
        # A run in which a request's task failed ends failed (report_failures) after its ledger is
        # written: echo's notebook error makes both runs red by design. What must hold is that each
        # reply is the expected one and every run recorded its outcomes.
        say("(Both runs end failed by design: echo's notebook task fails, and report_failures says so.)")
        expected_replies = all(
            replies.get(ts, {}).get("text", "").startswith(item["expect"])
            for ts, item in posted
            if not item["expect"].startswith("(")
        )
    recorded = all(str(r.get_task_instance("record_ledger").state) == "success" for r in (first, second))
    approvable = [item for item in demo["requests"] if item["expect"].startswith("Approved")]
    supervised = demo_supervised.show(say, approvable, OUTPUT, warehouse_protocol=protocol, products=products)
    say(f"Executed notebooks: {output_dir}")
    say(f"Airflow's, papermill's and the kernels' logs: {LOG_FILE}")
    return 0 if expected_replies and recorded and supervised else 1


def _bring_your_own(notebook: Path, say: Callable[[str], None]) -> list[dict[str, str]]:
    """Check ``notebook`` as it is, port it (README's edits, made on a copy in the demo's output
    folder) and check the copy; the settings' ``products`` that route Verify links to the copy."""
    from credit_bot import notebook_check
    from harness.team_notebook import port

    if not notebook.is_file():
        raise FileNotFoundError(f"NOTEBOOK={notebook}: no such file")
    say(f"[0/6] make check-notebook NOTEBOOK={notebook} — what it needs to change:")
    say("      " + notebook_check.report(notebook, notebook_check.check(notebook)).replace("\n", "\n      "))
    ported = port(notebook, OUTPUT / "ported" / notebook.name)
    findings = notebook_check.check(ported)
    say(f"      the demo made those edits on a copy ({ported}), which checks as:")
    say("      " + notebook_check.report(ported, findings).replace("\n", "\n      "))
    if any(f.blocker for f in findings):
        raise RuntimeError(f"{ported} still has blockers after README's edits; see above")
    return [{"name": "verify", "pattern": "authy", "notebook": str(ported)}]


if __name__ == "__main__":
    sys.exit(main())
