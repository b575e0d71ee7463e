"""CreditBot's settings: the ``credit_bot_settings`` Airflow Variable (JSON), with documented defaults.

Read at run time by the ``fetch_requests`` task, never while the DAG file is parsed. Every key is
optional except ``channel`` (for scheduled runs) and ``looker_hosts``; README.md lists them all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from credit_bot.errors import SetupError
from credit_bot.model import SettingsDict

SETTINGS_VARIABLE = "credit_bot_settings"
# Here, not in credit_bot.slack, so that naming it does not import the Slack provider and slack_sdk.
SLACK_CONN_ID = "slack_api_default"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_NOTEBOOKS_DIR = PROJECT_ROOT / "include" / "notebooks"
DEFAULT_OUTPUT_DIR = PROJECT_ROOT / "output" / "notebooks"

APPROVAL_NONE, APPROVAL_ALL = "none", "all"
_AMOUNT = re.compile(r"^\d+(\.\d{1,2})?$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_BOT_OR_APP_ID = re.compile(r"^[BA][A-Z0-9]{2,}$")
# The settings that list Slack ids, and what a valid one looks like.
_ID_LISTS = {
    "operators": USER_ID,
    "approvers": USER_ID,
    "request_bots": _BOT_OR_APP_ID,
    "looker_hosts": re.compile(r"."),
}


class SettingsError(SetupError, ValueError):
    """The settings Variable is missing something or holds a value CreditBot cannot use."""


@dataclass(frozen=True)
class ProductRule:
    """SQL that matches ``pattern`` (a case-insensitive regex) belongs to ``name``.

    ``notebook`` is the notebook that computes its credit (relative to ``notebooks_dir``), or
    ``None`` to ignore the product silently.
    """

    name: str
    pattern: str
    notebook: str | None = None


DEFAULT_PRODUCTS = (ProductRule(name="verify", pattern="authy", notebook="verify_credit.ipynb"),)


@dataclass(frozen=True)
class Settings:
    channel: str = ""
    dry_run: bool = True
    operators: tuple[str, ...] = ()
    looker_hosts: tuple[str, ...] = ()
    category: str = "exceptions"
    products: tuple[ProductRule, ...] = DEFAULT_PRODUCTS
    notebooks_dir: str = str(DEFAULT_NOTEBOOKS_DIR)
    output_dir: str = str(DEFAULT_OUTPUT_DIR)
    kernel_name: str = "python3"
    # The team's notebook reads the warehouse 7 times and its time is about reads x seconds per read
    # + 3 s (make bench, team notebook row); their first read once took 246 s: 7 such reads are 29
    # minutes. 40 minutes leaves room for that; a hung kernel is still stopped.
    notebook_timeout_seconds: int = 2400
    warehouse_conn_id: str = "credit_warehouse_default"
    lookback_hours: int = 72
    link_wait_hours: int = 48
    max_attempts: int = 3
    page_size: int = 15
    max_requests_per_run: int = 50
    ledger_retention_days: int = 30
    # Executed notebooks are kept this long (the team's audit period), then removed by record_ledger.
    notebook_retention_days: int = 90
    # Status on each request post, as Slack reactions (emoji names; "" turns one off).
    reaction_picked_up: str = "eyes"
    reaction_answered: str = "white_check_mark"
    reaction_escalated: str = "rotating_light"
    reactions_in_dry_run: bool = False
    # In dry-run, DM the operators what would have been posted, to judge going live from Slack.
    dry_run_preview: bool = False
    # Bots or apps (B…/A…) whose posts are requests, e.g. a Workflow Builder form's.
    request_bots: tuple[str, ...] = ()
    # Where an operator DM goes when it cannot be sent (""= the CREDIT_BOT_ALERT_CHANNEL env var).
    alert_channel: str = ""
    # Live replies that wait for a person's Approve first (credit_bot.approval): "none" (post at once),
    # "all" (supervised: every amount), or a dollar amount such as "1000.00" (amounts above it).
    approval: str = APPROVAL_NONE
    # Slack user ids who may approve or reject (the buttons, or Airflow's Required actions); empty:
    # the operators.
    approvers: tuple[str, ...] = ()
    # One reminder DM to the approvers after this long without a decision.
    approval_reminder_minutes: int = 60
    # No decision after this long: the request is escalated to the operators and nothing is posted.
    approval_timeout_hours: int = 24

    @classmethod
    def from_json(cls, text: str | None) -> Settings:
        """Parse and validate the Variable's JSON. ``None`` (Variable unset) gives the defaults."""
        if text is None or not text.strip():
            return cls()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SettingsError(
                f"Airflow Variable {SETTINGS_VARIABLE!r} is not valid JSON ({exc.msg} at line "
                f"{exc.lineno}, column {exc.colno}). Fix it in Admin → Variables."
            ) from None
        if not isinstance(data, dict):
            raise SettingsError(f"Airflow Variable {SETTINGS_VARIABLE!r} must be a JSON object")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Settings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(
                f"unknown key(s) {unknown} in {SETTINGS_VARIABLE!r}; known keys: {sorted(known)}"
            )
        values = {key: _coerce(key, raw) for key, raw in data.items()}
        settings = cls(**values)
        settings.validate()
        return settings

    @classmethod
    def lenient(cls, text: str | None) -> Settings | None:
        """The settings as far as they can be read, for a reader that must not fail on them.

        The failure alert and the UI pages read the Variable this way: a settings error elsewhere
        (often the very failure being reported) must not keep the alert from the operators listed
        in it, nor a page from opening. Keys that cannot be read keep their defaults; ``operators``
        keeps the valid user ids. ``None`` when the Variable is unset or not a JSON object.
        """
        try:
            data = json.loads(text) if text and text.strip() else None
        except json.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        values: dict[str, Any] = {}
        for key in {f.name for f in fields(cls)} & set(data):
            raw = data[key]
            if key in _ID_LISTS:
                listed = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
                raw = [v for v in listed if isinstance(v, str) and _ID_LISTS[key].match(v.strip())]
            try:
                values[key] = _coerce(key, raw)
            except SettingsError:
                continue
        return cls(**values)

    def validate(self) -> None:
        if self.channel and not _CHANNEL_ID.match(self.channel):
            raise SettingsError(
                f"'channel' must be a Slack channel ID such as C0123ABCD, got {self.channel!r}"
            )
        bad_ops = [op for op in self.operators if not USER_ID.match(op)]
        if bad_ops:
            raise SettingsError(f"'operators' must be Slack user IDs (U…); not valid: {bad_ops}")
        bad_bots = [b for b in self.request_bots if not _BOT_OR_APP_ID.match(b)]
        if bad_bots:
            raise SettingsError(
                f"'request_bots' must be Slack bot IDs (B…) or app IDs (A…), e.g. a workflow's; "
                f"not valid: {bad_bots}"
            )
        if self.alert_channel and not _CHANNEL_ID.match(self.alert_channel):
            raise SettingsError(
                f"'alert_channel' must be a Slack channel ID such as C0123ABCD, got {self.alert_channel!r}"
            )
        bad_approvers = [a for a in self.approvers if not USER_ID.match(a)]
        if bad_approvers:
            raise SettingsError(f"'approvers' must be Slack user IDs (U…); not valid: {bad_approvers}")
        if self.approval not in (APPROVAL_NONE, APPROVAL_ALL) and not _AMOUNT.match(self.approval):
            raise SettingsError(
                f'\'approval\' must be "none", "all" or a dollar amount such as "1000.00" (amounts '
                f"above it need an approver's Approve), got {self.approval!r}"
            )
        if self.approval != APPROVAL_NONE and not self.approval_users:
            raise SettingsError("'approval' is on but there are no 'approvers' (nor 'operators') to ask")
        if not self.looker_hosts:
            raise SettingsError(
                "'looker_hosts' is empty: list the Looker host(s) whose links may be resolved"
            )
        for rule in self.products:
            try:
                re.compile(rule.pattern)
            except re.error as exc:
                raise SettingsError(
                    f"product {rule.name!r}: pattern {rule.pattern!r} is invalid: {exc}"
                ) from None
        for key in (
            "notebook_timeout_seconds",
            "max_attempts",
            "page_size",
            "max_requests_per_run",
            "lookback_hours",
            "link_wait_hours",
            "ledger_retention_days",
            "notebook_retention_days",
            "approval_reminder_minutes",
            "approval_timeout_hours",
        ):
            if getattr(self, key) < 1:
                raise SettingsError(f"{key!r} must be at least 1")
        for key in ("reaction_picked_up", "reaction_answered", "reaction_escalated"):
            if not re.fullmatch(r"[a-z0-9_+\-']*", getattr(self, key)):
                raise SettingsError(
                    f"{key!r} must be an emoji name such as 'eyes' (no colons), or \"\" for none"
                )
        window_hours = max(self.lookback_hours, self.link_wait_hours)
        if self.ledger_retention_days * 24 < window_hours:
            # Finished entries must outlive the window a run may read again, or they would be redone.
            raise SettingsError(
                "'ledger_retention_days' must cover 'lookback_hours' and 'link_wait_hours' "
                f"({self.ledger_retention_days} days < {window_hours} hours)"
            )
        if not 1 <= self.page_size <= 999:
            raise SettingsError("'page_size' must be between 1 and 999 (Slack's limit)")

    @property
    def approval_users(self) -> tuple[str, ...]:
        """Who is asked to approve, and may click Approve or Reject: the approvers, else the operators."""
        return self.approvers or self.operators

    def needs_approval(self, amount: Decimal) -> bool:
        """Whether a live reply of ``amount`` waits for an approver's decision before it is posted."""
        if self.dry_run or self.approval == APPROVAL_NONE:
            return False
        return self.approval == APPROVAL_ALL or amount > Decimal(self.approval)

    def notebook_path(self, rule: ProductRule) -> str:
        assert rule.notebook is not None
        if "://" in rule.notebook or rule.notebook.startswith("/"):
            return rule.notebook
        return str(Path(self.notebooks_dir) / rule.notebook)

    def to_dict(self) -> SettingsDict:
        return cast(SettingsDict, asdict(self))

    @classmethod
    def from_task_value(cls, data: Mapping[str, Any]) -> Settings:
        """Rebuild from :func:`to_dict`'s JSON, e.g. a task's ``run`` (already validated).

        Keys that are not settings (the run's ``message_ts`` and ``force``) are left out.
        """
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["products"] = tuple(ProductRule(**p) for p in values.get("products", []))
        for key in ("operators", "looker_hosts", "request_bots", "approvers"):
            values[key] = tuple(values.get(key, ()))
        return cls(**values)


def _coerce(key: str, raw: object) -> Any:
    if key == "approval" and isinstance(raw, (int, float)) and not isinstance(raw, bool):
        raw = f"{raw:.2f}"  # a JSON number works too
    if key in ("operators", "looker_hosts", "request_bots", "approvers"):
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            raise SettingsError(f"{key!r} must be a list of strings")
        return tuple(v.strip() for v in raw if v.strip())
    if key == "products":
        if not isinstance(raw, list):
            raise SettingsError("'products' must be a list of {name, pattern, notebook} objects")
        rules = []
        for item in raw:
            if (
                not isinstance(item, dict)
                or not {"name", "pattern"} <= set(item)
                or set(item)
                - {
                    "name",
                    "pattern",
                    "notebook",
                }
            ):
                raise SettingsError(
                    f"each product rule needs 'name' and 'pattern' and may have 'notebook'; got {item!r}"
                )
            rules.append(
                ProductRule(
                    name=str(item["name"]), pattern=str(item["pattern"]), notebook=item.get("notebook")
                )
            )
        return tuple(rules)
    default = getattr(Settings, key, None)
    if isinstance(default, bool):
        if not isinstance(raw, bool):
            raise SettingsError(f"{key!r} must be true or false")
        return raw
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise SettingsError(f"{key!r} must be a whole number")
        return raw
    if not isinstance(raw, str):
        raise SettingsError(f"{key!r} must be a string")
    return raw.strip()
