"""The soak's traffic: a seeded, compressed day of credit requests, and what each one must end as.

:func:`plan` turns a seed and a duration into a timeline of requests — single posts and bursts of
20, posts without a link that are later edited or answered in the thread with one, deletions,
PSMS, bad links, look-alike hosts, invalid amounts, Workflow Builder form posts (a bot's
``bot_message`` whose content is only in rich-text blocks, the requester a user field) and another
app's posts that must be left alone — and the Looker data they link to. The
expected outcome and amount of every request come from this module's own table of Looks (amounts
summed over a request's links and rounded to cents half up once, as the product brief says),
never from the bot.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from harness.testing import slack_shapes

HOST = "credit-sandbox.cloud.looker.com"
BURST_SIZE = 20

# Looks the soak adds to the sandbox: ids by kind.
VERIFY_LOOKS = range(7000, 7024)
PSMS_LOOKS = range(7100, 7104)
NEGATIVE_LOOK = 7200
ABOVE_SPEND_LOOK = 7201
MISSING_LOOK = 7299  # not in the sandbox: Looker answers 404

# Request kinds and how often each is drawn (bursts come on top).
KINDS = {
    "verify": 30,
    "verify_multi": 8,
    "no_link": 5,
    "lookalike": 4,
    "edit_adds_link": 8,
    "thread_adds_link": 8,
    "deleted": 6,
    "psms": 6,
    "bad_link": 4,
    "invalid_amount": 4,
    "workflow_form": 6,
    "other_bot": 3,
}
FORM_REQUESTER = "U0FORMUSER"  # the person a workflow form names; the form's poster is a bot
WORKFLOW_BOT = slack_shapes.WORKFLOW_BOT  # in the soak's request_bots
OTHER_BOT = slack_shapes.OTHER_BOT  # not: its posts are never requests
LOOKALIKE_HOSTS = (
    f"{HOST}.evil.example",
    "credit-sandbox.cloud.lookr.com",
    "looker.com",
    f"lookalike-{HOST}",
)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Look:
    """One Look the soak adds to the sandbox; ``result`` and ``spend`` drive the soak notebook."""

    id: int
    product: str  # "verify" or "psms"
    result: str
    spend: str

    @property
    def sql(self) -> str:
        product = "Authy verify traffic" if self.product == "verify" else "PSMS traffic only"
        return f"SELECT 1 -- soak query, {product}\n-- SOAK RESULT={self.result} SPEND={self.spend}"


@dataclass
class Request:
    """One top-level post and what the requester does with it afterwards."""

    key: str
    kind: str
    at: float  # seconds after the soak starts
    text: str
    # What the requester does later: ("edit", seconds after posting, new text),
    # ("thread", seconds after posting or None = once the bot asked for a link, reply text),
    # ("delete", seconds after posting, "").
    later: list[tuple[str, float | None, str]] = field(default_factory=list)
    outcomes: tuple[str, ...] = ("answered",)  # final ledger outcomes this request may end with
    amount: str | None = None  # the only amount a reply may carry
    link_request: str = "never"  # "never", "once" (must be asked) or "maybe" (at most once)
    burst: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # more of the message: a bot's id, blocks
    requester: str | None = None  # who the ledger must name, when not the poster

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Plan:
    seed: int
    seconds: float
    looks: dict[int, Look]
    requests: list[Request]

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for request in self.requests:
            counts[request.kind] = counts.get(request.kind, 0) + 1
        return counts


def looks(rng: random.Random) -> dict[int, Look]:
    """The soak's Looker data: Verify amounts (some with sub-cent parts), PSMS, two invalid amounts."""
    table: dict[int, Look] = {}
    for look_id in VERIFY_LOOKS:
        cents = rng.randint(100, 900_000)
        # A third of the Looks carry a tenth of a cent, as the team's notebook (unrounded) does.
        result = f"{cents / 100:.2f}" if look_id % 3 else f"{cents / 100:.2f}5"
        spend = f"{cents / 100 * rng.uniform(1.2, 3.0):.2f}"
        table[look_id] = Look(look_id, "verify", result, spend)
    for look_id in PSMS_LOOKS:
        table[look_id] = Look(look_id, "psms", "10.00", "20.00")
    table[NEGATIVE_LOOK] = Look(NEGATIVE_LOOK, "verify", "-12.50", "100.00")
    table[ABOVE_SPEND_LOOK] = Look(ABOVE_SPEND_LOOK, "verify", "150.00", "100.00")
    return table


def expected_amount(table: dict[int, Look], look_ids: list[int]) -> str:
    """The reply's amount: every link's result summed, then rounded to cents half up once."""
    total = sum((Decimal(table[i].result) for i in look_ids), Decimal("0"))
    return str(total.quantize(CENT, rounding=ROUND_HALF_UP))


def _link(rng: random.Random, table: dict[int, Look], look_id: int) -> str:
    """A link as requesters write it: labelled with the Look's fraud spend (which CreditBot holds the
    credit to), or bare."""
    url = f"https://{HOST}/looks/{look_id}"
    return rng.choice([f"<{url}|{_spend_label(table, look_id)}>", f"<{url}>"])


def _spend_label(table: dict[int, Look], look_id: int) -> str:
    """The fraud spend as a requester writes it beside the link (``$1,234.56``)."""
    look = table.get(look_id)
    return f"${Decimal(look.spend):,.2f}" if look else "Look"


def _post_text(rng: random.Random, n: int, links: list[str]) -> str:
    account = f"AC{rng.getrandbits(64):016x}"
    lines = [f"Credit request #{n} for {account}", "Zendesk: <https://support.example.com/tickets/1234>"]
    if links:
        lines.append("Fraud spend: " + " and ".join(links))
    return "\n".join(lines)


def _request(rng: random.Random, table: dict[int, Look], kind: str, key: str, at: float) -> Request:
    verify = list(VERIFY_LOOKS)
    n = int(key.removeprefix("r"))
    if kind in ("verify", "verify_multi"):
        ids = rng.sample(verify, 1 if kind == "verify" else rng.randint(2, 3))
        text = _post_text(rng, n, [_link(rng, table, i) for i in ids])
        return Request(key, kind, at, text, amount=expected_amount(table, ids))
    if kind in ("no_link", "lookalike"):
        links = []
        if kind == "lookalike":
            host = rng.choice(LOOKALIKE_HOSTS)
            links = [f"<https://{host}/looks/{rng.choice(verify)}|$99.00>"]
        text = _post_text(rng, n, links)
        return Request(key, kind, at, text, outcomes=("link_requested",), link_request="once")
    if kind in ("edit_adds_link", "thread_adds_link"):
        ids = rng.sample(verify, rng.randint(1, 2))
        links = [_link(rng, table, i) for i in ids]
        delay = rng.uniform(3, 40)
        if kind == "edit_adds_link":
            later = [("edit", delay, _post_text(rng, n, links))]
        else:
            # Most requesters answer the bot's ask; some add the link before it asks.
            when = None if rng.random() < 0.75 else delay
            later = [("thread", when, "Sorry, here it is: " + " ".join(links))]
        return Request(
            key,
            kind,
            at,
            _post_text(rng, n, []),
            later=later,
            amount=expected_amount(table, ids),
            link_request="maybe",
        )
    if kind == "deleted":
        look = rng.choice(verify)
        text = _post_text(rng, n, [_link(rng, table, look)])
        later = [("delete", rng.uniform(0, 30), "")]
        # Deleted before the bot saw it: no entry at all ("unseen"); after it answered: answered;
        # while it was retrying: closed as deleted.
        outcomes = ("unseen", "answered", "deleted", "escalated")
        return Request(
            key, kind, at, text, later=later, outcomes=outcomes, amount=expected_amount(table, [look])
        )
    if kind == "psms":
        text = _post_text(rng, n, [_link(rng, table, rng.choice(list(PSMS_LOOKS)))])
        return Request(key, kind, at, text, outcomes=("ignored",))
    if kind == "bad_link":
        url = rng.choice([f"https://{HOST}/looks/{MISSING_LOOK}", f"https://{HOST}/looks/not-a-number"])
        return Request(key, kind, at, _post_text(rng, n, [f"<{url}|$5.00>"]), outcomes=("escalated",))
    if kind == "invalid_amount":
        look = rng.choice([NEGATIVE_LOOK, ABOVE_SPEND_LOOK])
        return Request(key, kind, at, _post_text(rng, n, [_link(rng, table, look)]), outcomes=("escalated",))
    if kind == "workflow_form":
        # A Workflow Builder form: empty text, the link (labelled with the spend) in the blocks.
        look = rng.choice(verify)
        url = f"https://{HOST}/looks/{look}"
        spend = slack_shapes.link(url, _spend_label(table, look))
        fields = slack_shapes.workflow_post(*slack_shapes.workflow_form(FORM_REQUESTER, spend))
        return Request(
            key, kind, at, "", amount=expected_amount(table, [look]), fields=fields, requester=FORM_REQUESTER
        )
    if kind == "other_bot":
        # Another app posts a digest with a Verify link: not a request, never answered or escalated.
        fields = slack_shapes.workflow_post(
            slack_shapes.link(f"https://{HOST}/looks/{rng.choice(verify)}", "$9,000.00"),
            bot_id=OTHER_BOT,
            app_id="A0DIGEST",
        )
        return Request(key, kind, at, "", outcomes=("unseen",), fields=fields)
    raise ValueError(f"unknown request kind {kind!r}")


# Any request may legitimately end escalated under faults (still failing after max_attempts, a
# Looker 404 injected into its resolve): allowed, and shown per kind in the report.


def plan(seed: int, seconds: float, requests: int, bursts: int | None = None) -> Plan:
    """A day compressed into ``seconds``: ``requests`` posts at random moments, bursts of 20 among them."""
    rng = random.Random(seed)  # noqa: S311 - seeded on purpose: a run replays from its seed
    table = looks(rng)
    kinds, weights = zip(*KINDS.items(), strict=True)
    bursts = bursts if bursts is not None else max(1, round(seconds / 300))
    bursts = min(bursts, requests // (2 * BURST_SIZE) or 1)
    made: list[Request] = []
    for b in range(bursts):
        start = rng.uniform(seconds * 0.1, seconds * 0.6)
        for i in range(BURST_SIZE):
            kind = "verify" if rng.random() < 0.8 else rng.choice(["no_link", "psms", "verify_multi"])
            request = _request(rng, table, kind, f"r{len(made)}", start + i * 0.1)
            request.burst = b
            made.append(request)
    while len(made) < requests:
        made.append(
            _request(rng, table, rng.choices(kinds, weights)[0], f"r{len(made)}", rng.uniform(0, seconds))
        )
    for request in made:
        if request.kind != "other_bot" and "escalated" not in request.outcomes:
            request.outcomes = (*request.outcomes, "escalated")
    made.sort(key=lambda r: r.at)
    return Plan(seed=seed, seconds=seconds, looks=table, requests=made)


def sandbox_looker(table: dict[int, Look]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The queries and Looks to add to the sandbox scenario."""
    queries = [
        {"id": look.id * 10, "slug": f"qSoak{look.id}", "model": "billing", "view": "soak", "sql": look.sql}
        for look in table.values()
    ]
    looks_ = [
        {"id": look.id, "title": f"soak look {look.id}", "query_id": look.id * 10} for look in table.values()
    ]
    return queries, looks_
