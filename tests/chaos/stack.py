"""The whole system as real processes on a private Redis and PostgreSQL.

The web server (granian, as in production), Celery workers of either pool,
celery beat and the Akismet stand-in each run in their own process group, so a
fault can SIGKILL a worker with its pool children, and cleanup stops exactly
the processes started here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from celery import Celery

from tests.private_services import PrivatePostgres, PrivateRedis, free_port

ROOT = Path(__file__).resolve().parents[2]
STANDIN_KEY = "chaos-standin-key"
QUEUE = "chaos"
MODERATOR_EMAIL = "moderators@example.com"
# What the parent environment may set that must never leak into the private system.
_FOREIGN_PREFIXES = (
    "DATABASE_",
    "REDIS_",
    "CELERY_",
    "COMMENTS_",
    "AKISMET_",
    "EMAIL_",
    "CACHE_",
    "BROKER_",
    "WEB_",
    "DJANGO_",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DEBUG",
)


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.2) -> bool:
    """Poll until predicate() is truthy; False when `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _processes() -> Iterator[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every process, read from /proc."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        yield int(entry.name), int(fields[1]), int(fields[2])


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid`."""
    return [child for child, parent, _ in _processes() if parent == pid]


def kill_group_members(pgid: int) -> None:
    """SIGKILL what is left of a process group we created (pool children of a dead leader)."""
    for pid, _, group in _processes():
        if group == pgid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@dataclass
class Proc:
    """One server process, leader of its own process group."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None
    node: str = ""  # a Celery worker's node name
    log_offset: int = 0  # where this run's output starts in a reused log file

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, ready: Callable[[Proc], object], timeout: float = 60.0) -> Proc:
        with self.log_path.open("ab") as log:
            self.log_offset = log.tell()
            self.process = subprocess.Popen(  # noqa: S603
                self.args,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not wait_until(lambda: not self.alive() or ready(self), timeout):
            self.kill()
            raise RuntimeError(f"{self.name} was not ready in {timeout}s:\n{self.log_tail()}")
        if not self.alive():
            raise RuntimeError(f"{self.name} died at start:\n{self.log_tail()}")
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        """What this run of the process wrote."""
        with contextlib.suppress(OSError), self.log_path.open("rb") as log:
            log.seek(self.log_offset)
            return log.read().decode(errors="replace")
        return ""

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]

    def terminate(self, timeout: float = 60.0) -> float | None:
        """SIGTERM the leader (a warm shutdown); seconds until it exited, None if killed."""
        if not self.alive():
            return 0.0
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        kill_group_members(self.process.pid)  # pool children never outlive their leader
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL the whole process group: the node is gone, with its pool children."""
        if self.process is None:
            return
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        kill_group_members(self.process.pid)


class StandIn:
    """The Akismet stand-in process and its admin API; keeps every request ever logged.

    `/__admin/reset` is the only way to end a fault, and it also clears the
    stand-in's log, so the log is fetched just before each reset. Resets happen
    only while a fault answers every request, so every request that could have
    succeeded in between is still in the log.
    """

    def __init__(self, proc: Proc, url: str) -> None:
        self.proc = proc
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10)
        self.earlier: list[dict[str, Any]] = []
        self.latency_seconds = 0.0

    def stats(self) -> dict[str, int]:
        return self.http.get("/__admin/stats").json()

    def requests(self) -> list[dict[str, Any]]:
        return self.earlier + self.http.get("/__admin/requests").json()

    def set_latency(self, seconds: float) -> None:
        self.latency_seconds = seconds
        self.http.post("/__admin/latency", json={"seconds": seconds}).raise_for_status()

    def add_fault(self, **fault: Any) -> None:
        self.http.post("/__admin/faults", json=fault).raise_for_status()

    def clear_faults(self) -> None:
        self.earlier += self.http.get("/__admin/requests").json()
        self.http.post("/__admin/reset").raise_for_status()
        self.set_latency(self.latency_seconds)

    def close(self) -> None:
        self.http.close()


@dataclass
class Stack:
    """Private services plus the processes of one run; `close` stops everything."""

    workdir: Path
    redis: PrivateRedis
    postgres: PrivatePostgres
    database: str = "comments"
    akismet_timeout: float = 1.5
    extra_env: dict[str, str] = field(default_factory=dict)
    web_port: int = field(default_factory=free_port)
    standin_port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    web: Proc | None = None
    beat: Proc | None = None
    standin: StandIn | None = None
    workers: dict[str, Proc] = field(default_factory=dict)
    retired: list[Proc] = field(default_factory=list)
    # Held while a process is deliberately killed or replaced, so a watcher never
    # mistakes that for a crash.
    lock: threading.RLock = field(default_factory=threading.RLock)
    _serial: int = 0

    def __post_init__(self) -> None:
        self.mail_dir = self.workdir / "mail"
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        base = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES)}
        self.env = {
            **base,
            "PYTHONPATH": str(ROOT),
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": self.postgres.url(self.database),
            "REDIS_URL": self.redis.url,
            "CELERY_QUEUE": QUEUE,
            "CACHE_KEY_PREFIX": "chaos",
            "CELERY_BEAT_SCHEDULE_FILENAME": str(self.workdir / "celerybeat-schedule"),
            "AKISMET_API_KEY": STANDIN_KEY,
            "AKISMET_API_URL": f"http://127.0.0.1:{self.standin_port}",
            "AKISMET_BLOG_URL": "https://news.example.com/",
            "AKISMET_IS_TEST": "true",
            "AKISMET_TIMEOUT": str(self.akismet_timeout),
            # Every submission comes from this one machine, as fast as the test sends it.
            "COMMENTS_THROTTLE_SUBMIT": "0",
            "COMMENTS_THROTTLE_READ": "0",
            "COMMENTS_FLOOD_SECONDS": "0",
            "COMMENTS_MIN_SUBMIT_SECONDS": "0",
            "COMMENTS_MODERATOR_EMAILS": MODERATOR_EMAIL,
            "COMMENTS_SITE_URL": f"http://127.0.0.1:{self.web_port}",
            "EMAIL_BACKEND": "tests.chaos.mail_backend.EmailBackend",
            "CHAOS_MAIL_DIR": str(self.mail_dir),
            "LOG_LEVEL": "INFO",
            **self.extra_env,
        }

    # --- set-up ---------------------------------------------------------------------------

    def manage(self, *args: str, timeout: float = 180) -> str:
        result = subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def prepare_database(self, slugs: list[str]) -> dict[str, Any]:
        """Create the database, migrate, and add the articles and a moderator with a token."""
        self.postgres.create_database(self.database)
        self.manage("migrate", "--noinput", "-v", "0")
        script = (
            "import json\n"
            "from django.contrib.auth import get_user_model\n"
            "from django.contrib.auth.models import Group\n"
            "from django.utils import timezone\n"
            "from rest_framework.authtoken.models import Token\n"
            "from articles.models import Article\n"
            f"slugs = {slugs!r}\n"
            "ids = {s: Article.objects.create(slug=s, title=f'Chaos {s}',"
            " url=f'https://news.example.com/{s}/', published_at=timezone.now()).pk"
            " for s in slugs}\n"
            "user = get_user_model().objects.create_user('chaos-moderator',"
            " 'chaos-moderator@example.com', 'not-used-' + 'x' * 20, is_staff=True)\n"
            "user.groups.add(Group.objects.get(name='moderators'))\n"
            "token = Token.objects.create(user=user).key\n"
            "print('CHAOS-SETUP ' + json.dumps({'articles': ids, 'token': token,"
            " 'moderator_id': user.pk}))\n"
        )
        output = self.manage("shell", "-c", script)
        line = next(line for line in output.splitlines() if line.startswith("CHAOS-SETUP "))
        return json.loads(line.removeprefix("CHAOS-SETUP "))

    def sql(self) -> psycopg.Connection:
        """A fresh autocommit connection to the private database (for the audit)."""
        return self.postgres.connect(self.database, autocommit=True)

    # --- processes ------------------------------------------------------------------------

    def _proc(self, name: str, args: list[str]) -> Proc:
        return Proc(name, args, dict(self.env), self.workdir / f"{name}.log")

    def start_standin(self, latency: float = 0.0) -> StandIn:
        proc = self._proc(
            "akismet-standin",
            [
                sys.executable, "manage.py", "akismet_standin",
                "--port", str(self.standin_port), "--key", STANDIN_KEY,
            ],
        )  # fmt: skip
        url = f"http://127.0.0.1:{self.standin_port}"

        def ready(_: Proc) -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{url}/__admin/stats", timeout=1).status_code == 200
            return False

        proc.start(ready)
        self.standin = StandIn(proc, url)
        self.standin.set_latency(latency)
        return self.standin

    def start_web(self) -> Proc:
        from comments_project.server import web_command

        url = f"http://127.0.0.1:{self.web_port}/healthz"

        def ready(_: Proc) -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(url, timeout=1).status_code == 200
            return False

        self.web = self._proc("web", web_command(self.web_port, workers=2)).start(ready)
        return self.web

    def start_worker(self, role: str, env: dict[str, str] | None = None) -> Proc:
        """A worker node named `<role>-<n>@chaos`; the role names its pool.

        The pool is chosen by CELERY_WORKER_POOL / CELERY_WORKER_CONCURRENCY
        (an explicit `--pool prefork` would be overridden by settings).
        """
        self._serial += 1
        node = f"{role}-{self._serial}@chaos"
        args = [
            sys.executable, "-m", "celery", "-A", "comments_project", "worker",
            "--loglevel", "INFO", "-n", node, "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        proc = self._proc(node.replace("@", "_"), args)
        proc.env.update(env or {})
        proc.node = node
        proc.start(lambda p: " ready." in p.log_text())
        self.workers[role] = proc
        return proc

    def start_threads_worker(self) -> Proc:
        """The production worker: settings' pool (threads) and concurrency."""
        return self.start_worker("threads")

    def start_prefork_worker(self) -> Proc:
        """Two pool child processes, which a fault can SIGKILL one at a time."""
        return self.start_worker(
            "prefork", {"CELERY_WORKER_POOL": "prefork", "CELERY_WORKER_CONCURRENCY": "2"}
        )

    def start_role(self, role: str) -> Proc:
        """Start a worker like the one `role` names (threads, prefork, or another threads one)."""
        if role == "prefork":
            return self.start_prefork_worker()
        if role == "threads":
            return self.start_threads_worker()
        return self.start_worker(role)

    def retire(self, role: str) -> Proc:
        with self.lock:
            proc = self.workers.pop(role)
            self.retired.append(proc)
            return proc

    def start_beat(self) -> Proc:
        args = [
            sys.executable, "-m", "celery", "-A", "comments_project", "beat",
            "--loglevel", "INFO", "-s", str(self.workdir / "celerybeat-schedule"),
        ]  # fmt: skip
        self.beat = self._proc("beat", args).start(lambda p: "beat: Starting" in p.log_text())
        return self.beat

    def stop_beat(self) -> None:
        with self.lock:
            if self.beat is not None:
                self.beat.terminate(timeout=20)
                self.retired.append(self.beat)
                self.beat = None

    def control(self) -> Celery:
        """A bare Celery app on the private broker, for `inspect` only."""
        return Celery("chaos-control", broker=self.redis.url, set_as_current=False)

    def broker_backlog(self) -> tuple[int, int]:
        """Messages waiting in the queue, and messages delivered but not acknowledged."""
        with contextlib.closing(self.redis.client()) as client:
            return int(client.llen(QUEUE)), int(client.hlen("unacked"))

    def stale_claim_takeovers(self) -> set[tuple[int, str]]:
        """(comment id, side effect kind) of every "taking over the stale claim" a worker
        logged: a side effect repeated on purpose (SideEffect's at-least-once kinds)."""
        pattern = re.compile(r"taking over the stale (\w+) claim on comment (\d+)")
        found = set()
        for log in self.workdir.glob("*.log"):
            for kind, comment_id in pattern.findall(log.read_text(errors="replace")):
                found.add((int(comment_id), kind))
        return found

    def oldest_unacked_age(self) -> float:
        with contextlib.closing(self.redis.client()) as client:
            oldest = client.zrange("unacked_index", 0, 0, withscores=True)
        return time.time() - oldest[0][1] if oldest else 0.0

    def close(self) -> None:
        """Stop every process started here (leaders by pid, then their groups)."""
        with self.lock:  # never while a watcher restarts something
            self._close()

    def _close(self) -> None:
        procs = [*self.workers.values(), *self.retired, self.beat, self.web]
        if self.standin:
            procs.append(self.standin.proc)
            self.standin.close()
        for proc in procs:
            if proc is not None and proc.alive():
                proc.terminate(timeout=15)
        for proc in procs:
            if proc is not None and proc.process is not None:
                kill_group_members(proc.process.pid)

    def keep_logs(self, destination: Path) -> None:
        """Copy the process logs somewhere that outlives the temporary directory."""
        shutil.rmtree(destination, ignore_errors=True)  # only this run's logs
        destination.mkdir(parents=True)
        for log in self.workdir.glob("*.log"):
            (destination / log.name).write_bytes(log.read_bytes())
        (destination / "redis.log").write_text(self.redis.log_tail(200_000))
        (destination / "postgres.log").write_text(self.postgres.log_tail(200_000))


@contextlib.contextmanager
def running_stack(stack: Stack) -> Iterator[Stack]:
    try:
        yield stack
    finally:
        stack.close()
