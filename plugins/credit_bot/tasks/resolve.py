"""resolve: one request's Looker links → SQL → product → notebook jobs; and run_notebook's arguments.

Looker's errors are translated where the hook catches them (``looker.LookerHook._classify``); here
the branch decides: a :class:`~credit_bot.errors.TransientError` fails the task (Airflow retries it,
later runs retry the request), anything else about a link is a problem the operators are told about.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from credit_bot import intake
from credit_bot.errors import TransientError
from credit_bot.model import (
    Job,
    LinkQuery,
    NotebookTask,
    RequestDict,
    Resolved,
    ResolveStatus,
    RunConfig,
)
from credit_bot.settings import ProductRule, Settings
from credit_bot.store import Store
from credit_bot.tasks.fetch import settings_of
from credit_bot.tasks.slack_side import SlackSide

if TYPE_CHECKING:
    from credit_bot.looker import LookerHook, ResolvedQuery

log = logging.getLogger(__name__)


class _Found:
    """What the links of one request gave: notebook jobs, problems, ignored queries, every query."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self.problems: list[str] = []
        self.ignored: list[str] = []
        self.queries: list[LinkQuery] = []


def resolve(request: RequestDict, run: RunConfig, run_id: str, store: Store) -> Resolved:
    """Looker links → SQL → product → notebook jobs, for one request.

    Each job, and each entry of ``queries`` (every query a link gave, also those not run), carries
    ``query``: which query ran (``kind``, ``id`` or ``slug``, ``filters`` with the ``source`` of each
    value: url, default or saved) and its one-line ``text``; a job has that line as ``query_text`` too.
    """
    from credit_bot.links import looker_urls, stated_spends
    from credit_bot.looker import LookerHook

    settings = settings_of(run)
    SlackSide(settings, store).react(request, settings.reaction_picked_up)
    urls = looker_urls(request["text"], list(settings.looker_hosts))
    stated = stated_spends(request["text"], list(settings.looker_hosts))  # checked in post_results
    if not urls:
        log.info("no Looker link on %s in the message", ", ".join(settings.looker_hosts))
    hook = LookerHook()
    found = _Found()
    for url in urls:
        _resolve_link(hook, url, settings, found)
    for job in found.jobs:
        job["stated_spend"] = stated.get(job["link"])
    _number_jobs(found.jobs, settings, run_id, request)
    if len({job["product"] for job in found.jobs}) > 1:
        found.problems.append(_several_products(found.jobs))
    for item in found.ignored:
        log.info("ignored: %s", item)
    return {
        "ts": request["ts"],
        "label": intake.Request(**request).label,
        "notebook": {
            "kernel_name": settings.kernel_name,
            "warehouse_conn_id": settings.warehouse_conn_id,
            "timeout_seconds": settings.notebook_timeout_seconds,
        },
        "status": _status(urls, found),
        "links": urls,
        "jobs": found.jobs,
        "problems": found.problems,
        "ignored": found.ignored,
        "queries": found.queries,
    }


def _status(urls: list[str], found: _Found) -> ResolveStatus:
    if not urls:
        return ResolveStatus.NO_LINK
    if found.problems:
        return ResolveStatus.FAILED
    return ResolveStatus.READY if found.jobs else ResolveStatus.IGNORED


def _resolve_link(hook: LookerHook, url: str, settings: Settings, found: _Found) -> None:
    """The queries behind one link, each matched to a product; at most one of them goes to a notebook."""
    from credit_bot.links import UnsupportedLookerLink, parse_looker_url
    from credit_bot.looker import LookerError
    from credit_bot.products import match_product

    try:
        queries = hook.resolve(parse_looker_url(url))
    except TransientError:
        raise  # Looker unwell: the task fails, and is retried
    except (UnsupportedLookerLink, LookerError) as exc:
        found.problems.append(str(exc))
        return
    to_run: list[tuple[ResolvedQuery, ProductRule]] = []
    for query in queries:
        if not query.sql.strip():
            found.problems.append(f"Looker returned no SQL for query {query.query_id} of {url}")
            continue
        rule = match_product(query.sql, settings.products)
        runs = rule is not None and rule.notebook is not None
        found.queries.append(
            {"link": url, "product": rule.name if rule and runs else None, **query.describe()}
        )
        log.info("%s → %s → %s", url, query.text, rule.name if rule else "no product rule")
        if rule is None or not runs:
            found.ignored.append(f"{url} ({query.title}: {rule.name if rule else 'no product rule'})")
            continue
        to_run.append((query, rule))
    if len(to_run) > 1:
        found.problems.append(_several_tiles(url, [query for query, _ in to_run]))
        return
    for query, rule in to_run:
        found.jobs.append(
            {
                "link": url,
                "product": rule.name,
                "query_id": query.query_id,
                "query": query.describe(),
                "query_text": query.text,
                "input_nb": settings.notebook_path(rule),
                "output_nb": "",  # numbered once every link is resolved (_number_jobs)
                "sql": query.sql,
                "stated_spend": None,
            }
        )


def _number_jobs(jobs: list[Job], settings: Settings, run_id: str, request: RequestDict) -> None:
    """Where each job's executed notebook goes: per run, per request, numbered in link order."""
    from credit_bot.notebooks import output_path

    for index, job in enumerate(jobs):
        job["output_nb"] = output_path(settings.output_dir, run_id, request["channel"], request["ts"], index)


def _several_tiles(url: str, queries: list[ResolvedQuery]) -> str:
    """The escalation for one link whose tiles would each go to a notebook: summing them would
    count the same fraud spend twice (by country and by day), so a person picks one. Tile names
    first, the dashboard's filter values last: the operators' DM shows the first 500 characters."""
    tiles = ", ".join(f"{query.title} (query {query.query_id})" for query in queries)
    chosen = {
        f"{f.field} = {f.value} [{f.source}]" for q in queries for f in q.filters if f.source != "saved"
    }
    filters = f" Dashboard filters: {'; '.join(sorted(chosen))}." if chosen else ""
    return (
        f"{len(queries)} tiles of {url} go to a notebook: {tiles}. Nothing was computed (their credits "
        "would be summed: a double credit). Which Look or tile holds the fraud spend? Ask the requester "
        f"for its link, then trigger credit_bot with this message's permalink and force=true.{filters}"
    )


def _several_products(jobs: list[Job]) -> str:
    """The escalation for a post whose links go to different products' notebooks."""
    by_product: dict[str, list[str]] = {}
    for job in jobs:
        by_product.setdefault(job["product"], []).append(job["link"])
    parts = "; ".join(f"{product}: {', '.join(links)}" for product, links in sorted(by_product.items()))
    return (
        f"the links go to {len(by_product)} products' notebooks ({parts}); credits of different "
        "products are not summed into one reply: ask for one request per product"
    )


# ── run_notebook ─────────────────────────────────────────────────────────────────────────────────
def notebook_task(resolved: Resolved) -> NotebookTask:
    """``CreditNotebookOperator`` kwargs for one resolved request: its Verify queries' notebooks.

    Airflow calls this inside each ``run_notebook`` task (``resolve``'s output ``.map()``-ed), so
    no task of its own stands between resolve and the notebooks. A request that did not resolve
    cleanly gets no jobs, and its ``run_notebook`` skips.
    """
    jobs = resolved["jobs"] if resolved["status"] == ResolveStatus.READY else []
    return {
        "jobs": [
            {"input_nb": j["input_nb"], "output_nb": j["output_nb"], "parameters": {"looker": j["sql"]}}
            for j in jobs
        ],
        **resolved["notebook"],
        # The UI names the task instance after its request and the products it runs.
        "request_label": " · ".join([resolved["label"], *sorted({j["product"] for j in jobs})]),
    }
