"""The control API over HTTP (``/_sandbox/...``): the Sandbox's Python API for other processes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.sandbox.wire import Reply

if TYPE_CHECKING:
    from harness.sandbox.app import Sandbox

_ADD_MESSAGE_KEYS = ("channel", "text", "user", "ts", "thread_ts", "subtype", "bot_id")


def _health(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    return {"slack_base_url": sb.slack_base_url, "looker_base_url": sb.looker_base_url}


def _calls(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    return {"calls": sb.calls(api=params.get("api") or None, method=params.get("method") or None)}


def _reset_calls(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    sb.reset_calls()
    return {}


def _posts(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    return {"posts": sb.posts(channel=params.get("channel") or None)}


def _dms(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    return {"dms": sb.dms(user=params.get("user") or None)}


def _reactions(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    return {"reactions": sb.reactions(channel=params.get("channel") or None)}


def _add_message(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    if not params.get("channel") or "text" not in params:
        raise ValueError("channel and text are required")
    known = {k: params[k] for k in _ADD_MESSAGE_KEYS if k in params}
    extra = {k: v for k, v in params.items() if k not in _ADD_MESSAGE_KEYS}
    return {"ts": sb.add_message(**known, **extra)}


def _edit_message(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    sb.edit_message(str(params["channel"]), str(params["ts"]), str(params["text"]))
    return {}


def _delete_message(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    sb.delete_message(str(params["channel"]), str(params["ts"]))
    return {}


def _inject(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    opts = dict(params)
    api, method, kind = opts.pop("api"), opts.pop("method"), opts.pop("kind")
    times = int(opts.pop("times", 1))
    sb.inject(str(api), str(method), str(kind), times=times, **opts)
    return {}


def _clear_faults(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    sb.clear_faults()
    return {}


def _socket_status(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    unacked_only = str(params.get("unacked_only", "")).lower() in {"1", "true"}
    return {**sb.socket_status(), "envelope_list": sb.socket_envelopes(unacked_only=unacked_only)}


def _socket_disconnect(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    reason = params.get("reason") or None
    return {"disconnected": sb.socket_disconnect(reason=reason, abort=bool(params.get("abort", False)))}


def _socket_refuse(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    seconds = params.get("seconds")
    sb.socket_refuse(times=int(params.get("times", 1)), seconds=None if seconds is None else float(seconds))
    return {}


def _socket_lose_acks(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    sb.socket_lose_acks(times=int(params.get("times", 1)))
    return {}


def _ephemerals(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    user, channel = params.get("user") or None, params.get("channel") or None
    return {"ephemerals": sb.ephemerals(user=user, channel=channel)}


def _updates(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    return {"updates": sb.updates(channel=params.get("channel") or None, ts=params.get("ts") or None)}


def _message(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    return {"message": sb.message(str(params["channel"]), str(params["ts"]))}


def _click(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    interaction = sb.click(
        str(params["user"]),
        str(params["channel"]),
        str(params["message_ts"]),
        str(params["action_id"]),
        block_id=params.get("block_id") or None,
        wait=bool(params.get("wait", False)),
    )
    return {"interaction": interaction}


def _interactions(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    envelope_id = params.get("envelope_id")
    if not envelope_id:
        return {"interactions": sb.interactions()}
    out = {"interaction": sb.interaction(str(envelope_id))}
    if str(params.get("payload", "")).lower() in {"1", "true"}:
        out["payload"] = sb.interaction_payload(str(envelope_id))
    return out


def _ack_timeout(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    sb.set_ack_timeout(float(params["seconds"]))
    return {}


def _response_url_calls(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    return {"calls": sb.response_url_calls(user=params.get("user") or None)}


def _expire_looker_tokens(sb: Sandbox, params: dict[str, Any]) -> dict[str, Any]:
    return {"revoked": sb.expire_looker_tokens()}


_ENDPOINTS: dict[tuple[str, str], Callable[[Sandbox, dict[str, Any]], dict[str, Any]]] = {
    ("GET", "health"): _health,
    ("GET", "calls"): _calls,
    ("POST", "reset-calls"): _reset_calls,
    ("GET", "posts"): _posts,
    ("GET", "dms"): _dms,
    ("GET", "reactions"): _reactions,
    ("POST", "messages"): _add_message,
    ("POST", "messages/edit"): _edit_message,
    ("POST", "messages/delete"): _delete_message,
    ("POST", "faults"): _inject,
    ("DELETE", "faults"): _clear_faults,
    ("POST", "expire-looker-tokens"): _expire_looker_tokens,
    ("GET", "socket-mode"): _socket_status,
    ("POST", "socket-mode/disconnect"): _socket_disconnect,
    ("POST", "socket-mode/refuse"): _socket_refuse,
    ("POST", "socket-mode/lose-acks"): _socket_lose_acks,
    ("GET", "ephemerals"): _ephemerals,
    ("GET", "updates"): _updates,
    ("GET", "message"): _message,
    ("POST", "click"): _click,
    ("GET", "interactions"): _interactions,
    ("POST", "interactions/ack-timeout"): _ack_timeout,
    ("GET", "response-url-calls"): _response_url_calls,
}

ENDPOINTS = sorted(f"{verb} /_sandbox/{name}" for verb, name in _ENDPOINTS)


def handle_control(sb: Sandbox, verb: str, path: str, params: dict[str, Any]) -> Reply:
    """Answer one control call: 200 {"ok": true, ...}, 400 for bad arguments, 404 for unknown endpoints."""
    name = path.removeprefix("/_sandbox/").strip("/")
    endpoint = _ENDPOINTS.get((verb, name))
    if endpoint is None:
        return Reply.json({"ok": False, "error": "unknown_endpoint", "endpoints": ENDPOINTS}, status=404)
    try:
        payload = endpoint(sb, params)
    except (KeyError, TypeError, ValueError) as exc:
        return Reply.json({"ok": False, "error": "invalid_arguments", "detail": str(exc)}, status=400)
    return Reply.json({"ok": True, **payload})
