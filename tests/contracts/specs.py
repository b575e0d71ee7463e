"""The vendors' specifications as validators: Looker's OpenAPI 3.0 subset and Slack's Swagger 2.0 subset.

Both are the extracted JSON next to this file (``extract.py``), validated as their dialects define:
Looker with openapi-schema-validator's OAS 3.0 *read* validator (``nullable``, ``readOnly``, formats),
Slack with JSON Schema draft 4, which Swagger 2.0 schemas are a subset of. Where the 2021 Slack spec
predates what Slack documents now, ``SLACK_CURRENT_DOCS`` says what is checked instead, and why.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker
from referencing import Registry
from referencing.jsonschema import DRAFT4

HERE = Path(__file__).resolve().parent
LOOKER_URI = "urn:looker-api-4.0"
SLACK_URI = "urn:slack-web-api"
SLACK_DOCS_URI = "urn:slack-current-docs"
SLACK_EVENTS_URI = "urn:slack-event-wrapper"


def _load(name: str) -> dict[str, Any]:
    return json.loads((HERE / name).read_text(encoding="utf-8"))


@cache
def looker_spec() -> dict[str, Any]:
    return _load("looker_4.0_subset.json")


@cache
def slack_spec() -> dict[str, Any]:
    return _load("slack_web_subset.json")


@cache
def slack_current_docs() -> dict[str, Any]:
    return _load("slack_current_docs.json")


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


# ---- Looker ----------------------------------------------------------------------------------------


class ContractViolation(AssertionError):
    """An answer that does not match the vendor's schema; the message lists every mismatch."""


def check(validator: Any, instance: Any, what: str) -> None:
    """Validate and report every mismatch at once (the first alone hides the rest)."""
    problems = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if problems:
        lines = [f"  at /{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in problems]
        raise ContractViolation(f"{what} does not match the spec:\n" + "\n".join(lines))


class UndeclaredResponse(AssertionError):
    """The spec declares no response for this status (or content type) of the operation."""


@dataclass(frozen=True)
class LookerCheck:
    """How one Looker answer was checked: the schema it was validated against and any caveat."""

    schema_ref: str
    note: str = ""


def validate_looker(verb: str, path: str, status: int, content_type: str | None, body: bytes) -> LookerCheck:
    """Validate one raw Looker answer against the operation's declared response; raises on a mismatch."""
    operation = looker_spec()["paths"][path][verb.lower()]
    responses = operation["responses"]
    note = ""
    if str(status) in responses:
        response = responses[str(status)]
    elif status in (401, 500, 502, 503, 504):
        # Looker's spec declares neither 401 (expired or missing token) nor 5xx for any operation, yet
        # real Looker sends both with the same {message, documentation_url} body: check that.
        response = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        note = f"{status} is not declared by the spec; checked against its Error schema"
    else:
        raise UndeclaredResponse(
            f"{verb} {path}: the spec declares no {status} response ({sorted(responses)})"
        )
    content = response.get("content", {})
    if status == 204:
        if body:
            raise AssertionError(f"{verb} {path}: 204 with a body")
        return LookerCheck("(no content)", note)
    media = (content_type or "").split(";")[0].strip()
    # Looker's spec names the result formats' media types loosely ("text" for sql/csv/txt).
    declared = "text" if media.startswith("text/") and "text" in content else media
    if declared not in content:
        raise UndeclaredResponse(f"{verb} {path} {status}: media type {media!r} not among {sorted(content)}")
    schema_pointer = _pointer(
        "paths", path, verb.lower(), "responses", str(status), "content", declared, "schema"
    )
    if note:
        schema_pointer = "components/schemas/Error"
    text = body.decode("utf-8")
    schema = content[declared].get("schema", {})
    if schema.get("type") == "string":
        # Result endpoints (run/{result_format}) declare the body as an opaque string of that media type:
        # the JSON text itself, not a JSON string value. Check it is what the media type says.
        if declared == "application/json":
            json.loads(text)
        instance: Any = text
    else:
        instance = json.loads(text) if declared == "application/json" else text
    check(_looker_validator(schema_pointer), instance, f"Looker {verb} {path} {status}")
    return LookerCheck(schema_pointer, note)


@cache
def _looker_validator(pointer: str) -> OAS30ReadValidator:
    resource = DRAFT4.create_resource(looker_spec())
    registry: Registry = Registry().with_resource(LOOKER_URI, resource)
    return OAS30ReadValidator(
        {"$ref": f"{LOOKER_URI}#/{pointer}"}, registry=registry, format_checker=oas30_format_checker
    )


# ---- Slack -----------------------------------------------------------------------------------------


def slack_operation(method: str) -> tuple[str, dict[str, Any]]:
    """(verb, operation) of a Web API method in the spec."""
    ops = slack_spec()["paths"][f"/{method}"]
    [(verb, operation)] = ops.items()
    return verb, operation


def _apply(document: dict[str, Any], changes: list[dict[str, Any]]) -> dict[str, Any]:
    out = copy.deepcopy(document)
    for change in changes:
        node: Any = out
        *parents, last = change["at"]
        for part in parents:
            node = node[part]
        if change["do"] in ("add_property", "replace"):
            node[last] = change["schema"]
        elif change["do"] == "drop_required":
            node[last] = [name for name in node[last] if name not in change["names"]]
        else:
            raise ValueError(f"unknown change {change['do']!r} in slack_current_docs.json")
    return out


def slack_error_codes(method: str) -> list[str]:
    """The error codes a method may answer: the 2021 enum, Slack's common errors, the method's newer ones."""
    docs = slack_current_docs()
    _, operation = slack_operation(method)
    codes = list(operation["responses"]["default"]["schema"]["properties"]["error"]["enum"])
    extra = [*docs["common_errors"]["codes"], *docs["method_errors"].get(method, {}).get("codes", [])]
    return [*codes, *[code for code in extra if code not in codes]]


def _relaxed_slack_spec() -> dict[str, Any]:
    """Slack's 2021 spec with the documented updates of ``slack_current_docs.json`` applied."""
    spec = _apply(slack_spec(), slack_current_docs()["changes"])
    for method in spec["x-extracted-operations"]:
        [operation] = spec["paths"][f"/{method}"].values()
        operation["responses"]["default"]["schema"]["properties"]["error"]["enum"] = slack_error_codes(method)
    return spec


@cache
def _slack_registry() -> Registry:
    docs = slack_current_docs()
    return (
        Registry()
        .with_resource(SLACK_URI, DRAFT4.create_resource(_relaxed_slack_spec()))
        .with_resource(SLACK_DOCS_URI, DRAFT4.create_resource(docs))
        .with_resource(
            SLACK_EVENTS_URI,
            DRAFT4.create_resource(_apply(_load("slack_event_wrapper.json"), docs["event_wrapper_changes"])),
        )
    )


@cache
def _slack_validator(uri: str, pointer: str) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(
        {"$ref": f"{uri}#/{pointer}"},
        registry=_slack_registry(),
        format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER,
    )


def validate_slack(method: str, body: dict[str, Any]) -> str:
    """Validate one raw Web API answer (success or error) against the spec; returns the schema used."""
    if method in slack_current_docs()["methods"]:
        key = "success" if body.get("ok") else "error"
        pointer = _pointer("methods", method, key)
        check(_slack_validator(SLACK_DOCS_URI, pointer), body, f"Slack {method}")
        return f"slack_current_docs.json#{pointer}"
    verb, _ = slack_operation(method)
    status = "200" if body.get("ok") else "default"
    pointer = _pointer("paths", f"/{method}", verb, "responses", status, "schema")
    check(_slack_validator(SLACK_URI, pointer), body, f"Slack {method}")
    return f"slack_web_subset.json#{pointer}"


def validate_slack_socket(message: dict[str, Any]) -> str:
    """Validate a Socket Mode message (``hello``, ``events_api``, ``interactive``, ``disconnect``) and
    its payload: the Events API wrapper, or a ``block_actions`` interaction payload."""
    kind = message.get("type")
    if kind not in slack_current_docs()["socket_mode"]:
        raise ContractViolation(f"Socket Mode message of unknown type {kind!r}")
    pointer = _pointer("socket_mode", str(kind))
    check(_slack_validator(SLACK_DOCS_URI, pointer), message, f"Socket Mode {kind} message")
    if kind == "events_api":
        check(_slack_validator(SLACK_DOCS_URI, "event_wrapper"), message["payload"], "Socket Mode payload")
    if kind == "interactive":
        validate_block_actions(message["payload"])
    return f"slack_current_docs.json#{pointer}"


def validate_block_actions(payload: dict[str, Any]) -> str:
    """Validate a ``block_actions`` interaction payload (a button click) against the schema written from
    https://docs.slack.dev/reference/interaction-payloads/block_actions-payload."""
    check(_slack_validator(SLACK_DOCS_URI, "block_actions_payload"), payload, "block_actions payload")
    return "slack_current_docs.json#block_actions_payload"
