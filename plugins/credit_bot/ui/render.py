"""An executed notebook as a safe HTML page: nbconvert's lab template, no scripts, no secrets.

What a notebook printed is not trusted: HTML outputs and Markdown are sanitized with nh3, outputs
that exist to run code (JavaScript, widgets, SVG) are dropped, and the page is served with a CSP
that forbids scripts. Secrets are checked again here, not only when the notebook ran: a
connection's password found in the file is hidden and the page says so.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbconvert import HTMLExporter

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE_NAME = "credit_bot_notebook"
# Outputs that only exist to run code in the browser, or can carry it (an SVG may hold a script).
DROPPED_MIME_TYPES = (
    "application/javascript",
    "application/vnd.jupyter.widget-view+json",
    "application/vnd.jupyter.widget-state+json",
    "image/svg+xml",
)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class UnreadableNotebook(ValueError):
    """The file is not a notebook nbformat can read."""


@dataclass(frozen=True)
class RenderedNotebook:
    html: str
    secrets_hidden: int  # how many secret occurrences were replaced
    credit: str | None = None  # credit_amount as CreditBot read it (its read-out cell), e.g. "$4,948.80"


def hide_secrets(text: str, secrets: list[str]) -> tuple[str, int]:
    """``text`` with every secret replaced by ``***``, and how many were found."""
    found = 0
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        found += text.count(secret)
        text = text.replace(secret, "***")
    return text, found


def sanitize_html(fragment: str) -> str:
    """HTML a notebook produced, reduced to markup that cannot run anything (tables, text, images)."""
    import nh3

    attributes = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()}
    attributes.setdefault("*", set()).update({"class", "title"})
    for cell in ("td", "th"):
        attributes.setdefault(cell, set()).update({"colspan", "rowspan"})
    return nh3.clean(fragment, attributes=attributes, url_schemes={"http", "https", "mailto"})


@functools.lru_cache(maxsize=1)
def _exporter() -> HTMLExporter:
    # Building the exporter loads its Jinja templates (about 0.3 s): once per API server process.
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATES)],
        embed_images=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )


def _clean_outputs(nb: Any) -> None:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = sanitize_html(cell.source)
            cell.attachments = {}
            continue
        if cell.cell_type == "raw":
            cell.source = ""
            continue
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data is not None:
                for mime in DROPPED_MIME_TYPES:
                    data.pop(mime, None)
                for mime in ("text/html", "text/markdown"):
                    if mime in data:
                        value = data[mime]
                        data[mime] = sanitize_html("".join(value) if isinstance(value, list) else str(value))
                # CreditBot's own structured outputs are for the bot; shown as the JSON they are.
                for mime in [m for m in data if m.startswith("application/vnd.credit-bot.")]:
                    data.setdefault("text/plain", json.dumps(data.pop(mime), indent=1))
            if output.get("output_type") == "error":
                output["traceback"] = [_ANSI.sub("", line) for line in output.get("traceback", [])]


def read_out_credit(nb: Any) -> str | None:
    """``credit_amount`` from CreditBot's read-out output, in dollars, or ``None`` when it has none."""
    from credit_bot.money import InvalidAmount, format_usd, formatted_parts, to_cents, to_decimal
    from credit_bot.notebooks.readout import RESULT_MIME

    for cell in nb.cells:
        for output in cell.get("outputs", []):
            result = output.get("data", {}).get(RESULT_MIME)
            value = (result or {}).get("credit_amount", {}).get("value") if isinstance(result, dict) else None
            parts = formatted_parts(value) if isinstance(value, str) else None
            if parts and len(parts.parts) > 1:  # the team's '$4,948.80$nan$nan'
                return f"{format_usd(parts.total)} ({parts.describe()})"
            if value is not None:
                try:
                    return format_usd(to_cents(to_decimal(value)))
                except InvalidAmount:
                    return None
    return None


def render(text: str, secrets: list[str], title: str) -> RenderedNotebook:
    """The notebook JSON ``text`` as one self-contained HTML page (code cells folded, no scripts)."""
    import nbformat

    text, hidden = hide_secrets(text, secrets)
    try:
        nb = nbformat.reads(text, as_version=4)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UnreadableNotebook(f"not a notebook nbformat can read ({type(exc).__name__})") from None
    credit = read_out_credit(nb)
    _clean_outputs(nb)
    nb.metadata.pop("widgets", None)
    html, _ = _exporter().from_notebook_node(nb, resources={"metadata": {"name": title}})
    return RenderedNotebook(html=html, secrets_hidden=hidden, credit=credit)
