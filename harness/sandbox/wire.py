"""HTTP-level types shared by the emulated APIs and the server: replies and request parameters."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Reply:
    """One HTTP answer; ``reset`` means: close the connection without answering at all."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        """A JSON body (compact, UTF-8)."""
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return cls(status=status, body=body, content_type=JSON_TYPE, headers=dict(headers or {}))

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = TEXT_TYPE) -> Reply:
        """A text body (SQL, CSV, TSV)."""
        return cls(status=status, body=text.encode("utf-8"), content_type=content_type)

    @classmethod
    def empty(cls, status: int = 204) -> Reply:
        """No body at all (Looker answers logout with 204)."""
        return cls(status=status, body=b"", content_type=None)

    @classmethod
    def connection_reset(cls) -> Reply:
        """Drop the connection: the client sees RemoteDisconnected / ConnectionResetError."""
        return cls(status=0, content_type=None, reset=True)


def as_bool(value: Any) -> bool:
    """Slack-style boolean parameter: slack_sdk sends form booleans as "1"/"0", JSON as true/false."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def bearer_token(headers: dict[str, str], scheme_names: tuple[str, ...] = ("bearer",)) -> str | None:
    """The token of an ``Authorization: <scheme> <token>`` header, if the scheme is accepted."""
    value = headers.get("authorization", "")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() in scheme_names and token.strip():
        return token.strip()
    return None
