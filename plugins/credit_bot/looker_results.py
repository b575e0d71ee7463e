"""What resolving a Looker link gives — :class:`ResolvedQuery`, the query that ran and where each of
its filter values came from — or refuses: the Looker errors, each on the branch of
:mod:`credit_bot.errors` that says what happens next (``LookerHook._classify`` picks the class).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from credit_bot.errors import CreditBotError, RejectedRequest, SetupError, TransientError
from credit_bot.model import QueryDescription

# Looker rejects queries past this size anyway; a Look this large is not a fraud-spend query.
MAX_SQL_CHARS = 1_000_000


class LookerError(CreditBotError):
    """Looker could not give the SQL behind a link; the branch of each subclass says what happens."""


class LookerNotFound(LookerError, RejectedRequest):
    """The Look, query or dashboard does not exist, or the API user may not see it."""


class LookerAuthError(LookerError, SetupError):
    """Looker refused the API credentials from the ``looker_default`` connection."""


class LookerUnavailable(LookerError, TransientError):
    """Looker did not answer usefully (5xx, 429, timeout, connection reset): worth retrying later."""


class LookerBadQuery(LookerError, RejectedRequest):
    """The query exists but its SQL is unusable (empty, or absurdly large)."""


class LookerRefused(LookerError, RejectedRequest):
    """Looker answered with another client error (400, 403, 422 …) for this link's query."""


class QueryKind:
    """Where a resolved query came from: the ``kind`` of :meth:`ResolvedQuery.describe`."""

    LOOK = "look"
    SAVED_QUERY = "saved_query"  # an explore's qid= or a share link's slug
    DASHBOARD_TILE = "dashboard_tile"
    EXPLORE_URL = "explore_url"
    SQL_RUNNER = "sql_runner"


class FilterSource:
    """Where a filter value of a resolved query came from."""

    URL = "url"  # the link's query string (a dashboard filter's value, an explore's f[…])
    DEFAULT = "default"  # the dashboard filter's default value
    SAVED = "saved"  # the query as saved in Looker


@dataclass(frozen=True)
class AppliedFilter:
    """One filter of the query that ran, and where its value came from."""

    field: str
    value: str
    source: str  # a FilterSource value


@dataclass(frozen=True)
class ResolvedQuery:
    """One query behind a link (a dashboard gives one per tile), and what it is made of."""

    link: str
    query_id: str  # the query that ran; for a SQL Runner query its slug
    title: str
    sql: str
    kind: str = QueryKind.SAVED_QUERY
    slug: str | None = None
    based_on: str | None = None  # the saved query a created one was built from
    filters: tuple[AppliedFilter, ...] = ()

    @property
    def text(self) -> str:
        """One line for people: which query ran and where each filter value came from."""
        if self.kind == QueryKind.SQL_RUNNER:
            return f"{self.title}: SQL Runner query {self.slug}, its SQL as saved"
        made = f"query {self.query_id}"
        if self.based_on and self.based_on != self.query_id:
            made += f" (built from query {self.based_on})"
        filters = "; ".join(f"{f.field} = {f.value or '(any)'} [{f.source}]" for f in self.filters)
        return f"{self.title}: {made}, filters: {filters or 'none'}"

    def describe(self) -> QueryDescription:
        """The JSON that resolve keeps per job (``query``): kind, id or slug, filters, one-line text."""
        which: dict[str, str | None] = {}
        if self.kind == QueryKind.SQL_RUNNER:
            which["slug"] = self.slug
        else:
            which["id"] = self.query_id
            if self.based_on and self.based_on != self.query_id:
                which["based_on"] = self.based_on
        filters = [{"field": f.field, "value": f.value, "source": f.source} for f in self.filters]
        described = {"kind": self.kind, "title": self.title, **which, "filters": filters, "text": self.text}
        return cast(QueryDescription, described)
