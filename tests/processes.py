"""Start a real server process for a test (the web server, a celery worker) and always stop it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.1):
    """Poll until predicate() is truthy; bounded in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def app_env(database_url: str, akismet_url: str, akismet_key: str) -> dict[str, str]:
    """What every server process of a test needs: the test database and the stand-in."""
    return {
        "DEBUG": "true",
        "DATABASE_URL": database_url,
        "DATABASE_CONN_MAX_AGE": "0",
        "AKISMET_API_KEY": akismet_key,
        "AKISMET_API_URL": akismet_url,
        "AKISMET_BLOG_URL": "https://news.example.com/",
        "AKISMET_IS_TEST": "true",
        "AKISMET_TIMEOUT": "1",
    }


def web_args(port: int) -> list[str]:
    """The production web server (granian, as `make run` and the README start it)."""
    from comments_project.server import web_command

    return web_command(port, workers=2, threads=4)


def gunicorn_args(port: int, *extra: str) -> list[str]:
    """gunicorn, for the fuzzer, which needs a server without URL and header limits."""
    return [
        sys.executable, "-m", "gunicorn", "comments_project.wsgi",
        "--bind", f"127.0.0.1:{port}", "--workers", "2", "--error-logfile", "-", *extra,
    ]  # fmt: skip


@contextlib.contextmanager
def running_process(
    name: str,
    args: list[str],
    env: dict[str, str],
    log_path: Path,
    ready: Callable[[], object],
    timeout: float = 60.0,
) -> Iterator[subprocess.Popen]:
    """Run `args` until the block ends; fail the test with the log if it never gets ready."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        try:
            wait_for(lambda: process.poll() is not None or ready(), timeout, 0.2)
        except AssertionError:
            pytest.fail(f"{name} was not ready in {timeout}s:\n" + log_path.read_text()[-3000:])
        if process.poll() is not None:
            pytest.fail(f"{name} died at start:\n" + log_path.read_text()[-3000:])
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if os.environ.get("SHOW_PROCESS_LOGS"):
            print(f"--- {name} ---\n" + log_path.read_text()[-5000:])
