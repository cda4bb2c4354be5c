"""Browser tests of the widget: Debian's Chromium driven by Playwright, against the web server,
a real Celery worker and the Akismet stand-in, everything on 127.0.0.1.

`tests/browser/setup.sh` installs what is missing (Chromium, a CJK font, axe-core).
Without Chromium or Playwright the tests skip locally; under CI=true they fail instead.
"""

from __future__ import annotations

import functools
import http.server
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest

from tests.akismet_fixtures import TEST_KEY
from tests.processes import app_env, running_process, web_args
from tests.worker_fixtures import ROOT, _database_url
from tests.worker_idle import wait_until_worker_idle

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
AXE_JS = HERE / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "artifacts"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
]
TIMEOUT_MS = 15_000


def skip_or_fail(message: str) -> None:
    if IN_CI:
        pytest.fail(message + " (run tests/browser/setup.sh)")
    pytest.skip(message + " (run tests/browser/setup.sh)")


def require_browser() -> None:
    problems = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the playwright package")
    if not Path(CHROMIUM).exists():
        problems.append(CHROMIUM)
    if problems:
        skip_or_fail("browser tests need " + " and ".join(problems))


def artifact(name: str) -> Path:
    """A file under artifacts/ (git-ignored by its own .gitignore)."""
    ARTIFACTS.mkdir(exist_ok=True)
    ignore = ARTIFACTS / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return ARTIFACTS / name


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, headers: dict[str, str] | None = None, method: str = "GET"):
    """(status, headers, body) of a request to 127.0.0.1; never raises for an HTTP status."""
    assert urlsplit(url).hostname == "127.0.0.1"
    request = urllib.request.Request(url, headers=headers or {}, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode()


def _answers(url: str) -> bool:
    try:
        return http_get(url)[0] == 200
    except OSError:
        return False


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def embed_origins(tmp_path_factory) -> Iterator[SimpleNamespace]:
    """Two tiny static sites on other ports: one allowed to embed the widget, one not."""
    root = tmp_path_factory.mktemp("embed-site")
    servers = []
    for _ in range(2):
        handler = functools.partial(_QuietHandler, directory=str(root))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    allowed, refused = (f"http://127.0.0.1:{s.server_address[1]}" for s in servers)
    try:
        yield SimpleNamespace(root=root, allowed=allowed, refused=refused)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture(autouse=True)
def worker_idle_before_flush(request: pytest.FixtureRequest) -> Iterator[None]:
    """Let the worker finish the checks a browser test set off before its tables are
    flushed. A test may end right after its comment was accepted; the check then
    runs while TRUNCATE takes its locks, and the two deadlock (seen in a full run)."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        yield
        return
    request.getfixturevalue("transactional_db")  # set up first, so flushed after this
    yield
    time.sleep(0.2)  # the web server's dispatcher sends what it collected (20 ms batches)
    wait_until_worker_idle()


@pytest.fixture(scope="session")
def server_url(
    django_db_setup,
    django_db_blocker,
    standin_server,
    celery_worker_process,
    embed_origins,
    tmp_path_factory,
) -> Iterator[str]:
    """The web server on the test database, next to the real worker and the Akismet stand-in."""
    with django_db_blocker.unblock():
        database_url = _database_url()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        **app_env(database_url, standin_server.url, TEST_KEY),
        "COMMENTS_ALLOWED_ORIGINS": f"{url},{embed_origins.allowed}",
        # Many comments from one address in a few seconds: abuse limits off, except the
        # form token, kept short so the widget's real token path is exercised.
        "COMMENTS_THROTTLE_SUBMIT": "0",
        "COMMENTS_THROTTLE_READ": "0",
        "COMMENTS_FLOOD_SECONDS": "0",
        "COMMENTS_DUPLICATE_WINDOW_SECONDS": "0",
        "COMMENTS_MIN_SUBMIT_SECONDS": "1",
    }
    log_path = tmp_path_factory.mktemp("web") / "web.log"
    args = web_args(port)
    with running_process("web server", args, env, log_path, lambda: _answers(url + "/healthz")):
        yield url


@pytest.fixture(scope="module")
def browser():
    """Chromium for one test module.

    Playwright's sync API keeps an asyncio loop running in this thread while it is
    started, so Django's "no ORM calls from async code" guard has to be lifted for as
    long (the ORM is still called synchronously); module scope ends both before any
    other test module runs.
    """
    require_browser()
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, args=LAUNCH_ARGS, timeout=60_000
            )
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class Reader:
    """One browser context (a reader with their own localStorage) and its page."""

    context: object
    page: object
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def _only_loopback(route) -> None:
    if urlsplit(route.request.url).hostname in ("127.0.0.1", None):
        route.fallback()
    else:
        route.abort()


@pytest.fixture
def new_reader(browser) -> Iterator[Callable[..., Reader]]:
    readers: list[Reader] = []

    def make(**options: object) -> Reader:
        context = browser.new_context(
            viewport={"width": 1000, "height": 900},
            locale="en-US",
            timezone_id="UTC",
            **options,
        )
        context.set_default_timeout(TIMEOUT_MS)
        context.route("**/*", _only_loopback)  # nothing leaves 127.0.0.1
        page = context.new_page()
        reader = Reader(context, page)
        page.on("dialog", lambda d: (reader.dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: reader.errors.append(str(e)))
        page.on("request", lambda r: reader.requests.append(f"{r.method} {r.url}"))
        readers.append(reader)
        return reader

    yield make
    for reader in readers:
        reader.context.close()
