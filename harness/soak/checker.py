"""The soak's independent checker: reads the history and says what the bot promised and did not keep.

It shares no code with the bot (no ``credit_bot`` import, nothing from the harness either): it
parses the ledger's JSON, and the Slack posts and DMs the sandbox recorded, itself, and holds them
against what the generator expected of each request. Per request: exactly one terminal outcome; at
most one reply and one link request in its thread, nothing else there; at most one DM per state
change; no reply whose amount differs from the generator's; nothing left open that should have
closed; the ledger within its bound (entries, bytes, no posting markers left behind).

The history (``check``'s argument) is plain JSON: ``channel``, ``bot_user_id``, ``operators``,
``requests`` (the generator's, each with its ``ts``, final ``outcomes`` allowed, ``amount``,
``link_request``, ``posted_at``, ``deleted``), ``posts`` (every message the bot posted: channel,
ts, text, thread_ts, metadata, user for DMs), ``ledger`` (the Variable's text), ``markers`` (names
of posting-marker Variables still set) and ``faults``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

APPROVAL = re.compile(r"^Approved, \$([0-9,]+\.[0-9]{2}), \S.*$")
LINK_REQUEST = re.compile(r"^Please provide a Looker link\b")
OPEN_OUTCOMES = ("retrying",)
ENTRY_BYTES = 4000  # one ledger entry: ts, outcome, amount, links, last error (bounded), times
MARKER_PREFIX = "credit_bot_posting__"


@dataclass
class Violation:
    key: str  # the request's key, or "ledger" / "channel" / "dm"
    rule: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "rule": self.rule, "detail": self.detail}


@dataclass
class Report:
    violations: list[Violation] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    outcomes_by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  # seconds, post -> first terminal evidence
    replies: int = 0
    link_requests: int = 0
    dms: int = 0
    taken_back: int = 0  # top-level answers the bot deleted at once (request deleted mid-run)
    ledger_bytes: int = 0
    ledger_entries: int = 0

    def percentile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _money(text: str) -> Decimal | None:
    match = APPROVAL.match(text.strip())
    if not match:
        return None
    try:
        return Decimal(match.group(1).replace(",", ""))
    except InvalidOperation:
        return None


def _ledger_requests(ledger_text: str | None, channel: str) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Live entries of the channel by ts, and a problem with the document (or None)."""
    if not ledger_text:
        return {}, None
    try:
        doc = json.loads(ledger_text)
    except ValueError as exc:
        return {}, f"the ledger is not JSON: {exc}"
    if not isinstance(doc, dict):
        return {}, "the ledger is not a JSON object"
    live = (doc.get("channels") or {}).get(channel, {}).get("live", {})
    requests = live.get("requests") or {}
    if not isinstance(requests, dict):
        return {}, "the ledger's requests are not an object"
    return requests, None


def _payload(post: dict[str, Any]) -> dict[str, Any]:
    meta = post.get("metadata") or {}
    payload = meta.get("event_payload") if isinstance(meta, dict) else None
    return payload if isinstance(payload, dict) else {}


def check(history: dict[str, Any]) -> Report:
    report = Report()
    channel = history["channel"]
    requests = history["requests"]
    by_ts = {r["ts"]: r for r in requests if r.get("ts")}
    entries, problem = _ledger_requests(history.get("ledger"), channel)
    if problem:
        report.violations.append(Violation("ledger", "ledger readable", problem))
    report.ledger_bytes = len((history.get("ledger") or "").encode())
    report.ledger_entries = len(entries)

    channel_posts = [p for p in history["posts"] if p.get("channel") == channel]
    dms = [p for p in history["posts"] if p.get("channel") != channel]
    report.dms = len(dms)
    in_thread: dict[str, list[dict[str, Any]]] = {}
    taken_back = set(history.get("deleted_posts", []))
    for post in channel_posts:
        parent = post.get("thread_ts")
        if not parent and post.get("ts") in taken_back:
            # Slack posts a reply to a deleted parent top-level; the bot deletes it at once.
            report.taken_back += 1
            continue
        if not parent:
            report.violations.append(
                Violation(
                    "channel",
                    "nothing top-level",
                    f"the bot posted in the channel itself: {post['text'][:80]!r}",
                )
            )
            continue
        in_thread.setdefault(parent, []).append(post)
    for parent, posts in in_thread.items():
        if parent not in by_ts:
            report.violations.append(
                Violation(
                    "channel",
                    "replies only to requests",
                    f"{len(posts)} post(s) in thread {parent}, no request",
                )
            )

    dms_by_request: dict[str, list[dict[str, Any]]] = {}
    for dm in dms:
        ts = _payload(dm).get("request_ts")
        if ts:
            dms_by_request.setdefault(str(ts), []).append(dm)

    for request in requests:
        key, ts = request["key"], request.get("ts")
        if not ts:
            report.violations.append(Violation(key, "posted", "the generator never got a ts for it"))
            continue
        posts = in_thread.get(ts, [])
        approvals = [p for p in posts if _money(p.get("text", "")) is not None]
        asks = [p for p in posts if LINK_REQUEST.match(p.get("text", ""))]
        others = [p for p in posts if p not in approvals and p not in asks]
        report.replies += len(approvals)
        report.link_requests += len(asks)
        entry = entries.get(ts)
        outcome = (entry or {}).get("outcome") or "unseen"
        report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
        kind_counts = report.outcomes_by_kind.setdefault(request["kind"], {})
        kind_counts[outcome] = kind_counts.get(outcome, 0) + 1

        def bad(rule: str, detail: str, key: str = key) -> None:
            report.violations.append(Violation(key, rule, detail))

        if outcome not in request["outcomes"]:
            bad("expected outcome", f"ended {outcome}, expected one of {list(request['outcomes'])}")
        if outcome in OPEN_OUTCOMES:
            bad(
                "nothing left open",
                f"still {outcome} after the settle period: {(entry or {}).get('last_error')}",
            )
        if len(approvals) > 1:
            bad("at most one reply", f"{len(approvals)} replies: {[p['text'] for p in approvals]}")
        if len(asks) > 1:
            bad("at most one link request", f"{len(asks)} link requests in the thread")
        if others:
            bad("nothing else in the thread", f"{[p.get('text', '')[:80] for p in others]}")
        if request["link_request"] == "never" and asks:
            bad("no link request for a post with a link", "the bot asked for a link")
        if request["link_request"] == "once" and outcome == "link_requested" and not asks:
            bad("link request posted", "the ledger says link_requested, the thread has none")
        for post in approvals:
            amount = _money(post["text"])
            if request.get("amount") is None:
                bad("no reply without an amount to give", f"replied {post['text']!r}")
            elif amount != Decimal(request["amount"]):
                bad("amount", f"replied {post['text']!r}, expected ${request['amount']}")
        if entry and request.get("requester") and entry.get("requester") != request["requester"]:
            named = entry.get("requester")
            bad("the requester named", f"ledger names {named!r}, expected {request['requester']!r}")
        if outcome == "answered":
            if not approvals:
                bad("answered means replied", "the ledger says answered, the thread has no reply")
            ledger_amount = (entry or {}).get("amount")
            expected = request.get("amount")
            if expected and ledger_amount is not None and Decimal(str(ledger_amount)) != Decimal(expected):
                bad("ledger amount", f"ledger {ledger_amount}, expected {expected}")
            if entry and approvals and entry.get("reply_ts") not in {p["ts"] for p in approvals}:
                bad("ledger reply ts", f"ledger reply_ts {entry.get('reply_ts')} is not the reply's ts")
        elif approvals and outcome != "deleted":
            bad("one terminal outcome", f"replied {approvals[0]['text']!r} but the ledger says {outcome}")

        # DMs: one per operator per state change; an escalated request was told once.
        request_dms = dms_by_request.get(ts, [])
        seen: dict[tuple[str, str], int] = {}
        for dm in request_dms:
            state_key = (str(dm.get("user")), str(_payload(dm).get("state")))
            seen[state_key] = seen.get(state_key, 0) + 1
        for (user, state), count in seen.items():
            if count > 1:
                bad("one DM per state change", f"{count} DMs to {user} for state {state}")
        escalated_dms = {user for (user, state) in seen if state == "escalated"}
        if outcome == "escalated" and set(history["operators"]) - escalated_dms:
            bad(
                "escalated means the operators were told",
                f"no escalated DM to {sorted(set(history['operators']) - escalated_dms)}",
            )
        if escalated_dms and outcome not in ("escalated", "deleted"):
            bad("one terminal outcome", f"an escalated DM, but the ledger says {outcome}")

        evidence = sorted(float(p["ts"]) for p in [*approvals, *asks])
        evidence += sorted(float(dm["ts"]) for dm in request_dms if _payload(dm).get("state") == "escalated")
        if outcome in ("answered", "link_requested", "escalated") and evidence:
            report.latencies.append(max(0.0, min(evidence) - float(ts)))

    # The ledger within its bound: only requests the generator made, bounded size, no markers left.
    strangers = sorted(set(entries) - set(by_ts))
    if strangers:
        report.violations.append(
            Violation("ledger", "entries only for requests", f"unknown ts {strangers[:5]}")
        )
    bound = ENTRY_BYTES * max(1, len(by_ts)) + 1000
    if report.ledger_bytes > bound:
        report.violations.append(
            Violation("ledger", "ledger within its bound", f"{report.ledger_bytes} bytes > {bound}")
        )
    markers = [m for m in history.get("markers", []) if m.startswith(MARKER_PREFIX)]
    if markers:
        report.violations.append(
            Violation("ledger", "no posting marker left behind", f"{len(markers)} left, e.g. {markers[0]}")
        )
    return report


def summary(report: Report, history: dict[str, Any]) -> dict[str, Any]:
    """The JSON the soak writes: ``requests``, ``faults``, ``violations``, ``seed`` and the figures."""
    faults: dict[str, int] = {}
    for fault in history.get("faults", []):
        if fault.get("applied", True):
            faults[fault["kind"]] = faults.get(fault["kind"], 0) + 1
    p50, p95 = report.percentile(0.5), report.percentile(0.95)
    return {
        "seed": history.get("seed"),
        "requests": len(history["requests"]),
        "requests_by_kind": _count(r["kind"] for r in history["requests"]),
        "faults": faults,
        "faults_total": sum(faults.values()),
        "restarts": history.get("restarts", {}),
        "outcomes": report.outcomes,
        "outcomes_by_kind": report.outcomes_by_kind,
        "replies": report.replies,
        "link_requests": report.link_requests,
        "dms": report.dms,
        "taken_back": report.taken_back,
        "ledger_bytes": report.ledger_bytes,
        "ledger_entries": report.ledger_entries,
        "latency_seconds": {"p50": p50, "p95": p95, "n": len(report.latencies)},
        "violations": [v.as_dict() for v in report.violations],
    }


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def table(result: dict[str, Any], extra: dict[str, Any] | None = None) -> str:
    """The summary as the console table: requests, faults by kind, restarts, outcomes, violations."""
    lat = result["latency_seconds"]
    fmt = lambda v: "-" if v is None else f"{v:.1f} s"  # noqa: E731
    rows = [("seed (replay: SOAK_SEED=…)", str(result["seed"]))]
    rows += [(k, str(v)) for k, v in (extra or {}).items()]
    rows.append(("requests", f"{result['requests']}  " + _inline(result["requests_by_kind"])))
    rows.append(("faults injected", str(result["faults_total"])))
    rows += [(f"  {k}", str(v)) for k, v in sorted(result["faults"].items())]
    rows.append(("restarts", _inline(result["restarts"]) or "0"))
    rows.append(("outcomes", _inline(result["outcomes"])))
    for kind, counts in sorted(result["outcomes_by_kind"].items()):
        rows.append((f"  {kind}", _inline(counts)))
    rows.append(
        (
            "replies / link requests / DMs",
            f"{result['replies']} / {result['link_requests']} / {result['dms']}",
        )
    )
    rows.append(("answers taken back (request deleted mid-run)", str(result.get("taken_back", 0))))
    rows.append(("ledger", f"{result['ledger_entries']} entries, {result['ledger_bytes']:,} bytes"))
    rows.append(("post -> outcome p50 / p95", f"{fmt(lat['p50'])} / {fmt(lat['p95'])} (n={lat['n']})"))
    rows.append(("violations", str(len(result["violations"]))))
    rows += [(f"  {v['key']}", f"{v['rule']}: {v['detail']}") for v in result["violations"][:40]]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _inline(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
