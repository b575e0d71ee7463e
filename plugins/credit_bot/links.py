"""Find Looker links in Slack message text and say what each one points at.

Slack sends links as ``<url|label>`` or ``<url>`` and escapes ``&``, ``<`` and ``>`` in text as
``&amp;``, ``&lt;`` and ``&gt;``. Only links whose host is one of the configured Looker hosts
count; everything else (Zendesk tickets, look-alike hosts) is ignored.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

from credit_bot.errors import RejectedRequest
from credit_bot.model import LinkKind, StatedSpend

__all__ = ["LinkKind", "LookerLink", "UnsupportedLookerLink"]

# A Slack link: "<" then a URL scheme, up to "|" (label follows) or ">". Mentions such as
# <@U123>, <#C123|name> and <!here> have no scheme and never match.
_SLACK_LINK = re.compile(r"<(https?://[^|<>\s]+)(?:\|[^<>]*)?>", re.IGNORECASE)
# Bare URLs (pasted without Slack's markup, e.g. in text sent by other tools, or in unclosed
# "<https://…" markup). A URL ends at whitespace, markup characters, a code fence's backtick or
# an invisible zero-width character that pasting often leaves behind.
_BARE_URL = re.compile(r"(?<![|\w])(https?://[^\s<>|`\u200b-\u200d\u2060\ufeff]+)", re.IGNORECASE)
# Trailing punctuation that belongs to the sentence, not to the URL.
_TRAILING = ".,;:!?)]}'\"*_~"


@dataclass(frozen=True)
class LookerLink:
    """A Looker URL reduced to what the API needs to find its query.

    ``params`` are the URL's query-string pairs, decoded, in order: a dashboard's filter values
    (keyed by the filter's name) or an expanded explore's query. They follow from ``url``, so
    they do not count when two links are compared.
    """

    url: str
    kind: LinkKind
    ref: str  # Look id, query slug (explore qid, share link or SQL Runner), dashboard id, or "model/view"
    params: tuple[tuple[str, str], ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class ExploreQuery:
    """The query an expanded explore URL describes, in the Looker API's terms (``WriteQuery``)."""

    model: str
    view: str
    fields: tuple[str, ...]
    filters: tuple[tuple[str, str], ...] = ()
    sorts: tuple[str, ...] = ()
    limit: str | None = None
    pivots: tuple[str, ...] = ()
    fill_fields: tuple[str, ...] = ()
    dynamic_fields: str | None = None
    query_timezone: str | None = None


class UnsupportedLookerLink(RejectedRequest, ValueError):
    """A link on a Looker host that does not lead to a query: no Look, saved query, dashboard, SQL Runner
    query or whole explore query in it."""


def normalize_host(host: str) -> str:
    """``https://Acme.cloud.looker.com:443/`` or ``acme.cloud.looker.com`` -> ``acme.cloud.looker.com``."""
    host = host.strip().lower()
    if "://" in host:
        host = urlsplit(host).hostname or ""
    return host.split("/")[0].split(":")[0].rstrip(".")


def url_key(url: str) -> str:
    """What makes two spellings of a URL the same link: scheme and host case, default port,
    trailing slash and fragment do not count (``HTTPS://Host:443/looks/1/#x`` = ``https://host/looks/1``).
    """
    try:
        parts = urlsplit(url.strip())
        host = normalize_host(parts.hostname or "")
        port = parts.port
    except ValueError:  # malformed port or IPv6 literal: compare it as written
        return url.strip()
    scheme = parts.scheme.lower()
    netloc = host if port is None or (scheme, port) in (("https", 443), ("http", 80)) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    return f"{scheme}://{netloc}{path}" + (f"?{parts.query}" if parts.query else "")


def find_urls(text: str) -> list[str]:
    """Every http(s) URL in Slack message text, unescaped, in order of appearance, each link once
    (spellings with the same :func:`url_key` count as one: the first is kept)."""
    urls: list[str] = []
    for match in _SLACK_LINK.finditer(text):
        urls.append(html.unescape(match.group(1)))
    remainder = _SLACK_LINK.sub(" ", text)
    for match in _BARE_URL.finditer(remainder):
        urls.append(html.unescape(match.group(1)).rstrip(_TRAILING))
    kept: dict[str, str] = {}
    for url in urls:
        kept.setdefault(url_key(url), url)
    return list(kept.values())


def parse_looker_url(url: str) -> LookerLink:
    """Classify a URL already known to be on a Looker host.

    Raises :class:`UnsupportedLookerLink` when the path does not lead to a query.
    """
    parts = urlsplit(url)
    segments = [s for s in unquote(parts.path).split("/") if s]
    if segments and segments[0] == "embed":
        segments = segments[1:]
    query = parse_qs(parts.query)
    if len(segments) >= 2 and segments[0] == "looks":
        if segments[1].isdigit():
            return LookerLink(url, LinkKind.LOOK, segments[1])
        raise UnsupportedLookerLink(f"Look id {segments[1]!r} is not a number in {url}")
    if len(segments) >= 2 and segments[0] == "x":
        return LookerLink(url, LinkKind.SHORT, segments[1])
    if len(segments) >= 2 and segments[0] == "sql":
        return LookerLink(url, LinkKind.SQL_RUNNER, segments[1])
    params = tuple(parse_qsl(parts.query, keep_blank_values=True))
    if len(segments) >= 2 and segments[0] == "dashboards":
        if segments[1].isdigit():
            return LookerLink(url, LinkKind.DASHBOARD, segments[1], params)
        raise UnsupportedLookerLink(
            f"dashboard {segments[1]!r} is not a numeric dashboard id (LookML dashboards are not supported)"
        )
    if segments and segments[0] == "explore":
        qid = query.get("qid", [""])[0]
        if qid:
            return LookerLink(url, LinkKind.EXPLORE, qid)
        if "fields" not in query:
            raise UnsupportedLookerLink(
                f"explore link without a saved query (no qid=…) and without the fields=… to build one: {url}"
            )
        if len(segments) < 3:
            raise UnsupportedLookerLink(f"explore link without a model and an explore in its path: {url}")
        return LookerLink(url, LinkKind.EXPLORE_URL, f"{segments[1]}/{segments[2]}", params)
    raise UnsupportedLookerLink(f"not a Look, explore, share, dashboard or SQL Runner link: {url}")


def _listed(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def explore_query(link: LookerLink) -> ExploreQuery:
    """The query of an expanded explore URL: model and view from the path, the rest from the query
    string as Looker writes it (``fields=a,b``, ``f[view.field]=value``, ``sorts``, ``limit``,
    ``pivots``, ``fill_fields``, ``dynamic_fields``, ``query_timezone``).

    Raises :class:`UnsupportedLookerLink` naming what is missing or malformed.
    """
    if link.kind is not LinkKind.EXPLORE_URL:
        raise UnsupportedLookerLink(f"not an expanded explore link: {link.url}")
    model, _, view = link.ref.partition("/")
    values: dict[str, str] = {}
    filters: list[tuple[str, str]] = []
    for key, value in link.params:
        if key.startswith("f[") and key.endswith("]"):
            filters.append((key[2:-1], value))
        else:
            values[key] = value
    fields = _listed(values.get("fields", ""))
    missing = [
        name for name, present in (("model", model), ("explore", view), ("fields", fields)) if not present
    ]
    if missing:
        raise UnsupportedLookerLink(f"explore link without {' and '.join(missing)}: {link.url}")
    limit = values.get("limit") or None
    if limit is not None and not limit.lstrip("-").isdigit():
        raise UnsupportedLookerLink(f"explore link with limit={limit!r}, not a number: {link.url}")
    dynamic_fields = values.get("dynamic_fields") or None
    if dynamic_fields is not None:
        try:
            json.loads(dynamic_fields)
        except ValueError:
            raise UnsupportedLookerLink(
                f"explore link whose dynamic_fields is not JSON: {link.url}"
            ) from None
    return ExploreQuery(
        model=model,
        view=view,
        fields=fields,
        filters=tuple(filters),
        sorts=_listed(values.get("sorts", "")),
        limit=limit,
        pivots=_listed(values.get("pivots", "")),
        fill_fields=_listed(values.get("fill_fields", "")),
        dynamic_fields=dynamic_fields,
        query_timezone=values.get("query_timezone") or None,
    )


def looker_urls(text: str, looker_hosts: list[str]) -> list[str]:
    """The URLs in ``text`` whose host is exactly one of ``looker_hosts``."""
    allowed = {normalize_host(h) for h in looker_hosts if h.strip()}
    result = []
    for url in find_urls(text):
        try:
            parts = urlsplit(url)  # raises on a malformed IPv6 literal such as "https://[::1/"
            host = normalize_host(parts.hostname or "")
        except ValueError:  # malformed port or IPv6 literal
            continue
        if parts.scheme.lower() not in ("http", "https"):
            continue
        # Browsers read a backslash as "/", so "https://evil.example<backslash>@looker-host/…" opens
        # evil.example while urlsplit sees the Looker host: a look-alike, not a Looker link.
        if "\\" in parts.netloc:
            continue
        if host in allowed:
            result.append(url)
    return result


# ── money the request states next to a link (a second opinion on the notebook's credit) ────────
# A Slack link with its label, as in "Fraud spend: <https://…/looks/123|$179.73>".
_SLACK_LINK_LABEL = re.compile(r"<(https?://[^|<>\s]+)\|([^<>]*)>", re.IGNORECASE)
# "$179.73", "$20,902.40", "US$ 5": a dollar sign is required; "$1,2345" (bad grouping) is no amount.
_STATED_MONEY = re.compile(r"(?<![\w$])(?:US)?\$\s?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\d,]*\d)")
LABEL = "the link's label"
LINE = "the text on the link's line"


def money_amounts(text: str) -> list[Decimal]:
    """Every dollar amount written in ``text`` (Slack-escaped text is unescaped first)."""
    return [
        Decimal(whole.replace(",", "") + (fraction or ""))
        for whole, fraction in _STATED_MONEY.findall(html.unescape(text))
    ]


def stated_spends(text: str, looker_hosts: list[str]) -> dict[str, StatedSpend]:
    """The fraud spend the requester states for each Looker link: ``{url: {"amount", "where"}}``.

    A link's label that is one dollar amount (``<url|$179.73>``) states it; otherwise a line with
    one Looker link and one dollar amount outside any link (``Fraud spend: $179.73 <url>``) does.
    Anything else states nothing. A link stated twice keeps the smaller amount (the stricter check).
    """
    stated: dict[str, StatedSpend] = {}

    def keep(url: str, amount: Decimal, where: str) -> None:
        if url not in stated or amount < Decimal(stated[url]["amount"]):
            stated[url] = {"amount": str(amount), "where": where}

    for line in text.splitlines():
        labelled = set()
        for match in _SLACK_LINK_LABEL.finditer(line):
            url = html.unescape(match.group(1))
            amounts = money_amounts(match.group(2))
            if looker_urls(f"<{match.group(1)}>", looker_hosts) and len(amounts) == 1:
                keep(url, amounts[0], LABEL)
                labelled.add(url)
        urls = set(looker_urls(line, looker_hosts))
        amounts = money_amounts(_BARE_URL.sub(" ", _SLACK_LINK.sub(" ", line)))
        if len(urls) == 1 and len(amounts) == 1 and not urls & labelled:
            keep(urls.pop(), amounts[0], LINE)
    return stated
