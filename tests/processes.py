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

    return web_command(port, workers=2)


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpSink:
    """An SMTP server on 127.0.0.1 (aiosmtpd, on its own thread) that keeps every mail:
    other processes (the web server, a worker) send to it with Django's SMTP backend."""

    def __init__(self) -> None:
        import asyncio
        import threading

        from aiosmtpd.smtp import SMTP

        self.messages: list[dict] = []  # {"rcpt_tos", "mail_from", "raw", "message"}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        serve = self.loop.create_server(
            lambda: SMTP(self, hostname="localhost", loop=self.loop), "127.0.0.1", 0
        )
        self.server = asyncio.run_coroutine_threadsafe(serve, self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        """aiosmtpd's hook for one accepted mail."""
        from email import message_from_bytes, policy

        raw = envelope.original_content or envelope.content  # type: ignore[attr-defined]
        self.messages.append(
            {
                "mail_from": envelope.mail_from,  # type: ignore[attr-defined]
                "rcpt_tos": list(envelope.rcpt_tos),  # type: ignore[attr-defined]
                "raw": raw,
                "message": message_from_bytes(raw, policy=policy.default),
            }
        )
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[dict]:
        """The mails whose envelope named this recipient, oldest first."""
        return [mail for mail in list(self.messages) if address in mail["rcpt_tos"]]

    def close(self) -> None:
        import asyncio

        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class AppStack:
    """A web server (granian) and a Celery worker of their own, on the test database:
    for end-to-end tests that need settings the session's worker does not have."""

    def __init__(self, url: str, queue: str, worker_name: str, env: dict[str, str]) -> None:
        self.url = url
        self.queue = queue
        self.worker_name = worker_name
        self.env = env

    def wait_until_idle(self, timeout: float = 20.0) -> None:
        """Until this stack's worker runs, holds and is offered no task (bounded)."""
        from comments_project.celery import app

        def idle() -> bool:
            inspector = app.control.inspect(destination=[self.worker_name], timeout=0.5)
            replies = [inspector.active(), inspector.reserved()]
            if any(reply is None for reply in replies):
                return False  # no answer: not known to be idle
            busy = [task for reply in replies for tasks in reply.values() for task in tasks]
            with app.connection_for_read() as connection:
                waiting = connection.default_channel.client.llen(self.queue)
            return not busy and not waiting

        wait_for(idle, timeout, 0.2)


@contextlib.contextmanager
def app_stack(standin_url: str, tmp_path: Path, **settings_env: str) -> Iterator[AppStack]:
    """Run a worker and the web server with `settings_env` over the test environment
    (their own queue; COMMENTS_SITE_URL is the server's URL unless given) until the
    block ends. Needs the test database on PostgreSQL: call require_services() first."""
    import uuid

    import httpx

    from tests.akismet_fixtures import TEST_KEY
    from tests.worker_fixtures import _database_url

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    worker_name = f"{queue}@e2e"
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        **app_env(_database_url(), standin_url, TEST_KEY),
        "CELERY_QUEUE": queue,
        "CELERY_WORKER_CONCURRENCY": "2",
        "COMMENTS_SITE_URL": url,
        "COMMENTS_THROTTLE_SUBMIT": "0",
        "COMMENTS_THROTTLE_READ": "0",
        "COMMENTS_FLOOD_SECONDS": "0",
        "COMMENTS_MIN_SUBMIT_SECONDS": "0",
        "COMMENTS_DUPLICATE_WINDOW_SECONDS": "0",
        **settings_env,
    }
    worker_log, web_log = tmp_path / "worker.log", tmp_path / "web.log"
    worker_args = [
        sys.executable, "-m", "celery", "-A", "comments_project", "worker",
        "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-n", worker_name,
    ]  # fmt: skip

    def answers() -> bool:
        try:
            return httpx.get(url + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def worker_ready() -> bool:
        return b" ready." in worker_log.read_bytes()

    with (
        running_process("celery worker", worker_args, env, worker_log, worker_ready),
        running_process("web server", web_args(port), env, web_log, answers),
    ):
        yield AppStack(url, queue, worker_name, env)
