"""The docs hold together: relative links and #anchors resolve, the settings reference lists every setting
with its default, and README stays short and keeps its two commands."""

from __future__ import annotations

import json
import re
from dataclasses import MISSING, Field, asdict, fields, is_dataclass
from pathlib import Path

import pytest

from credit_bot.settings import PROJECT_ROOT, Settings

README = PROJECT_ROOT / "README.md"
DEPLOYING = PROJECT_ROOT / "docs" / "deploying.md"
DOCS = [README, PROJECT_ROOT / "CHANGELOG.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 220
# Settings the reference shows as "—": they have no usable default (the run fails without them).
REQUIRED_SETTINGS = {"channel", "looker_hosts"}
# Defaults that are paths under the project folder, documented relative to it.
PROJECT_PATH_SETTINGS = {"notebooks_dir", "output_dir"}

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
_INLINE_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _prose(text: str) -> str:
    """Markdown without code blocks and code spans, where a ``[x](y)`` is not a link."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of ``path``, with GitHub's ``-1``, ``-2`` … for repeated headings."""
    seen: dict[str, int] = {}
    found = set()
    for heading in _HEADING.findall(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        slug = _slug(heading)
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found


def broken_links(path: Path) -> list[str]:
    """The relative links of ``path`` whose file, or #anchor in it, does not exist."""
    prose = _prose(path.read_text(encoding="utf-8"))
    broken = []
    for target in _INLINE_LINK.findall(prose) + _REFERENCE_LINK.findall(prose):
        if _SCHEME.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with anchor #{anchor} in {linked.name}")
    return broken


@pytest.mark.parametrize("doc", [pytest.param(doc, id=str(doc.relative_to(PROJECT_ROOT))) for doc in DOCS])
def test_relative_links_resolve(doc: Path) -> None:
    assert broken_links(doc) == []


@pytest.mark.parametrize(
    ("markdown", "broken"),
    [
        pytest.param("[ok](other.md) and [top](#title)", 0, id="file-and-own-anchor"),
        pytest.param("[ok](other.md#a-section-too)", 0, id="anchor-in-other-file"),
        pytest.param("[ok](other.md#a-section-too-1)", 0, id="repeated-heading-anchor"),
        pytest.param("[gone](missing.md)", 1, id="missing-file"),
        pytest.param("[gone](other.md#no-such-heading)", 1, id="missing-anchor"),
        pytest.param("[gone](#no-such-heading)", 1, id="missing-own-anchor"),
        pytest.param("[gone]: missing.md", 1, id="reference-link"),
        pytest.param("[web](https://example.com/missing.md)", 0, id="external-link-skipped"),
        pytest.param("```\n[code](missing.md)\n```", 0, id="code-block-skipped"),
        pytest.param("`[code](missing.md)`", 0, id="code-span-skipped"),
    ],
)
def test_link_check_finds_broken_links(tmp_path: Path, markdown: str, broken: int) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## A section, too\n\n## A section, too\n")
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Title\n\n{markdown}\n")
    assert len(broken_links(doc)) == broken


def _reference() -> dict[str, str]:
    """The settings reference table of docs/deploying.md: key → its default cell."""
    text = DEPLOYING.read_text(encoding="utf-8")
    section = text.split("## Settings reference", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| (.+?) \|", section, re.MULTILINE)
    return dict(rows)


def _documented(name: str, default: object) -> str:
    """How the reference writes a setting's default."""
    if name in REQUIRED_SETTINGS:
        return "—"
    if name in PROJECT_PATH_SETTINGS:
        default = Path(str(default)).relative_to(PROJECT_ROOT).as_posix()
    if isinstance(default, tuple):
        default = [asdict(item) if is_dataclass(item) else item for item in default]
    return f"`{json.dumps(default)}`"


SETTINGS = [field for field in fields(Settings) if field.default is not MISSING]


def test_settings_reference_lists_every_key() -> None:
    documented = set(_reference())
    keys = {field.name for field in fields(Settings)}
    assert sorted(keys - documented) == [], "settings missing from docs/deploying.md's reference"
    assert sorted(documented - keys) == [], "docs/deploying.md documents settings that do not exist"


@pytest.mark.parametrize("field", [pytest.param(field, id=field.name) for field in SETTINGS])
def test_settings_reference_gives_the_default(field: Field[object]) -> None:
    assert _reference().get(field.name) == _documented(field.name, field.default)


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail to docs/"


@pytest.mark.parametrize(
    ("command", "what"),
    [
        pytest.param("make demo", "installs and runs the main job on the embedded default", id="make-demo"),
        pytest.param("make test", "installs and passes the whole test suite", id="make-test"),
    ],
)
def test_readme_keeps_the_two_commands(command: str, what: str) -> None:
    fenced = "".join(block.group(0) for block in _FENCE.finditer(README.read_text(encoding="utf-8")))
    assert re.search(rf"^{command}\b", fenced, re.MULTILINE), f"README's code block lost `{command}` ({what})"
