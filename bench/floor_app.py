"""The floor: a minimal WSGI app that answers with the same bytes as the real endpoints.

Served by the same server command as the real app (`comments_project.server.web_command`
with `app="bench.floor_app:application"`), so the difference between the two is what
Django, DRF, the database and the cache cost. `bench/run.py` captures each endpoint's
response from the real app and points `BENCH_FLOOR_ROUTES` at a JSON file:

    {"GET /api/v1/articles/article-0/comments/":
        {"status": 200, "content_type": "application/json", "body_file": "/tmp/.../read.bin"}}

Routes match on method and path (the query string is ignored). A POST reads its whole
request body before answering. `/healthz` answers 200; anything else 404.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

_REASONS = {200: "200 OK", 201: "201 Created", 202: "202 Accepted", 404: "404 Not Found"}


def _load_routes() -> dict[tuple[str, str], tuple[str, list[tuple[str, str]], bytes]]:
    routes = {
        ("GET", "/healthz"): ("200 OK", [("Content-Type", "text/plain")], b"ok"),
    }
    path = os.environ.get("BENCH_FLOOR_ROUTES")
    if not path:
        return routes
    for key, spec in json.loads(Path(path).read_text()).items():
        method, _, route = key.partition(" ")
        body = Path(spec["body_file"]).read_bytes()
        status = _REASONS.get(int(spec["status"]), f"{int(spec['status'])} Status")
        headers = [
            ("Content-Type", spec.get("content_type", "application/json")),
            ("Content-Length", str(len(body))),
        ]
        routes[(method.upper(), route)] = (status, headers, body)
    return routes


ROUTES = _load_routes()
_NOT_FOUND = ("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answer from ROUTES; read a request body completely, as a real handler would."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    route = ROUTES.get((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
    if route is None:
        start_response(*_NOT_FOUND)
        return [b"not found"]
    status, headers, body = route
    start_response(status, headers)
    return [body]
