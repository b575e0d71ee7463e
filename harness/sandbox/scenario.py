"""Scenario files: the JSON that seeds the sandbox's Slack workspace and Looker instance."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Obviously fake credentials: the sandbox never sees a real token or secret.
DEFAULT_SLACK_TOKEN = "xoxb-sandbox-fake-token"  # noqa: S105 - fake sandbox token
DEFAULT_SLACK_APP_TOKEN = "xapp-1-sandbox-not-a-real-token"  # noqa: S105 - fake app-level token
DEFAULT_LOOKER_CLIENT_ID = "sandbox-client-id"
DEFAULT_LOOKER_CLIENT_SECRET = "sandbox-client-secret-fake"  # noqa: S105 - fake sandbox secret
# The bot token's scopes unless a scenario says otherwise: what README asks the installer to add.
DEFAULT_SLACK_SCOPES = (
    "channels:history",
    "groups:history",
    "chat:write",
    "im:write",
    "im:history",
    "reactions:write",
)


class ScenarioError(ValueError):
    """A scenario file is malformed or refers to something it does not define."""


@dataclass
class SlackScenario:
    """The emulated Slack workspace: identity of the bot, users, channels with their messages."""

    workspace_url: str = "https://credit-sandbox.slack.com/"
    team_id: str = "T0SANDBOX"
    team: str = "CreditBot Sandbox"
    bot_user_id: str = "U0CREDITBOT"
    bot_id: str = "B0CREDITBOT"
    app_id: str = "A0CREDITBOT"
    bot_name: str = "creditbot"
    token: str = DEFAULT_SLACK_TOKEN
    app_token: str = DEFAULT_SLACK_APP_TOKEN  # Socket Mode's app-level token (apps.connections.open)
    max_page_size: int | None = None
    # Socket Mode: seconds the app has to acknowledge an interactive envelope (Slack: 3).
    ack_timeout_seconds: float = 3.0
    # Granted to the bot token; sent back in X-OAuth-Scopes and enforced per method (missing_scope).
    scopes: list[str] = field(default_factory=lambda: list(DEFAULT_SLACK_SCOPES))
    users: list[dict[str, Any]] = field(default_factory=list)
    channels: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class LookerScenario:
    """The emulated Looker instance: API credentials, token lifetime, queries, Looks, dashboards and
    SQL Runner queries.

    ``web_url`` is only used to build the share URLs Looker puts into query JSON. A query gives its
    SQL as ``sql``, as ``sql_file``, or, with neither, through its ``fields`` and ``filters`` (the
    SQL Looker generates, ``harness.sandbox.looker_sql``). A dashboard's ``filters`` (``name``,
    ``dimension``, ``default_value``, …) are set on a tile's fields by its ``listen`` entries
    (``{"filter": <name>, "field": <field>}``); a tile with ``merge_result_id`` is merged results.
    """

    web_url: str = "https://credit-sandbox.cloud.looker.com"
    client_id: str = DEFAULT_LOOKER_CLIENT_ID
    client_secret: str = DEFAULT_LOOKER_CLIENT_SECRET
    token_ttl_seconds: float = 3600
    queries: list[dict[str, Any]] = field(default_factory=list)
    looks: list[dict[str, Any]] = field(default_factory=list)
    dashboards: list[dict[str, Any]] = field(default_factory=list)
    sql_queries: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Scenario:
    """A whole scenario; ``source`` is the file it came from, if any."""

    slack: SlackScenario = field(default_factory=SlackScenario)
    looker: LookerScenario = field(default_factory=LookerScenario)
    source: Path | None = None

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        """Read a scenario file; ``sql_file`` entries are resolved relative to it."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ScenarioError(f"cannot read scenario {path}: {exc}") from exc
        scenario = cls.from_dict(data, base_dir=path.parent)
        scenario.source = path
        return scenario

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: str | Path | None = None) -> Scenario:
        """Build a scenario from already-parsed JSON (tests build small ones inline)."""
        if not isinstance(data, dict):
            raise ScenarioError("a scenario is a JSON object with 'slack' and/or 'looker'")
        data = copy.deepcopy(data)
        slack = _build(SlackScenario, data.get("slack") or {}, "slack")
        looker = _build(LookerScenario, data.get("looker") or {}, "looker")
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        for query in looker.queries:
            _resolve_sql(query, base)
            _generate_sql(query)
        for sql_query in looker.sql_queries:
            if not sql_query.get("slug"):
                raise ScenarioError(f"SQL Runner query without slug: {sql_query}")
            _resolve_sql({"id": sql_query["slug"], **sql_query}, base, into=sql_query)
        _check_looker_refs(looker)
        _check_slack(slack)
        return cls(slack=slack, looker=looker)


def _build(kind: type, section: dict[str, Any], name: str) -> Any:
    """Instantiate a section dataclass, rejecting unknown keys so typos fail loudly."""
    known = set(kind.__dataclass_fields__)
    unknown = set(section) - known
    if unknown:
        raise ScenarioError(f"unknown {name} keys: {sorted(unknown)}")
    return kind(**section)


def _resolve_sql(query: dict[str, Any], base: Path, into: dict[str, Any] | None = None) -> None:
    """Inline a query's ``sql_file`` (relative to the scenario file) as its ``sql``."""
    target = query if into is None else into
    if "id" not in query:
        raise ScenarioError(f"looker query without id: {query}")
    sql_file = target.pop("sql_file", None)
    if sql_file is None:
        return
    if target.get("sql"):
        raise ScenarioError(f"looker query {query['id']} has both sql and sql_file")
    sql_path = (base / sql_file).resolve()
    try:
        target["sql"] = sql_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"looker query {query['id']}: cannot read sql_file {sql_path}: {exc}") from exc


def _generate_sql(query: dict[str, Any]) -> None:
    """A query with fields and no SQL of its own gets the SQL Looker would generate for it."""
    from harness.sandbox.looker_sql import UnknownField, generate_sql

    if "sql" in query or not query.get("fields"):
        return
    try:
        query["sql"] = generate_sql(query)
    except UnknownField as exc:
        raise ScenarioError(f"looker query {query['id']}: {exc}") from exc


def _check_looker_refs(looker: LookerScenario) -> None:
    """Every Look and dashboard element must point at something the scenario defines."""
    query_ids = {str(q["id"]) for q in looker.queries}
    look_ids = set()
    for look in looker.looks:
        if "id" not in look:
            raise ScenarioError(f"looker look without id: {look}")
        look_ids.add(str(look["id"]))
        if str(look.get("query_id")) not in query_ids:
            raise ScenarioError(f"look {look['id']} refers to unknown query {look.get('query_id')}")
    for dashboard in looker.dashboards:
        if "id" not in dashboard:
            raise ScenarioError(f"looker dashboard without id: {dashboard}")
        names = [f.get("name") for f in dashboard.get("filters", [])]
        if not all(names) or len(set(names)) != len(names):
            raise ScenarioError(f"dashboard {dashboard['id']}: every filter needs a name of its own")
        for element in dashboard.get("elements", []):
            for listen in element.get("listen", []):
                if listen.get("filter") not in names or not listen.get("field"):
                    raise ScenarioError(f"dashboard {dashboard['id']} element listens to an unknown filter")
            if element.get("query_id") is not None and str(element["query_id"]) not in query_ids:
                raise ScenarioError(f"dashboard {dashboard['id']} element refers to unknown query")
            if element.get("look_id") is not None and str(element["look_id"]) not in look_ids:
                raise ScenarioError(f"dashboard {dashboard['id']} element refers to unknown look")


def _check_slack(slack: SlackScenario) -> None:
    """Channels need ids (and ``members``, when given, is a list: who may see ephemerals and click
    there; without it every scenario user is a member); a page-size cap and the ack window are positive."""
    for channel in slack.channels:
        if not channel.get("id"):
            raise ScenarioError(f"slack channel without id: {channel.get('name')}")
    if slack.max_page_size is not None and int(slack.max_page_size) < 1:
        raise ScenarioError("slack.max_page_size must be at least 1")
    if float(slack.ack_timeout_seconds) <= 0:
        raise ScenarioError("slack.ack_timeout_seconds must be positive")
    for channel in slack.channels:
        members = channel.get("members")
        if members is not None and not isinstance(members, list):
            raise ScenarioError(f"slack channel {channel['id']}: members is a list of user ids")
