"""The sandbox data the bench posts: channels, requests, their SQL and the expected replies."""

from __future__ import annotations

import copy
import json
from typing import Any

from bench.environment import REPEATED_SIZE

# the sandbox data ───────────────────────────────────────────────────────────────────────────
LOOKER_WEB = "https://credit-sandbox.cloud.looker.com"
BENCH_LOOK_BASE = 5000
# The sample customers whose Looker SQL runs the reference notebook on the sample warehouse, with the
# reply the bot must post (include/sandbox/sql/README.md). Not cobalt: Fraud Guard disabled everywhere,
# no basis for a credit, so the bot escalates instead of replying.
CUSTOMERS = (
    ("acme", 1001, "Approved, $10,226.35, exceptions"),
    ("bolt", 1002, "Approved, $1,283.00, exceptions"),
    ("delta", 1004, "Approved, $1,288.45, exceptions"),
)
IDLE_CHANNEL = "C0BENCHIDLE"
IO_BOUND_CHANNEL = "C0BENCHIOBOUND"


def case_channel(size: int, repeat: int = 0) -> str:
    return f"C0BENCH{size:04d}" + (f"R{repeat}" if repeat else "")


def team_channel(run: int | str) -> str:
    """The channel of one team-notebook run (a number, or ``SLOW`` for the run with slow reads)."""
    return f"C0BENCHTEAM{run}"


def repeats_of(size: int, repeats: int) -> int:
    return repeats if size == REPEATED_SIZE else 1


def bench_scenario(
    sizes: tuple[int, ...],
    latency_messages: int = 0,
    repeats: int = 1,
    io_bound_requests: int = 0,
    team_runs: int = 0,
) -> dict[str, Any]:
    """The demo scenario plus one channel per case and a distinct Look per request.

    Look ``5000 + i`` shows the Verify query of customer ``i mod 4``, so every request costs a real
    Looker resolution and a real notebook run on the sample warehouse. ``team_runs``: channels for
    the team notebook's runs (``team_channel``), plus one for its run with slow reads.
    """
    from harness.local import DEMO_SCENARIO

    data = copy.deepcopy(json.loads(DEMO_SCENARIO.read_text()))
    channels = [IDLE_CHANNEL, *(case_channel(n, r) for n in sizes for r in range(repeats_of(n, repeats)))]
    if io_bound_requests:
        channels.append(IO_BOUND_CHANNEL)
    if team_runs:
        channels.extend(team_channel(run) for run in [*range(team_runs), "SLOW"])
    data["slack"]["channels"].extend({"id": c, "name": c.lower(), "messages": []} for c in channels)
    for i in range(max(*sizes, latency_messages, io_bound_requests, 1 if team_runs else 0, 0)):
        name, query_id, _ = CUSTOMERS[i % len(CUSTOMERS)]
        data["looker"]["looks"].append(
            {
                "id": BENCH_LOOK_BASE + i,
                "title": f"Verify fraud spend - {name} (bench {i})",
                "query_id": query_id,
            }
        )
    return data


def request_text(i: int) -> str:
    name = CUSTOMERS[i % len(CUSTOMERS)][0]
    link = f"{LOOKER_WEB}/looks/{BENCH_LOOK_BASE + i}"
    return f"SMS pumping credit request - {name} #{i}\nFraud spend: <{link}|Look>"


def expected_reply(i: int) -> str:
    return CUSTOMERS[i % len(CUSTOMERS)][2]


def request_sql(stack: Any, i: int) -> str:
    """The SQL the sandbox's Looker gives for request ``i`` (what the notebook gets as ``looker``)."""
    query_id = CUSTOMERS[i % len(CUSTOMERS)][1]
    [query] = [q for q in stack.sandbox.scenario.looker.queries if int(q["id"]) == query_id]
    return str(query["sql"])
