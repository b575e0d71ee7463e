"""The SQL the emulated Looker generates for a query body, in the shape real Looker gave the team.

Real Looker compiles a query (model, view, fields, filters, sorts, limit) against its LookML; the
sandbox knows one explore, the one the samples use (``counters_by_billable_item`` and its joins),
and writes SQL exactly as the team's saved notebook shows Looker wrote it: ``"view.field"``
aliases, ``COALESCE(SUM(… ), 0)`` measures, joins for the views the query touches, the filters'
conditions grouped as Looker groups them, ``GROUP BY`` / ``ORDER BY`` by position, ``LIMIT``.
So a query created with another account's filter has another account's SQL, and the sample
warehouse answers it with another account's spend.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

BASE_VIEW = "counters_by_billable_item"
FROM = "FROM public.counters_by_billable_item_complete  AS counters_by_billable_item"
# (view, join line) in the order Looker writes them; a join is written when the query touches its view.
JOINS = (
    (
        "account_dimension",
        "LEFT JOIN rawpii_dim_account  AS account_dimension ON counters_by_billable_item.account_sid "
        " = account_dimension.sid",
    ),
    (
        "billable_items",
        "LEFT JOIN public.billable_items  AS billable_items ON counters_by_billable_item.billable_item_sid "
        " = billable_items.sid",
    ),
    (
        "billable_item_metadata_alex",
        "LEFT JOIN darwin_transform.billable_item_metadata_alex  AS billable_item_metadata_alex ON "
        "counters_by_billable_item.billable_item_sid = billable_item_metadata_alex.sid",
    ),
)


class UnknownField(ValueError):
    """The query names a field the sandbox's explore does not have, or a filter it cannot write."""


@dataclass(frozen=True)
class Field:
    """One LookML field of the explore: its SQL, and for a dimension whether filters ignore case."""

    view: str
    sql: str
    measure: bool = False
    case_sensitive: bool = True
    date: bool = False


FIELDS: dict[str, Field] = {
    "account_dimension.account_sid": Field("account_dimension", "account_dimension.sid"),
    "account_dimension.friendly_name": Field("account_dimension", "account_dimension.friendly_name"),
    "billable_items.sid": Field("billable_items", "billable_items.sid"),
    "billable_items.iso_country_code": Field("billable_items", "billable_items.iso_country_code"),
    "billable_items.friendly_name": Field(
        "billable_items", "billable_items.friendly_name", case_sensitive=False
    ),
    "billable_item_metadata_alex.product": Field(
        "billable_item_metadata_alex", "billable_item_metadata_alex.product"
    ),
    "counters_by_billable_item.account_sid": Field(BASE_VIEW, "counters_by_billable_item.account_sid"),
    "counters_by_billable_item.date_date": Field(BASE_VIEW, "counters_by_billable_item.date", date=True),
    "counters_by_billable_item.units": Field(BASE_VIEW, "counters_by_billable_item.units"),
    "counters_by_billable_item.subtype": Field(BASE_VIEW, "counters_by_billable_item.subtype"),
    "counters_by_billable_item.total_sum": Field(
        BASE_VIEW, "COALESCE(SUM(counters_by_billable_item.total ), 0)", measure=True
    ),
    "counters_by_billable_item.quantity_sum": Field(
        BASE_VIEW, "COALESCE(SUM(counters_by_billable_item.quantity ), 0)", measure=True
    ),
}
DATE_FILTER = "counters_by_billable_item.date_date"
# How Looker groups this explore's filter conditions (from the team's SQL): each inner tuple is one
# parenthesised conjunction; the data-load condition (the explore's sql_always_where, keyed on the
# date filter's start) sits with the product filter.
FILTER_GROUPS: tuple[tuple[Any, ...], ...] = (
    ("counters_by_billable_item.account_sid",),
    (DATE_FILTER, "counters_by_billable_item.units"),
    (
        "counters_by_billable_item.subtype",
        "billable_items.friendly_name",
        ("billable_item_metadata_alex.product", "data_load"),
    ),
)
_PERIOD = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})\s+to\s+(\d{4}-\d{2}-\d{2})\s*$")


def _field(name: str) -> Field:
    field = FIELDS.get(name)
    if field is None:
        raise UnknownField(f"the sandbox's explore {BASE_VIEW} has no field {name!r}")
    return field


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _period(expression: str) -> tuple[str, str]:
    match = _PERIOD.match(expression)
    if match is None:
        raise UnknownField(
            f"the sandbox writes date filters as 'YYYY-MM-DD to YYYY-MM-DD', not {expression!r}"
        )
    return match.group(1), match.group(2)


def _date_condition(field: Field, expression: str) -> str:
    start, end = _period(expression)
    column = f"( {field.sql}  )"
    return f"((({column[1:]} >= (TIMESTAMP '{start}') AND {column} < (TIMESTAMP '{end}')))"


def _string_condition(field: Field, expression: str) -> str:
    """A Looker string filter expression: ``a,b`` (any of), ``%x%`` (like), ``-x`` (not)."""
    values = [v.strip() for v in expression.split(",") if v.strip()]
    positive = [v for v in values if not v.startswith("-")]
    negative = [v[1:] for v in values if v.startswith("-")]
    if field.case_sensitive:
        column = f"({field.sql} )"
        plain = [v for v in positive if "%" not in v]
        likes = [f"{column} LIKE {_quote(v)}" for v in positive if "%" in v]
        if len(plain) == 1:
            likes.insert(0, f"{column} = {_quote(plain[0])}")
        elif plain:
            likes.insert(0, f"{column} IN ({', '.join(_quote(v) for v in plain)})")
        nots = [f"{column} {'NOT LIKE' if '%' in v else '<>'} {_quote(v)}" for v in negative]
    else:
        column = f"UPPER(( {field.sql}  ))"
        likes = [f"{column} {'LIKE' if '%' in v else '='} UPPER({_quote(v)})" for v in positive]
        nots = [f"{column} {'NOT LIKE' if '%' in v else '<>'} UPPER({_quote(v)})" for v in negative]
    parts = []
    if likes:
        parts.append(likes[0] if len(likes) == 1 else f"({' OR '.join(likes)})")
    if nots:
        parts.append(f"({' AND '.join(nots)} OR ( {field.sql}  ) IS NULL)")
    if not parts:
        raise UnknownField(f"empty filter expression for {field.sql}")
    return parts[0] if len(parts) == 1 else f"({' AND '.join(parts)})"


def _conditions(filters: dict[str, str]) -> dict[str, str]:
    conditions: dict[str, str] = {}
    for name, expression in filters.items():
        if expression is None or str(expression).strip() == "":
            continue  # "is any value": no condition
        field = _field(name)
        if field.measure:
            raise UnknownField(f"the sandbox does not write HAVING filters ({name})")
        write = _date_condition if field.date else _string_condition
        conditions[name] = write(field, str(expression))
    start = _period(filters[DATE_FILTER])[0] if filters.get(DATE_FILTER) else None
    since = f"TIMESTAMP '{start}'" if start else "NULL"
    conditions["data_load"] = (
        f"(counters_by_billable_item.data_load_date >=  COALESCE( {since}, date '2010-01-01') )"
    )
    return conditions


def _group(members: tuple[Any, ...], conditions: dict[str, str]) -> str | None:
    parts = []
    for member in members:
        part = _group(member, conditions) if isinstance(member, tuple) else conditions.get(member)
        if part:
            parts.append(part)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else f"({' AND '.join(parts)})"


def _where(filters: dict[str, str]) -> str:
    conditions = _conditions(filters)
    unplaced = set(conditions) - {m for g in FILTER_GROUPS for m in _members(g)}
    if unplaced:
        raise UnknownField(f"the sandbox does not know where Looker puts filters on {sorted(unplaced)}")
    groups = [g for g in (_group(group, conditions) for group in FILTER_GROUPS) if g]
    return "WHERE " + " AND ".join(groups)


def _members(group: tuple[Any, ...]) -> list[str]:
    out: list[str] = []
    for member in group:
        out.extend(_members(member) if isinstance(member, tuple) else [member])
    return out


def _order(sorts: list[str], fields: list[str]) -> str:
    positions = []
    for sort in sorts:
        name, _, direction = sort.strip().partition(" ")
        if name not in fields:
            raise UnknownField(f"sort on {name!r}, which is not one of the query's fields")
        positions.append(f"{fields.index(name) + 1}{' DESC' if direction.strip().lower() == 'desc' else ''}")
    if not positions:  # Looker's default: the first measure, largest first
        measures = [i for i, name in enumerate(fields) if FIELDS[name].measure]
        positions = [f"{measures[0] + 1} DESC"] if measures else ["1"]
    return "ORDER BY\n" + ",\n".join(f"    {p}" for p in positions)


def generate_sql(query: dict[str, Any]) -> str:
    """Looker-shaped SQL for a query body (``model``, ``view``, ``fields``, ``filters``, ``sorts``,
    ``limit``); raises :class:`UnknownField` for what the sandbox's explore cannot express."""
    view = str(query.get("view") or "")
    if view != BASE_VIEW:
        raise UnknownField(f"the sandbox generates SQL for explore {BASE_VIEW!r} only, not {view!r}")
    fields = [str(f) for f in query.get("fields") or []]
    if not fields:
        raise UnknownField("a query needs at least one field")
    filters = {str(k): v for k, v in (query.get("filters") or {}).items()}
    select = []
    for name in fields:
        field = _field(name)
        select.append(f'    {field.sql} AS "{name}"' if field.measure else f'    {field.sql}  AS "{name}"')
    touched = {_field(name).view for name in [*fields, *(k for k, v in filters.items() if v)]}
    lines = ["SELECT", ",\n".join(select), FROM]
    lines += [join for join_view, join in JOINS if join_view in touched]
    lines.append(_where(filters))
    dimensions = [i + 1 for i, name in enumerate(fields) if not FIELDS[name].measure]
    if dimensions and len(dimensions) < len(fields):
        lines.append("GROUP BY\n" + ",\n".join(f"    {i}" for i in dimensions))
    lines.append(_order([str(s) for s in query.get("sorts") or []], fields))
    lines.append(f"LIMIT {int(query.get('limit') or 500)}")
    return "\n".join(lines)


def normalized(sql: str) -> str:
    """SQL without ``--`` comment lines and with runs of whitespace as one space: for comparing texts."""
    kept = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return " ".join(" ".join(kept).split())
