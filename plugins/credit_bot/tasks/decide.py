"""post_results, first: what should happen to a request, from what resolve and the notebooks produced.

No side effects: reads the executed notebooks, returns a :class:`~credit_bot.model.Decision`. What a
notebook's error means follows its class: a :class:`~credit_bot.errors.TransientError` (the kernel
died, the warehouse was out of resources) is retried by a later run, anything else is escalated.
"""

from __future__ import annotations

from decimal import Decimal

from credit_bot.errors import TransientError
from credit_bot.model import Action, Decision, Job, Resolved, ResolveStatus
from credit_bot.money import format_usd, to_cents


def decide(resolved: Resolved | None) -> Decision:
    """What should happen to a request, given what resolve and the notebooks produced.

    ``queries`` names, per link, the query whose SQL went (or would have gone) to a notebook.
    """
    decision = _decide(resolved)
    if resolved and resolved.get("queries") and decision["action"] in _NAMING_QUERIES:
        decision["queries"] = [q["text"] for q in resolved["queries"] if q.get("text")]
    return decision


_NAMING_QUERIES = frozenset({Action.ANSWER, Action.ESCALATE, Action.RETRY})


def _decide(resolved: Resolved | None) -> Decision:
    if resolved is None:
        return {"action": Action.RETRY, "error": "resolving the Looker links failed (Looker unavailable?)"}
    status = resolved["status"]
    if status == ResolveStatus.NO_LINK:
        return {"action": Action.ASK_LINK}
    if status == ResolveStatus.IGNORED:
        return {"action": Action.IGNORE, "reason": "; ".join(resolved["ignored"]) or "not a handled product"}
    if status == ResolveStatus.FAILED:
        return {
            "action": Action.ESCALATE,
            "error": "; ".join(resolved["problems"]),
            "links": resolved["links"],
        }
    return _from_notebooks(resolved)


def _from_notebooks(resolved: Resolved) -> Decision:
    """Answer with the sum of the notebooks' credits, or escalate (or retry) saying why not."""
    from credit_bot.money import InvalidAmount
    from credit_bot.notebooks import NotebookResultError, read_result, validate_credit

    total = Decimal("0.00")
    by_link: dict[str, Decimal] = {}
    parts: list[str] = []
    notebooks = [job["output_nb"] for job in resolved["jobs"]]
    for job in resolved["jobs"]:
        try:
            result = read_result(job["output_nb"])
            validate_credit(result)
        except (NotebookResultError, InvalidAmount) as exc:
            # A notebook that did not finish may next time; an invalid amount, a missing one or a
            # rejected notebook will not.
            return {
                "action": Action.RETRY if isinstance(exc, TransientError) else Action.ESCALATE,
                "error": f"notebook for {job['link']}: {exc}",
                "links": resolved["links"],
                "notebooks": notebooks,
            }
        # Unrounded: the team's notebook leaves fractions of a cent, and the sum is rounded once.
        total += result.credit
        by_link[job["link"]] = by_link.get(job["link"], Decimal("0")) + result.credit
        if result.parts:
            parts.append(result.parts.describe())
    problem = _above_stated_spend(resolved["jobs"], {link: to_cents(c) for link, c in by_link.items()})
    if not problem and to_cents(total) <= 0:
        problem = (
            f"the credits sum to {format_usd(total)}: a credit of $0.00 is never posted, a person decides it"
        )
    if parts:
        problem = problem and f"{problem} (the notebook's parts: {'; '.join(parts)})"
    if problem:
        return {
            "action": Action.ESCALATE,
            "error": problem,
            "links": resolved["links"],
            "notebooks": notebooks,
        }
    answer: Decision = {
        "action": Action.ANSWER,
        "amount": to_cents(total),
        "links": resolved["links"],
        "notebooks": notebooks,
    }
    if parts:
        answer["amount_parts"] = "; ".join(parts)
    return answer


def _above_stated_spend(jobs: list[Job], by_link: dict[str, Decimal]) -> str | None:
    """A credit above the fraud spend the request states for its link (label or line), or None.

    By the team's method a credit never exceeds the fraud spend behind its link; the request's
    own figure is a check that does not come from the notebook.
    """
    for job in jobs:
        stated = job.get("stated_spend")
        if stated and by_link[job["link"]] > Decimal(stated["amount"]):
            return (
                f"the credit {format_usd(by_link[job['link']])} the notebook computed for {job['link']} is "
                f"above the fraud spend {format_usd(Decimal(stated['amount']))} stated in the request "
                f"({stated['where']}); not posted"
            )
    return None
