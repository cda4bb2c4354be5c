"""The one place that says how the web server runs: `make run`, the tests, the
benchmark and the README's deployment all start it through `web_command`.

Granian (a Rust HTTP server with a WSGI interface) was chosen by measurement:
on 2 cores over loopback it serves a bare WSGI app about eight times faster than
gunicorn's sync workers, with keep-alive, so the cached read path is limited by
Python rather than by HTTP parsing (figures in docs/performance.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEFAULT_APP = "comments_project.wsgi:application"


def web_command(
    port: int,
    host: str = "127.0.0.1",
    app: str = DEFAULT_APP,
    workers: int | None = None,
    threads: int | None = None,
    access_log: bool = False,
) -> list[str]:
    """The argv that serves `app` on host:port.

    `workers` defaults to WEB_CONCURRENCY (else 2), `threads` (Python threads per
    worker, each with its own database connection) to WEB_THREADS (else 2). Two
    threads overlap one request's database wait with another's Python work; more
    only add GIL contention: on 2 cores, 4 threads per worker served 15-25 % fewer
    submits and cold pages than 2, and their workers peaked 20 MiB higher
    (docs/performance.md).
    """
    workers = workers or int(os.environ.get("WEB_CONCURRENCY") or 2)
    threads = threads or int(os.environ.get("WEB_THREADS") or 2)
    args = [
        str(Path(sys.executable).with_name("granian")),
        "--interface", "wsgi",
        "--host", host,
        "--port", str(port),
        "--workers", str(workers),
        "--blocking-threads", str(threads),
        "--backpressure", str(threads * 8),
        "--http", "1",
        "--respawn-failed-workers",
        "--workers-kill-timeout", "30",
        "--log-level", "warning",
    ]  # fmt: skip
    if access_log:
        args.append("--access-log")
    return [*args, app]
