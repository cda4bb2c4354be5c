"""A private Redis and a private PostgreSQL cluster for one test, on free loopback ports.

Each is a context manager that always cleans up: it stops only the server it
started (by its pid) and removes its temporary directory. Both can be taken down
and brought back while a test runs (`PrivateRedis.restart`, `PrivatePostgres.stopped`).

PostgreSQL runs with `fsync=off` and `full_page_writes=off`: the chaos audit is
about our code, not about disk durability. Those settings only matter when the
operating system crashes; a stopped (`pg_ctl stop -m fast`, a shutdown
checkpoint) or even a killed server loses no committed transaction, because
every commit still writes its WAL to the kernel (`synchronous_commit` stays on).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import redis

POSTGRES_OS_USER = "postgres"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin that has initdb and pg_ctl."""
    candidates = [
        Path(path)
        for path in glob.glob("/usr/lib/postgresql/*/bin")
        if (Path(path) / "initdb").exists() and (Path(path) / "pg_ctl").exists()
    ]

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in path.parent.name.split(".") if part.isdigit())

    return max(candidates, key=version) if candidates else None


def missing_tools() -> list[str]:
    """What this machine lacks to run private services (empty when all is there)."""
    missing = []
    if shutil.which("redis-server") is None:
        missing.append("redis-server (Debian package redis-server)")
    if postgres_bin_dir() is None:
        missing.append("PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(POSTGRES_OS_USER)
        except KeyError:
            missing.append(f"the `{POSTGRES_OS_USER}` OS user (initdb refuses to run as root)")
    return missing


def require_private_services() -> None:
    """Skip locally, fail under CI=true, when this machine cannot run private services."""
    missing = missing_tools()
    if missing:
        message = "private Redis/PostgreSQL need " + "; ".join(missing)
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def _wait(predicate, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise RuntimeError(f"{what} within {timeout}s")


def _stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Terminate one process we started, then kill it if it does not go."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


# --- Redis --------------------------------------------------------------------------------


@dataclass
class PrivateRedis:
    """One redis-server on 127.0.0.1 without persistence (unless asked to save once)."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def ping(self) -> bool:
        try:
            with contextlib.closing(self.client()) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        args = [
            "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--dbfilename", "dump.rdb",
            "--maxmemory-policy", "noeviction",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        _wait(lambda: self.process.poll() is not None or self.ping(), 10, "redis did not answer")
        if self.process.poll() is not None:
            raise RuntimeError("redis-server exited at start: " + self.log_tail())

    def stop(self, *, save: bool = False) -> None:
        """Shut down; with `save` the data set is written first and loaded at the next start."""
        if self.process is None or self.process.poll() is not None:
            return
        if save:
            with contextlib.closing(self.client()) as client:
                client.save()
        # SIGTERM is a clean SHUTDOWN; without save points nothing more is written.
        _stop_process(self.process)

    def restart(self, down_seconds: float = 0.0, *, flush: bool = False) -> None:
        """Take Redis down for `down_seconds`; keep its data, or lose it all with `flush`."""
        if flush:
            with contextlib.closing(self.client()) as client:
                client.flushall()
        self.stop(save=not flush)
        if flush:
            with contextlib.suppress(FileNotFoundError):
                (self.directory / "dump.rdb").unlink()
        time.sleep(down_seconds)
        self.start()
        self.restarts += 1

    def log_tail(self, chars: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return (self.directory / "redis.log").read_text()[-chars:]
        return ""


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    directory = Path(tempfile.mkdtemp(prefix="private-redis-"))
    server = PrivateRedis(directory)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)


# --- PostgreSQL ------------------------------------------------------------------------------


@dataclass
class PrivatePostgres:
    """A throw-away cluster: initdb into a temporary directory, trust auth on loopback."""

    directory: Path
    bin_dir: Path
    port: int = field(default_factory=free_port)
    outages: int = 0

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        return self.directory / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres", **kwargs: object) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            dbname=database,
            connect_timeout=5,
            **kwargs,
        )

    def _run(self, *args: str, timeout: float = 60) -> None:
        """Run a PostgreSQL tool as the `postgres` OS user when we are root."""
        as_user = POSTGRES_OS_USER if os.geteuid() == 0 else None
        result = subprocess.run(  # noqa: S603
            [str(self.bin_dir / args[0]), *args[1:]],
            user=as_user,
            cwd=self.directory,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}): {result.stderr[-2000:]}\n"
                + self.log_tail()
            )

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
            "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip

    def start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-k {self.directory}",
                "-c max_connections=300",
                "-c fsync=off",
                "-c full_page_writes=off",
            ]
        )
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-w", "-t", "60",
            "-o", options, "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop")
        except (RuntimeError, subprocess.TimeoutExpired):
            self._kill_postmaster()

    def _kill_postmaster(self) -> None:
        """Last resort: SIGKILL the postmaster this cluster wrote into postmaster.pid."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """The database is down (fast shutdown) for the block, then started again."""
        self.stop("fast")
        try:
            yield
        finally:
            self.start()
            self.outages += 1

    def create_database(self, name: str) -> str:
        with self.connect(autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log_tail(self, chars: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text()[-chars:]
        return ""


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
    # /tmp itself is traversable by the postgres user; pytest's tmp_path is not.
    directory = Path(tempfile.mkdtemp(prefix="private-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam(POSTGRES_OS_USER)
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    cluster = PrivatePostgres(directory, bin_dir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.stop("fast")
        finally:
            shutil.rmtree(directory, ignore_errors=True)
