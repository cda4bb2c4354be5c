"""Plumbing of the HTTP benchmark: server processes, wrk, PostgreSQL and Redis.

Every process is started in its own process group and stopped through that group
only; every wait and every load run is bounded in time.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
WRK_DIR = Path(__file__).resolve().parent / "wrk"
PYTHON = sys.executable
STANDIN_KEY = "bench-standin-key"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/comments_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
# Inherited variables that would change what is measured; the benchmark sets its own.
_DROPPED_PREFIXES = (
    "COMMENTS_", "AKISMET_", "CELERY_", "DATABASE_", "SECURE_", "WEB_", "BENCH_FLOOR",
)  # fmt: skip
_DROPPED = {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "REDIS_URL", "LOG_LEVEL", "BROKER_DIR",
            "CACHE_DIR", "DJANGO_SETTINGS_MODULE", "CSRF_TRUSTED_ORIGINS"}  # fmt: skip


def bench_env(database_url: str, redis_url: str, standin_url: str, queue: str) -> dict[str, str]:
    """The environment of every benchmarked process: the app as deployed, limits off."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _DROPPED and not key.startswith(_DROPPED_PREFIXES)
    }
    env.update(
        DEBUG="false",
        SECRET_KEY="bench-" + secrets.token_urlsafe(48),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        AKISMET_API_KEY=STANDIN_KEY,
        AKISMET_API_URL=standin_url,
        AKISMET_BLOG_URL="http://localhost:8000",
        AKISMET_IS_TEST="true",
        CELERY_QUEUE=queue,
        LOG_LEVEL="WARNING",
        COMMENTS_MIN_SUBMIT_SECONDS="0",
        COMMENTS_THROTTLE_SUBMIT="0",
        COMMENTS_THROTTLE_READ="0",
        COMMENTS_FLOOD_SECONDS="0",
        COMMENTS_DUPLICATE_WINDOW_SECONDS="0",
    )
    return env


class BenchError(RuntimeError):
    """Something the benchmark needs is missing or broke; the message says what."""


# --- HTTP ---------------------------------------------------------------------


def http(
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, dict[str, str], bytes]:
    """One request over loopback: (status, headers, body); HTTP errors are answers too."""
    request = urllib.request.Request(  # noqa: S310 (the runner builds loopback URLs only)
        url, data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Processes --------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """Every descendant of `pid`, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return sorted(found)


def _cpu_ticks() -> tuple[int, int, dict[int, tuple[str, int]]]:
    """Busy and I/O-wait ticks of the whole machine, and (name, user+system ticks) of
    every process."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    processes = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            rest = stat.rsplit(")", 1)[1].split()
            processes[int(entry.name)] = (name, int(rest[11]) + int(rest[12]))
    return user + nice + system + irq + softirq + steal, iowait, processes


class CpuMeter:
    """Where the CPU went while a load ran, in cores: the server under test (its process
    group), PostgreSQL and Redis, wrk (timed separately) and everything else; and the
    cores left idle waiting on the disk ("disk_wait": a stalled WAL flush, say)."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid

    def __enter__(self) -> CpuMeter:
        self.started = time.monotonic()
        self.before = _cpu_ticks()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.after = _cpu_ticks()
        self.seconds = time.monotonic() - self.started

    def cores(self, wrk_seconds: float) -> dict[str, float]:
        hz = os.sysconf("SC_CLK_TCK")
        server_pids = {self.server_pid, *_children(self.server_pid)}
        groups = {"server": 0, "postgres_redis": 0}
        for pid, (name, ticks) in self.after[2].items():
            used = ticks - self.before[2].get(pid, (name, 0))[1]
            if pid in server_pids:
                groups["server"] += used
            elif name.startswith(("postgres", "redis-server")):
                groups["postgres_redis"] += used
        busy = self.after[0] - self.before[0]
        result = {key: ticks / hz / self.seconds for key, ticks in groups.items()}
        result["wrk"] = wrk_seconds / self.seconds
        result["other"] = max(0.0, busy / hz / self.seconds - sum(result.values()))
        result["disk_wait"] = (self.after[1] - self.before[1]) / hz / self.seconds
        return {key: round(value, 2) for key, value in result.items()}


def _status_kib(pid: int) -> dict[str, int]:
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(rest.split()[0])
    except OSError:
        pass
    return values


class Server:
    """A server process (and its workers) in its own process group, ready when
    `ready_url` answers 200; stopped with SIGTERM to that group (SIGKILL after 30 s)."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], log_dir: Path, ready_url: str
    ) -> None:
        """`ready_url` is the server's base URL plus a path that answers 200 when it is up."""
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.ready_url = ready_url
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                self.args,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready(timeout=60.0)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited at start:\n{self.log_tail()}")
            try:
                if http(self.ready_url, timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise BenchError(f"{self.name} was not ready in {timeout:.0f}s:\n{self.log_tail()}")

    @property
    def base_url(self) -> str:
        parts = urlsplit(self.ready_url)
        return f"{parts.scheme}://{parts.netloc}"

    def cpu_meter(self) -> CpuMeter:
        assert self.process is not None
        return CpuMeter(self.process.pid)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def peak_memory(self) -> list[dict[str, Any]]:
        """VmHWM (peak RSS) and VmRSS of the leader and each descendant, in KiB."""
        assert self.process is not None
        pids = [self.process.pid, *_children(self.process.pid)]
        rows = []
        for pid in pids:
            values = _status_kib(pid)
            if values:
                role = "main" if pid == self.process.pid else "worker"
                hwm, rss = values.get("VmHWM", 0), values.get("VmRSS", 0)
                rows.append({"pid": pid, "role": role, "hwm_kib": hwm, "rss_kib": rss})
        return rows

    def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        pgid = process.pid  # start_new_session: the leader's pid is the group id
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Workers that outlived their leader are still in the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def run_checked(
    args: list[str], env: dict[str, str], timeout: float, what: str
) -> subprocess.CompletedProcess:
    """Run a command to completion (bounded); fail with its output if it fails."""
    try:
        result = subprocess.run(  # noqa: S603
            args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what} did not finish in {timeout:.0f}s") from None
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-3000:]
        raise BenchError(f"{what} failed ({result.returncode}):\n{output}")
    return result


# --- wrk ----------------------------------------------------------------------------


def find_wrk() -> str:
    path = shutil.which("wrk") or ("/usr/bin/wrk" if Path("/usr/bin/wrk").exists() else None)
    if not path:
        raise BenchError(
            "wrk (the load generator) is not installed: run `bash bench/setup.sh` "
            "(installs Debian's wrk with apt-get), or use `make bench` / `make bench-smoke`."
        )
    return path


def wrk_version(wrk: str) -> str:
    result = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)  # noqa: S603
    return (result.stdout or result.stderr).splitlines()[0].strip()


def wrk_script(path: Path, kind: str) -> Path:
    """report.lua plus the script of `kind` ("get": none, "submit": submit.lua,
    "forwarded": forwarded.lua, a GET from its own address per request)."""
    parts = [(WRK_DIR / "report.lua").read_text()]
    if kind in ("submit", "forwarded"):
        parts.append((WRK_DIR / f"{kind}.lua").read_text())
    path.write_text("\n".join(parts))
    return path


def run_wrk(
    wrk: str,
    url: str,
    script: Path,
    duration: int,
    connections: int,
    threads: int,
    script_args: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One wrk run of `duration` seconds; the figures the script's done() printed."""
    args = [
        wrk, "-t", str(min(threads, connections)), "-c", str(connections),
        "-d", f"{duration}s", "--timeout", "10s", "--latency", "-s", str(script), url,
    ]  # fmt: skip
    if script_args:
        args += ["--", *script_args]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        result = subprocess.run(  # noqa: S603
            args, capture_output=True, text=True, timeout=duration + 60
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk on {url} did not finish") from None
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (
        cpu_after.ru_stime - cpu_before.ru_stime
    )
    line = next((x for x in result.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if result.returncode != 0 or line is None:
        raise BenchError(f"wrk on {url} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = raw["duration_us"] / 1e6
    errors = raw["errors"]
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 3),
        "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p90_ms": round(raw["p90_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "bytes_per_response": round(raw["bytes"] / raw["requests"]) if raw["requests"] else 0,
        "errors": sum(errors.values()),
        "error_detail": errors,
        "statuses": raw["statuses"],
        "wrk_cpu_seconds": round(wrk_cpu, 3),
    }


# --- PostgreSQL and Redis --------------------------------------------------------------


def ensure_database(database_url: str) -> str:
    """Create the database if it does not exist; its server version."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(database_url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        raise BenchError(f"the benchmark needs PostgreSQL; BENCH_DATABASE_URL={database_url!r}")
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return conn.execute("SHOW server_version").fetchone()[0]
    except psycopg.OperationalError as exc:
        raise BenchError(f"PostgreSQL at {parts.hostname}:{parts.port or 5432}: {exc}") from None


def checkpoint(database_url: str) -> str | None:
    """Flush PostgreSQL's dirty pages now (CHECKPOINT), so that the writes of seeding or
    of an earlier figure are not flushed during the next one, stalling its commits
    behind them. None when done, else why not (it needs a superuser or pg_checkpoint)."""
    import psycopg

    try:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.Error as exc:
        return f"CHECKPOINT refused ({str(exc).strip()}): figures may pay for earlier writes"
    return None


def redis_client(redis_url: str) -> Any:
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=10)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BenchError(f"Redis at {redis_url}: {exc}") from None
    return client
