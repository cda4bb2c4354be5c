"""SQL queries per request, measured in-process against the benchmark's database.

Run by bench/run.py with the servers' environment: `python -m bench.queries`
(`--submit-only`: only the submit, with an Idempotency-Key, for the run with the
default abuse limits).
Each request goes through `comments_project.wsgi.application`, the very WSGI app
the server runs (Django's test Client would skip the cached-read layer in front
of Django), inside CaptureQueriesContext: once cold (cache emptied first) and
once warm (the same request again). Prints one JSON object.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

ROOT = Path(__file__).resolve().parent.parent
READ_PATH = "/api/v1/articles/article-0/comments/?limit=50"
COUNTS_PATH = "/api/v1/articles/counts/?" + "&".join(f"slug=article-{i}" for i in range(1, 21))
SUBMIT_PATH = "/api/v1/articles/article-1/comments/"


def wsgi_request(
    app: Callable,
    method: str,
    url: str,
    body: bytes = b"",
    forwarded_for: str = "",
    idempotency_key: str = "",
) -> tuple[int, bytes]:
    """Call a WSGI app as a server would, from 127.0.0.1; (status, body)."""
    path, _, query = url.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
    }
    if forwarded_for:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded_for
    if idempotency_key:
        environ["HTTP_IDEMPOTENCY_KEY"] = idempotency_key
    if body:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(body))
    setup_testing_defaults(environ)
    status: list[str] = []
    chunks = app(environ, lambda line, headers, exc_info=None: status.append(line))
    try:
        data = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return int(status[0].split()[0]), data


def main() -> int:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "comments_project.settings")
    from django.conf import settings
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from comments_project.wsgi import application  # sets Django up

    submit_only = "--submit-only" in sys.argv

    def measure(method: str, url: str, body: bytes = b"", n: int = 0) -> dict[str, int]:
        # Each request from its own address (used when the server trusts one proxy, as
        # with the abuse limits on: one address may not post twice in a few seconds).
        # With --submit-only (the limits' server) a submit carries an Idempotency-Key,
        # as the widget's do.
        key = f"bench-queries-{os.getpid()}-{n}" if submit_only and method == "POST" else ""
        with CaptureQueriesContext(connection) as captured:
            status, _ = wsgi_request(application, method, url, body, f"192.0.2.{n + 1}", key)
        return {"queries": len(captured.captured_queries), "status": status}

    from comments import abuse  # after Django is set up

    form_token = abuse.make_form_token(SUBMIT_PATH.split("/")[4])
    if settings.COMMENTS_MIN_SUBMIT_SECONDS > 0:
        time.sleep(settings.COMMENTS_MIN_SUBMIT_SECONDS + 0.2)  # the token's least age

    def submit_body(n: int) -> bytes:
        text = f"Counting the queries of one submit ({os.getpid()}-{n})."
        return json.dumps(
            {
                "author_name": "Bench queries",
                "author_email": f"bench-queries-{n}@example.com",
                "body": text,
                "form_token": form_token,
                "website": "",
            }
        ).encode()

    result: dict[str, Any] = {
        "read_cache_setting": getattr(settings, "COMMENTS_READ_CACHE", None),
    }
    requests = {
        "read": [("GET", READ_PATH, b"", 0)] * 2,
        "counts": [("GET", COUNTS_PATH, b"", 0)] * 2,
        "submit": [
            ("POST", SUBMIT_PATH, submit_body(1), 1),
            ("POST", SUBMIT_PATH, submit_body(2), 2),
        ],
    }
    if submit_only:
        requests = {"submit": requests["submit"]}
    for kind, (first, second) in requests.items():
        cache.clear()  # the benchmark's own Redis database
        result[kind] = {"cold": measure(*first), "warm": measure(*second)}
    if "read" not in requests:
        cache.clear()
        print(json.dumps(result))
        return 0
    status, body = wsgi_request(application, "GET", READ_PATH)
    result["article_0_published"] = json.loads(body).get("count") if status == 200 else None
    cache.clear()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
