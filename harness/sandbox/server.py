"""The HTTP layer: parses requests, routes them to the Slack/Looker emulators or the control API, and
applies injected faults and the call log on the way."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from harness.sandbox.faults import Fault, FaultInjector
from harness.sandbox.looker_api import API_VERSION, NOT_FOUND_MESSAGE, LookerApi, looker_error
from harness.sandbox.recorder import CallLog
from harness.sandbox.slack_api import RESPONSE_URL_PREFIX, SlackApi
from harness.sandbox.wire import Reply

log = logging.getLogger(__name__)

SLACK_PREFIX = "/slack/api/"
LOOKER_PREFIX = "/looker"
CONTROL_PREFIX = "/_sandbox/"

# (verb, path, params) -> Reply; provided by the Sandbox object so the server stays free of its API.
ControlHandler = Callable[[str, str, dict[str, Any]], Reply]


class SandboxServer(ThreadingHTTPServer):
    """A threading HTTP server holding the emulators the request handler dispatches to."""

    daemon_threads = True  # a hung client must never keep the process (or pytest) alive

    def __init__(
        self,
        address: tuple[str, int],
        slack: SlackApi,
        looker: LookerApi,
        faults: FaultInjector,
        calls: CallLog,
        control: ControlHandler,
    ) -> None:
        self.slack = slack
        self.looker = looker
        self.faults = faults
        self.calls = calls
        self.control = control
        super().__init__(address, SandboxRequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up on its answer (a client timeout, often injected) is not an error."""
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class SandboxRequestHandler(BaseHTTPRequestHandler):
    """One request: HTTP/1.0, so every connection closes after its answer (no idle keep-alive threads)."""

    server: SandboxServer
    timeout = 30  # seconds a client may take to send its request
    server_version = "CreditBotSandbox/1.0"

    def do_GET(self) -> None:
        """Slack accepts every method over GET or POST; Looker uses GET for reads."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """slack_sdk always POSTs; Looker login is a POST."""
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        """Looker logout."""
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        """Not used by the emulated endpoints; routed so the answer is a proper 404."""
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        """Not used by the emulated endpoints; routed so the answer is a proper 404."""
        self._dispatch("PATCH")

    def log_message(self, format: str, *args: Any) -> None:
        """Route access logs to logging (debug) instead of stderr."""
        log.debug("%s - %s", self.address_string(), format % args)

    # ---- dispatch ----------------------------------------------------------------------------------

    def _dispatch(self, verb: str) -> None:
        url = urlsplit(self.path)
        path = url.path
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            params = self._params(url.query, headers)
        except ValueError as exc:
            self._send(Reply.json({"ok": False, "error": "invalid_request", "detail": str(exc)}, status=400))
            return
        try:
            if path.startswith(CONTROL_PREFIX):
                reply = self.server.control(verb, path, params)
            elif path.startswith(RESPONSE_URL_PREFIX) and verb == "POST":
                # An interaction's response_url (Slack's https://hooks.slack.com/actions/...).
                reply = self.server.slack.response_url(path, params)
                self.server.calls.record("slack", "response_url", path, params, reply.status)
            elif path.startswith(SLACK_PREFIX):
                reply = self._slack(path, params, headers)
            elif path.startswith("/api/") or path.startswith(LOOKER_PREFIX + "/api/"):
                # looker_sdk logs in under "<base_url>/api/4.0/login" but joins every other call onto the
                # host root ("/api/4.0/..."), so the Looker API answers under both prefixes.
                reply = self._looker(verb, path, params, headers)
            else:
                reply = Reply.json({"ok": False, "error": "not_found", "path": path}, status=404)
        except Exception as exc:  # the sandbox must answer even when it has a bug, and say so
            log.exception("sandbox failed on %s %s", verb, path)
            reply = Reply.json(
                {"ok": False, "error": "sandbox_internal_error", "detail": repr(exc)}, status=500
            )
        self._send(reply)

    def _slack(self, path: str, params: dict[str, Any], headers: dict[str, str]) -> Reply:
        method = path[len(SLACK_PREFIX) :].strip("/")
        return self._with_faults(
            "slack",
            method,
            path,
            params,
            lambda: self.server.slack.handle(method, params, headers),
            self.server.slack.fault_reply,
        )

    def _looker(self, verb: str, path: str, params: dict[str, Any], headers: dict[str, str]) -> Reply:
        api_path = path.removeprefix(LOOKER_PREFIX)
        route = self.server.looker.resolve(verb, api_path)
        if route is None:
            version_prefix = f"/api/{API_VERSION}"
            reply = looker_error(404, NOT_FOUND_MESSAGE, verb, api_path.removeprefix(version_prefix))
            self.server.calls.record("looker", f"{verb} {api_path}", path, params, reply.status)
            return reply
        return self._with_faults(
            "looker",
            route.method,
            path,
            params,
            lambda: self.server.looker.handle(route, params, headers),
            lambda fault: self.server.looker.fault_reply(fault, route),
        )

    def _with_faults(
        self,
        api: str,
        method: str,
        path: str,
        params: dict[str, Any],
        answer: Callable[[], Reply],
        fault_reply: Callable[[Fault], Reply],
    ) -> Reply:
        fault = self.server.faults.take(api, method)
        if fault is not None and fault.kind == "delay":
            time.sleep(float(fault.opts.get("seconds", 1)))
            fault = None
        if fault is None:
            reply = answer()
        elif fault.kind == "reset":
            reply = Reply.connection_reset()
        elif fault.kind == "lost_response":
            handled = answer()
            self.server.calls.record(api, method, path, params, handled.status)
            return Reply.connection_reset()
        else:
            reply = fault_reply(fault)
        # Recorded before the answer is written, so a client that got its answer always finds its call.
        self.server.calls.record(api, method, path, params, reply.status)
        return reply

    # ---- request / response plumbing ---------------------------------------------------------------

    def _params(self, query: str, headers: dict[str, str]) -> dict[str, Any]:
        """Query string merged with the body (form or JSON); body values win."""
        params: dict[str, Any] = {}
        for key, values in parse_qs(query, keep_blank_values=True).items():
            params[key] = values[-1] if len(values) == 1 else values
        length = int(headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        if not raw:
            return params
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "application/json":
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(f"invalid JSON body: {exc}") from exc
            if isinstance(body, dict):
                params.update(body)
        elif content_type == "application/x-www-form-urlencoded":
            params.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        return params

    def _send(self, reply: Reply) -> None:
        if reply.reset:
            # Answer nothing: the client sees the connection drop (RemoteDisconnected / reset).
            self.close_connection = True
            return
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if reply.body:
            self.wfile.write(reply.body)
