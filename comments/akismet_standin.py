"""A local Akismet stand-in that speaks the real protocol, for the demo and the tests.

Answers like rest.akismet.com as far as a client can see (plain-text bodies,
X-akismet-* headers, the documented test triggers) and adds what the real
service cannot: scripted faults, latency, and a log of every request.

Test markers in comment_content (namespaced so real text never hits them):
``[[spam]]``, ``[[discard]]``, ``[[recheck-after:N]]``, ``[[alert:CODE]]``,
``[[error:TOKEN]]``.

Serves many clients at once: one thread per connection, HTTP/1.1 keep-alive,
and the latency is slept in that thread, so N concurrent requests take one
latency, not N. ``GET /__admin/stats`` reports the most requests it answered at
the same time (``max_in_flight``), which shows whether a client is concurrent.

Admin endpoints (JSON): ``GET /__admin/requests``, ``GET /__admin/stats``,
``POST /__admin/reset``, ``POST /__admin/faults`` (one fault or a list;
``"match"`` limits a fault to requests whose comment_content contains that
text), ``POST /__admin/latency`` (``{"seconds": 0.15}``), ``POST /__admin/keys``
(``{"key": ..., "state": ...}``).
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

THANKS = "Thanks for making the web a better place."
SPAM_AUTHORS = {"akismet-guaranteed-spam", "viagra-test-123"}
SPAM_EMAIL = "akismet-guaranteed-spam@example.com"
_MARKER = re.compile(r"\[\[(spam|discard|recheck-after|alert|error)(?::([\w-]{1,40}))?\]\]")
_V11 = {"verify-key", "comment-check", "submit-spam", "submit-ham"}
_V12 = {"usage-limit", "key-sites"}


def mask(key: str) -> str:
    return key[:2] + "*" * max(0, len(key) - 4) + key[-2:] if len(key) > 4 else "****"


class StandInState:
    """Keys, faults and the request log; shared by the handler threads."""

    def __init__(self, keys: dict[str, str] | None = None, latency: float = 0.0) -> None:
        self.lock = threading.Lock()
        self.keys: dict[str, str] = dict(keys or {})
        self.latency = latency
        self.faults: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.usage: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.resets = 0

    def reset(self) -> None:
        with self.lock:
            self.resets += 1
            self.faults.clear()
            self.requests.clear()
            self.usage.clear()
            self.latency = 0.0
            self.max_in_flight = self.in_flight

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Count an API request as in flight while it is being answered."""
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self.lock:
                self.in_flight -= 1

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {
                "requests": len(self.requests),
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
            }

    def add_fault(self, fault: dict[str, Any]) -> None:
        """Queue a fault: {"kind", "endpoint": name or "*", "times": N, -1 for always}."""
        with self.lock:
            self.faults.append({"endpoint": "*", "times": 1, **fault})

    def take_fault(self, endpoint: str, content: str = "") -> dict[str, Any] | None:
        """The first queued fault for this endpoint (and, with "match", this text)."""
        with self.lock:
            for fault in self.faults:
                if fault["endpoint"] in ("*", endpoint) and fault.get("match", "") in content:
                    if fault["times"] > 0:
                        fault["times"] -= 1
                        if fault["times"] == 0:
                            self.faults.remove(fault)
                    return dict(fault)
        return None

    def log(self, entry: dict[str, Any], resets: int) -> None:
        """Log an answered request, unless a reset came after it arrived (a slow request
        of the previous test never shows up in the next one's log)."""
        with self.lock:
            if resets == self.resets:
                self.requests.append(entry)

    def requests_to(self, endpoint: str) -> list[dict[str, Any]]:
        with self.lock:
            return [entry for entry in self.requests if entry["endpoint"] == endpoint]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive: a client reuses its connection
    # Headers and body are two writes; without TCP_NODELAY the second one waits
    # for the client's delayed ACK on a kept-alive connection (tens of ms).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    # --- plumbing ---------------------------------------------------------

    def _read_params(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        query = urlsplit(self.path).query
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        params.update({k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()})
        return params

    def _send(
        self,
        status: int,
        body: str,
        headers: dict[str, str] | None = None,
        ctype: str = "text/plain; charset=utf-8",
    ) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path
        if path.startswith("/__admin/"):
            return self._admin(method, path)
        params = self._read_params()  # always read the body: the connection is kept alive
        parts = path.strip("/").split("/")
        if len(parts) < 2:
            return self._send(404, "Not found")
        version, endpoint = parts[-2], parts[-1]
        known = (version == "1.1" and endpoint in _V11) or (version == "1.2" and endpoint in _V12)
        if not known:
            return self._send(404, "Not found")
        with self.server.state.answering():
            self._api(method, version, endpoint, params)

    def _api(self, method: str, version: str, endpoint: str, params: dict[str, str]) -> None:
        state = self.server.state
        resets = state.resets
        entry = {
            "time": time.time(),
            "method": method,
            "endpoint": endpoint,
            "params": {k: (mask(v) if k in ("api_key", "key") else v) for k, v in params.items()},
            "user_agent": self.headers.get("User-Agent", ""),
        }
        fault = state.take_fault(endpoint, params.get("comment_content", ""))
        if state.latency:
            time.sleep(state.latency)
        if fault and self._apply_fault(fault, entry):
            state.log(entry, resets)
            return
        status, body, headers, ctype = self._answer(method, version, endpoint, params)
        if fault and fault.get("kind") == "headers":
            headers.update(fault.get("headers", {}))
        entry["response"] = {"status": status, "body": body[:200], "headers": headers}
        state.log(entry, resets)
        self._send(status, body, headers, ctype)

    def _apply_fault(self, fault: dict[str, Any], entry: dict[str, Any]) -> bool:
        """Play a scripted failure; False when it only adds to a normal answer."""
        kind = fault.get("kind")
        entry["fault"] = kind
        if kind == "delay":
            time.sleep(float(fault.get("seconds", 1)))
            return False
        if kind == "headers":
            return False
        if kind == "hang":
            time.sleep(float(fault.get("seconds", 30)))
            self.close_connection = True
            return True
        if kind == "reset":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nfal")
            self.close_connection = True
            return True
        if kind == "status":
            status = int(fault.get("status", 503))
            headers = {"Location": "https://rest.akismet.com/moved"} if 300 <= status < 400 else {}
            if status in (429, 503):
                headers["Retry-After"] = str(fault.get("retry_after", 30))
            self._send(status, fault.get("body", "<html>Service unavailable</html>"), headers)
            return True
        if kind == "body":
            self._send(200, str(fault.get("body", "maybe")))
            return True
        if kind == "invalid":
            self._send(200, "invalid", {"X-akismet-debug-help": "Invalid key"})
            return True
        return False

    # --- the protocol -----------------------------------------------------------

    def _answer(
        self, method: str, version: str, endpoint: str, params: dict[str, str]
    ) -> tuple[int, str, dict[str, str], str]:
        plain = "text/plain; charset=utf-8"
        state = self.server.state
        if version == "1.1" and method != "POST":
            return 200, "invalid", {"X-akismet-debug-help": "Use POST"}, plain
        if endpoint == "verify-key":
            key = params.get("key") or params.get("api_key", "")
            if not params.get("blog", "").startswith(("http://", "https://")):
                return (
                    200,
                    "invalid",
                    {"X-akismet-debug-help": "We were unable to parse your blog URI"},
                    plain,
                )
            if state.keys.get(key, "invalid") == "invalid":
                return 200, "invalid", {"X-akismet-debug-help": "Invalid key"}, plain
            return 200, "valid", self._alert_headers(state.keys[key]), plain
        key = params.get("api_key", "")
        if not key:
            return 200, "invalid", {"X-akismet-debug-help": 'Empty "api_key" value'}, plain
        if state.keys.get(key, "invalid") == "invalid":
            return 200, "invalid", {"X-akismet-debug-help": "Invalid key"}, plain
        with state.lock:
            state.usage[key] = state.usage.get(key, 0) + (endpoint in _V11)
        if endpoint == "usage-limit":
            body = {
                "limit": 350000,
                "usage": state.usage.get(key, 0),
                "percentage": "0.00",
                "throttled": False,
            }
            return 200, json.dumps(body), {}, "application/json"
        if endpoint == "key-sites":
            return 200, json.dumps({"limit": 500, "offset": 0, "total": 0}), {}, "application/json"
        for required in ("blog", "user_ip"):
            if not params.get(required):
                return 200, "invalid", {"X-akismet-debug-help": f'Empty "{required}" value'}, plain
        if endpoint in ("submit-spam", "submit-ham"):
            return 200, THANKS, self._alert_headers(state.keys[key]), plain
        return self._comment_check(params, state.keys[key])

    @staticmethod
    def _alert_headers(key_state: str) -> dict[str, str]:
        if key_state.startswith("suspended"):
            code = key_state.partition(":")[2] or "10402"
            return {
                "X-akismet-error": "suspended",
                "X-akismet-alert-code": code,
                "X-akismet-alert-msg": "Your API key has been suspended.",
            }
        return {}

    def _comment_check(
        self, params: dict[str, str], key_state: str
    ) -> tuple[int, str, dict[str, str], str]:
        plain = "text/plain; charset=utf-8"
        headers = {"X-akismet-guid": secrets.token_hex(16)}
        headers.update(self._alert_headers(key_state))
        if "X-akismet-error" in headers:
            return 200, "false", headers, plain
        markers = {
            name: value for name, value in _MARKER.findall(params.get("comment_content", ""))
        }
        if "alert" in markers:
            headers["X-akismet-alert-code"] = markers["alert"] or "10011"
            headers["X-akismet-alert-msg"] = "Your site has exceeded its usage limit."
        if "error" in markers:
            headers["X-akismet-error"] = markers["error"] or "suspended"
        if "administrator" in params.get("user_role", ""):
            return 200, "false", headers, plain
        author = params.get("comment_author", "")
        email = params.get("comment_author_email", "")
        if author in SPAM_AUTHORS or email == SPAM_EMAIL or "spam" in markers:
            return 200, "true", headers, plain
        if "discard" in markers:
            headers["X-akismet-pro-tip"] = "discard"
            return 200, "true", headers, plain
        honeypot = params.get("honeypot_field_name")
        if honeypot and params.get(honeypot):
            return 200, "true", headers, plain
        if "recheck-after" in markers:
            headers["X-akismet-recheck-after"] = markers["recheck-after"] or "120"
        return 200, "false", headers, plain

    # --- admin ---------------------------------------------------------------------

    def _admin(self, method: str, path: str) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return self._send(400, '{"detail": "invalid JSON"}', ctype="application/json")
        if path == "/__admin/requests" and method == "GET":
            with state.lock:
                body = json.dumps(state.requests)
            return self._send(200, body, ctype="application/json")
        if path == "/__admin/stats" and method == "GET":
            return self._send(200, json.dumps(state.stats()), ctype="application/json")
        if method != "POST":
            return self._send(405, '{"detail": "use POST"}', ctype="application/json")
        if path == "/__admin/reset":
            state.reset()
        elif path == "/__admin/faults":
            for fault in data if isinstance(data, list) else [data]:
                state.add_fault(fault)
        elif path == "/__admin/latency":
            state.latency = float(data.get("seconds", 0))
        elif path == "/__admin/keys":
            with state.lock:
                state.keys[str(data["key"])] = str(data.get("state", "valid"))
        else:
            return self._send(404, '{"detail": "unknown admin endpoint"}', ctype="application/json")
        self._send(200, '{"ok": true}', ctype="application/json")


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a kept-alive connection never blocks shutdown
    allow_reuse_address = True
    # The listen backlog: a burst of new connections (a worker's pool threads
    # connecting at once) must not overflow it, or the kernel drops SYNs and the
    # client waits a second to retry.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], state: StandInState, verbose: bool) -> None:
        super().__init__(address, _Handler)
        self.state = state
        self.verbose = verbose


class AkismetStandIn:
    """Run the stand-in on loopback, in a thread (tests) or in the foreground (command)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        keys: dict[str, str] | None = None,
        latency: float = 0.0,
        verbose: bool = False,
    ) -> None:
        self.state = StandInState(keys=keys, latency=latency)
        self._server = _Server((host, port), self.state, verbose)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> AkismetStandIn:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
