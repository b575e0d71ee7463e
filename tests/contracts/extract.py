"""Extract, from the vendors' own API specifications, the operations CreditBot and its sandbox use.

Run by hand when an endpoint is added or the specs are refreshed; the output is committed as test data:

    .venv/bin/python tests/contracts/extract.py \\
        --looker-git /path/to/sdk-codegen/.git --slack-git /path/to/slack-api-specs/.git

``--slack-git`` may be left out to refresh the Looker subset alone. Each ``--…-git`` is a git directory
(a clone, or a bare mirror) of looker-open-source/sdk-codegen and of
slackapi/slack-api-specs; files are read from its ``HEAD`` with ``git show``, so no work tree is needed.
Only the listed operations and the schemas they reference (transitively) are written, with the source
repository, path and commit, so a reader can check every schema against its origin.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LOOKER_OUT = HERE / "looker_4.0_subset.json"
SLACK_OUT = HERE / "slack_web_subset.json"
SLACK_EVENTS_OUT = HERE / "slack_event_wrapper.json"

LOOKER_SOURCE = ("looker-open-source/sdk-codegen", "spec/Looker.4.0.oas.json")
SLACK_SOURCE = ("slackapi/slack-api-specs", "web-api/slack_web_openapi_v2.json")
SLACK_EVENTS_SOURCE = ("slackapi/slack-api-specs", "events-api/slack_common_event_wrapper_schema.json")

# Every Looker API 4.0 operation the bot calls or the sandbox serves (harness/sandbox/looker_api.py).
LOOKER_OPERATIONS = [
    ("post", "/login"),
    ("delete", "/logout"),
    ("get", "/versions"),
    ("get", "/user"),
    ("get", "/looks/{look_id}"),
    ("get", "/looks/{look_id}/run/{result_format}"),
    ("get", "/queries/slug/{slug}"),
    ("get", "/queries/{query_id}"),
    ("get", "/queries/{query_id}/run/{result_format}"),
    ("post", "/queries"),
    ("get", "/sql_queries/{slug}"),
    ("get", "/dashboards/{dashboard_id}"),
]

# Every Slack Web API method the bot calls or the sandbox serves (harness/sandbox/slack_api.py).
# apps.connections.open (Socket Mode, 2021) is newer than the spec: see tests/contracts/README.md.
SLACK_METHODS = [
    "auth.test",
    "conversations.history",
    "conversations.replies",
    "conversations.info",
    "conversations.open",
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "chat.getPermalink",
    "chat.delete",
    "reactions.add",
]


def git(git_dir: Path, *args: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True, text=True
    ).stdout


def source(git_dir: Path, repo: str, path: str) -> tuple[dict[str, Any], dict[str, str]]:
    text = git(git_dir, "show", f"HEAD:{path}")
    commit = git(git_dir, "rev-parse", "HEAD").strip()
    committed = git(git_dir, "show", "-s", "--format=%cI", "HEAD").strip()
    origin = {
        "repository": f"https://github.com/{repo}",
        "path": path,
        "commit": commit,
        "committed": committed,
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }
    return json.loads(text), origin


def refs(node: Any) -> set[str]:
    """Every local ``$ref`` under ``node``."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            found.add(ref)
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


def closure(doc: dict[str, Any], roots: Any) -> dict[str, dict[str, Any]]:
    """The sections of ``doc`` (e.g. components/schemas) holding every definition ``roots`` reaches."""
    picked: dict[str, dict[str, Any]] = {}
    todo = sorted(refs(roots))
    seen: set[str] = set()
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        *section, name = ref[2:].split("/")
        node: Any = doc
        for part in section:
            node = node[part]
        definition = node[name]
        picked.setdefault("/".join(section), {})[name] = definition
        todo.extend(sorted(refs(definition) - seen))
    return picked


def nest(sections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section, items in sorted(sections.items()):
        node = out
        for part in section.split("/"):
            node = node.setdefault(part, {})
        node.update(dict(sorted(items.items())))
    return out


def extract_looker(git_dir: Path) -> dict[str, Any]:
    spec, origin = source(git_dir, *LOOKER_SOURCE)
    paths: dict[str, Any] = {}
    for verb, path in LOOKER_OPERATIONS:
        paths.setdefault(path, {})[verb] = spec["paths"][path][verb]
    return {
        "openapi": spec["openapi"],
        "info": {"title": spec["info"]["title"], "version": spec["info"]["version"]},
        "x-extracted-from": origin,
        "x-extracted-operations": [f"{verb.upper()} {path}" for verb, path in LOOKER_OPERATIONS],
        "paths": paths,
        **nest(closure(spec, paths)),
    }


def extract_slack(git_dir: Path) -> dict[str, Any]:
    spec, origin = source(git_dir, *SLACK_SOURCE)
    paths = {f"/{method}": spec["paths"][f"/{method}"] for method in SLACK_METHODS}
    return {
        "swagger": spec["swagger"],
        "info": {"title": spec["info"]["title"], "version": spec["info"]["version"]},
        "x-extracted-from": origin,
        "x-extracted-operations": SLACK_METHODS,
        "paths": paths,
        **nest(closure(spec, paths)),
    }


def extract_slack_events(git_dir: Path) -> dict[str, Any]:
    schema, origin = source(git_dir, *SLACK_EVENTS_SOURCE)
    # Examples are documentation, not constraints; they are most of the file.
    schema = {k: v for k, v in schema.items() if k != "examples"}
    return {**schema, "x-extracted-from": origin}


def write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(HERE.parents[1])} ({path.stat().st_size:,} bytes)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--looker-git", type=Path, required=True, help="git dir of sdk-codegen")
    parser.add_argument("--slack-git", type=Path, help="git dir of slack-api-specs (omit: Looker only)")
    args = parser.parse_args()
    write(LOOKER_OUT, extract_looker(args.looker_git))
    if args.slack_git is not None:
        write(SLACK_OUT, extract_slack(args.slack_git))
        write(SLACK_EVENTS_OUT, extract_slack_events(args.slack_git))


if __name__ == "__main__":
    main()
